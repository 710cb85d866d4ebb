"""Attempt 3's levers (issue 14): statistics against plain loops, shift invariance, RI round trip,
the chroma content term, the kernel-size and layer selection, and the config checks. Tiny shapes.

Notebook: notebooks/06_exploring_attempt3.ipynb
"""
import math

import pytest
import torch

from labutils import losses as L
from labutils import spectral as S
from labutils import transfer
from labutils.attempts import caracalla_roebel as CR
from labutils.config import CaracallaRoebelConfig
from labutils.errors import ConfigError
from labutils.nets import RandomCNN

SR = 8000
TINY = dict(steps=1, sample_rate=SR, duration=0.5, n_fft=256, hop_length=128, filters=3, kernel_sizes=(3, 5),
            griffin_lim_iters=2, n_bins=24)


def _tone(f0: float, *, seconds: float = 0.5, harmonics: int = 4, sr: int = SR) -> torch.Tensor:
    t = torch.arange(int(seconds * sr)) / sr
    return sum(torch.sin(2 * math.pi * f0 * h * t) / h for h in range(1, harmonics + 1)) * 0.3


@pytest.fixture(scope="module")
def feats() -> torch.Tensor:
    return torch.rand(2, 3, 5, 4, generator=torch.Generator().manual_seed(1))  # (B, C, F, T)


def test_frequency_correlations_match_a_loop(feats):
    B, C, F, T = feats.shape
    loop = torch.zeros(B, C, F, F)
    for b in range(B):
        for i in range(C):
            for f in range(F):
                for g in range(F):
                    loop[b, i, f, g] = sum(feats[b, i, f, t] * feats[b, i, g, t] for t in range(T))
    assert torch.allclose(L.frequency_correlations(feats), loop, atol=1e-5)
    assert torch.allclose(L.texture_statistic(feats, statistic="frequency-frequency"), loop / T, atol=1e-6)


def test_shift_invariant_correlations_match_a_loop(feats):
    B, C, F, T = feats.shape
    loop = torch.zeros(B, C, C)
    for b in range(B):
        for i in range(C):
            for j in range(C):
                loop[b, i, j] = sum(feats[b, i, f, t] * feats[b, j, f, t] for f in range(F) for t in range(T))
    assert torch.allclose(L.shift_invariant_correlations(feats), loop, atol=1e-5)
    assert torch.allclose(L.texture_statistic(feats, statistic="time-frequency"), loop / (F * T), atol=1e-6)


def test_per_frequency_statistic_is_the_reports(feats):
    assert torch.allclose(L.texture_statistic(feats, statistic="per-frequency"), L.time_correlations([feats])[0])
    with pytest.raises(ValueError):
        L.texture_statistic(feats, statistic="gram")


@pytest.mark.parametrize("fast", [True, False])
def test_general_loss_equals_the_reports_when_every_map_is_used(fast):
    net = RandomCNN(filters=3, kernel_sizes=(3, 5), seed=0, fast=False)
    gen = torch.Generator().manual_seed(0)
    content, style = torch.rand(12, 9, generator=gen), torch.rand(12, 11, generator=gen)
    with torch.no_grad():
        fc, fs = net.features(content), net.features(style)
    report = L.Targets(content=fc, style=L.time_correlations(fs))
    levers = L.statistic_targets(fc, fs, statistic="per-frequency")
    x1 = (content + 0.1 * torch.rand(2, 12, 9, generator=gen)).requires_grad_()
    x2 = x1.detach().clone().requires_grad_()
    c1, s1 = L.content_and_style(net.features(x1), report, fast=fast)
    c2, s2 = L.content_and_statistics(net.features(x2), levers, statistic="per-frequency",
                                      content_index=[0, 1], style_index=[0, 1], fast=fast)
    assert torch.allclose(c1, c2, rtol=1e-5) and torch.allclose(s1, s2, rtol=1e-5)
    (c1 + 0.01 * s1).sum().backward()
    (c2 + 0.01 * s2).sum().backward()
    assert torch.allclose(x1.grad, x2.grad, rtol=1e-4, atol=1e-7)


