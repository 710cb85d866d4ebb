"""The one optimisation loop, and the attempts as recipes over spectral, nets and losses.

:func:`optimise` runs Adam or L-BFGS on one tensor with a progress bar, callbacks every N steps,
a stop flag honoured within one step and a NaN/inf guard that keeps the last good state.
:func:`transfer` loads the clips and runs one attempt (a recipe from :data:`METHODS`).

Notebook: notebooks/03_caracalla_roebel.ipynb
"""
from __future__ import annotations

import ctypes
import math
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from tqdm.auto import tqdm

from . import audio as A
from . import losses as L
from . import spectral as S
from .config import CaracallaRoebelConfig, TransferConfig, config_for
from .errors import ConfigError
from .nets import RandomCNN

LossFn = Callable[[torch.Tensor], dict[str, torch.Tensor]]


def tune_allocator() -> bool:
    """Keep freed memory in the process instead of handing it back to the OS after every step.

    With glibc's defaults, each feature map of a few tens of MB is a fresh mmap, and touching its
    pages costs more than the convolution that fills it (measured: the first layer's forward
    pass 170 ms -> 66 ms per step on a 2-core CPU). Linux/glibc only; set
    LABUTILS_NO_MALLOC_TUNING=1 to leave the allocator alone. Returns whether it was applied.
    """
    global _TUNED
    if _TUNED is None:
        _TUNED = False
        if sys.platform.startswith("linux") and not os.environ.get("LABUTILS_NO_MALLOC_TUNING"):
            try:
                libc = ctypes.CDLL("libc.so.6")
                m_trim_threshold, m_mmap_threshold = -1, -3
                _TUNED = bool(libc.mallopt(m_mmap_threshold, 32 * 1024 * 1024)) and bool(
                    libc.mallopt(m_trim_threshold, 2**31 - 1))
            except (OSError, AttributeError):
                _TUNED = False
    return _TUNED


_TUNED: bool | None = None


