"""Attempt 3: Caracalla and Roebel's sound-texture statistics (random multi-scale CNN).

Log-compressed spectrogram S = log(1 + C|X|) / log(1 + C), one layer (or more) of random k x k
convolutions per kernel size, and per kernel size the time-summed correlations per frequency
H(i, j, f) = sum_t F_i(f, t) F_j(f, t). The optimised variable is the spectrogram (then
Griffin-Lim) or the waveform itself (through the differentiable STFT).

Notebook: notebooks/03_caracalla_roebel.ipynb
"""
from __future__ import annotations

from typing import Sequence

import torch

from .. import losses as L
from .. import spectral as S
from ..config import CaracallaRoebelConfig
from ..nets import RandomCNN
from .base import Problem, prepare


def build(content: torch.Tensor, style: torch.Tensor, cfg: CaracallaRoebelConfig,
          betas: Sequence[float] | None = None) -> Problem:
    """Set up attempt 3 on ``content: (N,)`` and ``style: (M,)``; targets computed once, no_grad.

    Notebook: notebooks/03_caracalla_roebel.ipynb
    """
    setup = prepare(content, style, cfg, betas)
    content, device, batch = setup.content, setup.device, setup.batch
    net = RandomCNN(filters=cfg.filters, kernel_sizes=cfg.kernel_sizes, layers=cfg.layers, seed=cfg.net_seed,
                    fast=cfg.fast, device=device)
    spec_kw = dict(n_fft=cfg.n_fft, hop_length=cfg.hop_length, compression=cfg.compression)
    with torch.no_grad():
        content_spec = S.log_spectrogram(content, **spec_kw)  # (F, T)
        targets = L.Targets(content=net.features(content_spec) if cfg.alpha > 0 else None,
                            style=L.time_correlations(net.features(S.log_spectrogram(setup.style, **spec_kw))))

    if cfg.domain == "spectrogram":
        if cfg.init == "content":
            init = content_spec.expand(batch, -1, -1).clone()
        else:
            init = torch.rand(batch, *content_spec.shape, generator=setup.generator).to(device) * content_spec.mean() * 2
        lr = cfg.lr

        def to_spec(p: torch.Tensor) -> torch.Tensor:
            return p

        def decode(p: torch.Tensor) -> torch.Tensor:
            mag = S.decompress(p.clamp(0, None), compression=cfg.compression)
            return S.griffin_lim(mag, n_fft=cfg.n_fft, hop_length=cfg.hop_length, n_iter=cfg.griffin_lim_iters,
                                 seed=cfg.seed, length=content.shape[-1])
    else:
        if cfg.init == "content":
            init = content.expand(batch, -1).clone()
        else:
            init = torch.randn(batch, content.shape[-1], generator=setup.generator).to(device) * 0.1
        lr = cfg.lr * cfg.waveform_lr_scale if cfg.optimizer == "adam" else cfg.lr

        def to_spec(p: torch.Tensor) -> torch.Tensor:
            return S.log_spectrogram(p, **spec_kw)

        def decode(p: torch.Tensor) -> torch.Tensor:
            return p

    def one_pass(p: torch.Tensor, b: torch.Tensor) -> dict[str, torch.Tensor]:
        c, s = L.content_and_style(net.features(to_spec(p)), targets, fast=cfg.fast)
        return {"total": L.total_loss(c, s, alpha=cfg.alpha, beta=b), "content": c, "style": s}

    def loss_fn(p: torch.Tensor) -> dict[str, torch.Tensor]:
        if device.type == "cuda" or p.shape[0] == 1:
            return one_pass(p, setup.beta)
        # On a CPU a batch is no faster than a loop, and its larger feature maps fall out of the
        # allocator's reuse (measured: 8 clips of 2 s, 3.3 s per step batched, 1.1 s looped).
        parts = [one_pass(p[i:i + 1], setup.beta[i:i + 1]) for i in range(p.shape[0])]
        return {k: torch.cat([part[k] for part in parts]) for k in parts[0]}

    n_freq, n_frames = content_spec.shape
    info = {"algorithms": dict(net.algorithms)} if getattr(net, "algorithms", None) else {}
    return Problem(init=init, loss_fn=loss_fn, decode=decode, preview=to_spec, lr=lr,
                   weights=net.weights_info.as_dict(), device=device,
                   flops_per_step=net.flops_per_step(n_freq, n_frames, batch), info=info)
