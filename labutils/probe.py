"""An instrument-recognition probe: a listener stand-in that names the instrument of a clip.

A small scikit-learn classifier (standardised features -> logistic regression) trained on the
rendered set's *training* material (scales, arpeggios, long notes, other melodies, several
velocities and registers; in no benchmark triple) for every instrument of the set. Its
features favour what an equaliser cannot change: the clip's attack and decay envelopes, how
each band's level moves from frame to frame, how the spectrum's shape changes as a note swells
or dies, the per-frame spectral envelope's spread around its long-term average. Training
clips are augmented by equalising them toward other instruments' long-term spectra (labels
kept), by noise floors, by a room (a reverb tail) and by moving the notes a few semitones, the
tempo by up to 25 % and the spectral tilt (all on the magnitude spectrogram), so a piano
equalised to a trumpet's average spectrum stays a piano, and another recording of the same
instrument (another soundfont) is still named.

Trained once, with fixed seeds, in seconds; cached beside the set as a joblib file keyed by a
hash of the training files and the feature settings.

Notebook: notebooks/04_compare.ipynb
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Sequence, Union

import joblib
import librosa
import numpy as np
import scipy.fft
import sklearn
import soundfile as sf
import torch
import torchaudio.functional as AF
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from . import audio as A
from .errors import AudioError

__all__ = ["Probe", "features", "train_probe", "load_probe", "FEATURE_SETTINGS", "invariance", "transformed", "room_impulse"]

Audio = Union[torch.Tensor, np.ndarray]
# One source for every setting the features depend on (part of the cache key).
FEATURE_SETTINGS = {"version": 3, "sample_rate": 22050, "n_fft": 1024, "hop_length": 256, "n_mels": 64,
                    "n_mfcc": 20, "n_bands": 8, "loud_db": -40.0}
TRAIN_SETTINGS = {"crops": 2, "min_crop_s": 1.8, "eq_per_crop": 2, "noise_db": (-50.0, -25.0),
                  "eq_strength": (0.5, 1.0), "C": 0.5, "seed": 0,
                  # other recordings of an instrument: a room (exponential reverb tail), a register moved
                  # (the frequency axis scaled), a tempo moved (the time axis scaled), a tilted spectrum
                  "room_per_crop": 1, "rt60_s": (0.3, 1.5), "wet": (0.1, 0.6),
                  "shift_per_crop": 1, "semitones": (-4.0, 4.0),
                  "stretch": (0.8, 1.25), "tilt_db_per_octave": (-3.0, 3.0)}


def _np(audio: Audio) -> np.ndarray:
    if isinstance(audio, torch.Tensor):
        audio = audio.detach().to("cpu", torch.float32).numpy()
    return np.ascontiguousarray(np.asarray(audio, dtype=np.float32).reshape(-1))


def _magnitude(audio: Audio, sample_rate: int) -> np.ndarray:
    """Mono clip ``(N,)`` -> magnitude STFT ``(F, T)`` at the probe's rate, peak-normalised."""
    s = FEATURE_SETTINGS
    x = torch.from_numpy(_np(audio))
    if sample_rate != s["sample_rate"]:
        x = AF.resample(x, int(sample_rate), s["sample_rate"])
    x = x.numpy().astype(np.float64)
    peak = np.abs(x).max()
    if not peak > 0:
        raise AudioError("probe: the clip is silent; the instrument probe needs sound")
    return np.abs(librosa.stft(x / peak, n_fft=s["n_fft"], hop_length=s["hop_length"]))


@lru_cache(maxsize=1)
def _mel_basis() -> np.ndarray:
    s = FEATURE_SETTINGS
    basis = librosa.filters.mel(sr=s["sample_rate"], n_fft=s["n_fft"], n_mels=s["n_mels"]).astype(np.float64)
    return np.where(basis > 1e-12, basis, 0.0)


def _pct(x: np.ndarray, q: Sequence[float]) -> np.ndarray:
    return np.percentile(x, q) if x.size else np.zeros(len(q))


def _mean(x: np.ndarray) -> float:
    return float(x.mean()) if x.size else 0.0


