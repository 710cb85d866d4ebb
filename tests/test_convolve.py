"""The first layer's convolution algorithms (labutils.convolve) against PyTorch's conv2d, the
per-machine choice and its cache, RandomCNN's defaults and its fast path against the reference."""
from __future__ import annotations

import dataclasses
import json
import warnings

import pytest
import torch
import torch.nn.functional as Fn

from labutils import convolve as CV
from labutils import losses as L
from labutils import nets
from labutils.config import CaracallaRoebelConfig

PLANS = ["direct/direct", "direct/rows", "fft", "fft16", "direct/fft32", "fft64/rows", "fft64/direct"]


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LABUTILS_CONV_CACHE", str(tmp_path / "conv_algorithms.json"))
    monkeypatch.delenv("LABUTILS_CONV_ALGORITHM", raising=False)


def _reference(x, w, g):
    x = x.detach().requires_grad_(True)
    y = Fn.conv2d(x, w, padding=w.shape[-1] // 2)
    (gx,) = torch.autograd.grad(y, x, g)
    return y, gx


def _close(a, b, rtol=2e-5):
    scale = b.abs().max().clamp_min(1e-12)
    assert (a - b).abs().max() / scale < rtol, float((a - b).abs().max() / scale)


@pytest.mark.parametrize("plan", PLANS)
@pytest.mark.parametrize("shape", [(1, 3, 17, 40), (2, 5, 23, 70), (1, 4, 9, 7)])  # (B, C, F, T)
@pytest.mark.parametrize("k", [3, 7, 11])
def test_every_plan_matches_conv2d_values_and_input_gradient(plan, shape, k, monkeypatch):
    monkeypatch.setattr(CV, "DIRECT_BLOCK", 16)  # several time blocks even on small shapes
    B, C, F, T = shape
    gen = torch.Generator().manual_seed(k)
    x = torch.randn(B, 1, F, T, generator=gen)
    w = torch.randn(C, 1, k, k, generator=gen) / k
    g = torch.randn(B, C, F, T, generator=gen)
    y_ref, gx_ref = _reference(x, w, g)
    xg = x.clone().requires_grad_(True)
    y = CV.single_to_many(xg, w, plan)
    (gx,) = torch.autograd.grad(y, xg, g)
    assert y.shape == y_ref.shape and gx.shape == gx_ref.shape
    _close(y, y_ref)
    _close(gx, gx_ref)


def test_fft_in_filter_groups_matches(monkeypatch):
    monkeypatch.setattr(CV, "CHUNK_BYTES", 1)  # one pair of filters at a time
    gen = torch.Generator().manual_seed(1)
    x, w = torch.randn(2, 1, 12, 50, generator=gen), torch.randn(5, 1, 5, 5, generator=gen)
    g = torch.randn(2, 5, 12, 50, generator=gen)
    y_ref, gx_ref = _reference(x, w, g)
    xg = x.clone().requires_grad_(True)
    y = CV.single_to_many(xg, w, "fft32")
    (gx,) = torch.autograd.grad(y, xg, g)
    _close(y, y_ref)
    _close(gx, gx_ref)


def test_plan_names_round_trip_and_bad_names():
    for name in ["direct/rows", "fft256", "direct/fft128", "fft512/direct"]:
        assert CV.Plan.parse(name).name == name
    assert CV.Plan.parse("fft") == CV.Plan("fft", "fft", 512)
    with pytest.raises(ValueError):
        CV.Plan.parse("winograd")
    assert all(CV.fast_length(n) >= n and CV.fast_length(n) % 2 == 0 for n in range(1, 300))
    assert CV.fast_length(283) == 288


def test_choice_is_measured_once_then_read_from_the_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(CV, "_load", lambda: 0.0)  # a busy test machine would keep it in memory only
    w = torch.randn(4, 1, 5, 5)
    plan, record = CV.choose(w, batch=1, n_freq=17, n_frames=30)
    assert record["source"] == "measured" and record["probe_s"] < 5
    assert any(key.startswith("forward:") for key in record["ms"]) and any(k.startswith("backward:") for k in record["ms"])
    data = json.loads((tmp_path / "conv_algorithms.json").read_text())
    (machine,) = data
    assert CV.cpu_model() in machine and f"threads {torch.get_num_threads()}" in machine
    assert data[machine]["B1 C4 k5 F17 T30 float32"]["plan"] == plan.name
    again, record = CV.choose(w, batch=1, n_freq=17, n_frames=30)
    assert again == plan and record["source"] == "cache"


def test_forced_algorithm_and_memory_only_cache(monkeypatch):
    monkeypatch.setenv("LABUTILS_CONV_ALGORITHM", "fft64")
    assert CV.choose(torch.randn(2, 1, 3, 3), batch=1, n_freq=5, n_frames=9)[0].name == "fft64"
    monkeypatch.delenv("LABUTILS_CONV_ALGORITHM")
    monkeypatch.setenv("LABUTILS_CONV_CACHE", "off")
    assert CV.cache_file() is None
    plan, _ = CV.choose(torch.randn(2, 1, 3, 3), batch=1, n_freq=5, n_frames=9)
    assert CV.choose(torch.randn(2, 1, 3, 3), batch=1, n_freq=5, n_frames=9)[1]["source"] == "cache"


@pytest.mark.parametrize("algorithm", ["auto", "direct/direct", "direct/rows", "fft", "fft32"])
@pytest.mark.parametrize("layers,batch", [(1, 1), (2, 2)])
def test_random_cnn_fast_matches_reference_through_the_loss(algorithm, layers, batch):
    kw = dict(filters=3, kernel_sizes=(3, 5, 9), layers=layers, seed=1)
    fast, ref = nets.RandomCNN(fast=True, algorithm=algorithm, **kw), nets.RandomCNN(fast=False, **kw)
    gen = torch.Generator().manual_seed(0)
    content, style = torch.rand(1, 21, 45, generator=gen), torch.rand(1, 21, 45, generator=gen)
    with torch.no_grad():
        targets = L.Targets(content=ref.features(content), style=L.time_correlations(ref.features(style)))
    x = torch.rand(batch, 21, 45, generator=gen)
    grads, values = [], []
    for net in (fast, ref):
        p = x.clone().requires_grad_(True)
        feats = net.features(p)
        c, s = L.content_and_style(feats, targets, fast=net.fast)
        (c + 0.01 * s).sum().backward()
        values.append(torch.cat([f.flatten() for f in feats]))
        grads.append(p.grad)
    _close(values[0], values[1])
    _close(grads[0], grads[1], rtol=1e-4)
    assert set(fast.algorithms) == {3, 5, 9} and ref.algorithms == {3: "reference", 5: "reference", 9: "reference"}
    if algorithm != "auto":
        assert set(fast.algorithms.values()) == {CV.Plan.parse(algorithm).name}


def test_random_cnn_defaults_come_from_the_config():
    cfg = CaracallaRoebelConfig()
    net = nets.RandomCNN(filters=2, kernel_sizes=(3,))
    assert nets.KERNEL_SIZES == tuple(cfg.kernel_sizes)
    assert net.layers == cfg.layers and net.seed == cfg.net_seed and net.fast == cfg.fast
    import inspect

    defaults = {n: p.default for n, p in inspect.signature(nets.RandomCNN).parameters.items()}
    assert defaults["filters"] == cfg.filters and tuple(defaults["kernel_sizes"]) == tuple(cfg.kernel_sizes)
    fields = {f.name for f in dataclasses.fields(CaracallaRoebelConfig)}
    assert {"filters", "kernel_sizes", "layers", "net_seed", "fast"} <= fields
    with pytest.raises(ValueError):
        nets.RandomCNN(filters=2, kernel_sizes=(3,), algorithm="winograd")


def test_wav2vec2_fallback_names_the_real_reason(monkeypatch):
    transformers = pytest.importorskip("transformers")

    def broken(cls, *args, **kwargs):
        raise ValueError("corrupt checkpoint")

    monkeypatch.setattr(transformers.Wav2Vec2ForSequenceClassification, "from_pretrained", classmethod(broken))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        net = nets.Wav2Vec2Features(layers=(0,), weights="auto")
    note = net.weights_info.note
    assert net.weights_info.pretrained is False
    assert "corrupt checkpoint" in note and "ValueError" in note and "offline" not in note
    assert any("corrupt checkpoint" in str(w.message) for w in caught)


def test_a_plan_measured_on_a_busy_machine_is_kept_for_the_process(monkeypatch, tmp_path):
    """Measured while the load average exceeds the CPU count, a plan is not written to disk but is
    reused within the process: a second run of the same shape does not time the kernels again (it
    could choose other kernels, and a seeded run would no longer repeat to the bit)."""
    monkeypatch.setenv("LABUTILS_CONV_CACHE", str(tmp_path / "conv_algorithms.json"))
    monkeypatch.setattr(CV, "_load", lambda: 1000.0)
    monkeypatch.setattr(CV, "_MEMORY", {})
    calls = []
    real = CV.measure
    monkeypatch.setattr(CV, "measure", lambda *a, **k: calls.append(1) or real(*a, **k))
    w = torch.randn(2, 1, 3, 3)
    plan, record = CV.choose(w, batch=1, n_freq=7, n_frames=11)
    assert record["source"] == "measured" and not (tmp_path / "conv_algorithms.json").exists()
    again, record = CV.choose(w, batch=1, n_freq=7, n_frames=11)
    assert again == plan and record["source"] == "cache" and len(calls) == 1
