"""The speed benchmark: ms per step of an attempt against its plain reference, same process.

Not to be confused with the quality benchmark (:func:`labutils.evaluate.quality_benchmark`):
this module times code and judges nothing about the result.

Notebook: notebooks/03_caracalla_roebel.ipynb
"""
from __future__ import annotations

import os
import platform
import time
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch

from . import attempts
from .attempts import Problem
from .config import TransferConfig
from .optim import allocator_tuned, optimise, pick_device

_STATM = Path("/proc/self/statm")


class PeakMemory:
    """Peak memory within a ``with`` block: CUDA's allocator peak, or the process's resident set
    sampled every few milliseconds by a background thread (the process's lifetime peak, VmHWM,
    would include whatever ran before the benchmark).

    Notebook: notebooks/03_caracalla_roebel.ipynb
    """

    def __init__(self, device: torch.device, *, interval: float = 0.002) -> None:
        self.device, self.interval, self.peak_mb = device, interval, 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @staticmethod
    def rss_mb() -> float:
        """The process's resident set now, in MiB (0 where /proc is missing)."""
        try:
            pages = int(_STATM.read_text().split()[1])
        except (OSError, IndexError, ValueError):
            return 0.0
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak_mb = max(self.peak_mb, self.rss_mb())
            self._stop.wait(self.interval)

    def __enter__(self) -> "PeakMemory":
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            self.peak_mb = self.rss_mb()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.device.type == "cuda":
            self.peak_mb = torch.cuda.max_memory_allocated(self.device) / 2**20
        elif self._thread is not None:
            self._stop.set()
            self._thread.join()
            self.peak_mb = max(self.peak_mb, self.rss_mb())


def _time_steps(problem: Problem, cfg: TransferConfig, *, steps: int, warmup: int) -> list[float]:
    if problem.device.type == "cuda":
        # the loop does not wait for the device between host copies (optimise's sync_every), so
        # per-step host times mean little there: time the steps as a whole, synchronised
        return [synced_ms_per_step(problem, cfg, steps=steps, warmup=warmup)] * steps
    out = optimise(problem.init, problem.loss_fn, steps=warmup + steps, optimizer=cfg.optimizer, lr=problem.lr,
                   progress=False, update=problem.update)
    times = [0.0] + [row["time"] for row in out.history]
    return [1000 * (b - a) for a, b in zip(times, times[1:])][warmup:]


def synced_ms_per_step(problem: Problem, cfg: TransferConfig, *, steps: int, warmup: int = 2,
                       sync_every: int | None = None) -> float:
    """Mean ms per step of ``steps`` steps run as one loop (after ``warmup`` steps in another),
    the device synchronised before and after: what a run's step costs once the loop no longer
    waits for the device each step (:func:`labutils.optim.optimise`'s ``sync_every``).

    Notebook: notebooks/03_caracalla_roebel.ipynb
    """
    def sync() -> None:
        if problem.device.type == "cuda":
            torch.cuda.synchronize(problem.device)

    if warmup:
        optimise(problem.init, problem.loss_fn, steps=warmup, optimizer=cfg.optimizer, lr=problem.lr,
                 progress=False, sync_every=sync_every, update=problem.update)
    sync()
    start = time.perf_counter()
    optimise(problem.init, problem.loss_fn, steps=steps, optimizer=cfg.optimizer, lr=problem.lr, progress=False,
             sync_every=sync_every, update=problem.update)
    sync()
    return 1000 * (time.perf_counter() - start) / max(1, steps)


def _loss_and_grad(problem: Problem) -> tuple[torch.Tensor, torch.Tensor]:
    p = problem.init.detach().clone()
    # evaluate slightly away from the content so that the content term's gradient is not zero
    p = (p + 0.01 * torch.randn(p.shape, generator=torch.Generator().manual_seed(1)).to(p)).requires_grad_(True)
    total = problem.loss_fn(p)["total"].sum()
    total.backward()
    return total.detach(), p.grad.detach()


