"""Attempt 4 (ddsp): the synthesiser, the analysis, the one-shot fit, the transfer and the CLI."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from conftest import cli
from labutils import dsp, transfer
from labutils.config import DDSPConfig
from labutils.errors import ConfigError

RATE = 16000
RECIPE = torch.tensor([0.45, 0.25, 0.15, 0.1, 0.05])  # relative amplitudes of harmonics 1..5


def tone(f0: float | np.ndarray, recipe: torch.Tensor = RECIPE, *, seconds: float = 1.0, hop: int = 160,
         amplitude: float = 0.5) -> torch.Tensor:
    """A harmonic tone made by the library's synthesiser: ``(N,)``."""
    n = int(seconds * RATE)
    t = n // hop + 1
    f0 = torch.as_tensor(np.broadcast_to(np.asarray(f0, dtype=np.float32), (t,)).copy())[None]
    amps = (amplitude * recipe / recipe.sum()).expand(1, t, -1)
    return dsp.harmonic_synth(f0, amps, sample_rate=RATE, hop_length=hop, n_samples=n)[0]


def harmonic_levels(audio: torch.Tensor, f0: float, k: int) -> torch.Tensor:
    """Magnitude at harmonics 1..k of a 1 s clip (1 Hz bins), normalised to sum 1."""
    spec = torch.fft.rfft(audio[:RATE] * torch.hann_window(RATE)).abs()
    levels = torch.stack([spec[round(f0 * i * 0.99):round(f0 * i * 1.01) + 1].max() for i in range(1, k + 1)])
    return levels / levels.sum()


def small_cfg(**kw) -> DDSPConfig:
    base = dict(sample_rate=RATE, duration=1.0, n_fft=512, hop_length=128, harmonics=16, noise_bands=17,
                hidden=32, layers=2, reverb=False, fft_sizes=(1024, 512, 256, 128), steps=20, lr=0.01,
                device="cpu")
    return DDSPConfig(**{**base, **kw})


# ----------------------------------------------------------------------------------------------
# Synthesiser
# ----------------------------------------------------------------------------------------------
def test_harmonics_land_on_their_fft_bins():
    x = tone(250.0)
    spec = torch.fft.rfft(x).abs()  # 1 s at 16 kHz: 1 Hz bins, 250 whole cycles
    peaks = set(torch.topk(spec, 5).indices.tolist())
    assert peaks == {250, 500, 750, 1000, 1250}
    levels = spec[[250, 500, 750, 1000, 1250]]
    assert torch.allclose(levels / levels.sum(), RECIPE / RECIPE.sum(), atol=1e-3)
    assert spec.sum() - levels.sum() < 1e-3 * spec.sum()  # nothing between the harmonics


def test_no_energy_above_nyquist():
    # f0 = 3 kHz at 16 kHz: only harmonics 1 and 2 (3 and 6 kHz) lie below 8 kHz; harmonics 3..5
    # would alias to 7, 4 and 1 kHz if they were not silenced
    x = tone(3000.0)
    spec = torch.fft.rfft(x).abs() ** 2
    kept = spec[2995:3006].sum() + spec[5995:6006].sum()
    assert (spec.sum() - kept) / spec.sum() < 1e-6
    # a glide across Nyquist: the basis is exactly 0 wherever k * f0 >= Nyquist
    f0 = torch.linspace(1000, 5000, 101)[None]
    basis = dsp.harmonic_basis(f0, n_harmonics=8, sample_rate=RATE, hop_length=160, n_samples=16000)
    f0_n = dsp.upsample(f0[..., None], hop_length=160, n_samples=16000)[0, :, 0]
    flat = basis[0].permute(1, 0, 2).reshape(8, -1)[:, :16000]
    for k in range(1, 9):
        assert flat[k - 1][k * f0_n >= RATE / 2].abs().max() == 0 if (k * f0_n >= RATE / 2).any() else True


