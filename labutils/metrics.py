"""Objective scores of a style-transfer result, whatever attempt made it.

Melody kept (chroma, f0 against the content), timbre moved (MFCC, log-mel and random-CNN
texture statistics against the style or a known right answer). Every clip is a mono
``audio: (N,)`` tensor or numpy array at ``sample_rate``; every score is a plain float.

Notebook: notebooks/04_compare.ipynb
"""
from __future__ import annotations

import math
from typing import Sequence, Union

import librosa
import numpy as np
import torch

from . import losses, nets
from . import spectral
from .spectral import spectral_convergence

__all__ = ["chroma_similarity", "pitch_agreement", "mfcc_distance", "logmel_distance", "texture_distance",
           "reconstruction_error", "spectral_convergence", "score", "METRIC_INFO"]

Audio = Union[torch.Tensor, np.ndarray]  # a mono clip (N,)
_SILENCE_DB = -40.0  # frames this far below the clip's loudest frame count as silent


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


def pitch_agreement(result: Audio, content: Audio, *, sample_rate: int, fmin: float = 65.0,
                    fmax: float = 2000.0, cents: float = 50.0) -> float:
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


def _mfcc_stats(x: np.ndarray, sample_rate: int, n_mfcc: int, n_mels: int) -> np.ndarray:
    m = librosa.feature.mfcc(y=x, sr=sample_rate, n_mfcc=n_mfcc, n_mels=n_mels, n_fft=_fft_size(sample_rate, 0.046),
                             hop_length=_fft_size(sample_rate, 0.046) // 4)[1:].astype(np.float64)
    return np.concatenate([m.mean(1), m.std(1)])


def mfcc_distance(a: Audio, b: Audio, *, sample_rate: int, n_mfcc: int = 13, n_mels: int = 40) -> float:
    """Timbre distance: Euclidean distance of [mean, std] over time of MFCCs 1..n_mfcc-1.

    c0 (overall loudness) is dropped, so a gain barely moves it. 13 coefficients of 40 mel
    bands keep the spectral envelope; more of either resolve harmonics, and the distance then
    follows the melody more than the instrument (20 of 128 did on the bundled clips). Clip
    lengths may differ (statistics over time). Range [0, inf): 0 = same statistics; the bundled
    instruments lie some 20 to 60 apart (dB-scaled cepstra).

    Notebook: notebooks/04_compare.ipynb
    """
    sa, sb = _mfcc_stats(_np(a), sample_rate, n_mfcc, n_mels), _mfcc_stats(_np(b), sample_rate, n_mfcc, n_mels)
    return float(np.linalg.norm(sa - sb))


def _logmel_stats(x: np.ndarray, sample_rate: int, n_mels: int) -> np.ndarray:
    n_fft = _fft_size(sample_rate, 0.046)
    mel = librosa.feature.melspectrogram(y=x, sr=sample_rate, n_fft=n_fft, hop_length=n_fft // 4, n_mels=n_mels)
    db = librosa.power_to_db(mel, ref=np.max, top_db=80.0).astype(np.float64)
    return np.stack([db.mean(1), db.std(1)])  # (2, n_mels)


def logmel_distance(a: Audio, b: Audio, *, sample_rate: int, n_mels: int = 64) -> float:
    """Spectral-envelope distance in dB: sqrt(mean over bands of (d mean)^2 + (d std)^2).

    Log-mel power in dB relative to each clip's own maximum (floored 80 dB below it), so it is
    invariant to overall gain; mean and std over time per band. Range [0, inf) dB: 0 = same
    statistics.

    Notebook: notebooks/04_compare.ipynb
    """
    sa, sb = _logmel_stats(_np(a), sample_rate, n_mels), _logmel_stats(_np(b), sample_rate, n_mels)
    return float(np.sqrt(((sa - sb) ** 2).sum(0).mean()))


def _texture_stats(x, net: nets.RandomCNN, *, n_fft: int, hop_length: int, compression: float) -> list[torch.Tensor]:
    audio = torch.as_tensor(_np(x))
    spec = spectral.compress(spectral.magnitude(audio, n_fft=n_fft, hop_length=hop_length), compression=compression)
    return losses.time_correlations(net.features(spec))  # list of (1, F, C, C)


def _texture_between(sa: list[torch.Tensor], sb: list[torch.Tensor]) -> float:
    n = sa[0].shape[1] * len(sa)
    return 0.5 * float(losses.style_loss(sa, sb)[0] + losses.style_loss(sb, sa)[0]) / n


def texture_distance(a: Audio, b: Audio, *, sample_rate: int, seed: int = 12345, filters: int = 16,
                     kernel_sizes: Sequence[int] = (3, 7, 15, 27), n_fft: int = 512, hop_length: int = 256,
                     compression: float = 1000.0) -> float:
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
    net = nets.RandomCNN(filters=filters, kernel_sizes=kernel_sizes, seed=seed)
    kw = dict(n_fft=n_fft, hop_length=hop_length, compression=compression)
    with torch.no_grad():
        return _texture_between(_texture_stats(a, net, **kw), _texture_stats(b, net, **kw))


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
    "pitch_to_content": "melody kept: fraction of voiced frames with f0 within 50 cents of the content's, 0..1",
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
}


def _gain(distance: float, baseline: float) -> float:
    return 1.0 - distance / baseline if baseline > 0 else 0.0


def score(result: Audio, *, content: Audio, style: Audio, sample_rate: int, truth: Audio | None = None) -> dict[str, float]:
    """Every score of one result ``(N,)`` against its content, style and (optional) truth clips.

    Keys and ranges are those of :data:`METRIC_INFO`: ``chroma_to_content``, ``pitch_to_content``
    in [0, 1] (higher = melody kept); ``mfcc_to_style``, ``logmel_to_style``, ``texture_to_style``
    in [0, inf) (lower = closer timbre), each with a ``*_content`` twin computed for the untouched
    content as if it were the result (the baseline); ``timbre_gain_style`` in (-inf, 1]:
    1 - mfcc_to_style / mfcc_to_style_content (0 = no move, 1 = reached the style's statistics;
    0 when the baseline is 0). With ``truth``: ``mfcc_to_truth``, ``logmel_to_truth`` and their
    ``*_content`` twins, and ``timbre_gain_truth`` defined alike. Frame-wise scores cut clips to
    the shorter; statistics need no cut.

    Notebook: notebooks/04_compare.ipynb
    """
    sr = sample_rate
    r, c, s = _np(result), _np(content), _np(style)
    mf = {k: _mfcc_stats(x, sr, 13, 40) for k, x in (("r", r), ("c", c), ("s", s))}
    lm = {k: _logmel_stats(x, sr, 64) for k, x in (("r", r), ("c", c), ("s", s))}
    net = nets.RandomCNN(filters=16, kernel_sizes=(3, 7, 15, 27), seed=12345)
    with torch.no_grad():
        tx = {k: _texture_stats(x, net, n_fft=512, hop_length=256, compression=1000.0) for k, x in (("r", r), ("c", c), ("s", s))}
    mfd = lambda x, y: float(np.linalg.norm(mf[x] - mf[y]))  # noqa: E731
    lmd = lambda x, y: float(np.sqrt(((lm[x] - lm[y]) ** 2).sum(0).mean()))  # noqa: E731
    out = {
        "chroma_to_content": chroma_similarity(r, c, sample_rate=sr),
        "pitch_to_content": pitch_agreement(r, c, sample_rate=sr),
        "mfcc_to_style": mfd("r", "s"), "mfcc_to_style_content": mfd("c", "s"),
        "logmel_to_style": lmd("r", "s"), "logmel_to_style_content": lmd("c", "s"),
        "texture_to_style": _texture_between(tx["r"], tx["s"]),
        "texture_to_style_content": _texture_between(tx["c"], tx["s"]),
    }
    out["timbre_gain_style"] = _gain(out["mfcc_to_style"], out["mfcc_to_style_content"])
    if truth is not None:
        t = _np(truth)
        mf["t"], lm["t"] = _mfcc_stats(t, sr, 13, 40), _logmel_stats(t, sr, 64)
        out.update(mfcc_to_truth=mfd("r", "t"), mfcc_to_truth_content=mfd("c", "t"),
                   logmel_to_truth=lmd("r", "t"), logmel_to_truth_content=lmd("c", "t"))
        out["timbre_gain_truth"] = _gain(out["mfcc_to_truth"], out["mfcc_to_truth_content"])
    return out
