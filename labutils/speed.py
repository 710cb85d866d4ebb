"""The speed benchmark: ms per step of an attempt against its plain reference, same process.

Not to be confused with the quality benchmark (:func:`labutils.evaluate.quality_benchmark`):
this module times code and judges nothing about the result.

Notebook: notebooks/03_caracalla_roebel.ipynb
"""
from __future__ import annotations

import os
import platform
import threading
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
    return {"cpu": name, "isa": isa, "torch_cpu_capability": capability, "threads": torch.get_num_threads()}


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
        problem = attempt.build(content, style, cfg, betas)
        fast_times = sorted(_time_steps(problem, cfg, steps=steps, warmup=warmup))
    ms = fast_times[len(fast_times) // 2]
    where = ({"device_name": torch.cuda.get_device_name(device)} if device.type == "cuda" else cpu_info())
    report: dict[str, Any] = {
        "method": method, "device": str(device), **where,
        "allocator_tuned": allocator_tuned(), "batch": problem.init.shape[0] if isinstance(problem.init, torch.Tensor) else 1,
        "settings": {k: v for k, v in cfg.as_dict().items() if k not in ("steps",)},
        "ms_per_step": round(ms, 2), "steps_timed": steps,
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
