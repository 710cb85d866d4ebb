"""Every case of issue 16's table, one JSON line each, with its target and pass/fail.

``bench/gpu.sh`` runs this on a GPU (about 3-4 minutes on an H100/H200 at the report's sizes);
``--quick`` runs the same cases at tiny shapes on whatever device is given (the CPU by default),
so that the tests can check that nothing crashes; targets are then not judged (``"pass": null``).

Lines: ``{"case": ..., "ms_per_step": ..., "target": ..., "pass": true|false|null, ...}``, then
one ``{"case": "summary", ...}`` line.

Notebook: notebooks/03_caracalla_roebel.ipynb
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import torch

from labutils import attempts, optim, speed, transfer
from labutils.config import CaracallaRoebelConfig

METHOD = "caracalla-roebel"
BETAS8 = [0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0]


def _settings(quick: bool, device: str) -> dict[str, Any]:
    if quick:
        return dict(sample_rate=8000, duration=0.5, n_fft=128, hop_length=64, kernel_sizes=(3, 5), griffin_lim_iters=4,
                    device=device)
    return dict(device=device)  # the report's sizes: 5 s at 44.1 kHz, n_fft 512, hop 256, kernel sizes 3..27


def _judge(value: float | None, limit: float, quick: bool) -> bool | None:
    return None if quick or value is None else bool(value <= limit)


def run(*, quick: bool, device: str, steps: int, honesty_steps: int, cli_steps: int,
        emit: Callable[[dict], None]) -> list[dict]:
    """Run every case and ``emit`` each line; returns the lines."""
    small, big = (4, 8) if quick else (32, 128)
    base = _settings(quick, device)
    cfg = CaracallaRoebelConfig(**base).validate()
    content, style, _ = transfer.load_pair("moonlight_piano", "ode_violin", cfg)
    lines: list[dict] = []

    def out(line: dict) -> dict:
        line = {"quick": quick, **line}
        lines.append(line)
        emit(line)
        return line

    def bench(case: str, *, reference: bool, betas=None, target=None, **changes) -> dict:
        c = CaracallaRoebelConfig(**{**base, **changes}).validate()
        t0 = time.perf_counter()
        rep = speed.speed_benchmark(METHOD, content, style, c, steps=steps, warmup=1 if quick else 2,
                                    reference=reference, betas=betas)
        keep = ("device", "device_name", "cpu", "batch", "ms_per_step", "reference_ms_per_step", "speedup",
                "loss_rel_error", "grad_rel_error", "peak_mem_mb", "achieved_gflops", "render_ms", "build_s",
                "algorithms", "precision")
        line = {"case": case, **{k: rep.get(k) for k in keep if k in rep},
                "settings": {k: v for k, v in changes.items()}, "case_s": round(time.perf_counter() - t0, 1)}
        if target is not None:
            line["target"] = f"ms_per_step <= {target}"
            line["pass"] = _judge(rep["ms_per_step"], target, quick)
        return out(line)

    bench(f"{small} filters, bench", reference=True, filters=small)
    one = bench(f"{big} filters, bench", reference=True, filters=big, target=4.0)
    bench(f"{big} filters, waveform domain", reference=False, filters=big, domain="waveform", target=4.0)
    batch = bench(f"{big} filters, batch of 8 betas", reference=False, filters=big, betas=BETAS8)
    ratio = batch["ms_per_step"] / one["ms_per_step"]
    out({"case": f"{big} filters, batch of 8 betas vs one", "ratio_to_one": round(ratio, 2),
         "target": "ratio_to_one <= 2", "pass": _judge(ratio, 2.0, quick)})
    bench(f"{big} filters, 3 layers", reference=False, filters=big, layers=3, target=60.0)

    # precision: speed, and honesty (loss after honesty_steps within 1 % of fp32's)
    finals: dict[str, float] = {}
    for precision in ("fp32", "tf32", "bf16"):
        c = CaracallaRoebelConfig(**{**base, "filters": big, "precision": precision}).validate()
        problem = attempts.get(METHOD).build(content, style, c, None)
        ms = speed.synced_ms_per_step(problem, c, steps=steps, warmup=1 if quick else 2)
        t0 = time.perf_counter()
        res = optim.optimise(problem.init, problem.loss_fn, steps=honesty_steps, optimizer=c.optimizer,
                             lr=problem.lr, progress=False)
        if problem.device.type == "cuda":
            torch.cuda.synchronize(problem.device)
        loop_s = time.perf_counter() - t0
        finals[precision] = float(res.history[-1]["total"][0])
        line = {"case": f"{big} filters, precision {precision}", "ms_per_step": round(ms, 3),
                "precision": problem.info.get("precision"), "algorithms": problem.info.get("algorithms"),
                f"loss_at_step_{honesty_steps}": finals[precision], "loop_s": round(loop_s, 2)}
        if precision != "fp32":
            rel = abs(finals[precision] - finals["fp32"]) / max(abs(finals["fp32"]), 1e-30)
            line.update({"loss_rel_to_fp32": rel, "target": "loss within 1 % of fp32",
                         "pass": None if quick else bool(rel <= 0.01)})
        out(line)
    auto = CaracallaRoebelConfig(**{**base, "precision": "auto"}).validate()
    out({"case": "precision auto resolves to", "device": device,
         "precision": attempts.get(METHOD).build(content, style, auto.replace(filters=small), None).info["precision"]})

    # 1000 steps through the command line: run wall time (config.json) and process time
    with tempfile.TemporaryDirectory() as tmp:
        flags = ["transfer", "--method", METHOD, "--content", "moonlight_piano", "--style", "ode_violin",
                 "--filters", str(big), "--steps", str(cli_steps), "--quiet", "--out", tmp, "--device", device]
        if quick:
            flags += ["--sample-rate", "8000", "--duration", "0.5", "--n-fft", "128", "--hop", "64",
                      "--kernel-sizes", "3,5", "--griffin-lim-iters", "4"]
        t0 = time.perf_counter()
        if quick:  # in-process: the test checks the path, not the interpreter's start-up
            from labutils.__main__ import main

            import contextlib

            with contextlib.redirect_stdout(sys.stderr):  # stdout carries JSON lines only
                rc = main(flags)
        else:
            rc = subprocess.run([sys.executable, "-m", "labutils", *flags], capture_output=True, text=True).returncode
        process_s = time.perf_counter() - t0
        records = [json.loads(p.read_text()) for p in Path(tmp).rglob("config.json")]
        wall = records[0]["wall_time_s"] if records else None
        loop = records[0]["final_loss"]["time"] if records and records[0].get("final_loss") else None
        out({"case": f"{cli_steps} steps, {big} filters, CLI", "returncode": rc, "loop_s": loop, "run_wall_s": wall,
             "process_s": round(process_s, 2), "target": "run_wall_s <= 5", "pass": _judge(wall, 5.0, quick)})

    judged = [l for l in lines if l.get("pass") is not None]
    emit({"case": "summary", "quick": quick, "targets_judged": len(judged),
          "targets_met": sum(bool(l["pass"]) for l in judged),
          "failed": [l["case"] for l in judged if not l["pass"]],
          "device": device, "torch": torch.__version__,
          "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None})
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny shapes, targets not judged (CPU smoke test)")
    parser.add_argument("--device", default=None, help="cuda (default when present) or cpu (default with --quick)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per case (default 10; quick 2)")
    parser.add_argument("--honesty-steps", type=int, default=None, help="steps of each precision's run (default 1000)")
    parser.add_argument("--cli-steps", type=int, default=None, help="steps of the CLI run (default 1000)")
    args = parser.parse_args(argv)
    device = args.device or ("cpu" if args.quick or not torch.cuda.is_available() else "cuda")
    optim.tune_allocator()
    run(quick=args.quick, device=device, steps=args.steps or (2 if args.quick else 10),
        honesty_steps=args.honesty_steps or (5 if args.quick else 1000),
        cli_steps=args.cli_steps or (3 if args.quick else 1000),
        emit=lambda line: print(json.dumps(line, default=str), flush=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