def cpu_info() -> dict[str, Any]:
    """The CPU model, its widest vector instruction set as PyTorch sees it, and the thread count."""
    name = platform.processor() or "cpu"
    flags: set[str] = set()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith(("flags", "Features")):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    isa = [f for f in ("avx512f", "avx2", "fma", "asimd", "sve") if f in flags]
    try:
        capability = torch.backends.cpu.get_cpu_capability()
    except AttributeError:
        capability = ""
    from .convolve import instruction_set

    # instruction_set() names the limits in force (ONEDNN_MAX_CPU_ISA=AVX2...): figures taken under
    # them read as an AVX2 machine's even where the flags list avx512f
    return {"cpu": name, "isa": isa, "torch_cpu_capability": capability, "instruction_set": instruction_set(),
            "threads": torch.get_num_threads()}


def speed_benchmark(
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

    Returns ms per step (median), peak memory of this benchmark, FLOPs per step and achieved
    GFLOP/s, what it ran on (:func:`cpu_info` or the GPU's name), and for the reference: its ms
    per step, the speed-up and the relative error of the fast path's loss and gradient against
    it at the same point.

    Notebook: notebooks/03_caracalla_roebel.ipynb
    """
    attempt = attempts.get(method)
    cfg = config.validate()
    device = pick_device(cfg.device)
    with PeakMemory(device) as memory:
        start = time.perf_counter()
        problem = attempt.build(content, style, cfg, betas)
        build_s = time.perf_counter() - start
        fast_times = sorted(_time_steps(problem, cfg, steps=steps, warmup=warmup))
    ms = fast_times[len(fast_times) // 2]
    with torch.no_grad():  # one render (decode) at the starting point, e.g. a synthesiser's pass
        start = time.perf_counter()
        problem.decode(problem.init)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        render_ms = 1000 * (time.perf_counter() - start)
    where = ({"device_name": torch.cuda.get_device_name(device)} if device.type == "cuda" else cpu_info())
    report: dict[str, Any] = {
        "method": method, "device": str(device), **where,
        "allocator_tuned": allocator_tuned(),
        "batch": problem.init.shape[0] if isinstance(problem.init, torch.Tensor) else len(betas or [None]),
        "settings": {k: v for k, v in cfg.as_dict().items() if k not in ("steps",)},
        "ms_per_step": round(ms, 2), "steps_timed": steps,
        "build_s": round(build_s, 3), "render_ms": round(render_ms, 2),
        "peak_mem_mb": round(memory.peak_mb, 1),
        "flops_per_step": problem.flops_per_step,
        "achieved_gflops": round(problem.flops_per_step / (ms / 1000) / 1e9, 2) if problem.flops_per_step else None,
        **problem.info,
        "reference_ms_per_step": None, "speedup": None,
    }
    if reference and getattr(cfg, "fast", None) is True:
        ref_cfg = cfg.replace(fast=False)
        ref_problem = attempt.build(content, style, ref_cfg, betas)
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


def duration_text(seconds: float) -> str:
    """``"about 40 s"``, ``"about 5 min"``, ``"about 1.5 h"``: an estimate, rounded as one.

    Notebook: notebooks/03_caracalla_roebel.ipynb
    """
    if seconds < 90:
        return f"about {max(1, round(seconds / 5) * 5 if seconds > 10 else round(seconds))} s"
    if seconds < 90 * 60:
        return f"about {round(seconds / 60)} min"
    return f"about {seconds / 3600:.1f} h"


@dataclass
class Estimate:
    """A run's measured cost on this machine: ``setup + steps * per_step + decode`` seconds."""

    method: str
    steps: int
    setup: float
    per_step: float
    decode: float

    @property
    def seconds(self) -> float:
        return float(self.setup + self.steps * self.per_step + self.decode)

    def for_steps(self, steps: int) -> "Estimate":
        """The same measurement for another number of steps (a preview, a longer run)."""
        return Estimate(self.method, int(steps), self.setup, self.per_step, self.decode)

    def text(self) -> str:
        return (f"{duration_text(self.seconds)} ({self.steps} steps x {self.per_step:.2f} s measured, "
                f"+ {self.setup + self.decode:.1f} s set-up and decoding)")


def estimate(
    method: str,
    content: torch.Tensor,
    style: torch.Tensor,
    config: TransferConfig,
    *,
    steps: int = 2,
    betas: Sequence[float] | None = None,
) -> Estimate:
    """How long ``method`` with ``config`` would take on this machine, measured: the one estimator
    behind the panel's Estimate, the notebooks' timing tables and ``transfer --dry-run``.

    Builds the problem exactly as a run does (timed), takes one warm-up step and then ``steps``
    timed steps (the median counts), and decodes once (Griffin-Lim or the decoder, timed). The
    number of steps is the attempt's own where it has one (``Problem.steps``), else
    ``config.steps``. It costs about ``steps + 1`` steps of the run. An interrupt (Kernel >
    Interrupt, Ctrl-C) during the timing is raised, not swallowed.

    Notebook: notebooks/03_caracalla_roebel.ipynb
    """
    cfg = config.validate()
    start = time.perf_counter()
    problem = attempts.get(method).build(content, style, cfg, betas)
    setup = time.perf_counter() - start
    out = optimise(problem.init, problem.loss_fn, steps=1 + max(1, steps), optimizer=cfg.optimizer, lr=problem.lr,
                   progress=False, update=problem.update)
    if out.interrupted:
        raise KeyboardInterrupt("interrupted while timing the steps")
    times = [row["time"] for row in out.history]
    per_step = sorted(b - a for a, b in zip(times, times[1:]))
    per_step_s = per_step[len(per_step) // 2] if per_step else (times[0] if times else 0.0)
    start = time.perf_counter()
    with torch.no_grad():
        problem.decode(out.param)
    decode = time.perf_counter() - start
    total_steps = problem.steps if problem.steps is not None else cfg.steps
    return Estimate(method, int(total_steps), setup, per_step_s, decode)


def estimate_seconds(
    method: str,
    content: torch.Tensor,
    style: torch.Tensor,
    config: TransferConfig,
    *,
    steps: int = 2,
) -> float:
    """:func:`estimate` in seconds: ``setup + steps * per_step + decode``.

    Notebook: notebooks/03_caracalla_roebel.ipynb
    """
    return estimate(method, content, style, config, steps=steps).seconds


def duration_scaling(
    method: str,
    config: TransferConfig,
    *,
    durations: Sequence[float] = (5.0, 10.0),
    steps: int = 3,
    reference: bool = False,
) -> dict[str, Any]:
    """ms per step of ``method`` at each clip length, and each one's ratio to the first.

    Cost should grow linearly with the clip (issue 15: a 10 s clip at most 2.2 times a 5 s one).
    The clips are seeded noise of each duration (timing does not depend on what they hold); each
    length is timed over ``steps`` steps after one warm-up step, median. ``reference=True`` also
    times ``fast=False`` (slow on long clips). Printed by ``python -m labutils.speed``.

    Notebook: notebooks/03_caracalla_roebel.ipynb
    """
    cfg = config.validate()
    rows = []
    for seconds in durations:
        c = cfg.replace(duration=float(seconds)).validate()
        n = int(round(c.duration * c.sample_rate))
        gen = torch.Generator().manual_seed(0)
        content, style = 0.1 * torch.randn(n, generator=gen), 0.1 * torch.randn(n, generator=gen)
        row: dict[str, Any] = {"duration": c.duration}
        for name, cc in (("fast", c), ("reference", c.replace(fast=False))) if reference else (("fast", c),):
            problem = attempts.get(method).build(content, style, cc, None)
            times = sorted(_time_steps(problem, cc, steps=steps, warmup=1))
            row[f"{name}_ms_per_step"] = round(times[len(times) // 2], 2)
            row.update({"algorithms": problem.info["algorithms"]} if name == "fast" and "algorithms" in problem.info else {})
        rows.append(row)
    base = rows[0]["fast_ms_per_step"] / rows[0]["duration"]
    for row in rows:
        row["ratio_to_first"] = round(row["fast_ms_per_step"] / rows[0]["fast_ms_per_step"], 3)
        row["vs_linear"] = round(row["fast_ms_per_step"] / (base * row["duration"]), 3)  # 1.0: exactly linear
    return {"method": method, **cpu_info(), "rows": rows}


def guide_step_cost(content: torch.Tensor, style: torch.Tensor, config: TransferConfig, *, rounds: int = 5,
                    steps: int = 2) -> dict[str, Any]:
    """ms per step of attempt 3 without and with ``guide = notes`` at the same settings, and the ratio.

    ``content: (N,)``, ``style: (M,)`` at ``config.sample_rate`` (real notes: the guide needs the
    note finder to find some). Both problems are built first (the guide's targets are computed
    once, outside the timing); then ``rounds`` times, ``steps`` steps of each in turn (interleaved,
    so a load on the machine weighs on both alike), after one warm-up round. Medians per step.
    Printed by ``python -m labutils.speed --guide``.

    Notebook: notebooks/09_guided_statistics.ipynb
    """
    cfg = config.replace(guide="none").validate()
    problems = {"none": attempts.get("caracalla-roebel").build(content, style, cfg, None),
                "notes": attempts.get("caracalla-roebel").build(content, style, cfg.replace(guide="notes"), None)}
    times: dict[str, list[float]] = {"none": [], "notes": []}
    for r in range(rounds + 1):
        for name, problem in problems.items():
            ms = _time_steps(problem, cfg, steps=steps, warmup=1)
            if r:
                times[name].extend(ms)
    med = {k: sorted(v)[len(v) // 2] for k, v in times.items()}
    return {"method": "caracalla-roebel", **cpu_info(), "duration": cfg.duration, "sample_rate": cfg.sample_rate,
            "statistic": cfg.statistic, "domain": cfg.domain, "filters": cfg.filters,
            "masks": problems["notes"].info["guide"]["masks"],
            "unguided_ms_per_step": round(med["none"], 2), "guided_ms_per_step": round(med["notes"], 2),
            "ratio": round(med["notes"] / med["none"], 3)}


if __name__ == "__main__":  # python -m labutils.speed --durations 5 10 60 [--filters 128] [--reference]
    import argparse
    import json

    from .optim import tune_allocator

    tune_allocator()  # as `python -m labutils` does: explicit, process-wide
    parser = argparse.ArgumentParser(prog="python -m labutils.speed",
                                     description="ms per step at several clip lengths (linear-cost check)")
    parser.add_argument("--method", default="caracalla-roebel")
    parser.add_argument("--durations", type=float, nargs="+", default=[5.0, 10.0])
    parser.add_argument("--filters", type=int, default=None)
    parser.add_argument("--domain", default=None)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--reference", action="store_true")
    parser.add_argument("--guide", nargs=2, metavar=("CONTENT", "STYLE"), default=None,
                        help="instead: ms per step without and with guide=notes on these two clips (names or paths)")
    parser.add_argument("--statistic", default=None)
    parser.add_argument("--duration", type=float, default=2.0, help="with --guide: seconds of each clip")
    parser.add_argument("--sample-rate", type=int, default=None, help="with --guide: sample rate (Hz)")
    parser.add_argument("--kernel-sizes", default=None, help="with --guide: kernel sizes, e.g. 3,7,15")
    args = parser.parse_args()
    if args.guide:
        from . import transfer as _T

        sizes = tuple(int(k) for k in args.kernel_sizes.split(",")) if args.kernel_sizes else None
        values = {k: v for k, v in (("filters", args.filters), ("domain", args.domain), ("statistic", args.statistic),
                                    ("sample_rate", args.sample_rate), ("kernel_sizes", sizes)) if v is not None}
        gcfg = attempts.config_for("caracalla-roebel", device="cpu", duration=args.duration, **values)
        gc, gs, _ = _T.load_pair(args.guide[0], args.guide[1], gcfg)
        print(json.dumps(guide_step_cost(gc, gs, gcfg, steps=args.steps)))
        raise SystemExit(0)
    values = {k: v for k, v in (("filters", args.filters), ("domain", args.domain)) if v is not None}
    report = duration_scaling(args.method, attempts.config_for(args.method, device="cpu", **values),
                              durations=args.durations, steps=args.steps, reference=args.reference)
    print(json.dumps(report))