def _features_from_magnitude(mag: np.ndarray) -> np.ndarray:
    """Timbre features of one magnitude spectrogram ``(F, T)`` -> ``(D,)`` (gain-invariant)."""
    s = FEATURE_SETTINGS
    power = np.maximum(mag ** 2, 1e-24)                                  # no denormals (they slow BLAS 30x)
    mel = _mel_basis() @ power                                           # (M, T)
    total = power.sum(0)                                                 # (T,)
    top = max(total.max(), 1e-20)
    loud = total > top * 10 ** (s["loud_db"] / 10)
    if loud.sum() < 4:
        loud = np.ones_like(loud)
    ref = max(mel.max(), 1e-20)
    logmel = np.maximum(10 * np.log10(np.maximum(mel, 1e-12 * ref) / ref), -80.0)   # (M, T) dB
    mfcc = scipy.fft.dct(logmel, type=2, norm="ortho", axis=0)[: s["n_mfcc"]]      # (K, T)
    env = 10 * np.log10(np.maximum(total, 1e-12 * top) / top)           # (T,) dB
    bands = logmel.reshape(s["n_bands"], -1, logmel.shape[1]).mean(1)   # (B, T)
    pair = loud[1:] & loud[:-1]
    d_env = np.diff(env)[pair]                                           # (P,)
    d_bands = np.diff(bands, axis=1)[:, pair]                            # (B, P)
    rel = d_bands - d_env                                                # band change beyond the level change
    rising, falling = d_env > 1.0, d_env < -0.3
    weights = mel[:, loud] / np.maximum(mel[:, loud].sum(0, keepdims=True), 1e-20)
    centroid = (np.arange(mel.shape[0])[:, None] * weights).sum(0)      # mel-band index per loud frame
    contrast = librosa.feature.spectral_contrast(S=mag, sr=s["sample_rate"], n_fft=s["n_fft"])[:, loud]
    flat = np.exp(np.log(np.maximum(power[:, loud], 1e-20)).mean(0)) / np.maximum(power[:, loud].mean(0), 1e-20)
    d_centroid = np.diff(centroid)
    corr = np.corrcoef(d_centroid, np.diff(env[loud]))[0, 1] if d_centroid.size > 2 and d_centroid.std() > 0 else 0.0
    parts = [
        mfcc[:, loud].mean(1), mfcc[:, loud].std(1),                     # envelope and its spread
        np.diff(mfcc, axis=1)[:, pair].std(1),                           # how fast the envelope moves
        bands[:, loud].std(1),                                           # per-band level spread (EQ-invariant)
        np.maximum(d_bands, 0).mean(1), np.minimum(d_bands, 0).mean(1),  # per-band attack and decay rates
        _pct(d_env, (2, 5, 10, 25, 50, 75, 90, 95, 98)),                 # level envelope: attacks, sustain, decays
        [_mean(d_env > 1.0), _mean(np.abs(d_env) < 0.3), _mean(d_env < -0.3)],
        rel[:, rising].mean(1) if rising.any() else np.zeros(s["n_bands"]),   # brightening in attacks
        rel[:, falling].mean(1) if falling.any() else np.zeros(s["n_bands"]),  # darkening in decays
        [centroid.std(), _mean(np.abs(d_centroid)), corr if np.isfinite(corr) else 0.0],
        contrast.mean(1), contrast.std(1),
        [np.log(np.maximum(flat, 1e-12)).mean(), np.log(np.maximum(flat, 1e-12)).std(), loud.mean()],
    ]
    return np.concatenate([np.ravel(np.asarray(p, dtype=np.float64)) for p in parts])


def features(audio: Audio, *, sample_rate: int) -> np.ndarray:
    """The probe's timbre features of one mono clip ``audio: (N,)`` -> ``(D,)``.

    Computed at 22.05 kHz (resampled), gain-invariant: MFCC statistics, per-band level spread,
    attack and decay rates per band and of the overall level, spectral-shape change during
    attacks and decays, spectral-centroid motion, spectral contrast and flatness.

    Notebook: notebooks/04_compare.ipynb
    """
    with threadpool_limits(limits=1, user_api="blas"):  # small matrices: waking BLAS threads costs more
        return _features_from_magnitude(_magnitude(audio, sample_rate))


