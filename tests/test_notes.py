"""The note layer: notes against the rendered set's MIDI score (mir_eval), pitch shifts, matching."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from labutils import audio as A
from labutils import notes as N
from labutils.errors import ConfigError

RATE = 22050


def _measured_hz(x: torch.Tensor, rate: int) -> float:
    """Frequency of a sine by the zero crossings of its middle half (sub-sample interpolated)."""
    y = x.double().numpy()
    y = y[y.size // 4: 3 * y.size // 4]
    s = np.signbit(y)
    idx = np.nonzero(~s[1:] & s[:-1])[0]  # upward crossings
    frac = y[idx] / (y[idx] - y[idx + 1])
    t = idx + frac
    return float((len(t) - 1) / ((t[-1] - t[0]) / rate))


def _tones(pitches: list[float], *, seconds: float = 0.4, rate: int = RATE, gap: float = 0.05) -> torch.Tensor:
    """Plucked harmonic tones one after another (sharp attack, exponential decay, a 20 ms release,
    a short gap)."""
    parts = []
    for p in pitches:
        f = 440.0 * 2 ** ((p - 69) / 12)
        t = np.arange(int(seconds * rate)) / rate
        env = np.exp(-t * 4.0) * np.minimum(1.0, t / 0.003) * np.clip((seconds - t) / 0.02, 0.0, 1.0)
        x = sum(0.6 / k * np.sin(2 * math.pi * k * f * t) for k in range(1, 5)) * env
        parts += [x, np.zeros(int(gap * rate))]
    return torch.as_tensor(np.concatenate(parts) * 0.5, dtype=torch.float32)


def test_shift_by_resampling_moves_a_sine_and_changes_its_length():
    t = torch.arange(RATE) / RATE
    x = torch.sin(2 * math.pi * 440.0 * t)
    for semitones in (7.0, -5.0, 12.0):
        y = N.shift_pitch(x, semitones, sample_rate=RATE)
        want = 440.0 * 2 ** (semitones / 12)
        assert abs(_measured_hz(y, RATE) / want - 1) < 1e-3
        assert abs(y.numel() - RATE / 2 ** (semitones / 12)) <= 2  # a sampler's shift changes the length
    y = N.shift_pitch(x, 3.0, sample_rate=RATE, method="phase-vocoder")
    assert y.numel() == RATE and abs(_measured_hz(y, RATE) / (440 * 2 ** 0.25) - 1) < 5e-3
    with pytest.raises(ConfigError, match="resample"):
        N.shift_pitch(x, 1.0, sample_rate=RATE, method="granular")


def test_find_notes_on_synthetic_tones():
    pitches = [60, 64, 67, 72, 67]
    x = _tones(pitches)
    found = N.find_notes(x, sample_rate=RATE)
    assert [round(n.pitch) for n in found.notes] == pitches
    onsets = np.array([n.onset for n in found.notes])
    assert np.abs(onsets - np.arange(5) * 0.45).max() < 0.03
    assert found.monophonic and found.intervals().shape == (5, 2) and found.pitches_hz().shape == (5,)
    for n in found.notes:
        assert n.start <= round(n.onset * RATE) <= n.end and n.end <= x.numel() and n.duration > 0
    assert N.find_notes(x, sample_rate=RATE) is found  # memoised


def _notes(pitches, durations, louds) -> N.Notes:
    notes = [N.Note(onset=float(i), offset=float(i) + d, pitch=float(p), f0=np.zeros(1), peak_db=float(l), start=0,
                    end=1) for i, (p, d, l) in enumerate(zip(pitches, durations, louds))]
    z = np.zeros(1)
    return N.Notes(notes=notes, sample_rate=RATE, hop_length=220, frame_rate=RATE / 220, f0=z, voiced=z > 0,
                   loudness=z, periodicity=z, monophonic=True, monophony=1.0, pitch_method="crepe", n_samples=1)


def test_match_notes_nearest_pitch_then_duration_then_loudness():
    style = _notes([60, 62, 62, 62, 70, math.nan], [0.5, 0.2, 0.6, 0.6, 1.0, 2.0], [-10, -5, -20, -12, -10, 0])
    content = _notes([61.8, 69, 40, math.nan], [0.4, 0.3, 0.3, 0.3], [-10, -10, -10, -10])
    got = N.match_notes(content, style)
    # 61.8: the 62s tie; of those long enough (0.6 s), the louder (-12 dB); 69 -> 70; far below -> the lowest;
    # no pitch -> nearest to the style's median; the unpitched style note is never used
    assert got[0] == 3 and got[1] == 4 and got[2] == 0 and got[3] in (1, 2, 3)
    assert N.match_notes(content, _notes([math.nan], [1.0], [0.0])) == [-1] * 4


def _benchmark_clips():
    try:
        return A.benchmark_clips()
    except A.AudioError as exc:
        pytest.skip(f"rendered benchmark set missing ({exc}); `make benchmark-data` renders it")


@pytest.mark.parametrize("name", ["ode_piano", "greensleeves_guitar", "furelise_harpsichord", "nachtmusik_marimba"])
def test_notes_against_the_midi_score(name):
    clip = next((c for c in _benchmark_clips() if c["name"] == name), None)
    if clip is None or clip.get("notes") is None:
        pytest.skip(f"{name} or its MIDI notes are not in the rendered set; run `make benchmark-data` again")
    result = N.evaluate_notes([clip], progress=False)
    row = result["clips"][0]
    assert row["onset_f1"] >= 0.9 and row["pitch_accuracy"] >= 0.9, row


def test_backtrack_moves_a_slow_reattack_to_the_start_of_its_dip_and_leaves_a_rest_alone():
    fps = 100.0
    held = np.full(200, -10.0)
    # a held note, then at frame 100 the next note: the level falls 9 dB over 40 ms and climbs back;
    # the flux fires on the climb, at frame 108
    loud = held.copy()
    loud[100:104] = [-12.0, -15.0, -17.0, -19.0]
    loud[104:108] = [-17.0, -15.0, -13.0, -11.0]
    assert N._backtracked([0, 108], loud=loud, fps=fps, seconds=0.06, foot_db=1.5, min_frames=6) == [0, 100 - 1]
    # a rest: the note ends in silence at frame 100 and the next starts at 108 -> stays at 108
    rest = held.copy()
    rest[100:108] = -90.0
    assert N._backtracked([0, 108], loud=rest, fps=fps, seconds=0.06, foot_db=1.5, min_frames=6) == [0, 108]
    # a decaying note (1 dB per frame) running into the next attack: nothing held before, nothing moves
    decay = -10.0 - np.arange(200) * 1.0 % 100
    assert N._backtracked([0, 100], loud=decay, fps=fps, seconds=0.06, foot_db=1.5, min_frames=6) == [0, 100]
    # the flux fires twice around one dip: the second onset is the same note
    assert N._backtracked([0, 104, 108], loud=loud, fps=fps, seconds=0.06, foot_db=1.5, min_frames=6) == [0, 99]


def test_pitch_split_finds_a_legato_note_and_leaves_a_vibrato_alone():
    fps = 100.0
    midi = np.r_[np.full(40, 60.0), np.linspace(60.0, 62.0, 4), np.full(56, 62.0)]
    f0 = 440.0 * 2 ** ((midi - 69) / 12)
    voiced = np.ones(midi.size, bool)
    out = N._pitch_splits([0], f0=f0, voiced=voiced, fps=fps, semitones=0.8, min_frames=6)
    assert len(out) == 2 and out[0] == 0 and 39 <= out[1] <= 42
    vibrato = 60.0 + 0.4 * np.sin(2 * np.pi * 6.0 * np.arange(100) / fps)
    f0v = 440.0 * 2 ** ((vibrato - 69) / 12)
    assert N._pitch_splits([0], f0=f0v, voiced=voiced, fps=fps, semitones=0.8, min_frames=6) == [0]
    # unvoiced frames never split a note
    assert N._pitch_splits([0], f0=f0, voiced=np.r_[np.ones(40, bool), np.zeros(60, bool)], fps=fps,
                           semitones=0.8, min_frames=6) == [0]


def test_harmonic_part_keeps_one_voice_of_a_chord():
    rate, hop = 16000, 160
    t = np.arange(rate) / rate
    low = sum(np.sin(2 * np.pi * k * 200.0 * t) / k for k in range(1, 4))
    other = sum(np.sin(2 * np.pi * k * 290.0 * t) / k for k in range(1, 4))
    f0 = np.full(rate // hop + 1, 200.0)
    y = N.harmonic_part(torch.as_tensor(low + other, dtype=torch.float32), f0, sample_rate=rate, hop_length=hop).numpy()
    mid = slice(rate // 4, 3 * rate // 4)
    spec = np.abs(np.fft.rfft(y[mid] * np.hanning(rate // 2)))
    freqs = np.fft.rfftfreq(rate // 2, 1 / rate)
    at = lambda f: spec[np.argmin(np.abs(freqs - f))]
    assert at(200) > 0.9 * np.abs(np.fft.rfft(low[mid] * np.hanning(rate // 2)))[np.argmin(np.abs(freqs - 200))]
    assert at(290) < 0.01 * at(200) and at(870) < 0.01 * at(600)  # (580 lies a partial-width from 600)
    # the floor keeps the rest at that gain
    z = N.harmonic_part(torch.as_tensor(other, dtype=torch.float32), f0, sample_rate=rate, hop_length=hop,
                        floor=0.3).numpy()
    assert 0.25 < np.std(z[mid]) / np.std(other[mid]) < 0.35


def _formant_tone(f0: float, *, seconds: float = 1.0, centre: float = 1500.0, rate: int = RATE) -> torch.Tensor:
    """A steady harmonic tone whose partials follow one resonance at ``centre`` Hz (a body's formant)."""
    t = np.arange(int(seconds * rate)) / rate
    x = np.zeros_like(t)
    for k in range(1, int(rate / 2 / f0)):
        x += np.exp(-0.5 * (np.log2(k * f0 / centre) / 0.5) ** 2) * np.sin(2 * math.pi * k * f0 * t)
    return torch.as_tensor(0.3 * x / np.abs(x).max(), dtype=torch.float32)


def _resonance(x: torch.Tensor, rate: int = RATE) -> float:
    """Where the partials are strongest: the power-weighted mean log frequency (Hz) of the middle half."""
    y = x.double().numpy()
    y = y[y.size // 4: 3 * y.size // 4] * np.hanning(y.size // 2)
    power = np.abs(np.fft.rfft(y)) ** 2
    f = np.fft.rfftfreq(y.size, 1 / rate)
    keep = f > 50
    return float(2 ** (np.sum(power[keep] * np.log2(f[keep])) / power[keep].sum()))


def test_keep_formants_puts_the_resonance_back_after_a_fifth_up():
    x = _formant_tone(220.0)
    ratio = 2 ** (7 / 12)
    moved = N.varispeed(x, ratio)                                               # resampling took it to ~2250 Hz
    assert abs(_resonance(moved) / _resonance(_formant_tone(220.0 * ratio, centre=1500.0 * ratio)) - 1) < 0.05
    kept = N.keep_formants(moved, ratio, sample_rate=RATE, f0=220.0 * ratio)
    played = _resonance(_formant_tone(220.0 * ratio))   # the instrument itself playing the higher note
    assert abs(_resonance(kept) / played - 1) < 0.05, (_resonance(kept), played)
    # the partials stay where resampling put them: the pitch is the shifted one
    n = kept.numel() // 2
    y = kept.double().numpy()[n // 2: n // 2 + n] * np.hanning(n)
    power, f = np.abs(np.fft.rfft(y)) ** 2, np.fft.rfftfreq(n, 1 / RATE)
    k = np.maximum(1, np.round(f / (220.0 * ratio)))
    on_partials = np.abs(f - k * 220.0 * ratio) < 0.015 * k * 220.0 * ratio
    assert power[on_partials].sum() / power.sum() > 0.99
    # within free_semitones the envelope moves with the pitch: nothing changes
    same = N.keep_formants(moved, ratio, sample_rate=RATE, f0=220.0 * ratio, free_semitones=7.0)
    torch.testing.assert_close(same, moved, atol=1e-4, rtol=0)
    halfway = N.keep_formants(moved, ratio, sample_rate=RATE, f0=220.0 * ratio, free_semitones=3.5)
    played = _resonance(_formant_tone(220.0 * ratio, centre=1500.0 * 2 ** (3.5 / 12)))  # moved by 3.5 semitones only
    assert abs(_resonance(halfway) / played - 1) < 0.05, (_resonance(halfway), played)


def test_backtrack_leaves_an_onset_after_a_reverberating_rest_alone():
    # a note's reverberation 30 dB down, a shallow dip in it, then the next note at frame 108: the
    # level before the dip is a rest's tail, not a held note, so the onset stays
    fps = 100.0
    loud = np.full(200, -40.0)
    loud[:60] = -10.0
    loud[100:108] = [-41.0, -43.0, -45.0, -47.0, -46.0, -40.0, -25.0, -12.0]
    loud[108:] = -10.0
    kw = dict(fps=fps, seconds=0.06, foot_db=1.5, min_frames=6)
    assert N._backtracked([0, 108], loud=loud, tail_db=5.0, **kw) == [0, 108]
    assert N._backtracked([0, 108], loud=loud, tail_db=math.inf, **kw)[1] < 105  # the old rule moved it into the rest


def _held(f0: float, seconds: float, *, rate: int = RATE, tremolo_db: float = 0.0, breaks: tuple = ()) -> torch.Tensor:
    """A held harmonic tone with a 5 Hz tremolo of +-``tremolo_db``; at each of ``breaks`` (s) the
    tone stops for 30 ms and starts again (a repeated note)."""
    t = np.arange(int(seconds * rate)) / rate
    env = 10 ** (tremolo_db * np.sin(2 * np.pi * 5.0 * t) / 20) * np.minimum(1.0, t / 0.01)
    for b in breaks:
        env *= np.clip(np.abs(t - b - 0.015) / 0.015 - 1.0, 0.0, 1.0) ** 0.5 * (t >= b) + (t < b)
    x = sum(0.5 / k * np.sin(2 * np.pi * k * f0 * t) for k in range(1, 6)) * env
    return torch.as_tensor(0.3 * x, dtype=torch.float32)


def test_a_tremolo_starts_no_note_and_a_repeated_note_does():
    x = _held(392.0, 2.0, tremolo_db=3.0)
    kw = dict(sample_rate=RATE, cache=False)
    found = N.find_notes(x, **kw)
    assert len(found) == 1, [n.onset for n in found]
    # the rule is what keeps it one note: without it the swells start notes
    assert len(N.find_notes(x, periodicity_dip=-math.inf, sure_db=math.inf, attack=0.0, **kw)) > 1
    again = N.find_notes(_held(392.0, 2.0, tremolo_db=3.0, breaks=(0.7, 1.3)), **kw)
    assert [round(n.onset, 1) for n in again] == [0.0, 0.7, 1.3]


def test_onset_pitches_hear_the_new_note_over_a_held_chord():
    rate = 16000
    t = np.arange(int(1.2 * rate)) / rate
    tone = lambda midi, start: (sum(0.5 / k * np.sin(2 * np.pi * k * 440 * 2 ** ((midi - 69) / 12) * t)
                                    for k in range(1, 6)) * (t >= start))
    # C3 and G3 held loud from 0, E4 enters at 0.4 s and A4 at 0.8 s, softer
    x = torch.as_tensor(0.2 * (tone(48, 0.0) + tone(55, 0.0)) + 0.1 * (tone(64, 0.4) + tone(69, 0.8)), dtype=torch.float32)
    got = N.onset_pitches(x, [0.4, 0.8], sample_rate=rate)
    assert np.abs(got - [64, 69]).max() <= 0.3, got
    assert abs(N.onset_pitches(x, [0.0], sample_rate=rate)[0] - 48) <= 0.3  # from silence: the chord's root


def test_a_polyphonic_clip_keeps_its_line_pitch_for_the_sampler():
    clip = next((c for c in _benchmark_clips() if c["name"] == "prelude_harp"), None)
    if clip is None:
        pytest.skip("prelude_harp is not in the rendered set; run `make benchmark-data`")
    x = A.load(clip["path"], sample_rate=22050, pad=False)
    found = N.find_notes(x, sample_rate=22050)
    assert not found.monophonic
    line = found.on_line()
    fps = found.frame_rate
    for n, m in zip(found.notes, line.notes):
        assert (n.onset, n.offset, n.start, n.end) == (m.onset, m.offset, m.start, m.end)
        on = round(n.onset * fps)
        np.testing.assert_array_equal(m.f0, found.f0[on:on + n.f0.size])
    # the score's notes: the onset pitches name them far more often than the line does
    ref_i, ref_p = N.reference_notes(clip["notes"], duration=x.numel() / 22050)
    ref_m = 69 + 12 * np.log2(ref_p / 440)

    def named(notes):
        hits = [np.any(np.abs(ref_m[np.abs(ref_i[:, 0] - n.onset) <= 0.05] - n.pitch) <= 0.5)
                for n in notes.notes if n.pitched and np.any(np.abs(ref_i[:, 0] - n.onset) <= 0.05)]
        return np.mean(hits)
    assert named(found) >= 0.9 and named(line) <= 0.5, (named(found), named(line))
    mono = N.find_notes(_tones([60, 64]), sample_rate=RATE)
    assert mono.on_line() is mono


def _note(pitches: list[float], *, pitch: float) -> N.Note:
    f0 = 440.0 * 2.0 ** ((np.asarray(pitches, dtype=np.float64) - 69.0) / 12.0)
    return N.Note(onset=0.0, offset=0.1, pitch=pitch, f0=f0, peak_db=0.0, start=0, end=1, line_pitch=pitch)


def test_a_note_heard_as_the_one_before_takes_the_pitch_its_onset_adds():
    ringing = _note([60.0] * 16 + [64.0] * 4, pitch=60.0)  # the tracker stays on the 60 still ringing
    octave = _note([60.0] * 16 + [72.0] * 4, pitch=60.0)  # an octave apart: left to the tracker
    rare = _note([62.0] * 19 + [65.0], pitch=62.0)  # 1 frame in 20 reaches the onset's pitch: too few
    its_ring = _note([62.0] * 16 + [64.0] * 4, pitch=62.0)  # the onset "adds" the 64 before it: its ring
    notes = [_note([64.0] * 4, pitch=64.0), its_ring, _note([60.0] * 4, pitch=60.0), ringing, octave, rare]
    N._checked_at_onsets(notes, np.array([64.0, 64.0, 60.0, 64.0, 72.0, 65.0]), semitones=0.75, share=0.1)
    assert ringing.pitch == ringing.line_pitch == 64.0
    assert np.isnan(ringing.f0[:16]).all() and np.allclose(ringing.f0[16:], 440 * 2 ** (-5 / 12))
    assert (octave.pitch, rare.pitch, its_ring.pitch) == (60.0, 62.0, 62.0)
    assert np.isfinite(octave.f0).all()


def test_the_onset_check_mends_a_rendered_flute_the_tracker_hears_late():
    clip = next((c for c in A.benchmark_clips(role="train") if c["name"] == "chromatic_flute"), None) \
        if _benchmark_clips() else None
    if clip is None:
        pytest.skip("chromatic_flute is not in the rendered set; run `make benchmark-data`")
    on = N.evaluate_notes([clip], progress=False, sample_rate=22050)["clips"][0]
    off = N.evaluate_notes([clip], progress=False, sample_rate=22050, onset_check=math.inf)["clips"][0]
    assert on["pitch_accuracy"] == 1.0 and off["pitch_accuracy"] < 0.95, (on, off)
    assert on["onset_f1"] == off["onset_f1"]  # pitches only: the notes are where they were


def test_steadiness_and_a_pool_of_steady_notes():
    held = _note([60.0] * 20, pitch=60.0)
    vibrato = _note(list(60.0 + 0.3 * np.sin(np.arange(20.0))), pitch=60.0)
    switching = _note([60.0] * 10 + [64.0] * 10, pitch=62.0)  # in a chord, the loudest voice changes
    half = _note([62.0] * 10 + [64.0] * 10, pitch=62.0)
    assert (held.steadiness, vibrato.steadiness, switching.steadiness, half.steadiness) == (1.0, 1.0, 0.0, 0.5)
    assert _note([math.nan] * 4, pitch=math.nan).steadiness == 0.0

    def clip(notes):
        z = np.zeros(1)
        return N.Notes(notes=notes, sample_rate=RATE, hop_length=220, frame_rate=RATE / 220, f0=z, voiced=z > 0,
                       loudness=z, periodicity=z, monophonic=False, monophony=0.5, pitch_method="crepe", n_samples=1)

    content = _notes([63.0], [0.1], [0.0])
    assert N.match_notes(content, clip([held, switching])) == [1]  # nearest in pitch
    assert N.match_notes(content, clip([held, switching]), min_steady=0.9) == [0]  # the steady one
    assert N.match_notes(content, clip([switching, half]), min_steady=0.9) == [0]  # none steady: all of them


def test_a_note_the_tracker_cannot_follow_takes_its_onset_pitch_and_a_noise_burst_does_not():
    x = _tones([60, 64, 67], seconds=0.4)
    # nothing voiced (as CREPE on some of FluidR3's harp notes): every note is pitched at its onset
    got = N.find_notes(x, sample_rate=RATE, voicing_threshold=1.01, cache=False)
    assert [round(n.pitch) for n in got.notes] == [60, 64, 67]
    assert all(np.allclose(n.f0, n.hz) and n.line_pitch == n.pitch for n in got.notes)
    # ... and says so: the sampler does not choose such a note from a chordal style while it has steady ones
    assert not any(n.tracked for n in got.notes) and all(n.steadiness == 0.0 for n in got.notes)
    assert all(n.tracked for n in N.find_notes(x, sample_rate=RATE, cache=False).notes)
    never = N.find_notes(x, sample_rate=RATE, voicing_threshold=1.01, onset_clarity=math.inf, cache=False)
    assert len(never.notes) == 3 and not never.pitched()
    # noise bursts after a tone: the tone has pitch, no burst is given one
    rng = np.random.default_rng(0)
    hits = np.zeros(2 * RATE)
    for s in range(RATE, 2 * RATE - 2000, RATE // 3):
        hits[s:s + 2000] = rng.standard_normal(2000) * np.exp(-np.arange(2000) / 300)
    hits[:RATE - 2000] += 0.3 * np.sin(2 * math.pi * 440 * np.arange(RATE - 2000) / RATE)
    found = N.find_notes(torch.as_tensor(hits, dtype=torch.float32), sample_rate=RATE, cache=False)
    assert found.has_pitch and found.notes[0].pitched and round(found.notes[0].pitch) == 69
    late = [n for n in found.notes if n.onset > 0.95]
    assert late and not any(n.pitched for n in late)