def test_basis_matches_one_sine_per_harmonic():
    f0 = torch.full((1, 101), 220.0)
    basis = dsp.harmonic_basis(f0, n_harmonics=3, sample_rate=RATE, hop_length=160, n_samples=16000)
    flat = basis[0].permute(1, 0, 2).reshape(3, -1)[:, :16000]
    n = torch.arange(16000, dtype=torch.float64)
    for k in (1, 2, 3):
        ref = torch.sin(2 * math.pi * k * 220.0 * n / RATE).float()
        assert torch.allclose(flat[k - 1], ref, atol=1e-4)


def test_filtered_noise_follows_its_bands():
    mags = torch.zeros(1, 101, 33)
    mags[..., :8] = 1.0  # 0 to about 1.75 kHz of 8 kHz
    y = dsp.filtered_noise(mags, hop_length=160, n_samples=16000, seed=3)
    spec = torch.fft.rfft(y[0]).abs() ** 2
    assert y.shape == (1, 16000) and torch.isfinite(y).all()
    assert spec[:2500].sum() / spec.sum() > 0.98


def test_loudness_and_pitch_of_a_tone():
    x = tone(220.0)
    a = dsp.analyse(x, sample_rate=RATE, hop_length=160)
    assert a.f0.shape == a.loudness.shape == (101,)
    cents = 1200 * torch.log2(a.f0[a.voiced] / 220.0)
    assert a.voiced.float().mean() > 0.9 and cents.abs().max() < 15
    assert a.monophonic
    quiet = dsp.a_weighted_loudness(0.1 * x, sample_rate=RATE, hop_length=160)
    assert torch.allclose(a.loudness[5:-5] - quiet[5:-5], torch.full((91,), 20.0), atol=0.1)


def test_loudness_matching_and_octave_shift():
    c = dsp.Analysis(f0=torch.full((10,), 110.0), loudness=torch.linspace(-60, -20, 10), voiced=torch.ones(10, dtype=torch.bool),
                     voiced_prob=torch.ones(10), monophony=1.0, monophonic=True, frame_rate=100)
    s = dsp.Analysis(f0=torch.full((10,), 450.0), loudness=torch.linspace(-40, -10, 10), voiced=torch.ones(10, dtype=torch.bool),
                     voiced_prob=torch.ones(10), monophony=1.0, monophonic=True, frame_rate=100)
    assert dsp.octave_shift(c, s) == 2
    moved = dsp.match_loudness(c.loudness, s.loudness)
    assert moved.max() <= s.loudness.max() + 1e-6 and moved.mean() > c.loudness.mean()
    assert torch.equal(dsp.match_loudness(c.loudness, s.loudness, auto=False, shift_db=3.0), c.loudness + 3.0)


def _notes(onsets_s: list[float], *, seconds: float, decay_db_per_s: float, f0s: list[float]) -> torch.Tensor:
    """Harmonic notes starting at ``onsets_s``, each decaying at ``decay_db_per_s`` until the next."""
    n = int(seconds * RATE)
    out = torch.zeros(n)
    bounds = [int(o * RATE) for o in onsets_s] + [n]
    for (a, b), f in zip(zip(bounds[:-1], bounds[1:]), f0s):
        t = torch.arange(b - a) / RATE
        note = tone(f, seconds=(b - a) / RATE + 0.02)[: b - a]
        out[a:b] = note * 10 ** (-decay_db_per_s * t / 20)
    return out


ONSETS_S = [0.0, 0.4, 0.8, 1.2]


def test_note_onsets_and_the_style_envelope():
    # decaying notes (30 dB/s) at known onsets: onsets found within 30 ms; the envelope falls at
    # 0.3 dB per 10 ms frame after its attack (bound: 25 %); held notes give a flat envelope
    x = _notes(ONSETS_S, seconds=1.6, decay_db_per_s=30.0, f0s=[262.0, 330.0, 392.0, 294.0])
    a = dsp.analyse(x, sample_rate=RATE, hop_length=160)
    found = dsp.note_onsets(a) / a.frame_rate
    assert len(found) == len(ONSETS_S), found
    assert np.abs(found - np.asarray(ONSETS_S)).max() <= 0.03, found
    env = dsp.note_envelope(a)
    slope = (env[30] - env[10]) / 20
    assert slope == pytest.approx(-0.3, rel=0.25), slope
    held = dsp.analyse(_notes(ONSETS_S, seconds=1.6, decay_db_per_s=0.0, f0s=[262.0, 330.0, 392.0, 294.0]),
                       sample_rate=RATE, hop_length=160)
    flat = dsp.note_envelope(held)
    assert abs(flat[30] - flat[10]) < 1.0, flat[:40]