@dataclass
class Probe:
    """A trained instrument probe: ``instruments`` (class names) and the sklearn ``model``."""

    instruments: list[str]
    model: Pipeline
    key: str = ""
    info: dict = field(default_factory=dict)

    def predict_proba(self, audio: Audio, *, sample_rate: int) -> dict[str, float]:
        """Probability of each instrument for one clip ``audio: (N,)``; sums to 1.

        Notebook: notebooks/04_compare.ipynb
        """
        p = self.model.predict_proba(features(audio, sample_rate=sample_rate)[None])[0]
        return {name: float(p[i]) for i, name in enumerate(self.model.classes_)}

    def predict(self, audio: Audio, *, sample_rate: int) -> str:
        """The most probable instrument (top-1) of one clip ``audio: (N,)``.

        Notebook: notebooks/04_compare.ipynb
        """
        proba = self.predict_proba(audio, sample_rate=sample_rate)
        return max(proba, key=proba.get)

    def accuracy(self, clips: Iterable[tuple[Union[Audio, str, Path], str]], *, sample_rate: int | None = None) -> float:
        """Fraction of ``(clip, instrument)`` pairs whose top-1 is the instrument. A clip is a
        path (loaded at 44.1 kHz) or an array ``(N,)`` at ``sample_rate``.

        Notebook: notebooks/04_compare.ipynb
        """
        hits = []
        for clip, instrument in clips:
            if isinstance(clip, (str, Path)):
                clip, rate = A.load(clip), A.DEFAULT_SAMPLE_RATE
            else:
                rate = sample_rate
                if rate is None:
                    raise AudioError("probe.accuracy: give sample_rate= for clips passed as arrays")
            hits.append(self.predict(clip, sample_rate=rate) == instrument)
        return float(np.mean(hits)) if hits else 0.0


