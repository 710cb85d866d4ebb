"""Issue 16's GPU paths, checked on the CPU: the patches plan, each precision (emulated) against
FP32, bf16 inputs with FP32 weights, the loop without a host copy every step, and the benchmark
script in its quick mode. Tiny shapes throughout."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as Fn

from labutils import ConfigError, optim, transfer
from labutils import convolve as CV
from labutils import losses as L
from labutils import nets
from labutils import precision as PR
from labutils.attempts import caracalla_roebel
from labutils.config import CaracallaRoebelConfig


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LABUTILS_CONV_CACHE", str(tmp_path / "conv_algorithms.json"))
    monkeypatch.delenv("LABUTILS_CONV_ALGORITHM", raising=False)


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach(), b.detach()
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-12))


def _cos(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(Fn.cosine_similarity(a.flatten(), b.flatten(), dim=0))


def _layer(x, w, g, plan, precision="fp32"):
    x = x.detach().clone().requires_grad_(True)
    y = CV.single_to_many(x, w, plan, precision=precision)
    (gx,) = torch.autograd.grad(y, x, g.to(y.dtype))
    return y, gx


@pytest.mark.parametrize("k", [3, 7, 11])
@pytest.mark.parametrize("blocks", [False, True])
def test_patches_plan_matches_conv2d_values_and_input_gradient(k, blocks, monkeypatch):
    if blocks:  # a few frames per block: the time blocking and the fold's overlaps are exercised
        monkeypatch.setattr(CV, "CHUNK_BYTES", 2 * k * k * 9 * 4 * 5)
    gen = torch.Generator().manual_seed(k)
    x, w = torch.randn(2, 1, 9, 23, generator=gen), torch.randn(5, 1, k, k, generator=gen) / k
    g = torch.randn(2, 5, 9, 23, generator=gen)
    xr = x.clone().requires_grad_(True)
    y_ref = Fn.conv2d(xr, w, padding=k // 2)
    (gx_ref,) = torch.autograd.grad(y_ref, xr, g)
    for plan in ("patches", "patches/rows", "direct/patches", "fft64/patches"):
        y, gx = _layer(x, w, g, plan)
        assert _rel(y, y_ref) < 2e-5 and _rel(gx, gx_ref) < 2e-5, plan


def test_patches_plan_names_round_trip():
    assert CV.Plan.parse("patches") == CV.Plan("patches", "patches") and CV.Plan.parse("patches").name == "patches"
    assert CV.Plan.parse("patches/rows").name == "patches/rows"
    assert CV.Plan.parse("fft256/patches") == CV.Plan("fft", "patches", 256)


@pytest.mark.parametrize("plan", ["direct/rows", "direct/direct", "fft32", "patches"])
@pytest.mark.parametrize("precision,tol", [("tf32", 3e-3), ("bf16", 2e-2)])
def test_each_plan_in_reduced_precision_stays_near_fp32(plan, precision, tol):
    gen = torch.Generator().manual_seed(3)
    x, w = torch.rand(1, 1, 11, 30, generator=gen), torch.randn(6, 1, 5, 5, generator=gen) / 5
    g = torch.randn(1, 6, 11, 30, generator=gen)
    y32, gx32 = _layer(x, w, g, plan)
    y, gx = _layer(x, w, g, plan, precision)
    assert y.dtype == torch.float32 and _rel(y, y32) < tol and _rel(gx, gx32) < tol
    if not plan.startswith("fft"):  # the fft plan computes in FP32 whatever the precision
        assert not torch.equal(y, y32)


@pytest.mark.parametrize("plan", ["direct/rows", "fft32", "patches"])
def test_bf16_input_with_fp32_weights_runs_and_returns_bf16(plan):
    """Autocast hands the layer a bf16 input: it must not fail on the FP32 weights (issue 16)."""
    gen = torch.Generator().manual_seed(4)
    x, w = torch.rand(1, 1, 9, 20, generator=gen), torch.randn(4, 1, 3, 3, generator=gen) / 3
    g = torch.randn(1, 4, 9, 20, generator=gen)
    y32, gx32 = _layer(x, w, g, plan)
    y, gx = _layer(x.bfloat16(), w, g, plan)
    assert y.dtype == gx.dtype == torch.bfloat16
    assert _rel(y.float(), y32) < 2e-2 and _rel(gx.float(), gx32) < 2e-2


def test_fft_plan_batches_over_b_like_a_loop():
    gen = torch.Generator().manual_seed(5)
    x, w = torch.randn(3, 1, 10, 40, generator=gen), torch.randn(4, 1, 5, 5, generator=gen)
    layer = CV.SingleToMany(w, CV.Plan.parse("fft32"))
    batched = layer(x)
    assert torch.allclose(batched, torch.cat([layer(x[i:i + 1]) for i in range(3)]), atol=1e-5)


def test_tf32_rounding_and_scope_leave_global_state_alone():
    x = torch.tensor([1.0, 1.0 + 2 ** -11, 1.0 + 2 ** -9, -3.14159, 1e-30])
    r = PR._round_tf32(x)
    assert r[0] == 1 and r[2] == x[2] and (r - x).abs().max() <= x.abs().max() * 2 ** -11
    bits = r.view(torch.int32) & 0x1FFF
    assert (bits == 0).all()
    before = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    with PR.tf32("cuda"):  # sets the switches (no GPU needed to set them) ...
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
    assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == before  # ... and restores
    with PR.tf32("cpu"):
        assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == before


def test_precision_config_field_resolution_and_record():
    cfg = CaracallaRoebelConfig()
    assert cfg.precision == "auto" and cfg.as_dict()["precision"] == "auto"
    assert PR.resolve("auto", "cpu") == "fp32" and PR.resolve("auto", torch.device("cuda")) == "tf32"
    assert "auto" in CaracallaRoebelConfig.help("precision") and "tf32 on CUDA" in CaracallaRoebelConfig.help("precision")
    with pytest.raises(ConfigError, match="precision"):
        cfg.replace(precision="fp16").validate()
    assert nets.RandomCNN(filters=2, kernel_sizes=(3,), precision="auto").precision == "fp32"
    assert nets.RandomCNN(filters=2, kernel_sizes=(3,), precision="bf16", fast=False).precision == "fp32"


@pytest.mark.parametrize("precision", ["tf32", "bf16"])
@pytest.mark.parametrize("algorithm,layers", [("patches", 1), ("direct/rows", 2), ("fft32", 1)])
def test_loss_and_gradient_of_each_precision_against_fp32(precision, algorithm, layers):
    """Tiny problem: loss within 1 %, gradient direction cosine > 0.99."""
    kw = dict(filters=4, kernel_sizes=(3, 5), layers=layers, seed=2, algorithm=algorithm)
    ref = nets.RandomCNN(**kw)
    low = nets.RandomCNN(**kw, precision=precision)
    gen = torch.Generator().manual_seed(0)
    content, style = torch.rand(1, 17, 33, generator=gen), torch.rand(1, 17, 33, generator=gen)
    with torch.no_grad():
        targets = L.Targets(content=ref.features(content), style=L.time_correlations(ref.features(style)))
    x = content + 0.1 * torch.rand(1, 17, 33, generator=gen)
    out = []
    for net in (ref, low):
        p = x.clone().requires_grad_(True)
        c, s = L.content_and_style(net.features(p), targets, precision=net.precision)
        total = (c + 0.5 * s).sum()
        total.backward()
        out.append((float(total), p.grad))
    (l32, g32), (l, g) = out
    assert abs(l - l32) / l32 < 0.01 and _cos(g, g32) > 0.99


@pytest.mark.parametrize("precision", ["tf32", "bf16"])
def test_twenty_steps_end_within_one_percent_of_fp32(tiny_cfg, tiny_pair, precision):
    finals = {}
    for p in ("fp32", precision):
        cfg = tiny_cfg.replace(precision=p, init="noise", beta=1.0, lr=0.05)
        problem = caracalla_roebel.build(*tiny_pair, cfg)
        assert problem.info["precision"] == p
        out = optim.optimise(problem.init, problem.loss_fn, steps=20, lr=problem.lr, progress=False)
        finals[p] = out.history[-1]["total"][0]
    assert abs(finals[precision] - finals["fp32"]) / finals["fp32"] < 0.01


def test_sync_every_gives_the_same_history_and_callbacks(tiny_cfg, tiny_pair):
    problem = caracalla_roebel.build(*tiny_pair, tiny_cfg.replace(steps=12))
    runs = {}
    for n in (1, 5):
        seen = []
        out = optim.optimise(problem.init, problem.loss_fn, steps=12, lr=0.05, progress=False, sync_every=n,
                             every=4, callback=lambda info, p: seen.append((info.step, info.total, p.clone())))
        runs[n] = (out, seen)
    (a, seen_a), (b, seen_b) = runs[1], runs[5]
    assert [r["step"] for r in b.history] == list(range(1, 13)) and b.steps_done == 12
    for ra, rb in zip(a.history, b.history):
        assert all(ra[k] == rb[k] for k in ("total", "content", "style"))
    assert [s[:2] for s in seen_a] == [s[:2] for s in seen_b] and [s[0] for s in seen_b] == [4, 8, 12]
    assert all(torch.equal(x[2], y[2]) for x, y in zip(seen_a, seen_b)) and torch.equal(a.param, b.param)
    with pytest.raises(ConfigError):
        optim.optimise(problem.init, problem.loss_fn, steps=1, sync_every=0, progress=False)


@pytest.mark.parametrize("poison_at", [4, 5, 7])
def test_nan_guard_with_sync_every_rolls_back_to_the_last_finite_step(tiny_cfg, tiny_pair, poison_at):
    problem = caracalla_roebel.build(*tiny_pair, tiny_cfg.replace(steps=10))
    clean = optim.optimise(problem.init, problem.loss_fn, steps=poison_at - 1, lr=0.05, progress=False)
    calls = {"n": 0}

    def poisoned(p):
        out = problem.loss_fn(p)
        calls["n"] += 1
        if calls["n"] >= poison_at:
            out["total"] = out["total"] * float("nan")
        return out

    out = optim.optimise(problem.init, poisoned, steps=10, lr=0.05, progress=False, sync_every=5)
    assert out.stopped and out.steps_done == poison_at - 1 and len(out.history) == poison_at - 1
    assert f"step {poison_at}" in out.message and "NaN" in out.message
    assert torch.isfinite(out.param).all() and torch.equal(out.param, clean.param)


def test_stop_flag_with_sync_every_reads_back_the_pending_steps(tiny_cfg, tiny_pair):
    problem = caracalla_roebel.build(*tiny_pair, tiny_cfg)
    n = {"calls": 0}

    def stop() -> bool:
        n["calls"] += 1
        return n["calls"] > 3

    out = optim.optimise(problem.init, problem.loss_fn, steps=20, lr=0.05, progress=False, sync_every=25, stop=stop)
    assert out.stopped and out.steps_done == 3 and [r["step"] for r in out.history] == [1, 2, 3]


def test_gpu_benchmark_script_quick_mode_runs_every_case(tmp_path, monkeypatch):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "bench" / "gpu_cases.py"
    spec = importlib.util.spec_from_file_location("gpu_cases", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    printed = []
    lines = module.run(quick=True, device="cpu", steps=1, honesty_steps=2, cli_steps=2, emit=printed.append)
    cases = [line["case"] for line in printed]
    for needle in ("4 filters, bench", "8 filters, bench", "waveform", "batch of 8", "3 layers", "precision fp32",
                   "precision tf32", "precision bf16", "CLI", "summary"):
        assert any(needle in c for c in cases), needle
    cli = next(line for line in lines if "CLI" in line["case"])
    assert cli["returncode"] == 0 and cli["run_wall_s"] is not None
    assert all(line.get("pass") is None for line in lines)  # targets are judged on a GPU only
    assert all(math.isfinite(line["ms_per_step"]) for line in lines if "ms_per_step" in line)
