"""The Gram-matrix loss shared by attempts 1 and 2 (Gatys et al. 2016) over any feature network.

Notebook: notebooks/01_vgg19.ipynb
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import torch

from .. import losses as L
from ..config import TransferConfig
from ..optim import LossFn


def union(*groups: Sequence[str]) -> list[str]:
    """The names of several groups, each once, in first-seen order."""
    out: list[str] = []
    for group in groups:
        out.extend(n for n in group if n not in out)
    return out


def gram_loss_fn(net: torch.nn.Module, to_input: Callable[[torch.Tensor], torch.Tensor], content_in: torch.Tensor,
                 style_in: torch.Tensor, cfg: TransferConfig, beta: torch.Tensor, *,
                 guide: Any = None, audio_input: Callable[[torch.Tensor], torch.Tensor] | None = None) -> LossFn:
    """Content loss on ``cfg.content_layers`` and Gram style loss on ``cfg.style_layers`` of ``net``.

    Targets are computed once, under no_grad. The returned function maps ``p: (B, ...)`` to
    ``{"total", "content", "style"}``, each ``(B,)``. With ``guide`` (a
    :class:`labutils.attempts.caracalla_roebel.NoteGuide`, masks on the STFT frames of ``cfg``)
    the style loss is one Gram matrix per mask (:func:`labutils.losses.guided_gram`, masks
    resampled to each layer's time axis), each matched to its style piece's Gram matrix;
    ``audio_input(audio (P, L)) -> net input`` turns the padded style pieces into the network's input.

    Notebook: notebooks/01_vgg19.ipynb
    """
    names = list(net.layer_names)
    c_idx = [names.index(n) for n in cfg.content_layers]
    s_idx = [names.index(n) for n in cfg.style_layers]
    with torch.no_grad():
        content_feats = net.features(content_in)
        targets = L.Targets(content=[content_feats[i] for i in c_idx] if cfg.alpha > 0 else None,
                            style=L.grams([net.features(style_in)[i] for i in s_idx]) if guide is None else [])
        del content_feats
        if guide is not None:
            length = max(p.shape[-1] for p in guide.pieces)
            batch = torch.stack([torch.nn.functional.pad(p, (0, length - p.shape[-1])) for p in guide.pieces])
            maps = net.features(audio_input(batch.to(guide.masks.device)))
            piece_masks = guide.piece_masks(1 + length // guide.hop_length)
            guided = [torch.stack([L.guided_gram(maps[i][n:n + 1], piece_masks[k:k + 1])[0, 0]
                                   for k, n in enumerate(guide.owner)])[None] for i in s_idx]  # (1, M, C, C) each
            guided_norms = [L.guided_norms(g, blocks=1) for g in guided]

    def loss_fn(p: torch.Tensor) -> dict[str, torch.Tensor]:
        feats = net.features(to_input(p))
        c = (L.content_loss([feats[i] for i in c_idx], targets.content, norms=targets.content_norms)
             if targets.content else torch.zeros(p.shape[0], device=p.device))
        if guide is None:
            s = L.style_loss(L.grams([feats[i] for i in s_idx]), targets.style, norms=targets.style_norms)
        else:
            s = L.guided_style_loss([L.guided_gram(feats[i], guide.masks) for i in s_idx], guided,
                                    norms=guided_norms, weights=guide.weights)
        return {"total": L.total_loss(c, s, alpha=cfg.alpha, beta=beta), "content": c, "style": s}

    return loss_fn