def test_restyle_articulation_gives_held_notes_the_style_decay():
    # content: held notes (legato, one onset per pitch change); style: decaying notes. Each content
    # note keeps its onset and peak and then decays as the style's do; the content itself is flat.
    content = dsp.analyse(_notes(ONSETS_S, seconds=1.6, decay_db_per_s=0.0, f0s=[262.0, 330.0, 392.0, 294.0]),
                          sample_rate=RATE, hop_length=160)
    style = dsp.analyse(_notes([0.0, 0.5, 1.0], seconds=1.5, decay_db_per_s=40.0, f0s=[440.0, 494.0, 523.0]),
                        sample_rate=RATE, hop_length=160)
    out = dsp.restyle_articulation(content, style).numpy()
    loud = content.loudness.numpy()
    for on in (0.4, 0.8):
        t = round(on * 100)
        assert abs(out[t + 8] - loud[t + 8]) < 3.0  # the peak level is the content's
        assert out[t + 35] - out[t + 10] == pytest.approx(-10.0, abs=3.0)  # 40 dB/s over 0.25 s
        assert abs(loud[t + 35] - loud[t + 10]) < 1.0
    same = dsp.restyle_articulation(content, content).numpy()
    assert np.abs(same[10:150] - loud[10:150]).max() < 3.0  # its own shape changes little


def test_noise_bands_stay_under_their_ceiling():
    dec = dsp.Decoder(n_harmonics=8, n_noise=9, hidden=16, layers=1, noise_max=0.05)
    with torch.no_grad():
        dec.head.bias.fill_(20.0)  # push every output to its top
        amp, dist, noise = dec(torch.full((1, 5), 220.0), torch.full((1, 5), -20.0))
    assert noise.max() <= 0.05 + 1e-6 and noise.max() > 0.049
    assert amp.max() > 1.9  # the ceiling is the noise's only


# ----------------------------------------------------------------------------------------------
# The fit, the transfer
# ----------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_fit_lowers_the_loss_and_recovers_the_recipe():
    # a constant-pitch tone with a known harmonic recipe as the style; the fitted decoder renders
    # the same pitch and loudness back. Bound: every harmonic's share of the first five within
    # 0.05 of the recipe's (shares 0.45 .. 0.05; measured 0.02 after 300 steps), and the loss down
    # by at least a factor 3.
    style = tone(250.0)
    cfg = small_cfg(steps=300, octave_shift="0", auto_loudness=False)
    result = transfer.solve("ddsp", style, style, cfg, progress=False)
    first, last = result.history[0]["style"][0], result.history[-1]["style"][0]
    assert last < first / 3
    got = harmonic_levels(result.audio[0], 250.0, 5)
    assert (got - RECIPE / RECIPE.sum()).abs().max() < 0.05, got


