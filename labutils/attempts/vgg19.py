"""Attempt 1: ImageNet VGG-19 on spectrograms copied to three channels, Gram matrices (Gatys).

Notebook: notebooks/01_vgg19.ipynb
"""
from __future__ import annotations

from typing import Sequence

import torch

from .. import spectral as S
from ..config import VGG19Config
from .base import Problem, prepare
from .gram import gram_loss_fn, union


def build(content: torch.Tensor, style: torch.Tensor, cfg: VGG19Config,
          betas: Sequence[float] | None = None) -> Problem:
    """Set up attempt 1: VGG-19 on the spectrogram (dB or log-compressed) copied to 3 channels.

    The optimised variable is the one-channel spectrogram ``(B, F, T)``; the result comes back
    through Griffin-Lim.

    Notebook: notebooks/01_vgg19.ipynb
    """
    from ..nets import VGGFeatures

    setup = prepare(content, style, cfg, betas)
    content, device = setup.content, setup.device
    net = VGGFeatures(layers=union(cfg.content_layers, cfg.style_layers), weights=cfg.weights,
                      imagenet_norm=cfg.imagenet_norm, device=device)
    stft_kw = dict(n_fft=cfg.n_fft, hop_length=cfg.hop_length)

    def forward_spec(audio: torch.Tensor) -> torch.Tensor:
        mag = S.magnitude(audio, **stft_kw)
        return S.power_db(mag) if cfg.scale == "db" else S.compress(mag, compression=cfg.compression)

    with torch.no_grad():
        content_spec, style_spec = forward_spec(content), forward_spec(setup.style)
        if cfg.resize_style and style_spec.shape != content_spec.shape:
            style_spec = torch.nn.functional.interpolate(style_spec[None, None], size=content_spec.shape,
                                                         mode="bilinear", align_corners=False)[0, 0]
        lo, hi = content_spec.min(), content_spec.max()
    if cfg.imagenet_norm:
        def to_input(p: torch.Tensor) -> torch.Tensor:
            return (p - lo) / (hi - lo).clamp_min(1e-6)
    else:
        def to_input(p: torch.Tensor) -> torch.Tensor:
            return p
    guide = None
    if getattr(cfg, "guide", "none") == "notes":
        from .caracalla_roebel import note_guide

        guide = note_guide(content, setup.style, cfg, n_frames=content_spec.shape[-1])
    loss_fn = gram_loss_fn(net, to_input, to_input(content_spec), to_input(style_spec), cfg, setup.beta, guide=guide,
                           audio_input=lambda a: to_input(forward_spec(a)))
    if cfg.init == "content":
        init = content_spec.expand(setup.batch, -1, -1).clone()
    else:
        init = lo + (hi - lo) * torch.rand(setup.batch, *content_spec.shape, generator=setup.generator).to(device)

    def to_mag(p: torch.Tensor) -> torch.Tensor:
        return S.from_power_db(p) if cfg.scale == "db" else S.decompress(p, compression=cfg.compression)

    def decode(p: torch.Tensor) -> torch.Tensor:
        return S.griffin_lim(to_mag(p), **stft_kw, n_iter=cfg.griffin_lim_iters, seed=cfg.seed,
                             length=content.shape[-1])

    def preview(p: torch.Tensor) -> torch.Tensor:
        mag = to_mag(p)
        return S.compress(mag / mag.amax(dim=(-2, -1), keepdim=True).clamp_min(1e-8) * 100, compression=1000.0)

    return Problem(init=init, loss_fn=loss_fn, decode=decode, preview=preview, lr=cfg.lr,
                   weights=net.weights_info.as_dict(), device=device,
                   info={"guide": guide.summary()} if guide is not None else {})
