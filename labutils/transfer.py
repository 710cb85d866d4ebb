"""Load a pair, run an attempt on it, and return what came out: ``load_pair``, ``solve``, ``transfer``.

The attempts themselves are recipes in :mod:`labutils.attempts` (read through its registry);
the loop they all share is :func:`labutils.optim.optimise`.

Notebook: notebooks/03_caracalla_roebel.ipynb
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from . import attempts
from . import audio as A
from . import spectral as S
from .config import TransferConfig
from .optim import StepInfo, StopFlag, optimise, pick_device  # noqa: F401  (pick_device: public here too)


@dataclass
class TransferResult:
    """What an attempt returns: audio to listen to, spectrograms to look at, losses, provenance.

    ``audio: (B, N)``, ``spectrogram``/``content_spec``/``style_spec``: log-compressed magnitudes
    ``(B or 1, F, T)`` on the CPU for display. ``config`` is every hyperparameter as a dict.
    ``stopped`` says the run ended early (Stop, NaN guard or an interrupt: ``interrupted``);
    such a result is a partial run and is saved and marked as one.
    """

    method: str
    audio: torch.Tensor
    sample_rate: int
    spectrogram: torch.Tensor
    content_audio: torch.Tensor
    style_audio: torch.Tensor
    content_spec: torch.Tensor
    style_spec: torch.Tensor
    history: list[dict[str, Any]]
    config: dict[str, Any]
    weights: dict[str, Any]
    device: str
    wall_time: float
    steps_done: int
    stopped: bool = False
    message: str = ""
    betas: list[float] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)
    interrupted: bool = False
    info: dict[str, Any] = field(default_factory=dict)


DISPLAY_COMPRESSION = 1000.0  # every displayed spectrogram uses this C, whatever the attempt


def display_spec(audio: torch.Tensor, cfg: TransferConfig) -> torch.Tensor:
    """The picture of a clip: ``audio: (..., N) -> (..., F, T)`` in [0, about 1].

    The magnitude is divided by n_fft / 4 (what a full-scale sine gives under the Hann window),
    then log-compressed with the attempt's C, so every clip of a run shares one colour scale,
    0..1 (:data:`labutils.plots.LOG_SPEC_RANGE`).
    """
    with torch.no_grad():
        mag = S.magnitude(audio.float().cpu(), n_fft=cfg.n_fft, hop_length=cfg.hop_length) / (cfg.n_fft / 4)
        return S.compress(mag, compression=getattr(cfg, "compression", DISPLAY_COMPRESSION))


def solve(
    method: str,
    content: torch.Tensor,
    style: torch.Tensor,
    config: TransferConfig | None = None,
    *,
    betas: Sequence[float] | None = None,
    callback: Callable[[StepInfo, torch.Tensor], None] | None = None,
    every: int = 10,
    stop: StopFlag = None,
    progress: bool = True,
    preview_every: int | None = None,
) -> TransferResult:
    """Run ``method`` on loaded clips ``content: (N,)``, ``style: (M,)`` and return the result.

    ``betas`` optimises several results at once, one per beta (same pair, one batch). The
    callback gets a :class:`~labutils.optim.StepInfo` and the current spectrogram ``(B, F, T)``
    on the CPU every ``every`` steps; with ``preview_every`` the spectrogram is computed only at
    step 1, every ``preview_every`` steps and the last (``None`` on the other calls), which
    keeps a per-step progress callback cheap when the preview costs a render (ddsp). ``stop`` is
    honoured within one step. An interrupt
    (Ctrl-C) returns the steps done as a result marked ``interrupted``.

    Notebook: notebooks/03_caracalla_roebel.ipynb
    """
    attempt = attempts.get(method)
    cfg = (config or attempt.config()).validate()
    start = time.perf_counter()
    problem = attempt.build(content, style, cfg, betas)
    preview = None
    if callback is not None:
        def preview(info: StepInfo, p: Any) -> None:
            if preview_every and not (info.step == 1 or info.step % preview_every == 0 or info.step == info.steps):
                callback(info, None)
                return
            with torch.no_grad():
                callback(info, problem.preview(p).detach().float().cpu())

    steps = problem.steps if problem.steps is not None else cfg.steps
    out = optimise(problem.init, problem.loss_fn, steps=steps, optimizer=cfg.optimizer, lr=problem.lr,
                   callback=preview, every=every, stop=stop, progress=progress, desc=method,
                   update=problem.update)
    with torch.no_grad():
        result = problem.decode(out.param).float().cpu()
        result = result / result.abs().amax(dim=-1, keepdim=True).clamp_min(1e-8) * 0.9
    content, style = content.float().cpu(), style.float().cpu()
    return TransferResult(
        method=method, audio=result, sample_rate=cfg.sample_rate, spectrogram=display_spec(result, cfg),
        content_audio=content, style_audio=style, content_spec=display_spec(content, cfg)[None],
        style_spec=display_spec(style, cfg)[None], history=out.history, config=cfg.as_dict(),
        weights=problem.weights, device=str(problem.device), wall_time=time.perf_counter() - start,
        steps_done=out.steps_done, stopped=out.stopped, message=out.message,
        betas=attempts.check_betas(betas, cfg), interrupted=out.interrupted, info=dict(problem.info),
    )


def load_pair(content: str | Path | torch.Tensor, style: str | Path | torch.Tensor,
              config: TransferConfig) -> tuple[torch.Tensor, torch.Tensor, dict[str, str]]:
    """Load the content and style clips (paths, bundled names or tensors) as the config asks.

    Each file is read from its offset (``config.offset`` for the content, ``config.style_offset``
    for the style: seconds, or ``"auto"`` for the loudest ``config.duration`` seconds) for
    ``config.duration`` seconds; a clip shorter than the attempt's minimum
    (``config.min_clip_seconds()``) is refused with one line.

    Returns ``(content (N,), style (M,), names)``; names holds short names, sources, the offsets
    used (``content_offset``, ``style_offset``, seconds) and ``notes``: lines to show the user (a
    clip that ended before ``duration``).

    Notebook: notebooks/03_caracalla_roebel.ipynb
    """
    clips, names, notes = [], {}, []
    shortest = config.min_clip_seconds()
    for role, src in (("content", content), ("style", style)):
        if isinstance(src, torch.Tensor):
            clips.append(A.check(src, name=role, sample_rate=config.sample_rate, min_duration=shortest))
            names[role], names[f"{role}_source"] = role, "tensor"
        else:
            path, name = A.resolve(src)
            asked = str(getattr(config, "offset" if role == "content" else "style_offset", "0")).strip()
            if path.is_file() and asked.lower() == "auto":
                offset = A.loudest_offset(path, duration=config.duration)
            else:
                offset = float(asked) if asked.lower() != "auto" else 0.0
            clip = A.load(path, sample_rate=config.sample_rate, offset=offset, duration=config.duration, pad=False,
                          min_duration=shortest)
            clips.append(clip)
            names[role], names[f"{role}_source"], names[f"{role}_offset"] = name, str(path), round(offset, 3)
            seconds = clip.numel() / config.sample_rate
            if seconds < config.duration - 0.01:
                where = f" from {offset:g} s" if offset else ""
                notes.append(f"{role} {name}: {seconds:.2f} s used{where}, not the {config.duration:g} s asked "
                             f"(the clip ends there)")
    names["notes"] = notes
    return clips[0], clips[1], names


def transfer(
    method: str,
    content: str | Path | torch.Tensor,
    style: str | Path | torch.Tensor,
    config: TransferConfig | None = None,
    **kwargs: Any,
) -> TransferResult:
    """Load the clips (paths or bundled names) and run ``method``; kwargs go to :func:`solve`.

    Notebook: notebooks/03_caracalla_roebel.ipynb
    """
    cfg = (config or attempts.get(method).config()).validate()
    c, s, names = load_pair(content, style, cfg)
    result = solve(method, c, s, cfg, **kwargs)
    result.names = names
    return result
