"""The one optimisation loop: Adam or L-BFGS, callbacks, Stop, progress, NaN guard, device choice.

:func:`optimise` knows no attempt: it minimises a loss over one tensor (a spectrogram, a
waveform) or a list of tensors (a small network's weights) and reports every step.
:func:`tune_allocator` is a process-wide switch that the command line and the notebooks turn on
explicitly at start; nothing in the library calls it behind the caller's back.

Notebook: notebooks/03_caracalla_roebel.ipynb
"""
from __future__ import annotations

import ctypes
import os
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence, Union

import torch
from tqdm.auto import tqdm

from .errors import ConfigError

Params = Union[torch.Tensor, Sequence[torch.Tensor]]
LossFn = Callable[[Any], dict[str, torch.Tensor]]
StopFlag = Union[threading.Event, Callable[[], bool], None]

_TUNED: bool | None = None


def tune_allocator() -> bool:
    """Keep freed memory in the process instead of handing it back to the OS after every step.

    A process-wide change to glibc's malloc (no mmap for large blocks, no trimming): with glibc's
    defaults each feature map of a few tens of MB is a fresh mmap, and touching its new pages
    costs more than the convolution that fills it (measured: the first layer's forward pass
    170 ms -> 66 ms per step on a 2-core CPU; a 10 s clip 2.6x -> 1.9x the step of a 5 s clip).
    The price is that the process keeps its peak memory until it exits. ``python -m labutils`` and the notebooks' first cell call it;
    library functions never do. Linux/glibc only; ``LABUTILS_NO_MALLOC_TUNING=1`` turns it off.
    Returns whether it is in effect.
    """
    global _TUNED
    if _TUNED is None:
        _TUNED = False
        if sys.platform.startswith("linux") and not os.environ.get("LABUTILS_NO_MALLOC_TUNING"):
            try:
                libc = ctypes.CDLL("libc.so.6")
                m_trim_threshold, m_mmap_max = -1, -4
                # no mmap at all: glibc caps its mmap threshold at 32 MiB, and the feature maps of a
                # clip past ~6 s are larger, so each would again be a fresh mapping every step
                _TUNED = bool(libc.mallopt(m_mmap_max, 0)) and bool(libc.mallopt(m_trim_threshold, 2**31 - 1))
            except (OSError, AttributeError):
                _TUNED = False
    return _TUNED


def allocator_tuned() -> bool:
    """Whether :func:`tune_allocator` has been applied in this process."""
    return bool(_TUNED)


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
    """What a callback sees: the step just taken and its losses, one value per batch item.

    ``elapsed`` is seconds since the loop started; ``eta`` the estimated seconds left at the
    mean rate so far.
    """

    step: int
    steps: int
    total: list[float]
    content: list[float]
    style: list[float]
    elapsed: float

    @property
    def eta(self) -> float:
        return self.elapsed / max(self.step, 1) * (self.steps - self.step)


@dataclass
class OptimResult:
    """The optimised tensor(s), the loss history (one row per step), and how the loop ended."""

    param: Any
    history: list[dict[str, Any]]
    steps_done: int
    stopped: bool = False
    message: str = ""
    interrupted: bool = False


def is_stopped(stop: StopFlag) -> bool:
    """Whether a stop flag (an Event, a callable or None) asks to stop."""
    if stop is None:
        return False
    return stop.is_set() if isinstance(stop, threading.Event) else bool(stop())


def _detached(params: list[torch.Tensor], single: bool) -> Any:
    copies = [p.detach().clone() for p in params]
    return copies[0] if single else copies


#: seconds between progress-bar updates when stderr is not a terminal (a piped log, a CI job)
LOG_PROGRESS_EVERY_S = 30.0


def _bar_options() -> dict[str, Any]:
    """tqdm's options: live on a terminal; on a pipe or in a log file one line every
    :data:`LOG_PROGRESS_EVERY_S` seconds instead of ten redraws a second."""
    stream = sys.stderr
    try:
        tty = bool(stream.isatty())
    except (AttributeError, ValueError):
        tty = False
    if tty or "ipykernel" in sys.modules:
        return {}
    return {"mininterval": LOG_PROGRESS_EVERY_S, "maxinterval": LOG_PROGRESS_EVERY_S, "ascii": True}