def pick_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` -> CUDA when present, else CPU; ``"cuda"`` without a GPU is a clear error."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device='cuda' but no CUDA GPU is visible; use --device cpu or auto")
    return dev


@dataclass
class StepInfo:
    """What a callback sees: the step just taken and its losses, one value per batch item."""

    step: int
    steps: int
    total: list[float]
    content: list[float]
    style: list[float]
    elapsed: float


@dataclass
class OptimResult:
    param: torch.Tensor
    history: list[dict[str, Any]]
    steps_done: int
    stopped: bool = False
    message: str = ""


def _is_stopped(stop: threading.Event | Callable[[], bool] | None) -> bool:
    if stop is None:
        return False
    return stop.is_set() if isinstance(stop, threading.Event) else bool(stop())


def optimise(
    param: torch.Tensor,
    loss_fn: LossFn,
    *,
    steps: int,
    optimizer: str = "adam",
    lr: float = 0.1,
    callback: Callable[[StepInfo, torch.Tensor], None] | None = None,
    every: int = 10,
    stop: threading.Event | Callable[[], bool] | None = None,
    progress: bool = True,
    desc: str = "transfer",
) -> OptimResult:
    """Minimise ``loss_fn(param)["total"].sum()`` over ``param`` (any shape, leading axis = batch).

    ``loss_fn`` returns ``{"total", "content", "style"}``, each ``(B,)``. The callback gets a
    :class:`StepInfo` and a detached copy of ``param`` every ``every`` steps and after the last.
    ``stop`` (an Event or a callable) is checked before each step. If a loss or the parameter
    turns NaN/inf, the loop stops, restores the last good parameter and says so in ``message``.

    Notebook: notebooks/03_caracalla_roebel.ipynb
    """
    if optimizer not in ("adam", "lbfgs"):
        raise ConfigError(f"optimizer={optimizer!r}: choose adam or lbfgs")
    tune_allocator()
    param = param.detach().clone().requires_grad_(True)
    if optimizer == "adam":
        opt: torch.optim.Optimizer = torch.optim.Adam([param], lr=lr)
    else:
        # no early exit on small gradients: a waveform's per-sample gradients are tiny but meaningful
        opt = torch.optim.LBFGS([param], lr=lr, max_iter=1, history_size=20, line_search_fn="strong_wolfe",
                                tolerance_grad=0.0, tolerance_change=0.0)
    history: list[dict[str, Any]] = []
    last_good = param.detach().clone()
    start = time.perf_counter()
    latest: dict[str, torch.Tensor] = {}

    def closure() -> torch.Tensor:
        opt.zero_grad(set_to_none=True)
        out = loss_fn(param)
        latest.update({k: v.detach() for k, v in out.items()})
        total = out["total"].sum()
        total.backward()
        return total

    bar = tqdm(total=steps, desc=desc, disable=not progress, leave=False)
    stopped, message, done = False, "", 0
    try:
        for step in range(1, steps + 1):
            if _is_stopped(stop):
                stopped, message = True, f"stopped by request after {done} steps"
                break
            opt.step(closure)
            values = {k: latest[k].float().cpu() for k in ("total", "content", "style")}
            finite = all(bool(torch.isfinite(v).all()) for v in values.values())
            if not finite or not bool(torch.isfinite(param).all()):
                with torch.no_grad():
                    param.copy_(last_good)
                stopped = True
                message = (f"stopped at step {step}: the loss or the signal became NaN/inf; kept the result of "
                           f"step {done}. Lower the learning rate (--lr) or use --optimizer adam")
                break
            done = step
            with torch.no_grad():
                last_good.copy_(param)
            row = {"step": step, "time": time.perf_counter() - start,
                   **{k: v.tolist() for k, v in values.items()}}
            history.append(row)
            bar.update(1)
            bar.set_postfix(loss=f"{float(values['total'].mean()):.4g}")
            if callback is not None and (step % every == 0 or step == steps):
                callback(StepInfo(step, steps, row["total"], row["content"], row["style"], row["time"]),
                         param.detach().clone())
    finally:
        bar.close()
    return OptimResult(param=param.detach(), history=history, steps_done=done, stopped=stopped, message=message)


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------
@dataclass
class TransferResult:
    """What an attempt returns: audio to listen to, spectrograms to look at, losses, provenance.

    ``audio: (B, N)``, ``spectrogram``/``content_spec``/``style_spec``: log-compressed magnitudes
    ``(B or 1, F, T)`` on the CPU for display. ``config`` is every hyperparameter as a dict.
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


def _display_spec(audio: torch.Tensor, cfg: TransferConfig) -> torch.Tensor:
    compression = getattr(cfg, "compression", 1000.0)
    with torch.no_grad():
        return S.log_spectrogram(audio.float().cpu(), n_fft=cfg.n_fft, hop_length=cfg.hop_length,
                                 compression=compression)


# --------------------------------------------------------------------------------------------
# A problem: what to optimise, its loss, and how to turn the optimum back into sound
# --------------------------------------------------------------------------------------------
@dataclass
class Problem:
    """One attempt set up on one pair: the starting tensor, the loss, the way back to audio.

    ``decode(param) -> audio: (B, N)``; ``preview(param) -> spec: (B, F, T)`` for live display.
    """

    init: torch.Tensor
    loss_fn: LossFn
    decode: Callable[[torch.Tensor], torch.Tensor]
    preview: Callable[[torch.Tensor], torch.Tensor]
    lr: float
    weights: dict[str, Any]
    device: torch.device
    flops_per_step: float = 0.0


def _check_betas(betas: Sequence[float] | None, cfg: TransferConfig) -> list[float]:
    betas = list(betas) if betas is not None else [cfg.beta]
    if not betas or any(not (isinstance(b, (int, float)) and math.isfinite(b) and b >= 0) for b in betas):
        raise ConfigError(f"beta={betas}: each value must be a finite number >= 0 (e.g. --beta 0.001,0.01,0.1)")
    return [float(b) for b in betas]


def _check_pair(content: torch.Tensor, style: torch.Tensor, cfg: TransferConfig,
                device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    min_dur = cfg.n_fft / cfg.sample_rate
    content = A.check(content, name="content", sample_rate=cfg.sample_rate, min_duration=min_dur)
    style = A.check(style, name="style", sample_rate=cfg.sample_rate, min_duration=min_dur)
    return content.to(device), style.to(device)


def build_caracalla_roebel(content: torch.Tensor, style: torch.Tensor, cfg: CaracallaRoebelConfig,
                           betas: Sequence[float] | None = None) -> Problem:
    """Set up attempt 3 on ``content: (N,)`` and ``style: (M,)``; targets computed once, no_grad."""
    cfg.validate()
    device = pick_device(cfg.device)
    betas = _check_betas(betas, cfg)
    content, style = _check_pair(content, style, cfg, device)
    net = RandomCNN(filters=cfg.filters, kernel_sizes=cfg.kernel_sizes, layers=cfg.layers, seed=cfg.net_seed,
                    fast=cfg.fast, device=device)
    spec_kw = dict(n_fft=cfg.n_fft, hop_length=cfg.hop_length, compression=cfg.compression)
    with torch.no_grad():
        content_spec = S.log_spectrogram(content, **spec_kw)  # (F, T)
        targets = L.Targets(content=net.features(content_spec) if cfg.alpha > 0 else None,
                            style=L.time_correlations(net.features(S.log_spectrogram(style, **spec_kw))))
    batch = len(betas)
    beta = torch.tensor(betas, device=device, dtype=torch.float32)
    gen = torch.Generator(device="cpu").manual_seed(cfg.seed)

    if cfg.domain == "spectrogram":
        if cfg.init == "content":
            init = content_spec.expand(batch, -1, -1).clone()
        else:
            init = torch.rand(batch, *content_spec.shape, generator=gen).to(device) * content_spec.mean() * 2
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
            init = torch.randn(batch, content.shape[-1], generator=gen).to(device) * 0.1
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
            return one_pass(p, beta)
        # On a CPU a batch is no faster than a loop, and its larger feature maps fall out of the
        # allocator's reuse (measured: 8 clips of 2 s, 3.3 s per step batched, 1.1 s looped).
        parts = [one_pass(p[i:i + 1], beta[i:i + 1]) for i in range(p.shape[0])]
        return {k: torch.cat([part[k] for part in parts]) for k in parts[0]}

    n_freq, n_frames = content_spec.shape
    return Problem(init=init, loss_fn=loss_fn, decode=decode, preview=to_spec, lr=lr,
                   weights=net.weights_info.as_dict(), device=device,
                   flops_per_step=net.flops_per_step(n_freq, n_frames, batch))


def solve(
    method: str,
    content: torch.Tensor,
    style: torch.Tensor,
    config: TransferConfig | None = None,
    *,
    betas: Sequence[float] | None = None,
    callback: Callable[[StepInfo, torch.Tensor], None] | None = None,
    every: int = 10,
    stop: threading.Event | Callable[[], bool] | None = None,
    progress: bool = True,
) -> TransferResult:
    """Run ``method`` on loaded clips ``content: (N,)``, ``style: (M,)`` and return the result.

    ``betas`` optimises several results at once, one per beta (same pair, one batch). The
    callback gets a :class:`StepInfo` and the current spectrogram ``(B, F, T)`` on the CPU every
    ``every`` steps; ``stop`` is honoured within one step.

    Notebook: notebooks/03_caracalla_roebel.ipynb
    """
    if method not in METHODS:
        raise ConfigError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    cfg = (config or config_for(method)).validate()
    start = time.perf_counter()
    problem = METHODS[method](content, style, cfg, betas)
    preview = None
    if callback is not None:
        def preview(info: StepInfo, p: torch.Tensor) -> None:
            with torch.no_grad():
                callback(info, problem.preview(p).detach().float().cpu())

    out = optimise(problem.init, problem.loss_fn, steps=cfg.steps, optimizer=cfg.optimizer, lr=problem.lr,
                   callback=preview, every=every, stop=stop, progress=progress, desc=method)
    with torch.no_grad():
        result = problem.decode(out.param).float().cpu()
        result = result / result.abs().amax(dim=-1, keepdim=True).clamp_min(1e-8) * 0.9
    content, style = content.float().cpu(), style.float().cpu()
    return TransferResult(
        method=method, audio=result, sample_rate=cfg.sample_rate, spectrogram=_display_spec(result, cfg),
        content_audio=content, style_audio=style, content_spec=_display_spec(content, cfg)[None],
        style_spec=_display_spec(style, cfg)[None], history=out.history, config=cfg.as_dict(),
        weights=problem.weights, device=str(problem.device), wall_time=time.perf_counter() - start,
        steps_done=out.steps_done, stopped=out.stopped, message=out.message,
        betas=_check_betas(betas, cfg),
    )


def _gram_loss_fn(net: torch.nn.Module, to_input: Callable[[torch.Tensor], torch.Tensor], content_in: torch.Tensor,
                  style_in: torch.Tensor, cfg: TransferConfig, beta: torch.Tensor) -> LossFn:
    """Content loss on ``cfg.content_layers`` and Gram style loss on ``cfg.style_layers`` of ``net``."""
    names = list(net.layer_names)
    c_idx = [names.index(n) for n in cfg.content_layers]
    s_idx = [names.index(n) for n in cfg.style_layers]
    with torch.no_grad():
        content_feats = net.features(content_in)
        targets = L.Targets(content=[content_feats[i] for i in c_idx] if cfg.alpha > 0 else None,
                            style=L.grams([net.features(style_in)[i] for i in s_idx]))
        del content_feats

    def loss_fn(p: torch.Tensor) -> dict[str, torch.Tensor]:
        feats = net.features(to_input(p))
        c = (L.content_loss([feats[i] for i in c_idx], targets.content, norms=targets.content_norms)
             if targets.content else torch.zeros(p.shape[0], device=p.device))
        s = L.style_loss(L.grams([feats[i] for i in s_idx]), targets.style, norms=targets.style_norms)
        return {"total": L.total_loss(c, s, alpha=cfg.alpha, beta=beta), "content": c, "style": s}

    return loss_fn


def _union(*groups: Sequence[str]) -> list[str]:
    out: list[str] = []
    for group in groups:
        out.extend(n for n in group if n not in out)
    return out


def build_vgg19(content: torch.Tensor, style: torch.Tensor, cfg, betas: Sequence[float] | None = None) -> Problem:
    """Set up attempt 1: VGG-19 on the spectrogram (dB or log-compressed) copied to 3 channels.

    The optimised variable is the one-channel spectrogram ``(B, F, T)``; the result comes back
    through Griffin-Lim.

    Notebook: notebooks/01_vgg19.ipynb
    """
    from .nets import VGGFeatures

    cfg.validate()
    device = pick_device(cfg.device)
    betas = _check_betas(betas, cfg)
    content, style = _check_pair(content, style, cfg, device)
    net = VGGFeatures(layers=_union(cfg.content_layers, cfg.style_layers), weights=cfg.weights,
                      imagenet_norm=cfg.imagenet_norm, device=device)
    stft_kw = dict(n_fft=cfg.n_fft, hop_length=cfg.hop_length)

    def forward_spec(audio: torch.Tensor) -> torch.Tensor:
        mag = S.magnitude(audio, **stft_kw)
        return S.power_db(mag) if cfg.scale == "db" else S.compress(mag, compression=cfg.compression)

    with torch.no_grad():
        content_spec, style_spec = forward_spec(content), forward_spec(style)
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
    beta = torch.tensor(betas, device=device, dtype=torch.float32)
    loss_fn = _gram_loss_fn(net, to_input, to_input(content_spec), to_input(style_spec), cfg, beta)
    batch = len(betas)
    if cfg.init == "content":
        init = content_spec.expand(batch, -1, -1).clone()
    else:
        gen = torch.Generator().manual_seed(cfg.seed)
        init = (lo + (hi - lo) * torch.rand(batch, *content_spec.shape, generator=gen).to(device))

    def decode(p: torch.Tensor) -> torch.Tensor:
        mag = S.from_power_db(p) if cfg.scale == "db" else S.decompress(p, compression=cfg.compression)
        return S.griffin_lim(mag, **stft_kw, n_iter=cfg.griffin_lim_iters, seed=cfg.seed, length=content.shape[-1])

    def preview(p: torch.Tensor) -> torch.Tensor:
        mag = S.from_power_db(p) if cfg.scale == "db" else S.decompress(p, compression=cfg.compression)
        return S.compress(mag / mag.amax(dim=(-2, -1), keepdim=True).clamp_min(1e-8) * 100, compression=1000.0)

    return Problem(init=init, loss_fn=loss_fn, decode=decode, preview=preview, lr=cfg.lr,
                   weights=net.weights_info.as_dict(), device=device)


def build_wav2vec2(content: torch.Tensor, style: torch.Tensor, cfg, betas: Sequence[float] | None = None) -> Problem:
    """Set up attempt 2: the Wav2Vec2 genre model's conv encoder on the 16 kHz waveform.

    The clips are resampled to 16 kHz, the 16 kHz waveform is optimised, and the result is
    resampled back to ``cfg.sample_rate``.

    Notebook: notebooks/02_wav2vec2.ipynb
    """
    import torchaudio.functional as AF

    from .nets import WAV2VEC2_RATE, Wav2Vec2Features

    cfg.validate()
    device = pick_device(cfg.device)
    betas = _check_betas(betas, cfg)
    content, style = _check_pair(content, style, cfg, device)
    layers = _union(cfg.content_layers, cfg.style_layers)
    bad = [n for n in layers if n not in {f"conv{i}" for i in range(7)}]
    if bad:
        raise ConfigError(f"wav2vec2 has no layer {', '.join(bad)}; choose from conv0 ... conv6")
    net = Wav2Vec2Features(layers=[int(n[4:]) for n in layers], weights=cfg.weights, model_id=cfg.model_id,
                           device=device)
    rate = cfg.sample_rate
    with torch.no_grad():
        content16 = AF.resample(content, rate, WAV2VEC2_RATE)
        style16 = AF.resample(style, rate, WAV2VEC2_RATE)
    if content16.shape[-1] < 400:
        raise ConfigError("wav2vec2 needs at least 25 ms of audio at 16 kHz; use a longer --duration")
    beta = torch.tensor(betas, device=device, dtype=torch.float32)
    loss_fn = _gram_loss_fn(net, lambda p: p, content16, style16, cfg, beta)
    batch = len(betas)
    if cfg.init == "content":
        init = content16.expand(batch, -1).clone()
    else:
        gen = torch.Generator().manual_seed(cfg.seed)
        init = 0.1 * torch.randn(batch, content16.shape[-1], generator=gen).to(device)

    def decode(p: torch.Tensor) -> torch.Tensor:
        return A.fit_length(AF.resample(p, WAV2VEC2_RATE, rate), content.shape[-1])

    def preview(p: torch.Tensor) -> torch.Tensor:
        return S.log_spectrogram(decode(p), n_fft=cfg.n_fft, hop_length=cfg.hop_length, compression=1000.0)

    return Problem(init=init, loss_fn=loss_fn, decode=decode, preview=preview, lr=cfg.lr,
                   weights=net.weights_info.as_dict(), device=device)


METHODS: dict[str, Callable[..., Problem]] = {
    "vgg19": build_vgg19,
    "wav2vec2": build_wav2vec2,
    "caracalla-roebel": build_caracalla_roebel,
}


def load_pair(content: str | Path | torch.Tensor, style: str | Path | torch.Tensor,
              config: TransferConfig) -> tuple[torch.Tensor, torch.Tensor, dict[str, str]]:
    """Load the content and style clips (paths, bundled names or tensors) as the config asks.

    Returns ``(content (N,), style (M,), names)``; names holds short names and sources.
    """
    clips, names = [], {}
    for role, src in (("content", content), ("style", style)):
        if isinstance(src, torch.Tensor):
            clips.append(A.check(src, name=role, sample_rate=config.sample_rate))
            names[role], names[f"{role}_source"] = role, "tensor"
        else:
            path, name = A.resolve(src)
            clips.append(A.load(path, sample_rate=config.sample_rate, duration=config.duration, pad=False,
                                min_duration=config.n_fft / config.sample_rate))
            names[role], names[f"{role}_source"] = name, str(path)
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
    if method not in METHODS:
        raise ConfigError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    cfg = (config or config_for(method)).validate()
    c, s, names = load_pair(content, style, cfg)
    result = solve(method, c, s, cfg, **kwargs)
    result.names = names
    return result


# --------------------------------------------------------------------------------------------
# Benchmark: the fast path against the straightforward reference, same process, same input
# --------------------------------------------------------------------------------------------
def _peak_mem_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _time_steps(problem: Problem, cfg: TransferConfig, *, steps: int, warmup: int) -> list[float]:
    if problem.device.type == "cuda":
        torch.cuda.synchronize(problem.device)
    out = optimise(problem.init, problem.loss_fn, steps=warmup + steps, optimizer=cfg.optimizer, lr=problem.lr,
                   progress=False)
    times = [0.0] + [row["time"] for row in out.history]
    return [1000 * (b - a) for a, b in zip(times, times[1:])][warmup:]


def _loss_and_grad(problem: Problem) -> tuple[torch.Tensor, torch.Tensor]:
    p = problem.init.detach().clone()
    # evaluate slightly away from the content so that the content term's gradient is not zero
    p = (p + 0.01 * torch.randn(p.shape, generator=torch.Generator().manual_seed(1)).to(p)).requires_grad_(True)
    total = problem.loss_fn(p)["total"].sum()
    total.backward()
    return total.detach(), p.grad.detach()


def benchmark(
    method: str,
    content: torch.Tensor,
    style: torch.Tensor,
    config: TransferConfig,
    *,
    steps: int = 5,
    warmup: int = 2,
    reference: bool = True,
    betas: Sequence[float] | None = None,
) -> dict[str, Any]:
    """Time one optimisation step of ``method`` and, where it has one, of its reference path.

    Returns ms per step (median), peak memory, FLOPs per step and achieved TFLOP/s, and for the
    reference: its ms per step, the speed-up and the relative error of the fast path's loss and
    gradient against it at the same point.

    Notebook: notebooks/03_caracalla_roebel.ipynb
    """
    tune_allocator()
    cfg = config.validate()
    device = pick_device(cfg.device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    problem = METHODS[method](content, style, cfg, betas)
    fast_times = sorted(_time_steps(problem, cfg, steps=steps, warmup=warmup))
    ms = fast_times[len(fast_times) // 2]
    report: dict[str, Any] = {
        "method": method, "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else _cpu_name(),
        "threads": torch.get_num_threads(), "batch": problem.init.shape[0],
        "settings": {k: v for k, v in cfg.as_dict().items() if k not in ("steps",)},
        "ms_per_step": round(ms, 2), "steps_timed": steps,
        "peak_mem_mb": round(_peak_mem_mb(device), 1),
        "flops_per_step": problem.flops_per_step,
        "achieved_tflops": round(problem.flops_per_step / (ms / 1000) / 1e12, 4) if problem.flops_per_step else None,
        "reference_ms_per_step": None, "speedup": None,
    }
    if reference and getattr(cfg, "fast", None) is True:
        ref_cfg = cfg.replace(fast=False)
        ref_problem = METHODS[method](content, style, ref_cfg, betas)
        ref_times = sorted(_time_steps(ref_problem, ref_cfg, steps=max(2, min(steps, 3)), warmup=1))
        ref_ms = ref_times[len(ref_times) // 2]
        loss_f, grad_f = _loss_and_grad(problem)
        loss_r, grad_r = _loss_and_grad(ref_problem)
        report.update({
            "reference_ms_per_step": round(ref_ms, 2),
            "speedup": round(ref_ms / ms, 2),
            "loss_rel_error": float((loss_f - loss_r).abs() / loss_r.abs().clamp_min(1e-30)),
            "grad_rel_error": float(torch.linalg.vector_norm(grad_f - grad_r) / torch.linalg.vector_norm(grad_r).clamp_min(1e-30)),
        })
    return report


def _cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or "cpu"