def _melody(notes: list[float], *, seconds: float = 1.5) -> torch.Tensor:
    hop = 160
    t = int(seconds * RATE) // hop + 1
    f0 = np.repeat(np.asarray(notes, dtype=np.float32), -(-t // len(notes)))[:t]
    return tone(f0, torch.tensor([0.6, 0.2, 0.1, 0.1]), seconds=seconds)


@pytest.mark.parametrize("octave", ["0", "auto"])
def test_transfer_keeps_the_content_pitch(octave):
    content = _melody([196.0, 247.0, 294.0, 262.0])
    style = tone(np.linspace(700, 900, 101).astype(np.float32), torch.tensor([0.2, 0.5, 0.2, 0.1]))
    cfg = small_cfg(steps=30, duration=1.5, octave_shift=octave)
    result = transfer.solve("ddsp", content, style, cfg, progress=False)
    shift = result.info["ddsp"]["octave_shift"]
    assert shift == (0 if octave == "0" else 2)
    f0_c, v_c, _ = dsp.pitch(content, sample_rate=RATE, hop_length=160)
    f0_r, v_r, _ = dsp.pitch(result.audio[0], sample_rate=RATE, hop_length=160)
    both = v_c & v_r
    assert both.float().mean() > 0.8
    cents = 1200 * torch.log2(f0_r[both] / (f0_c[both] * 2.0 ** shift))
    assert (cents.abs() <= 50).float().mean() > 0.95, cents.abs().max()


def test_silent_and_unvoiced_style_frames_do_not_break_the_fit():
    style = tone(330.0)
    style[4000:9000] = 0.0  # silence
    style[12000:] = 0.3 * torch.randn(4000, generator=torch.Generator().manual_seed(0))  # noise, unvoiced
    cfg = small_cfg(steps=15)
    result = transfer.solve("ddsp", tone(220.0), style, cfg, progress=False)
    assert torch.isfinite(result.audio).all() and not result.stopped
    assert all(math.isfinite(r["total"][0]) for r in result.history)


def test_polyphonic_content_gets_a_note_and_a_result():
    chord = tone(220.0) + tone(277.0) + tone(330.0) + tone(415.0)
    result = transfer.solve("ddsp", chord, tone(440.0), small_cfg(steps=3), progress=False)
    assert "predominant pitch" in result.weights.get("note", "")
    assert torch.isfinite(result.audio).all()


def test_window_fit_and_reverb_run(tmp_path):
    style = tone(330.0, seconds=2.0)
    cfg = small_cfg(steps=4, duration=2.0, reverb=True, reverb_seconds=0.1, crop_seconds=0.5)
    result = transfer.solve("ddsp", tone(220.0), style, cfg, progress=False)
    assert result.audio.shape == (1, RATE) and torch.isfinite(result.audio).all()


def test_config_refuses_bad_values():
    with pytest.raises(ConfigError):
        DDSPConfig(octave_shift="5").validate()
    with pytest.raises(ConfigError):
        DDSPConfig(fmin=500.0, fmax=400.0).validate()
    with pytest.raises(ConfigError):
        DDSPConfig(optimizer="lbfgs").validate()


# ----------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------
def test_cli_transfer_ddsp_writes_a_run_folder(tmp_path: Path):
    for name, sound in (("c.wav", _melody([262.0, 330.0], seconds=1.0)), ("s.wav", tone(440.0))):
        sf.write(str(tmp_path / name), sound.numpy(), RATE)
    out = tmp_path / "outputs"
    proc = cli("transfer", "--method", "ddsp", "--content", str(tmp_path / "c.wav"), "--style",
               str(tmp_path / "s.wav"), "--duration", "1", "--sample-rate", "16000", "--steps", "5",
               "--harmonics", "16", "--noise-bands", "17", "--hidden", "32", "--no-reverb",
               "--fft-sizes", "1024,256", "--octave-shift", "0", "--out", str(out), "--quiet")
    assert proc.returncode == 0, proc.stderr
    folder = Path(proc.stdout.strip().splitlines()[-1])
    assert {"result.wav", "config.json", "losses.csv", "spectrograms.png"} <= {p.name for p in folder.iterdir()}
    record = json.loads((folder / "config.json").read_text())
    assert record["method"] == "ddsp" and record["config"]["harmonics"] == 16 and record["steps_done"] == 5
    assert record["compute"]["ddsp"]["octave_shift"] == 0
    bad = cli("transfer", "--method", "ddsp", "--content", str(tmp_path / "c.wav"), "--style",
              str(tmp_path / "s.wav"), "--octave-shift", "7", "--out", str(out))
    assert bad.returncode == 2 and "octave_shift" in bad.stderr