#: steps between copies of the losses to the host on CUDA (``optimise(sync_every=None)``)
CUDA_SYNC_EVERY = 25
_KEYS = ("total", "content", "style")


def optimise(
    param: Params,
    loss_fn: LossFn,
    *,
    steps: int,
    optimizer: str = "adam",
    lr: float = 0.1,
    callback: Callable[[StepInfo, Any], None] | None = None,
    every: int = 10,
    stop: StopFlag = None,
    progress: bool = True,
    desc: str = "transfer",
    sync_every: int | None = None,
    update: Callable[[Any, int], dict[str, torch.Tensor]] | None = None,
) -> OptimResult:
    """Minimise ``loss_fn(param)["total"].sum()`` over ``param``.

    ``param`` is one tensor (any shape, leading axis = batch) or a list of tensors (e.g. a
    decoder's weights); ``loss_fn`` receives the same structure and returns ``{"total",
    "content", "style"}``, each ``(B,)``. The callback gets a :class:`StepInfo` and a detached
    copy of ``param`` every ``every`` steps and after the last. ``stop`` (an Event or a callable)
    is checked before each step. If a loss or the parameter turns NaN/inf, the loop stops,
    restores the last good parameter and says so in ``message``. A KeyboardInterrupt (Ctrl-C,
    the kernel's Interrupt) ends the loop the same way, with ``interrupted=True``: the caller
    decides whether to save the partial result.

    ``sync_every``: the losses stay on the device and are copied to the host (one transfer)
    every ``sync_every`` steps, at each callback step and after the last step; between copies
    the loop never waits for the device. The NaN/inf check runs on the device: each step's
    parameter is kept as the last good state only while every step so far was finite, so a
    non-finite step found at a copy rolls back to the step before it, exactly as with
    ``sync_every=1``. Default (None): 1 on the CPU (a copy every step, today's behaviour),
    :data:`CUDA_SYNC_EVERY` on CUDA. The history is the same for any value; its ``time`` is
    when each step was issued (on CUDA the device may still be working on it).

    ``update``: for attempts whose steps are not gradient steps (a sampler placing one note per
    step, multiplicative NMF updates). ``update(param, step)`` changes ``param`` in place (it runs
    under ``torch.no_grad()``) and returns the losses ``{"total", "content", "style"}`` of that
    step; ``loss_fn``, ``optimizer`` and ``lr`` are then unused. Progress, the callback, ``stop``,
    the NaN/inf guard and the interrupt behave exactly as for gradient steps.

    Notebook: notebooks/03_caracalla_roebel.ipynb
    """
    if optimizer not in ("adam", "lbfgs"):
        raise ConfigError(f"optimizer={optimizer!r}: choose adam or lbfgs")
    single = isinstance(param, torch.Tensor)
    params = [p.detach().clone().requires_grad_(update is None) for p in ([param] if single else param)]
    arg = params[0] if single else params
    if sync_every is None:
        sync_every = CUDA_SYNC_EVERY if params[0].device.type == "cuda" else 1
    if int(sync_every) != sync_every or sync_every < 1:
        raise ConfigError(f"sync_every={sync_every}: must be a positive integer")
    sync_every = int(sync_every)
    if update is not None:
        opt = None
    elif optimizer == "adam":
        opt: torch.optim.Optimizer | None = torch.optim.Adam(params, lr=lr)
    else:
        # no early exit on small gradients: a waveform's per-sample gradients are tiny but meaningful
        opt = torch.optim.LBFGS(params, lr=lr, max_iter=1, history_size=20, line_search_fn="strong_wolfe",
                                tolerance_grad=0.0, tolerance_change=0.0)
    history: list[dict[str, Any]] = []
    last_good = [p.detach().clone() for p in params]
    start = time.perf_counter()
    latest: dict[str, torch.Tensor] = {}
    # steps issued but not yet read back: (step, time issued, losses (3, B) on the device, finite flag)
    pending: list[tuple[int, float, torch.Tensor, torch.Tensor]] = []
    all_finite = torch.ones((), dtype=torch.bool, device=params[0].device)  # every step so far (device)
    guarded = 0  # the last step whose state the device-side guard has folded into last_good

    def closure() -> torch.Tensor:
        opt.zero_grad(set_to_none=True)
        out = loss_fn(arg)
        latest.update({k: v.detach() for k, v in out.items()})
        total = out["total"].sum()
        total.backward()
        return total

    def read_back(upto: int | None = None) -> tuple[list[dict[str, Any]], int | None]:
        """Copy the pending steps' losses to the host; -> (rows of the finite steps before the
        first bad one, the first bad step or None)."""
        batch = [item for item in pending if upto is None or item[0] <= upto]
        del pending[:len(batch)]
        if not batch:
            return [], None
        values = torch.stack([v for _, _, v, _ in batch]).cpu()  # (n, 3, B): one transfer
        oks = torch.stack([ok for _, _, _, ok in batch]).cpu().tolist()
        rows = []
        for (step, issued, _, _), v, ok in zip(batch, values, oks):
            if not ok:
                return rows, step
            rows.append({"step": step, "time": issued, **{k: v[i].tolist() for i, k in enumerate(_KEYS)}})
        return rows, None

    bar = tqdm(total=steps, desc=desc, disable=not progress, leave=False, **_bar_options())
    stopped, message, done, interrupted = False, "", 0, False

    def accept(rows: list[dict[str, Any]]) -> None:
        nonlocal done
        history.extend(rows)
        if rows:
            done = rows[-1]["step"]
            bar.update(len(rows))
            bar.set_postfix(loss=f"{sum(rows[-1]['total']) / len(rows[-1]['total']):.4g}", refresh=False)

    def nan_stop(bad: int) -> str:
        with torch.no_grad():
            for p, good in zip(params, last_good):
                p.copy_(good)
        return (f"stopped at step {bad}: the loss or the signal became NaN/inf; kept the result of "
                f"step {bad - 1}. Lower the learning rate (--lr) or use --optimizer adam")

    try:
        for step in range(1, steps + 1):
            if is_stopped(stop):
                rows, bad = read_back()
                accept(rows)
                stopped = True
                message = nan_stop(bad) if bad is not None else f"stopped by request after {done} steps"
                break
            if update is None:
                opt.step(closure)
            else:
                with torch.no_grad():
                    latest.update({k: v.detach() for k, v in update(arg, step).items()})
            with torch.no_grad():
                values = torch.stack([latest[k].float().reshape(-1) for k in _KEYS])  # (3, B), on the device
                ok = torch.isfinite(values).all()
                for p in params:
                    ok = ok & torch.isfinite(p).all()
                if sync_every > 1:  # keep the last good state on the device, without waiting for it
                    all_finite &= ok
                    for p, good in zip(params, last_good):
                        good.copy_(torch.where(all_finite, p, good))
                    guarded = step
            pending.append((step, time.perf_counter() - start, values, ok))
            at_callback = callback is not None and (step % every == 0 or step == steps)
            if step % sync_every and step != steps and not at_callback:
                continue
            rows, bad = read_back()
            if rows and bad is None:  # the copy waited for the device: the last row's time is real
                rows[-1]["time"] = time.perf_counter() - start
            accept(rows)
            if bad is not None:
                stopped, message = True, nan_stop(bad)
                break
            if sync_every == 1:
                with torch.no_grad():
                    for p, good in zip(params, last_good):
                        good.copy_(p)
            if at_callback:
                row = history[-1]
                callback(StepInfo(step, steps, row["total"], row["content"], row["style"], row["time"]),
                         _detached(params, single))
    except KeyboardInterrupt:
        # Ctrl-C or the kernel's Interrupt: keep the steps done instead of losing the run
        try:
            rows, bad = read_back(upto=guarded if sync_every > 1 else done)
            accept(rows)
        except Exception:  # noqa: BLE001  (the device may be in any state: keep what was read)
            pass
        with torch.no_grad():
            for p, good in zip(params, last_good):
                p.copy_(good)
        stopped, interrupted = True, True
        message = f"interrupted after {done} of {steps} steps; the result so far is kept (a partial run)"
    finally:
        bar.close()
    return OptimResult(param=_detached(params, single), history=history, steps_done=done, stopped=stopped,
                       message=message, interrupted=interrupted)