def test_time_frequency_statistic_is_shift_invariant_along_frequency():
    """A pattern moved along the frequency axis (interior, zero margins): the time-and-frequency
    statistic does not change, the per-frequency one does."""
    net = RandomCNN(filters=4, kernel_sizes=(3, 5), seed=0, fast=False)
    image = torch.zeros(40, 12)
    image[10:22] = torch.rand(12, 12, generator=torch.Generator().manual_seed(2))
    shifted = torch.roll(image, 7, dims=0)
    with torch.no_grad():
        fa, fb = net.features(image), net.features(shifted)
    for k in range(2):
        tf = [L.texture_statistic(f[k], statistic="time-frequency") for f in (fa, fb)]
        pf = [L.texture_statistic(f[k], statistic="per-frequency") for f in (fa, fb)]
        assert float((tf[0] - tf[1]).norm() / tf[0].norm()) < 1e-5
        assert float((pf[0] - pf[1]).norm() / pf[0].norm()) > 0.5


def test_time_frequency_statistic_barely_moves_under_a_pitch_shift_on_the_cqt_axis():
    """Two harmonic tones three log-frequency bands apart, seen through the log-frequency filterbank."""
    n_fft, bins = 1024, 48
    fb = S.log_frequency_filterbank(sample_rate=SR, n_fft=n_fft, n_bins=bins)
    bpo = bins / math.log2((SR / 2) / S.CQT_FMIN)
    net = RandomCNN(filters=4, kernel_sizes=(3, 5), seed=0, fast=False)
    specs = []
    for f0 in (200.0, 200.0 * 2 ** (3 / bpo)):
        mag = S.magnitude(_tone(f0), n_fft=n_fft, hop_length=256)
        specs.append(S.band_spectrogram(mag, fb, compression=1000.0))
    with torch.no_grad():
        fa, fb_ = net.features(specs[0]), net.features(specs[1])
    for k in range(2):
        tf = [L.texture_statistic(f[k], statistic="time-frequency") for f in (fa, fb_)]
        pf = [L.texture_statistic(f[k], statistic="per-frequency") for f in (fa, fb_)]
        d_tf = float((tf[0] - tf[1]).norm() / tf[0].norm())
        d_pf = float((pf[0] - pf[1]).norm() / pf[0].norm())
        assert d_tf < 0.1 and d_pf > 3 * d_tf, (d_tf, d_pf)


