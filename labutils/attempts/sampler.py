"""Attempt 5: a one-shot sampler built from the style's own notes.

FluidSynth, which rendered the yardstick's right answers, is itself a sampler: it plays recorded
notes moved in pitch. This attempt does the same with the style clip as its only recording.
Both clips become notes (:mod:`labutils.notes`); each content note is played by the style note
nearest in pitch (:func:`labutils.notes.match_notes`), moved to the content note's pitch curve
(resampling by default, so the attack, the partials and the decay move together as on a
hardware sampler; a phase vocoder as the option), fitted to the content note's length (shorter:
cut and faded with at most the style's own release; longer: a decaying instrument rings on, a
sustaining one loops its sustain) at the content note's level, and overlap-added with a short
fade-in at the content's exact onset. After the last note the result is heard as a whole
(CREPE): a note played off its pitch is played by the best of a few style notes instead, when
that sounds closer both alone and in place. Nothing is optimised: the lab's loop runs one step per
content note through ``Problem.update``, so progress, Stop, callbacks and run folders work as
for every attempt.

Notebook: notebooks/07_timbre_lives_in_the_notes.ipynb
"""
from __future__ import annotations

import math
from dataclasses import replace
from typing import Sequence

import numpy as np
import torch

from .. import notes as N
from .. import spectral as S
from ..config import SamplerConfig
from ..errors import ConfigError
from .base import Problem, prepare

# a polyphonic style's notes keep their own partials at full level and the rest at 0.3 (-10 dB):
# on the dev split's polyphonic styles, partials alone (width 0.35, floor 0) kept the pitch but the
# probe no longer heard the instrument; these settings kept both on prelude_piano
ISOLATE = {"width": 0.7, "floor": 0.3}
# formant_shift_max=-1 (auto): a style whose notes hold (a bowed or blown instrument: a source
# through a body whose resonances stay put) keeps its spectral envelope at every shift; one whose
# notes decay (struck, plucked) lets it follow the first 7 semitones. On the training-piece triples'
# 10 cello styles (bench/sampler_rules.py --split train --styles cello --per-style 10) keeping it
# won 0.4 -> 0.8; for every style it lost a vibraphone and a harp (probe 0.77 -> 0.19, pitch 0.08 ->
# 0.84 off) and won a cello and a flute (--split train, 0 against 7)
FORMANTS_HELD, FORMANTS_DECAYING = 0.0, 7.0
# a polyphonic style (isolated) whose notes decay lets its resonances move with the pitch: around a
# note the chord's other voices remain (at ISOLATE's floor), and the envelope kept from them pulled
# the note towards them (dev's prelude_flute at formants 0 played about 1.8 semitones flat). On the
# training pieces' polyphonic styles (bench/sampler_rules.py --split train --chords), with a steady
# pool at 0.5: pitch agreement 0.709 -> 0.741 (chorale_harpsichord 0.38 -> 0.06 off, a
# vibraphone 0.28 -> 0.03); for held ones too, 0.760 but the cello and the oboe lost the probe
FORMANTS_ISOLATED_DECAYING = 24.0
# ... and plays only its steady notes (Note.steadiness, the share of the note's line within half a
# semitone of its pitch), when it has any: a note where the loudest voice changes has no one pitch
# to move from (dev's prelude_flute: every content note above E4 went to the one note whose line
# ran from C4 to E4). --split train --chords: 0 -> 0.5/0.7/0.85/0.95, success 0.391 -> 0.391/0.435/
# 0.478/0.478, pitch agreement 0.709 -> 0.741/0.755/0.760/0.804 (with the formants above)
STEADY_ISOLATED = 0.9
# the pitch check (--check-pitch): a placed note with fewer than CHECK_SHARE of its frames within
# CHECK_CENTS of the content's pitch is re-tried, and another style note replaces it when, heard alone,
# it has CHECK_GAIN more of its frames on pitch than the first choice heard alone
CHECK_SHARE, CHECK_CENTS, CHECK_GAIN = 0.8, 50.0, 0.1
MAX_SHIFT = 24.0  # semitones: the farthest the check moves a replacement (unless the first choice moved further)
# the check's CREPE reads every 40 ms (half the note layer's frames), and a candidate is heard for
# 0.4 s after its first SETTLE_S: a pair with every note checked (dev's furelise_harp in the style of
# prelude_flute) took 3.0 s with 20 ms frames and whole candidates
CHECK_HOP_S, CHECK_WINDOW_S = 0.04, 0.4
FLATTEN_S = 0.15
# in a note's first SETTLE_S, a pitch more than SETTLE_SEMITONES from the note's own is the tracker
# still reading the note before (CREPE's path moves 2.4 semitones per 20 ms frame at most): it is
# neither followed as a bend nor undone as a drift (following it made an organ scoop like a trumpet)
SETTLE_S = 0.1
SETTLE_SEMITONES = 0.5  # the style's pitch drift is smoothed over this many seconds (a 5-6 Hz vibrato survives)
DISPLAY_COMPRESSION = 1000.0  # the C of every displayed spectrogram (labutils.transfer uses the same)
NO_NOTES = ("the style clip has no pitched notes the sampler can play ({found}): it looks like drums, a pad or "
            "noise; use --method mosaic or --method caracalla-roebel, which take any texture (ddsp cannot either)")
