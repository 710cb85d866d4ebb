"""Attempt 6, audio mosaicing: the NMF updates, the three constraints, the resynthesis, the CLI."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import cli

from labutils import losses as L
from labutils import spectral as S
from labutils import transfer
from labutils.attempts import mosaic as M
from labutils.config import MosaicConfig
from labutils.errors import ConfigError, LabError

def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_kl_divergence_is_zero_at_the_target_and_matches_a_hand_computed_case():
    v = torch.tensor([[1.0, 2.0], [0.0, 4.0]])
    assert float(L.kl_divergence(v, v)) == pytest.approx(0.0, abs=1e-6)
    lam = torch.tensor([[2.0, 2.0], [1.0, 2.0]])
    # 1 log(1/2) - 1 + 2  +  0  +  (0 - 0 + 1)  +  4 log 2 - 4 + 2
    expected = (torch.log(torch.tensor(0.5)) + 1) + 0 + 1 + (4 * torch.log(torch.tensor(2.0)) - 2)
    assert float(L.kl_divergence(v, lam)) == pytest.approx(float(expected), rel=1e-6)


def test_multiplicative_updates_never_increase_the_kl_divergence():
    g = _gen(1)
    w = torch.rand(40, 25, generator=g)
    v = torch.rand(40, 8, generator=g) @ torch.rand(8, 30, generator=g) + 0.01  # (F, T), not exactly W H
    h = torch.rand(25, 30, generator=g)
    values = []
    for _ in range(60):
        h, kl = L.nmf_activation_update(v, w, h)
        values.append(float(kl))
    values.append(float(L.kl_divergence(v, w @ h)))
    steps = torch.tensor(values)
    assert (steps[1:] <= steps[:-1] * (1 + 1e-6)).all(), values
    assert values[-1] < 0.5 * values[0]  # and it does descend


def test_the_reported_kl_is_that_of_the_activations_given():
    g = _gen(2)
    w, v, h = torch.rand(12, 5, generator=g), torch.rand(12, 7, generator=g), torch.rand(3, 5, 7, generator=g)
    _, kl = L.nmf_activation_update(v, w, h)
    assert kl.shape == (3,)
    assert torch.allclose(kl, L.kl_divergence(v, w @ h), rtol=1e-5)


def test_repetition_keeps_only_each_rows_local_maximum():
    h = torch.tensor([[1.0, 3.0, 2.0, 0.5, 0.4, 5.0, 0.1, 0.2]])
    out = L.repetition_constraint(h, width=1, factor=0.25)
    # maxima within one frame either side: 3 (index 1), 5 (index 5), 0.2 (index 7)
    expected = torch.tensor([[0.25, 3.0, 0.5, 0.125, 0.1, 5.0, 0.025, 0.2]])
    assert torch.allclose(out, expected)
    assert torch.equal(L.repetition_constraint(h, width=0, factor=0.0), h)


def test_polyphony_keeps_the_strongest_templates_of_each_frame():
    h = torch.tensor([[4.0, 0.1], [1.0, 0.3], [3.0, 0.2], [2.0, 0.4]])  # (K=4, T=2)
    out = L.polyphony_constraint(h, keep=2, factor=0.0)
    assert torch.equal(out, torch.tensor([[4.0, 0.0], [0.0, 0.3], [3.0, 0.0], [0.0, 0.4]]))
    assert ((out > 0).sum(0) == 2).all()
    assert torch.equal(L.polyphony_constraint(h, keep=4, factor=0.0), h)


def test_continuity_spreads_an_activation_along_its_diagonal_within_its_segment():
    h = torch.zeros(6, 6)
    h[2, 3] = 1.0  # template 2 at frame 3
    out = L.continuity_filter(h, length=2)
    on = {(int(k), int(m)) for k, m in torch.nonzero(out)}
    assert on == {(0, 1), (1, 2), (2, 3), (3, 4), (4, 5)}
    assert torch.allclose(out[out > 0], torch.ones(5))
    # templates 0-2 and 3-5 are different copies of the style: the diagonal stops at the border
    out = L.continuity_filter(h, length=2, segments=torch.tensor([0, 0, 0, 1, 1, 1]))
    on = {(int(k), int(m)) for k, m in torch.nonzero(out)}
    assert on == {(0, 1), (1, 2), (2, 3)}
    # a run along the diagonal is strengthened most in its middle
    run = torch.eye(6)
    assert torch.equal(L.continuity_filter(run, length=1).diagonal(), torch.tensor([2.0, 3, 3, 3, 3, 2]))


def test_suppression_falls_from_nearly_one_to_one_minus_strength():
    assert L.suppression(1, 10) == pytest.approx(0.9)
    assert L.suppression(10, 10) == 0.0
    assert L.suppression(10, 10, strength=0.5) == 0.5


def test_with_the_contents_own_frames_as_templates_the_mosaic_rebuilds_the_content():
    sr, n_fft, hop = 8000, 256, 64
    content, _, _ = transfer.load_pair("prelude_piano", "drums_loop",
                                       MosaicConfig(sample_rate=sr, duration=1.0, n_fft=n_fft, hop_length=hop))
    tpl = M.style_templates(content, sample_rate=sr, n_fft=n_fft, hop_length=hop, pitch_shifts=(0,), floor_db=-200)
    target = S.magnitude(content, n_fft=n_fft, hop_length=hop)
    h = M.initial_activations(tpl.magnitude, target, init="content", generator=_gen())
    cfg = MosaicConfig(steps=40, repetition=3, polyphony=10, continuity=3)  # Let it Bee's constraints
    for step in range(1, cfg.steps + 1):
        h, _ = L.nmf_activation_update(target, tpl.magnitude, M.constrain(h, step, cfg, segments=tpl.segments))
    model = tpl.magnitude @ h
    assert float(S.spectral_convergence(target, model)) < 0.1
    # most of each frame's activation sits on the frame itself (the diagonal of H)
    assert float((h.diagonal() / h.sum(0)).mean()) > 0.8
    audio = S.mosaic_resynthesis(tpl.frames, h, n_fft=n_fft, hop_length=hop, length=content.numel())
    back = S.magnitude(audio, n_fft=n_fft, hop_length=hop)
    assert float(S.spectral_convergence(target, back)) < 0.3
    # the identity activations (each frame plays itself) give back the clip to rounding
    exact = S.mosaic_resynthesis(tpl.frames, torch.diag(target.sum(0)), n_fft=n_fft, hop_length=hop,
                                 length=content.numel())
    assert torch.allclose(exact, content, atol=1e-4)


def test_phase_iterations_make_the_spectrogram_more_consistent():
    g = _gen(3)
    sr, n_fft, hop = 8000, 256, 64
    x = torch.randn(4000, generator=g)
    spec = S.stft(x, n_fft=n_fft, hop_length=hop)
    target = spec.abs()
    start = target * torch.exp(1j * (torch.angle(spec) + 0.8 * torch.randn(spec.shape, generator=g)))
    errs = []
    for n in (0, 8):
        y = S.phase_iterations(start, target, n_fft=n_fft, hop_length=hop, length=x.numel(), n_iter=n)
        errs.append(float(S.spectral_convergence(target, S.magnitude(y, n_fft=n_fft, hop_length=hop))))
    assert errs[1] < 0.7 * errs[0], errs


def test_pitch_shifted_copy_moves_a_sine_by_the_semitones():
    sr = 8000
    t = torch.arange(sr) / sr
    sine = torch.sin(2 * torch.pi * 440 * t)
    up = M.pitch_shifted(sine, 3, sample_rate=sr)
    spec = torch.fft.rfft(up * torch.hann_window(up.numel(), periodic=False))
    peak = float(spec.abs().argmax()) * sr / up.numel()
    assert peak == pytest.approx(440 * 2 ** 0.25, rel=0.01)
    assert up.numel() == pytest.approx(sr / 2 ** 0.25, rel=0.01)


def test_solve_runs_the_updates_through_the_loop_and_the_kl_falls():
    # constraints off: the loop's losses are then those of plain multiplicative updates, which never rise
    cfg = MosaicConfig(steps=12, sample_rate=8000, duration=1.0, n_fft=256, hop_length=64, pitch_shifts=(-1, 0, 1),
                       griffin_lim_iters=2, repetition=0, polyphony=0, continuity=0)
    seen = []
    result = transfer.transfer("mosaic", "prelude_piano", "ode_violin", cfg, progress=False, betas=[0.1, 1.0],
                               callback=lambda info, spec: seen.append((info.step, tuple(spec.shape))), every=4)
    totals = [row["total"][0] for row in result.history]
    assert result.steps_done == 12 and len(totals) == 12
    assert all(b <= a * (1 + 1e-6) for a, b in zip(totals, totals[1:])) and totals[-1] < 0.95 * totals[0], totals
    assert result.audio.shape == (2, 8000) and torch.isfinite(result.audio).all()
    assert torch.equal(result.audio[0], result.audio[1])  # beta is unused
    assert [s for s, _ in seen] == [4, 8, 12] and seen[0][1] == (2, 129, 126)
    info = result.info["mosaic"]
    assert info["pitch_shifts"] == [-1, 0, 1] and sum(info["templates_per_shift"]) == info["templates"]


def test_bad_settings_say_what_to_do():
    with pytest.raises(ConfigError, match="pitch-shifts"):
        MosaicConfig(pitch_shifts=(0, 0)).validate()
    with pytest.raises(ConfigError, match="pitch-shifts"):
        MosaicConfig(pitch_shifts=("a",))
    with pytest.raises(LabError, match="silent"):
        M.build(torch.randn(4000), torch.zeros(4000),
                MosaicConfig(sample_rate=8000, n_fft=256, hop_length=64, steps=1, device="cpu"))


def test_cli_transfer_writes_a_run_folder(tmp_path):
    done = cli("transfer", "--method", "mosaic", "--content", "prelude_piano", "--style", "drums_loop",
               "--duration", "1", "--steps", "5", "--out", str(tmp_path), "--quiet")
    assert done.returncode == 0, done.stderr
    folder = Path(done.stdout.strip().splitlines()[-1])
    assert (folder / "result.wav").exists() and (folder / "config.json").exists()
    import json

    record = json.loads((folder / "config.json").read_text())
    assert record["config"]["method"] == "mosaic" and record["config"]["pitch_shifts"] == [-2, -1, 0, 1, 2]
    lines = (folder / "losses.csv").read_text().strip().splitlines()
    assert len(lines) == 1 + 5


def test_panel_runs_the_mosaic_and_saves_a_run(tmp_path):
    from labutils.widgets import TransferPanel

    cfg = MosaicConfig(steps=4, sample_rate=8000, duration=1.0, n_fft=256, hop_length=64, pitch_shifts=(0,),
                       device="cpu")
    panel = TransferPanel("mosaic", config=cfg, content="moonlight_piano", style="pad_drone", out_dir=tmp_path)
    panel.run()
    result = panel.wait(timeout=120)
    assert result.steps_done == 4 and not result.stopped
    assert panel.run_folder is not None and (panel.run_folder / "result.wav").exists()
    assert panel.loss_image.value


def test_bands_sum_bins_and_keep_every_bin_once():
    pool = S.band_pooling(sample_rate=22050, n_fft=2048, bands_per_octave=36)
    assert torch.equal(pool.sum(0), torch.ones(1025))  # each bin in exactly one band
    widths = pool.sum(1)
    assert widths[0] == 1 and widths[-1] > 10  # single bins at the bottom, wide bands at the top
    # no band wider than 1/36 octave where it is more than one bin wide
    lo = pool.argmax(1).float()
    wide = widths > 1
    assert ((lo[wide] + widths[wide]) / lo[wide] <= 2 ** (1 / 36) + 1e-6).all()
    assert torch.equal(S.band_pooling(sample_rate=22050, n_fft=2048, bands_per_octave=0), torch.eye(1025))