def test_ri_round_trip():
    audio = _tone(300.0) + 0.01 * torch.randn(4000, generator=torch.Generator().manual_seed(0))
    ri = S.ri_spectrogram(audio, n_fft=256, hop_length=64, compression=1000.0)
    assert ri.shape == (2, 129, 4000 // 64 + 1)
    spec = S.stft(audio, n_fft=256, hop_length=64)
    assert torch.allclose(S.ri_to_stft(ri, compression=1000.0), spec, atol=1e-4)
    back = S.ri_to_audio(ri, n_fft=256, hop_length=64, compression=1000.0, length=audio.shape[-1])
    assert torch.allclose(back, audio, atol=1e-4)
    x = torch.linspace(-3, 3, 101)
    assert torch.allclose(S.ri_decompress(S.ri_compress(x, compression=10.0), compression=10.0), x, atol=1e-5)


@pytest.mark.parametrize("domain", ["waveform", "spectrogram"])
def test_chroma_content_term_is_zero_at_the_content_with_a_finite_gradient(domain):
    content = torch.cat([_tone(330.0, seconds=0.4), torch.zeros(800)])  # a silent tail
    cfg = CaracallaRoebelConfig(**TINY, content_term="chroma", domain=domain)
    problem = CR.build(content, _tone(220.0), cfg)
    p = problem.init.clone().requires_grad_()
    out = problem.loss_fn(p)
    assert float(out["content"].detach()[0]) == pytest.approx(0.0, abs=1e-6)
    out["total"].sum().backward()
    assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0
    moved = problem.loss_fn((problem.init + 0.05 * torch.rand_like(problem.init)).detach())
    assert float(moved["content"][0]) > 0


@pytest.mark.parametrize("levers", [
    dict(representation="ri", domain="waveform"),
    dict(representation="mel", statistic="time-frequency"),
    dict(representation="cqt", statistic="frequency-frequency", domain="waveform"),
    dict(content_term="none", statistic="time-frequency"),
    dict(content_kernel_sizes=(5,), style_kernel_sizes=(3,), layers=2, content_depths=(2,), style_depths=(1,)),
])
def test_each_lever_runs_a_step(levers):
    result = transfer.solve("caracalla-roebel", _tone(330.0), _tone(220.0), CaracallaRoebelConfig(**{**TINY, **levers}),
                            betas=[0.01, 0.1], progress=False)
    assert result.audio.shape == (2, 4000) and torch.isfinite(result.audio).all()
    assert torch.isfinite(torch.tensor([h["total"] for h in result.history]).float()).all() if result.history else True


def test_content_term_none_ignores_alpha():
    cfg = CaracallaRoebelConfig(**TINY, content_term="none", alpha=5.0)
    problem = CR.build(_tone(330.0), _tone(220.0), cfg)
    out = problem.loss_fn(problem.init)
    assert float(out["content"][0]) == 0.0
    assert float(out["total"][0]) == pytest.approx(cfg.beta * float(out["style"][0]), rel=1e-6)


def test_selection_picks_the_maps_of_each_term():
    cfg = CaracallaRoebelConfig(kernel_sizes=(3, 5, 7), content_kernel_sizes=(3,), style_kernel_sizes=(5, 7), layers=2,
                                content_depths=(1,))
    net_sizes, content_index, style_index = CR.selection(cfg)
    assert net_sizes == [3, 5, 7] and content_index == [0] and style_index == [1, 2, 4, 5]
    net_sizes, content_index, style_index = CR.selection(cfg.replace(content_term="chroma"))
    assert net_sizes == [5, 7] and content_index == [] and style_index == [0, 1, 2, 3]
    assert CR.is_report_path(CaracallaRoebelConfig())
    assert CR.is_report_path(CaracallaRoebelConfig(content_kernel_sizes=CaracallaRoebelConfig().kernel_sizes))
    assert not CR.is_report_path(CaracallaRoebelConfig(statistic="time-frequency"))


@pytest.mark.parametrize("bad", [
    dict(representation="ri"),  # spectrogram domain
    dict(content_kernel_sizes=(9,)),
    dict(style_depths=(2,)),
    dict(content_term="none", init="noise"),
    dict(statistic="gram"),
])
def test_bad_levers_are_refused(bad):
    with pytest.raises(ConfigError):
        CaracallaRoebelConfig(**bad).validate()


def test_lever_flags_reach_the_config():
    from labutils.__main__ import _config_from, build_parser

    args = build_parser().parse_args(["transfer", "--content", "a", "--style", "b", "--statistic", "time-frequency",
                                      "--content-kernel-sizes", "3,5", "--representation", "mel", "--n-bins", "64"])
    cfg, _ = _config_from(args)
    assert (cfg.statistic, cfg.content_kernel_sizes, cfg.representation, cfg.n_bins) == ("time-frequency", (3, 5), "mel", 64)
    assert CaracallaRoebelConfig().style_kernel_sizes == ()


def test_filterbanks_have_no_empty_band():
    for fb in (S.log_frequency_filterbank(sample_rate=SR, n_fft=256, n_bins=48),
               S.mel_filterbank(sample_rate=44100, n_fft=512, n_bins=64)):
        assert (fb.sum(1) > 0).all()
    assert S.chroma_filterbank(sample_rate=SR, n_fft=256).shape == (12, 129)