NO_MELODY = ("the content clip has no pitched notes for the sampler to play ({found}): the pitch tracker hears no "
             "melody in it (a drum, noise, or notes too high or too short for CREPE); give a clip with a melody, or "
             "use --method caracalla-roebel, which keeps any content's spectrogram")


def decay_rate(style: N.Notes) -> float:
    """Median slope (dB per second) of the style's pitched notes after their attack: about 0 for an
    instrument that holds (violin, organ, flute), clearly negative for one that decays (piano,
    guitar, marimba). 0 when no note is long enough to tell.

    Notebook: notebooks/07_timbre_lives_in_the_notes.ipynb
    """
    fps, slopes = style.frame_rate, []
    attack = max(1, round(0.05 * fps))
    for n in style.notes:
        if not n.pitched:
            continue
        on = round(n.onset * fps)
        off = round(n.offset * fps)
        body = style.loudness[on + attack:off]
        if body.size >= max(5, round(0.1 * fps)):
            slopes.append(np.polyfit(np.arange(body.size) / fps, body, 1)[0])
    return float(np.median(slopes)) if slopes else 0.0


def _frames_to_samples(values: np.ndarray, *, hop: int, n: int) -> torch.Tensor:
    """Frame values (one per ``hop`` samples) linearly interpolated to ``n`` samples."""
    if values.size == 0:
        return torch.zeros(n, dtype=torch.float64)
    t = np.arange(n) / hop
    return torch.as_tensor(np.interp(t, np.arange(values.size), values), dtype=torch.float64)


