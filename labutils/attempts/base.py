"""What every attempt shares: the :class:`Problem` it builds, and the set-up it opens with.

An attempt is a recipe: given a content clip, a style clip and its config, it returns a
:class:`Problem` (what to optimise, its loss, the way back to audio). :func:`prepare` does the
checks and choices every recipe starts with, once: validate the config, pick the device, check
the betas and the pair, build the beta tensor and the seeded generator for initialisation.

Notebook: notebooks/03_caracalla_roebel.ipynb
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch

from .. import audio as A
from ..config import TransferConfig
from ..errors import ConfigError
from ..optim import LossFn, pick_device


@dataclass
class Problem:
    """One attempt set up on one pair: the starting tensor(s), the loss, the way back to audio.

    ``init``: a tensor ``(B, ...)`` or a list of tensors handed to :func:`labutils.optim.optimise`;
    ``decode(param) -> audio: (B, N)``; ``preview(param) -> spec: (B, F, T)`` for live display.
    ``info`` is merged into the run's record (e.g. the convolution algorithms chosen).
    An attempt whose steps are not gradient steps sets ``update(param, step) -> losses`` (see
    :func:`labutils.optim.optimise`) and, where the number of steps is its own (one per note),
    ``steps``, which then replaces ``cfg.steps``.
    """

    init: Any
    loss_fn: LossFn
    decode: Callable[[Any], torch.Tensor]
    preview: Callable[[Any], torch.Tensor]
    lr: float
    weights: dict[str, Any]
    device: torch.device
    flops_per_step: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)
    update: Callable[[Any, int], dict[str, torch.Tensor]] | None = None
    steps: int | None = None


@dataclass
class Setup:
    """What :func:`prepare` hands a recipe: checked clips on the device, betas, seeded generator."""

    cfg: TransferConfig
    device: torch.device
    content: torch.Tensor  # (N,)
    style: torch.Tensor  # (M,)
    betas: list[float]
    beta: torch.Tensor  # (B,)
    generator: torch.Generator

    @property
    def batch(self) -> int:
        return len(self.betas)


def check_betas(betas: Sequence[float] | None, cfg: TransferConfig) -> list[float]:
    """``betas`` (or ``[cfg.beta]``) as floats; one ConfigError when any is negative, NaN or inf."""
    betas = list(betas) if betas is not None else [cfg.beta]
    if not betas or any(not (isinstance(b, (int, float)) and math.isfinite(b) and b >= 0) for b in betas):
        raise ConfigError(f"beta={betas}: each value must be a finite number >= 0 (e.g. --beta 0.001,0.01,0.1)")
    return [float(b) for b in betas]


def prepare(content: torch.Tensor, style: torch.Tensor, cfg: TransferConfig,
            betas: Sequence[float] | None = None) -> Setup:
    """The opening of every recipe. ``content: (N,)``, ``style: (M,)`` -> :class:`Setup`.

    Validates ``cfg``, picks the device, checks the betas and that both clips are usable and at
    least ``cfg.min_clip_seconds()`` long (the attempt's minimum, never under one STFT frame), moves them to the device, and seeds a CPU generator with
    ``cfg.seed`` (library code never touches global random state).
    """
    cfg.validate()
    device = pick_device(cfg.device)
    betas = check_betas(betas, cfg)
    min_dur = cfg.min_clip_seconds()  # the attempt's rule, as load_pair applies it to files
    content = A.check(content, name="content", sample_rate=cfg.sample_rate, min_duration=min_dur).to(device)
    style = A.check(style, name="style", sample_rate=cfg.sample_rate, min_duration=min_dur).to(device)
    return Setup(cfg=cfg, device=device, content=content, style=style, betas=betas,
                 beta=torch.tensor(betas, device=device, dtype=torch.float32),
                 generator=torch.Generator(device="cpu").manual_seed(cfg.seed))