def _room(mag: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A reverb in the power-spectrogram domain: each band's power plus its past, decaying by 60 dB
    in a random RT60 (``mag: (F, T)``), mixed in at a random wet level."""
    t, s = TRAIN_SETTINGS, FEATURE_SETTINGS
    frame_s = s["hop_length"] / s["sample_rate"]
    decay = 10 ** (-6.0 * frame_s / rng.uniform(*t["rt60_s"]))        # power factor per frame
    power = mag ** 2
    tail = np.empty_like(power)
    acc = np.zeros(power.shape[0])
    for i in range(power.shape[1]):
        acc = acc * decay + power[:, i]
        tail[:, i] = acc
    tail *= (1 - decay)
    wet = rng.uniform(*t["wet"])
    return np.sqrt((1 - wet) * power + wet * tail)


def _moved(mag: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The same notes a few semitones up or down (frequency axis scaled), slower or faster (time axis
    scaled) and with a tilted spectrum: ``mag: (F, T) -> (F, T')``, by linear interpolation."""
    t, s = TRAIN_SETTINGS, FEATURE_SETTINGS
    ratio = 2 ** (rng.uniform(*t["semitones"]) / 12)
    f = np.arange(mag.shape[0], dtype=np.float64)
    src = f / ratio
    lo = np.clip(np.floor(src).astype(int), 0, mag.shape[0] - 1)
    hi = np.clip(lo + 1, 0, mag.shape[0] - 1)
    w = np.clip(src - lo, 0, 1)[:, None]
    shifted = np.where((src <= mag.shape[0] - 1)[:, None], (1 - w) * mag[lo] + w * mag[hi], 0.0)
    n = max(8, int(round(mag.shape[1] * rng.uniform(*t["stretch"]))))
    pos = np.linspace(0, mag.shape[1] - 1, n)
    i0 = np.floor(pos).astype(int)
    i1 = np.minimum(i0 + 1, mag.shape[1] - 1)
    u = pos - i0
    stretched = (1 - u) * shifted[:, i0] + u * shifted[:, i1]
    hz = np.maximum(f * s["sample_rate"] / s["n_fft"], 50.0)
    tilt = 10 ** (rng.uniform(*t["tilt_db_per_octave"]) * np.log2(hz / 1000.0) / 20)
    return stretched * tilt[:, None]


def _augmented(mags: list[np.ndarray], labels: list[str], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Features of every training clip, of random crops, and of equalised / noisy variants."""
    t = TRAIN_SETTINGS
    s = FEATURE_SETTINGS
    min_frames = int(t["min_crop_s"] * s["sample_rate"] / s["hop_length"])
    spectra = [m.mean(1) for m in mags]                                  # long-term average spectra (F,)
    by_label: dict[str, list[int]] = {}
    for i, lab in enumerate(labels):
        by_label.setdefault(lab, []).append(i)
    X, y = [], []
    for i, (mag, lab) in enumerate(zip(mags, labels)):
        others = [j for j, other in enumerate(labels) if other != lab]
        for c in range(t["crops"]):
            if c == 0 or mag.shape[1] <= min_frames:
                crop = mag
            else:
                n = int(rng.integers(min_frames, mag.shape[1] + 1))
                start = int(rng.integers(0, mag.shape[1] - n + 1))
                crop = mag[:, start:start + n]
            variants = [crop]
            own = crop.mean(1) + 1e-4 * crop.mean(1).max() + 1e-12
            for _ in range(t["eq_per_crop"]):
                target = spectra[int(rng.choice(others))]
                ratio = (target + 1e-4 * target.max()) / own
                variants.append(crop * ratio[:, None] ** rng.uniform(*t["eq_strength"]))
            for _ in range(t["room_per_crop"]):
                variants.append(_room(crop, rng))
            for _ in range(t["shift_per_crop"]):
                variants.append(_moved(crop, rng))
            level = np.mean(crop ** 2) * 10 ** (rng.uniform(*t["noise_db"]) / 10)
            noise = level * rng.exponential(size=crop.shape)
            variants.append(np.sqrt(crop ** 2 + noise))
            for v in variants:
                X.append(_features_from_magnitude(v))
                y.append(lab)
    return np.stack(X), np.asarray(y)


def train_probe(clips: Sequence[tuple[Audio, str]], *, sample_rate: int, seed: int = 0) -> Probe:
    """Train a probe on ``(audio (N,), instrument)`` pairs at ``sample_rate``, reproducibly.

    Every clip gives its features plus those of random crops (>= 1.8 s), of versions equalised
    toward other instruments' long-term spectra (label kept), of a noisy version, of one in a room
    (:func:`_room`) and of one moved in pitch, tempo and tilt (:func:`_moved`); a
    standardised logistic regression is fitted on them.

    Notebook: notebooks/04_compare.ipynb
    """
    rng = np.random.default_rng(seed)
    with threadpool_limits(limits=1, user_api="blas"):
        mags = [_magnitude(x, sample_rate) for x, _ in clips]
        X, y = _augmented(mags, [lab for _, lab in clips], rng)
    model = make_pipeline(StandardScaler(), LogisticRegression(C=TRAIN_SETTINGS["C"], max_iter=3000))
    model.fit(X, y)
    return Probe(instruments=sorted(set(y)), model=model, info={"n_train": int(len(y)), "n_features": int(X.shape[1])})


def _cache_key(paths: Sequence[Path], labels: Sequence[str]) -> str:
    h = hashlib.sha256(json.dumps([FEATURE_SETTINGS, TRAIN_SETTINGS, sklearn.__version__]).encode())
    for path, lab in sorted(zip(paths, labels), key=lambda p: p[0].name):
        h.update(f"{path.name}|{lab}|".encode())
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()[:16]


def load_probe(*, root: Path | str | None = None, retrain: bool = False) -> Probe:
    """The probe for the rendered set at ``root`` (default :func:`audio.benchmark_dir`): loaded
    from its cache (``probe-<key>.joblib`` beside the set, keyed by a hash of the training
    files and settings), else trained on the set's training clips and cached.

    Raises :class:`AudioError` (one line: run `make benchmark-data`) when the set is missing.

    Notebook: notebooks/04_compare.ipynb
    """
    root = Path(root) if root is not None else A.benchmark_dir()
    train = A.benchmark_clips(role="train", root=root)
    if not train:
        raise AudioError(f"{root}: the benchmark set has no training clips; run `make benchmark-data` again")
    paths, labels = [c["path"] for c in train], [c["instrument"] for c in train]
    key = _cache_key(paths, labels)
    cache = root / f"probe-{key}.joblib"
    if cache.is_file() and not retrain:
        return joblib.load(cache)
    clips = []
    rate = None
    for path, lab in zip(paths, labels):
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
        clips.append((data.mean(1), lab))
    probe = train_probe(clips, sample_rate=int(rate))
    probe.key = key
    for old in root.glob("probe-*.joblib"):
        old.unlink()
    joblib.dump(probe, cache)
    return probe


# --------------------------------------------------------------------------------------------
# What the probe must not hear
# --------------------------------------------------------------------------------------------
INVARIANCE = {"semitones": (-3.0, 3.0), "stretch": (0.8, 1.25), "rt60_s": 1.0, "wet": 0.5, "sample_rate": 22050}


def room_impulse(*, sample_rate: int, rt60_s: float, seed: int = 0) -> np.ndarray:
    """A synthetic room: exponentially decaying Gaussian noise falling 60 dB in ``rt60_s``,
    unit energy, ``(round(1.5 * rt60_s * sample_rate),)``.

    Notebook: notebooks/04_compare.ipynb
    """
    rng = np.random.default_rng(seed)
    n = int(round(1.5 * rt60_s * sample_rate))
    t = np.arange(n) / sample_rate
    ir = rng.standard_normal(n) * 10 ** (-3.0 * t / rt60_s)
    return ir / np.sqrt(np.sum(ir ** 2))


def transformed(audio: Audio, *, sample_rate: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Changes that must leave a clip's instrument alone: ``{"pitch -3", "pitch +3"`` (librosa's
    phase-vocoder pitch shift, by :data:`INVARIANCE` semitones), ``"stretch 0.8"``, ``"stretch
    1.25"`` (librosa's time stretch to 0.8 or 1.25 times the duration), ``"reverb"`` (a convolution with
    :func:`room_impulse`, RT60 1 s, half wet)}``, each ``(N',)`` float32 at ``sample_rate``.

    Notebook: notebooks/04_compare.ipynb
    """
    import scipy.signal

    x = _np(audio).astype(np.float64)
    inv = INVARIANCE
    out = {f"pitch {s:+g}": librosa.effects.pitch_shift(x, sr=sample_rate, n_steps=s) for s in inv["semitones"]}
    out.update({f"stretch {r:g}": librosa.effects.time_stretch(x, rate=1.0 / r) for r in inv["stretch"]})
    wet = scipy.signal.fftconvolve(x, room_impulse(sample_rate=sample_rate, rt60_s=inv["rt60_s"], seed=seed))[: x.size]
    dry_rms, wet_rms = np.sqrt(np.mean(x ** 2)), max(np.sqrt(np.mean(wet ** 2)), 1e-12)
    out["reverb"] = (1 - inv["wet"]) * x + inv["wet"] * wet * dry_rms / wet_rms
    return {k: v.astype(np.float32) for k, v in out.items()}


def invariance(probe: Probe, clips: Sequence[tuple[Union[str, Path], str]], *, seed: int = 0) -> dict[str, dict]:
    """How often the probe keeps naming a clip's own instrument after each change of
    :func:`transformed`: ``{change: {"kept": fraction, "n": clips, "missed": [names]}}``, plus
    ``"unchanged"`` (the clips as they are). ``clips``: ``(path, instrument)`` pairs, each loaded
    at 22.05 kHz.

    Notebook: notebooks/04_compare.ipynb
    """
    rate = INVARIANCE["sample_rate"]
    hits: dict[str, list[tuple[str, bool]]] = {}
    for i, (path, instrument) in enumerate(clips):
        x = A.load(path, sample_rate=rate).numpy()
        versions = {"unchanged": x, **transformed(x, sample_rate=rate, seed=seed + i)}
        for change, y in versions.items():
            hits.setdefault(change, []).append((Path(path).stem, probe.predict(y, sample_rate=rate) == instrument))
    return {change: {"kept": float(np.mean([h for _, h in hs])), "n": len(hs), "missed": [n for n, h in hs if not h]}
            for change, hs in hits.items()}