def _looped(seg: torch.Tensor, a: int, b: int, need: int, fade: int, *, period: float = 0.0) -> torch.Tensor:
    """``seg`` extended to ``need`` samples by repeating ``seg[a:b]`` with ``fade``-sample
    equal-power crossfades (the sustain of a held note played on as long as needed).

    With ``period`` (the note's pitch period in samples), the loop is made as a sampler's loop
    points are: ``a`` moves by up to one period to where the waveform that leads into the loop's
    continuation (``a + fade``, past the crossfade) best matches the one leading to ``b`` (the
    normalised cross-correlation of one period), so that each splice joins like phases and no
    repetition sounds as a new attack."""
    # a sustain shorter than two crossfades still loops, with shorter crossfades: padding it with
    # silence played a held note's rest as nothing (a 0.13 s oboe note under a 0.9 s content note)
    fade = min(fade, (b - a - 1) // 2)
    if period >= 2.0 and b - a > 4 * period + fade:
        # the crossfade lays seg[a:a + fade] over seg[b - fade:b], and the loop goes on from a + fade
        # where the recording went on from b: what precedes a + fade should match what precedes b
        w = int(round(period))
        ref = seg[b - w:b]
        # a moves by at most one period and never so far that the loop gets shorter than two crossfades
        lo, hi = max(w, fade, a + fade - w), min(b - 2 * w, a + fade + w, b - fade)
        if hi > lo:
            cand = seg[lo - w:hi].unfold(0, w, 1)  # (K, w): the period ending at each candidate
            score = (cand @ ref) / (cand.norm(dim=1) * ref.norm() + 1e-12)
            a = lo + int(torch.argmax(score)) - fade
    out = seg[:b]
    loop = seg[a:b]
    fade = min(fade, (loop.numel() - 1) // 2)
    if fade < 2 or need <= out.numel():
        return out if out.numel() >= need else torch.nn.functional.pad(out, (0, need - out.numel()))
    ramp = torch.linspace(0, 1, fade, dtype=seg.dtype)
    fin, fout = torch.sin(ramp * math.pi / 2), torch.cos(ramp * math.pi / 2)
    while out.numel() < need:
        head = out[:-fade]
        joint = out[-fade:] * fout + loop[:fade] * fin
        out = torch.cat([head, joint, loop[fade:]])
    return out[:need]


def build(content: torch.Tensor, style: torch.Tensor, cfg: SamplerConfig,
          betas: Sequence[float] | None = None) -> Problem:
    """Set up attempt 5 on ``content: (N,)`` and ``style: (M,)``: find the notes of both, match them.

    ``Problem.init`` is the silent output ``(B, N)``; ``update(param, step)`` places content note
    ``step`` (1-based) into it and returns ``style`` = semitones the chosen style note moved,
    ``content`` = the content note's length over the style note's (above 1: looped or rung on),
    ``total`` = their sum, each ``(B,)`` (beta is unused: every copy is the same); ``steps`` is
    the number of content notes, and the last step also runs the pitch check (``check_pitch``).
    ``decode`` is the buffer; ``preview`` its spectrogram.
    A style without pitched notes raises one :class:`ConfigError` naming the attempts that take it.

    Notebook: notebooks/07_timbre_lives_in_the_notes.ipynb
    """
    setup = prepare(content, style, cfg, betas)
    device, batch, rate = setup.device, setup.batch, cfg.sample_rate
    x_c, x_s = setup.content.detach().float().cpu(), setup.style.detach().float().cpu()
    c_notes = N.find_notes(x_c, sample_rate=rate, pitch=cfg.pitch)
    # a polyphonic style's notes are moved from the pitch of the line heard loudest in them (resampling
    # moves the whole chord); a polyphonic content's notes are played at the pitch each onset adds
    s_notes = N.find_notes(x_s, sample_rate=rate, pitch=cfg.pitch).on_line()
    # a style note the tracker could not follow (its pitch only what its onset adds) is no sample to move: on
    # the training pieces' chordal styles, playing them cost pitch (--split train --chords: 0.808 without, 0.752 with)
    s_notes = replace(s_notes, notes=[n if n.tracked else replace(n, pitch=math.nan) for n in s_notes.notes])
    pitched = s_notes.pitched()
    if len(pitched) < cfg.min_style_notes or not s_notes.has_pitch:
        found = (f"periodicity {s_notes.monophony:.2f} < {N.PITCHED_THRESHOLD}" if s_notes.monophony < N.PITCHED_THRESHOLD
                 else f"{len(pitched)} pitched of {len(s_notes)} notes, {cfg.min_style_notes} needed")
        raise ConfigError(NO_NOTES.format(found=found))
    if not c_notes.pitched():
        raise ConfigError(NO_MELODY.format(found=f"{len(c_notes)} notes, none pitched; periodicity {c_notes.monophony:.2f}"))
    isolated = cfg.isolate == "on" or (cfg.isolate == "auto" and not s_notes.monophonic)
    mapping = N.match_notes(c_notes, s_notes, tie_semitones=cfg.tie_semitones,
                            min_steady=STEADY_ISOLATED if isolated else 0.0)
    if isolated:  # a polyphonic style: each note keeps its own partials, the chord around it goes
        x_s = N.harmonic_part(x_s, s_notes.f0, sample_rate=rate, hop_length=s_notes.hop_length, **ISOLATE)
    slope = decay_rate(s_notes)
    # a struck content note's offset (25 dB below its peak) comes long before a listener hears it end: a
    # marimba's 0.9 s note is 0.3 s long there, and a held style played it as a staccato. On the training
    # pieces (bench/sampler_rules.py --split train / --chords / --split dev) playing each such note to its
    # tail moved pitch agreement 0.911 -> 0.913 / 0.808 -> 0.829 / 0.922 -> 0.922, chroma 0.846 -> 0.858 /
    # 0.831 -> 0.857 / 0.852 -> 0.859, no success lost or won
    content_slope = decay_rate(c_notes)
    tails = cfg.note_length == "tail" or (cfg.note_length == "auto" and content_slope < cfg.decay_db_per_s)
    decays = slope < cfg.decay_db_per_s  # a struck or plucked style, not a held one
    decaying = cfg.extend == "ring" or (cfg.extend == "auto" and decays)
    formant_free = cfg.formant_shift_max
    if formant_free < 0:  # auto
        formant_free = (FORMANTS_ISOLATED_DECAYING if isolated else FORMANTS_DECAYING) if decays else FORMANTS_HELD
    n_out, hop = x_c.numel(), c_notes.hop_length
    fade = max(2, round(cfg.crossfade * rate))
    loop_fade = max(2, round(cfg.loop_crossfade * rate))
    release_max = round(cfg.release_max * rate)
    c_top = max((n.peak_db for n in c_notes.notes if n.pitched), default=0.0)
    order = list(range(len(c_notes)))
    placed: list[dict] = []

    def render(i: int, j: int | None = None) -> tuple[int, torch.Tensor, float, float]:
        """Content note ``i`` played by style note ``j`` (its match by default): (first output sample,
        audio, shift, stretch)."""
        c = c_notes[i]
        j = mapping[i] if j is None else j
        if j < 0 or not c.pitched:
            return 0, torch.zeros(0), 0.0, 0.0
        s = s_notes[j]
        pre_c = round(c.onset * rate) - c.start  # samples of pre-roll before the content onset
        pre_s = round(s.onset * rate) - s.start
        pre = min(pre_c, pre_s)
        body = max(1, round(c.duration * rate))  # the content note sounds this long ...
        if tails:  # ... or, struck, as long as it rings, up to the next note
            body = max(body, c.end - round(c.onset * rate))
        own_tail = max(0, s.end - round(s.offset * rate))
        release = int(min(release_max, max(fade, own_tail)))  # ... then the style's release
        length = pre + body + release
        out_start = round(c.onset * rate) - pre
        # the pitch curve to play at, per output sample, in semitones from the style note's pitch
        if cfg.follow_bends:
            f0 = c.f0.copy()
            f0[~np.isfinite(f0)] = c.hz
            head = f0[:settle_c]  # the tracker still reading the note before: no bend
            head[np.abs(12.0 * np.log2(head / c.hz)) > SETTLE_SEMITONES] = c.hz
            semis = 12.0 * np.log2(f0 / s.hz)
            semis = np.clip(semis, (c.pitch - s.pitch) - 2.0, (c.pitch - s.pitch) + 2.0)  # a glitch is no bend
            curve = _frames_to_samples(semis, hop=hop, n=body)
            curve = torch.cat([curve[:1].expand(pre), curve, curve[-1:].expand(release)])
        else:
            curve = torch.full((length,), c.pitch - s.pitch, dtype=torch.float64)
        src = x_s[s.start:s.end]
        base = float(c.pitch - s.pitch)
        if cfg.shift == "phase-vocoder":
            src = N.shift_pitch(src, base, sample_rate=rate, method="phase-vocoder")
            curve = curve - base
        ratio = torch.pow(2.0, curve / 12.0)
        if cfg.flatten and cfg.shift == "resample":
            ratio = ratio * _drift_correction(j, ratio, pre_s - pre)
        need = int(math.ceil(float(ratio.sum()))) + (pre_s - pre) + 4  # source samples the output reads
        sustain_end = max(pre_s + fade * 3, round(s.offset * rate) - s.start)
        if need > src.numel():
            if decaying:
                # let it ring: the tail goes on decaying at the style's rate from where the recording stops
                a = max(pre_s + round(0.05 * rate), src.numel() - round(0.2 * rate))
                seg = _looped(src, a, src.numel(), need, fade)
                t = torch.arange(seg.numel() - src.numel(), dtype=seg.dtype) / rate
                gain = torch.pow(10.0, (min(slope, -3.0) * t) / 20.0)
                seg = torch.cat([seg[:src.numel()], seg[src.numel():] * gain])
            else:
                b = min(src.numel(), sustain_end)
                period = rate / (s.hz * (2.0 ** (base / 12.0) if cfg.shift == "phase-vocoder" else 1.0))
                a = min(max(pre_s + round(0.08 * rate), b - round(0.4 * rate)), b - 2 * loop_fade - 1)
                seg = _looped(src, max(a, 0), b, need, loop_fade, period=period if cfg.loop_points else 0.0)
            src = seg
        audio = N.varispeed(src, ratio, n_out=length, start=float(pre_s - pre))
        if cfg.shift == "resample" and float(curve.abs().max()) > formant_free:
            audio = N.keep_formants(audio, ratio, sample_rate=rate, f0=s.hz * ratio, free_semitones=formant_free)
        audio = audio.double()
        env = torch.ones(length, dtype=torch.float64)
        env[:fade] = torch.linspace(0, 1, fade, dtype=torch.float64) if pre >= fade else env[:fade]
        if release > 0:
            env[pre + body:] = torch.cos(torch.linspace(0, math.pi / 2, release, dtype=torch.float64)) ** 2
        if cfg.dynamics != "off":
            gain_db = (c.peak_db - c_top) - (s.peak_db - max(n.peak_db for n in s_notes.notes if n.pitched))
            env = env * 10.0 ** (gain_db / 20.0)
        if cfg.dynamics == "contour":
            rel = c.loudness - c.peak_db
            contour = _frames_to_samples(np.clip(rel, -40.0, 0.0), hop=hop, n=length)
            env = env * torch.pow(10.0, contour / 20.0)
        stretch = c.duration / max(s.duration, 1e-3)
        return out_start, (audio * env).float(), abs(base), stretch

    # each style note's slow pitch drift (semitones from its median against source samples), smoothed
    # over FLATTEN_S so that a vibrato stays: a style note whose pitch wanders, or that holds a
    # slur into the next note, is played at the content's pitch all the same
    s_hop = s_notes.hop_length
    settle_c, settle_s = round(SETTLE_S * c_notes.frame_rate), round(SETTLE_S * s_notes.frame_rate)
    smooth = max(1, round(FLATTEN_S * s_notes.frame_rate)) | 1

    def _drift_correction(j: int, ratio: torch.Tensor, first: float) -> torch.Tensor:
        s = s_notes[j]
        lo, hi = s.start // s_hop, -(-s.end // s_hop) + 1
        f0 = s_notes.f0[lo:hi].copy()
        if not np.isfinite(f0).any():
            return torch.ones_like(ratio)
        semis = 12.0 * np.log2(np.where(np.isfinite(f0), f0, s.hz) / s.hz)
        semis = np.clip(semis, -3.0, 3.0)  # more than that is an octave error: leave it
        head = slice(0, max(0, round(s.onset * s_notes.frame_rate) + settle_s - lo))
        semis[head] = np.where(np.abs(semis[head]) > SETTLE_SEMITONES, 0.0, semis[head])
        pad = smooth // 2
        padded = np.pad(semis, pad, mode="edge")
        drift = np.array([np.median(padded[k:k + smooth]) for k in range(semis.size)])
        # source position (samples from s.start) of each output sample, read with the uncorrected
        # rates (the correction is small), then the drift there
        pos = first + torch.cumsum(ratio, 0) - ratio
        frame = (pos.numpy() + s.start) / s_hop - lo
        d = np.interp(frame, np.arange(drift.size), drift)
        return torch.as_tensor(2.0 ** (-d / 12.0), dtype=ratio.dtype)

    init = torch.zeros(batch, n_out, device=device)
    sounded: dict[int, tuple[int, torch.Tensor]] = {}  # content note -> (first sample, audio) as placed

    def add(param: torch.Tensor, start: int, audio: torch.Tensor, sign: float = 1.0) -> None:
        lo, hi = max(0, start), min(n_out, start + audio.numel())
        if hi > lo:
            param[:, lo:hi] += sign * audio[lo - start:hi - start].to(param.device)

    def update(param: torch.Tensor, step: int) -> dict[str, torch.Tensor]:
        if step > len(order):  # a content clip without notes: one silent step
            z = torch.zeros(batch, device=param.device)
            return {"total": z, "content": z, "style": z}
        i = order[step - 1]
        start, audio, shift, stretch = render(i)
        if audio.numel():
            add(param, start, audio)
            sounded[i] = (start, audio)
            placed.append({"content_note": i, "style_note": mapping[i], "semitones": round(shift, 2),
                           "stretch": round(stretch, 2)})
        if step == len(order) and cfg.check_pitch > 1 and sounded:
            recheck(param)
        v = torch.full((batch,), shift, device=param.device)
        w = torch.full((batch,), stretch, device=param.device)
        return {"total": v + w, "content": w, "style": v}

    def on_pitch(audio: torch.Tensor, spans: list[tuple[int, int]], frames: int | None = None) -> list[float]:
        """For each (content note, sample where it starts in ``audio``): the share of the note's frames
        (after its first SETTLE_S, to its offset or for ``frames``) where CREPE, every CHECK_HOP_S,
        hears ``audio`` within CHECK_CENTS of the content note's pitch curve (unvoiced frames count,
        as in the yardstick's pitch score)."""
        f0, _ = N.crepe_pitch(audio.float(), sample_rate=rate, hop_length=hop, **{**N.CREPE, "hop_seconds": CHECK_HOP_S})
        out = []
        for i, at in spans:
            c = c_notes[i]
            want = c.f0.copy()
            # the curve as played: a frame more than 2 semitones from the note's pitch is a glitch, not a bend
            want[~np.isfinite(want) | (np.abs(12.0 * np.log2(np.where(want > 0, want, c.hz) / c.hz)) > 2.0)] = c.hz
            first = at // hop
            k = np.arange(settle_c, want.size if frames is None else min(want.size, settle_c + frames))
            k = k[first + k < f0.size]
            if k.size == 0:
                out.append(1.0)
                continue
            cents = 1200.0 * np.abs(np.log2(np.maximum(f0[first + k], 1e-3) / want[k]))
            out.append(float(np.mean(cents <= CHECK_CENTS)))
        return out

    def recheck(param: torch.Tensor) -> None:
        """Each placed note the result plays off its pitch (under CHECK_SHARE of its frames) gets the style
        note, of its match and the next ``check_pitch - 1`` by the same rules (within MAX_SHIFT, or the
        match's own shift), that CREPE hears closest to the content's pitch on its own, when that is
        CHECK_GAIN closer than the match (all candidates heard in one pass, 50 ms of silence apart).
        A second pass over the result undoes each replacement not heard closer in place, and all of
        them when the notes' mean share fell. ``placed`` rows say what was checked."""
        notes_in = sorted(sounded)
        shares = on_pitch(param[0].detach().float().cpu(), [(i, round(c_notes[i].onset * rate)) for i in notes_in])
        wrong = [i for i, sh in zip(notes_in, shares) if sh < CHECK_SHARE]
        if not wrong:
            return
        gap = torch.zeros(round(0.05 * rate))
        lead, window = round(0.02 * rate), max(1, round(CHECK_WINDOW_S * c_notes.frame_rate))
        pieces, spans, tried = [], [], []
        at = 0
        for i in wrong:
            taken, options = set(), []
            j = mapping[i]
            while j >= 0 and len(options) < cfg.check_pitch:
                options.append(j)
                taken.add(j)
                rest = replace(s_notes, notes=[replace(n, pitch=math.nan) if k in taken else n
                                               for k, n in enumerate(s_notes.notes)])
                j = N.match_notes(replace(c_notes, notes=[c_notes[i]]), rest, tie_semitones=cfg.tie_semitones,
                                  min_steady=STEADY_ISOLATED if isolated else 0.0)[0]
                if j in taken:
                    break
            for j in options:
                start, audio, shift, stretch = (*sounded[i], 0.0, 0.0) if j == mapping[i] else render(i, j)
                onset_at = round(c_notes[i].onset * rate) - start
                lo = max(0, onset_at - lead)  # each candidate heard from just before its onset for CHECK_WINDOW_S
                piece = audio[lo:onset_at + settle_c * hop + window * hop].float()
                pieces += [piece, gap]
                spans.append((i, at + onset_at - lo))
                tried.append((i, j, start, audio, shift, stretch))
                at += piece.numel() + gap.numel()
        heard = on_pitch(torch.cat(pieces), spans, frames=window)
        swapped = {}
        for i in wrong:
            rows = [(h, t) for h, t in zip(heard, tried) if t[0] == i]
            own, first_shift = rows[0][0], abs(c_notes[i].pitch - s_notes[mapping[i]].pitch)
            # a replacement moves no further than two octaves, or than the first choice did
            rows = rows[:1] + [r for r in rows[1:] if r[1][4] <= max(MAX_SHIFT, first_shift) + 0.5]
            best_h, (_, j, start, audio, shift, stretch) = max(rows, key=lambda r: r[0])
            if j != mapping[i] and best_h >= own + CHECK_GAIN:
                row = next(p for p in placed if p["content_note"] == i)
                swapped[i] = (sounded[i], mapping[i], dict(row))
                add(param, *sounded[i], sign=-1.0)
                add(param, start, audio)
                sounded[i] = (start, audio)
                mapping[i] = j
                row.update({"style_note": j, "semitones": round(shift, 2), "stretch": round(stretch, 2),
                            "checked": f"{own:.2f} -> {best_h:.2f} of its frames on pitch, heard alone"})
        if not swapped:
            return
        # heard alone is not heard in place: a replacement the result does not play closer to the content's
        # pitch than before (its neighbours' tails, the chord around it) is undone
        # (and CREPE's path through the whole result may move around it: when the notes' mean share falls,
        # every replacement is undone)
        again = on_pitch(param[0].detach().float().cpu(), [(i, round(c_notes[i].onset * rate)) for i in notes_in])
        before, after = dict(zip(notes_in, shares)), dict(zip(notes_in, again))
        worse = float(np.mean(again)) < float(np.mean(shares))
        for i, (old, j_old, was) in swapped.items():
            row = next(p for p in placed if p["content_note"] == i)
            now = after[i]
            if worse or now <= before[i]:
                add(param, *sounded[i], sign=-1.0)
                add(param, *old)
                sounded[i], mapping[i] = old, j_old
                row.clear()
                row.update({**was, "checked": f"kept: another style note made it {before[i]:.2f} -> {now:.2f} in place"
                            + (", and the notes' mean fell" if worse else "")})
            else:
                row["checked"] += f"; {before[i]:.2f} -> {now:.2f} in place"

    def decode(param: torch.Tensor) -> torch.Tensor:
        return param

    def preview(param: torch.Tensor) -> torch.Tensor:
        return S.log_spectrogram(param, n_fft=cfg.n_fft, hop_length=cfg.hop_length, compression=DISPLAY_COMPRESSION)

    note = c_notes.note
    info = {"sampler": {"content": c_notes.summary(), "style": s_notes.summary(), "mapping": mapping,
                        "style_decay_db_per_s": round(slope, 2), "extend": "ring" if decaying else "loop",
                        "content_decay_db_per_s": round(content_slope, 2),
                        "note_length": "tail" if tails else "offset",
                        "isolated": isolated, "formant_shift_max": formant_free,
                        "placed": placed, **({"note": note} if note else {})}}
    weights = {"source": "the style clip's own notes (no weights)", **({"note": note} if note else {})}
    return Problem(init=init, loss_fn=None, decode=decode, preview=preview, lr=cfg.lr, weights=weights,
                   device=device, info=info, update=update, steps=max(1, len(order)))


__all__ = ["build", "decay_rate", "NO_NOTES", "NO_MELODY"]


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m labutils.attempts.sampler [--content C] [--style S] [--duration D] [--repeat N]``:
    seconds for one pair through the sampler, analysis of both clips included (imports and the
    CREPE weights loaded before the clock starts; the note memo is cleared before every run)."""
    import argparse
    import time

    from .. import transfer
    from ..optim import tune_allocator

    p = argparse.ArgumentParser(prog="python -m labutils.attempts.sampler", description=main.__doc__)
    p.add_argument("--content", default="ode_piano")
    p.add_argument("--style", default="ode_violin")
    p.add_argument("--duration", type=float, default=5.0)
    p.add_argument("--sample-rate", type=int, default=44100)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args(argv)
    tune_allocator()
    cfg = SamplerConfig(duration=args.duration, sample_rate=args.sample_rate, device="cpu")
    c, s, _ = transfer.load_pair(args.content, args.style, cfg)
    N.find_notes(c[: cfg.sample_rate // 2], sample_rate=cfg.sample_rate, cache=False)  # imports, weights
    wall, cpu = [], []
    for _ in range(args.repeat):
        N._MEMO.clear()
        N._PITCH_MEMO.clear()
        w, t = time.perf_counter(), time.process_time()
        transfer.solve("sampler", c, s, cfg, progress=False)
        wall.append(time.perf_counter() - w)
        cpu.append(time.process_time() - t)
    print(f"sampler, {args.content} in the style of {args.style}, {args.duration:g} s at {args.sample_rate} Hz, "
          f"{torch.get_num_threads()} threads: {min(wall):.2f} s wall (best of {args.repeat}; "
          f"CPU time {min(cpu):.2f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
