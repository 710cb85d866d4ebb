"""Pitch and loudness analysis, and a differentiable harmonic-plus-noise synthesiser (DDSP-style).

The content of a melody is its pitch (f0) and loudness curves; the timbre of an instrument is
how it turns them into sound: the balance of the harmonics, the noise around them, the room.
This module measures the curves (pYIN f0 and voicing, A-weighted loudness, a monophony check)
and synthesises sound from frame-rate controls with plain torch operations, so that a small
:class:`Decoder` can be fitted through it to one clip (Engel et al. 2020). It knows nothing
about optimisation: the attempt (``labutils.attempts.ddsp``) hands the parameters to the lab's
one loop.

Control frames are centred STFT frames: frame ``t`` sits at sample ``t * hop_length`` and a clip
of ``N`` samples has ``N // hop_length + 1`` of them (:func:`labutils.spectral.n_frames`).

Notebook: notebooks/05_ddsp.ipynb
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Sequence

import librosa
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import spectral as S
from .config import DDSPConfig
from .errors import ConfigError

ANALYSIS_RATE = 16000  # pYIN runs at this rate (it costs about 0.3 s per second of audio here)
LOUDNESS_FLOOR_DB = -100.0
# Ceiling of a noise band's magnitude, from DDSPConfig (the one place it lives). DDSP's 2.0 lets a
# one-shot fit explain a piano's partials (inharmonic, so off the f0 grid) with loud filtered noise
# that then drowns the melody: on the 24 dev triples (`python -m labutils compare --benchmark
# --split dev --methods ddsp --steps 200 --duration 2 [--noise-max 2]`, Intel Xeon, 2 cores) the
# result's f0 agreement with the content was 0.34 with 2.0 and 0.78 with 0.06.
NOISE_MAX: float = next(f.default for f in dataclasses.fields(DDSPConfig) if f.name == "noise_max")
POLYPHONY_NOTE = "content looks polyphonic: the result follows the predominant pitch"


# --------------------------------------------------------------------------------------------
# Analysis
# --------------------------------------------------------------------------------------------
@dataclass
class Analysis:
    """Frame-rate controls of one clip: ``f0`` (Hz, gaps filled), ``loudness`` (dB, A-weighted),
    ``voiced`` (bool), ``voiced_prob`` (pYIN's probability), all ``(T,)``; ``monophony`` in [0, 1]
    (mean voiced probability over loud frames) and whether it passes :func:`is_monophonic`."""

    f0: torch.Tensor
    loudness: torch.Tensor
    voiced: torch.Tensor
    voiced_prob: torch.Tensor
    monophony: float
    monophonic: bool
    frame_rate: float
    flux_onsets: np.ndarray | None = None  # control frames of librosa's spectral-flux onsets (see note_onsets)

    def summary(self) -> dict[str, float]:
        """Median pitch (MIDI), voiced fraction, loudness range and the monophony score."""
        v = self.voiced
        midi = hz_to_midi(self.f0[v]).median().item() if v.any() else float("nan")
        return {"median_midi": round(midi, 2), "voiced_fraction": round(v.float().mean().item(), 3),
                "loudness_max_db": round(self.loudness.max().item(), 1), "monophony": round(self.monophony, 3)}


def hz_to_midi(f0: torch.Tensor) -> torch.Tensor:
    """MIDI note number of ``f0`` in Hz (69 = A4 = 440 Hz). Shape kept."""
    return 69.0 + 12.0 * torch.log2(f0.clamp_min(1e-3) / 440.0)


def midi_to_hz(midi: torch.Tensor) -> torch.Tensor:
    """Frequency in Hz of MIDI note numbers. Shape kept."""
    return 440.0 * torch.pow(2.0, (midi - 69.0) / 12.0)


def frame_times(n_samples: int, *, sample_rate: int, hop_length: int) -> np.ndarray:
    """Centres of the control frames in seconds: ``(N // hop_length + 1,)``."""
    return np.arange(S.n_frames(n_samples, hop_length=hop_length)) * hop_length / sample_rate


def _analysis_fft(sample_rate: int) -> int:
    return 1 << max(6, round(math.log2(0.046 * sample_rate)))  # about 46 ms (2048 at 44.1 kHz)


def a_weighted_loudness(audio: torch.Tensor, *, sample_rate: int, hop_length: int,
                        n_fft: int | None = None) -> torch.Tensor:
    """A-weighted loudness in dB per control frame: ``audio: (..., N) -> (..., N // hop + 1)``.

    Power spectrum of centred Hann frames (``n_fft`` about 46 ms by default), weighted by the A
    curve, summed over frequency, in dB relative to a full-scale signal, floored at -100 dB.

    Notebook: notebooks/05_ddsp.ipynb
    """
    n_fft = n_fft or _analysis_fft(sample_rate)
    spec = S.stft(audio, n_fft=n_fft, hop_length=hop_length)
    power = spec.real.square() + spec.imag.square()
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    freqs[0] = 1.0  # the A curve is -inf at 0 Hz; its floor applies there anyway
    weight = torch.as_tensor(10.0 ** (librosa.A_weighting(freqs, min_db=-100.0) / 10.0), dtype=power.dtype,
                             device=power.device)
    mean = (power * weight[:, None]).sum(-2) / (n_fft / 2) ** 2  # a full-scale 1 kHz sine reads about -4 dB
    return (10.0 * torch.log10(mean.clamp_min(1e-10))).clamp_min(LOUDNESS_FLOOR_DB)


def _fill(values: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Linear interpolation over frames not in ``keep`` (edges hold the nearest kept value)."""
    if keep.all() or not keep.any():
        return values
    idx = np.arange(values.size)
    return np.interp(idx, idx[keep], values[keep])


def pitch(audio: torch.Tensor, *, sample_rate: int, hop_length: int, fmin: float = 65.0,
          fmax: float = 2093.0, resolution: float = 0.2) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """pYIN f0 per control frame: ``audio: (N,) -> (f0, voiced, voiced_prob)``, each ``(T,)``.

    pYIN (librosa) runs at 16 kHz with a 10 ms hop and pitch bins of ``resolution`` semitones
    (0.2: 4 times faster than librosa's 0.1); where YIN's interpolated f0 lies within a bin of
    pYIN's, it replaces it (no quantisation left). The curves are interpolated (f0 in log
    frequency) to the control frames. Unvoiced frames get the f0 of their voiced neighbours, so
    the curve has no gaps (the synthesiser needs one everywhere; the loudness silences them).
    With no voiced frame at all, pYIN's best guess per frame is kept.

    Notebook: notebooks/05_ddsp.ipynb
    """
    x = torch.as_tensor(audio, dtype=torch.float32).detach().cpu().reshape(-1)
    if sample_rate != ANALYSIS_RATE:
        import torchaudio.functional as AF

        x = AF.resample(x, int(sample_rate), ANALYSIS_RATE)
    hop_a = ANALYSIS_RATE // 100
    frame = 1024 if fmin >= 2 * ANALYSIS_RATE / 1024 else 2048
    y = x.numpy().astype(np.float32)
    if y.size < frame:
        y = np.pad(y, (0, frame - y.size))
    f0, voiced, prob = librosa.pyin(y, fmin=fmin, fmax=fmax, sr=ANALYSIS_RATE, frame_length=frame,
                                    hop_length=hop_a, fill_na=None, resolution=resolution)
    f0, prob = np.nan_to_num(f0, nan=fmin), np.nan_to_num(prob)
    # pYIN's f0 is a bin centre; YIN's parabolic interpolation refines it where the two agree
    fine = librosa.yin(y, fmin=fmin, fmax=fmax, sr=ANALYSIS_RATE, frame_length=frame, hop_length=hop_a)[: f0.size]
    close = np.abs(np.log2(fine / f0)) < resolution / 12
    f0 = np.where(close, fine, f0)
    logf = _fill(np.log2(np.clip(f0, fmin, fmax)), voiced)
    t_a = np.arange(f0.size) * hop_a / ANALYSIS_RATE
    t_c = frame_times(int(np.asarray(audio).shape[-1]), sample_rate=sample_rate, hop_length=hop_length)
    f0_c = 2.0 ** np.interp(t_c, t_a, logf)
    voiced_c = np.interp(t_c, t_a, voiced.astype(np.float64)) > 0.5
    prob_c = np.interp(t_c, t_a, prob)
    as_t = lambda a, dt=torch.float32: torch.as_tensor(np.ascontiguousarray(a), dtype=dt)  # noqa: E731
    return as_t(f0_c), as_t(voiced_c, torch.bool), as_t(prob_c)


def monophony_score(voiced_prob: torch.Tensor, loudness: torch.Tensor, *, range_db: float = 30.0) -> float:
    """Mean pYIN voiced probability over the loud frames (within ``range_db`` of the loudest).

    One instrument playing one note at a time scores high (0.5 to 0.85 on the bundled 'ode'
    clips, piano included); pieces with chords or accompaniment score 0.03 to 0.19, pads, chords
    and tabla 0.2 to 0.31, drums 0.01.

    Notebook: notebooks/05_ddsp.ipynb
    """
    loud = loudness >= loudness.max() - range_db
    return float(voiced_prob[loud].mean()) if loud.any() else 0.0


def is_monophonic(score: float, *, threshold: float = 0.4) -> bool:
    """Whether a :func:`monophony_score` is high enough to trust a single f0 curve."""
    return score >= threshold


def analyse(audio: torch.Tensor, *, sample_rate: int, hop_length: int, fmin: float = 65.0,
            fmax: float = 2093.0) -> Analysis:
    """f0, voicing, A-weighted loudness and the monophony check of ``audio: (N,)`` per control frame.

    Notebook: notebooks/05_ddsp.ipynb
    """
    f0, voiced, prob = pitch(audio, sample_rate=sample_rate, hop_length=hop_length, fmin=fmin, fmax=fmax)
    loud = a_weighted_loudness(torch.as_tensor(audio, dtype=torch.float32).detach().cpu(),
                               sample_rate=sample_rate, hop_length=hop_length)
    n = min(f0.numel(), loud.numel())
    f0, voiced, prob, loud = f0[:n], voiced[:n], prob[:n], loud[:n]
    score = monophony_score(prob, loud)
    return Analysis(f0=f0, loudness=loud, voiced=voiced, voiced_prob=prob, monophony=score,
                    monophonic=is_monophonic(score), frame_rate=sample_rate / hop_length,
                    flux_onsets=flux_onsets(audio, sample_rate=sample_rate, hop_length=hop_length))


def flux_onsets(audio: torch.Tensor, *, sample_rate: int, hop_length: int) -> np.ndarray:
    """Control frames of the onsets librosa finds in the clip's spectral flux (its default onset
    strength and peak picking): ``audio: (N,) -> (K,)`` int64. :func:`analyse` stores them as
    ``Analysis.flux_onsets``; :func:`note_onsets` adds the pitch changes.

    Notebook: notebooks/05_ddsp.ipynb
    """
    y = torch.as_tensor(audio, dtype=torch.float32).detach().cpu().reshape(-1).numpy()
    onsets = librosa.onset.onset_detect(y=y, sr=sample_rate, hop_length=hop_length, units="frames")
    return np.asarray(onsets, dtype=np.int64)


def octave_shift(content: Analysis, style: Analysis, *, limit: int = 3) -> int:
    """Octaves that move the content's median voiced pitch nearest the style's (0 without pitch).

    Notebook: notebooks/05_ddsp.ipynb
    """
    if not content.voiced.any() or not style.voiced.any():
        return 0
    gap = hz_to_midi(style.f0[style.voiced]).median() - hz_to_midi(content.f0[content.voiced]).median()
    return int(max(-limit, min(limit, round(float(gap) / 12.0))))


def match_loudness(content: torch.Tensor, style: torch.Tensor, *, shift_db: float = 0.0, auto: bool = True,
                   range_db: float = 30.0) -> torch.Tensor:
    """The content's loudness curve ``(T,)`` moved into the style's range, plus ``shift_db``.

    With ``auto``, the mean over the content's loud frames (within ``range_db`` of its maximum)
    is moved onto the style's, and the result is capped at the style's maximum: the decoder has
    never heard its instrument louder than that.

    Notebook: notebooks/05_ddsp.ipynb
    """
    out = content.clone()
    if auto:
        c_loud = content[content >= content.max() - range_db].mean()
        s_loud = style[style >= style.max() - range_db].mean()
        out = (out + (s_loud - c_loud)).clamp(max=float(style.max()))
    return (out + shift_db).clamp_min(LOUDNESS_FLOOR_DB)


def note_onsets(analysis: Analysis, *, semitones: float = 0.7, min_gap_s: float = 0.06,
                range_db: float = 45.0) -> np.ndarray:
    """Control frames where a note starts: the onsets librosa finds in the clip's spectral flux
    (``Analysis.flux_onsets``), plus frames where a voiced pitch moves by more than
    ``semitones`` and stays there (a legato note may have no attack). Frames quieter than
    ``range_db`` below the loudest never start a note. Returns sorted frame indices at least
    ``min_gap_s`` apart (frame 0 too when the clip starts loud).

    Notebook: notebooks/05_ddsp.ipynb
    """
    loud = analysis.loudness.detach().cpu().numpy().astype(np.float64)
    midi = hz_to_midi(analysis.f0).detach().cpu().numpy().astype(np.float64)
    voiced = analysis.voiced.detach().cpu().numpy()
    fps = analysis.frame_rate
    audible = loud > loud.max() - range_db
    flux = () if analysis.flux_onsets is None else analysis.flux_onsets
    candidates = {int(t) for t in flux if t < loud.size and audible[t]}
    hold = max(1, round(0.05 * fps))
    for t in range(1, loud.size - hold):
        if voiced[t - 1] and voiced[t:t + hold].all() and audible[t]:
            before, after = midi[t - 1], np.median(midi[t:t + hold])
            if abs(after - before) > semitones and abs(midi[t] - before) > semitones / 2:
                candidates.add(t)
    if audible[0]:
        candidates.add(0)
    gap = max(1, round(min_gap_s * fps))
    onsets: list[int] = []
    for t in sorted(candidates):
        if not onsets or t - onsets[-1] >= gap:
            onsets.append(t)
    return np.asarray(onsets, dtype=np.int64)


def note_envelope(analysis: Analysis, *, max_seconds: float = 4.0, attack_s: float = 0.06) -> np.ndarray:
    """The style's typical note: loudness in dB relative to the note's peak against frames after
    its onset, ``(L,)`` for ``max_seconds``. Its first ``attack_s`` is the median over the notes
    of :func:`note_onsets`; after that it falls at the median slope (dB per frame, never rising)
    of the notes' bodies (from the attack to 80 % of the way to the next onset, a least-squares
    line): a piano's notes keep decaying, a violin's hold.

    Notebook: notebooks/05_ddsp.ipynb
    """
    loud = analysis.loudness.detach().cpu().numpy().astype(np.float64)
    fps = analysis.frame_rate
    length = max(2, round(max_seconds * fps))
    attack = max(1, round(attack_s * fps))
    onsets = note_onsets(analysis)
    heads, slopes = [], []
    for on, end in zip(onsets, np.r_[onsets[1:], loud.size]):
        seg = loud[on:end]
        if seg.size < attack:
            continue
        rel = seg - seg[:attack].max()
        heads.append(rel[:attack])
        body = rel[attack:max(attack, int(0.8 * seg.size))]
        if body.size >= max(3, attack // 2):
            slopes.append(np.polyfit(np.arange(body.size), body, 1)[0])
    if not heads:
        return np.zeros(length)
    head = np.median(np.stack(heads), axis=0)
    slope = min(float(np.median(slopes)), 0.0) if slopes else 0.0
    env = np.r_[head, head[-1] + slope * np.arange(1, length - attack + 1)]
    return np.maximum(env[:length], LOUDNESS_FLOOR_DB)


def restyle_articulation(content: Analysis, style: Analysis, *, range_db: float = 45.0) -> torch.Tensor:
    """The content's loudness curve with each note's shape replaced by the style's typical note
    (:func:`note_envelope`): a note keeps its onset and its peak level, and then swells, holds or
    decays as the style's notes do until the next onset. Rests (frames quieter than ``range_db``
    below the content's loudest) keep the content's level when that is lower. ``(T,)`` in dB.

    The loudness curve carries the articulation: a marimba melody's curve decays after every
    note, and a decoder fitted to a violin plays that decay faithfully unless it is replaced.

    Notebook: notebooks/05_ddsp.ipynb
    """
    loud = content.loudness.detach().cpu().numpy().astype(np.float64)
    env = note_envelope(style)
    onsets = note_onsets(content, range_db=range_db)
    if onsets.size == 0:
        return content.loudness.clone()
    peak = max(1, round(0.05 * content.frame_rate))
    out = loud.copy()
    for on, end in zip(onsets, np.r_[onsets[1:], loud.size]):
        n = end - on
        level = loud[on:on + peak].max()
        shape = env[:n] if n <= env.size else np.r_[env, np.full(n - env.size, env[-1])]
        out[on:end] = level + shape
    quiet = loud < loud.max() - range_db
    out[quiet] = np.minimum(out[quiet], loud[quiet])
    out[:onsets[0]] = loud[:onsets[0]]
    return torch.as_tensor(np.maximum(out, LOUDNESS_FLOOR_DB), dtype=content.loudness.dtype)


# --------------------------------------------------------------------------------------------
# Synthesis
# --------------------------------------------------------------------------------------------
def upsample(frames: torch.Tensor, *, hop_length: int, n_samples: int) -> torch.Tensor:
    """Linear interpolation of frame values to samples: ``(B, T, C) -> (B, n_samples, C)``.

    Frame ``t`` is the value at sample ``t * hop_length``; the last frame is held after its time.
    """
    b, t, c = frames.shape
    padded = torch.cat([frames, frames[:, -1:]], dim=1)  # (B, T + 1, C)
    w = (torch.arange(hop_length, device=frames.device, dtype=frames.dtype) / hop_length)[None, None, :, None]
    out = padded[:, :-1, None] * (1 - w) + padded[:, 1:, None] * w  # (B, T, hop, C)
    return out.reshape(b, t * hop_length, c)[:, :n_samples]


def harmonic_basis(f0: torch.Tensor, *, n_harmonics: int, sample_rate: int, hop_length: int,
                   n_samples: int) -> torch.Tensor:
    """One unit sine per harmonic, phase from the cumulative f0: ``f0: (B, T) -> (B, T, K, hop)``.

    Sample ``n`` of harmonic ``k`` (1-based) is ``sin(k * phi(n))`` with
    ``phi(n) = 2 pi sum_{m < n} f0(m) / sample_rate`` (0 at the first sample) (f0 interpolated linearly to samples; the
    sum in float64), and exactly 0 wherever ``k * f0(n)`` reaches the Nyquist frequency. Laid
    out per frame (``T * hop >= n_samples``, zero past the end) so that
    :func:`harmonics_from_basis` is one batched matrix product. It depends on f0 only: a fit on
    fixed f0 computes it once.

    Notebook: notebooks/05_ddsp.ipynb
    """
    f0 = torch.as_tensor(f0)
    f0 = f0[None] if f0.ndim == 1 else f0
    b, t = f0.shape
    f0_n = upsample(f0.detach().double()[..., None], hop_length=hop_length, n_samples=n_samples)[..., 0]  # (B, N)
    phase = torch.remainder(2 * math.pi * (torch.cumsum(f0_n / sample_rate, dim=-1) - f0_n / sample_rate), 2 * math.pi)
    basis = torch.zeros(b, t * hop_length, n_harmonics, dtype=torch.float32, device=f0.device)
    nyquist = sample_rate / 2
    for k in range(1, n_harmonics + 1):
        keep = (k * f0_n) < nyquist
        basis[:, :n_samples, k - 1] = (torch.sin(torch.remainder(k * phase, 2 * math.pi)) * keep).float()
    return basis.reshape(b, t, hop_length, n_harmonics).transpose(-1, -2).contiguous()


def harmonics_from_basis(amplitudes: torch.Tensor, basis: torch.Tensor, *, n_samples: int) -> torch.Tensor:
    """Sum of the harmonics with frame amplitudes interpolated to samples: ``amplitudes: (B, T, K)``,
    ``basis: (B, T, K, hop)`` -> ``audio: (B, n_samples)``. Differentiable in ``amplitudes``."""
    b, t, k, hop = basis.shape
    nxt = torch.cat([amplitudes[:, 1:], amplitudes[:, -1:]], dim=1)
    flat = basis.reshape(b * t, k, hop)
    y0 = torch.bmm(amplitudes.reshape(b * t, 1, k), flat).reshape(b, t, hop)
    y1 = torch.bmm(nxt.reshape(b * t, 1, k), flat).reshape(b, t, hop)
    w = torch.arange(hop, device=basis.device, dtype=basis.dtype) / hop
    return (y0 * (1 - w) + y1 * w).reshape(b, t * hop)[:, :n_samples]


def harmonic_synth(f0: torch.Tensor, amplitudes: torch.Tensor, *, sample_rate: int, hop_length: int,
                   n_samples: int) -> torch.Tensor:
    """A bank of harmonic oscillators: ``f0: (B, T)`` Hz, ``amplitudes: (B, T, K)`` per harmonic
    -> ``audio: (B, n_samples)``. Harmonics at or above Nyquist are silent.

    Notebook: notebooks/05_ddsp.ipynb
    """
    basis = harmonic_basis(f0, n_harmonics=amplitudes.shape[-1], sample_rate=sample_rate, hop_length=hop_length,
                           n_samples=n_samples)
    return harmonics_from_basis(amplitudes, basis, n_samples=n_samples)


def nyquist_mask(f0: torch.Tensor, *, n_harmonics: int, sample_rate: int) -> torch.Tensor:
    """1 where harmonic k of ``f0: (B, T)`` lies below Nyquist, else 0: ``(B, T, K)``."""
    k = torch.arange(1, n_harmonics + 1, device=f0.device, dtype=f0.dtype)
    return ((f0[..., None] * k) < sample_rate / 2).to(f0.dtype)


def white_noise(n: int, *, batch: int = 1, seed: int = 0, device: torch.device | str = "cpu") -> torch.Tensor:
    """Uniform noise in [-1, 1): ``(batch, n)``, from its own seeded generator."""
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(batch, n, generator=g) * 2 - 1).to(device)


def filtered_noise(magnitudes: torch.Tensor, *, hop_length: int, n_samples: int,
                   noise: torch.Tensor | None = None, seed: int = 0) -> torch.Tensor:
    """Noise shaped per frame by band magnitudes: ``magnitudes: (B, T, M)`` -> ``audio: (B, n_samples)``.

    Each frame's ``M`` magnitudes (linearly spaced from 0 Hz to Nyquist) become a zero-phase
    FIR filter of ``2 (M - 1)`` taps (inverse real FFT, centred, Hann-windowed); a block of
    ``hop_length`` noise samples is convolved with it (FFT) and the blocks are overlap-added.
    ``noise: (B, >= T * hop)`` gives the excitation (default: :func:`white_noise` of ``seed``).

    Notebook: notebooks/05_ddsp.ipynb
    """
    b, t, m = magnitudes.shape
    taps = 2 * (m - 1)
    if taps < 2:
        raise ConfigError("filtered_noise: needs at least 2 noise bands")
    ir = torch.fft.irfft(magnitudes.to(torch.complex64), n=taps)  # (B, T, taps), zero-phase
    ir = torch.roll(ir, taps // 2, dims=-1) * torch.hann_window(taps, periodic=False, device=ir.device)
    if noise is None:
        noise = white_noise(t * hop_length, batch=b, seed=seed, device=magnitudes.device)
    noise = noise[..., : t * hop_length].expand(b, -1).reshape(b, t, hop_length)
    size = 1 << math.ceil(math.log2(hop_length + taps - 1))
    blocks = torch.fft.irfft(torch.fft.rfft(noise, n=size) * torch.fft.rfft(ir, n=size), n=size)
    blocks = blocks[..., : hop_length + taps - 1]  # (B, T, hop + taps - 1)
    length = (t - 1) * hop_length + hop_length + taps - 1
    out = F.fold(blocks.transpose(1, 2), output_size=(1, length), kernel_size=(1, hop_length + taps - 1),
                 stride=(1, hop_length)).reshape(b, length)
    return out[:, taps // 2: taps // 2 + n_samples]


def convolve(audio: torch.Tensor, ir: torch.Tensor) -> torch.Tensor:
    """Linear convolution by FFT, cut to the input's length: ``audio: (B, N)``, ``ir: (L,)`` -> ``(B, N)``."""
    n = audio.shape[-1] + ir.shape[-1] - 1
    size = 1 << math.ceil(math.log2(n))
    return torch.fft.irfft(torch.fft.rfft(audio, n=size) * torch.fft.rfft(ir, n=size), n=size)[..., : audio.shape[-1]]


def exp_sigmoid(x: torch.Tensor, *, max_value: float = 2.0, floor: float = 1e-7) -> torch.Tensor:
    """The positive squashing of DDSP's decoders: ``max_value * sigmoid(x) ** ln(10) + floor``."""
    return max_value * torch.sigmoid(x) ** math.log(10.0) + floor


# --------------------------------------------------------------------------------------------
# Decoder and the full model
# --------------------------------------------------------------------------------------------
class Decoder(nn.Module):
    """Frame controls to synthesiser parameters: (f0, loudness) -> amplitude, harmonic
    distribution, noise band magnitudes.

    Inputs are scaled to about [0, 1] (MIDI / 127, dB / 100 + 1); an MLP of ``layers`` blocks
    (Linear, LayerNorm, leaky ReLU) of ``hidden`` units, optionally a GRU over time, then a
    linear head. Noise starts quiet (bias -5, as in DDSP).

    Notebook: notebooks/05_ddsp.ipynb
    """

    def __init__(self, *, n_harmonics: int = 60, n_noise: int = 65, hidden: int = 128, layers: int = 3,
                 gru: bool = False, seed: int = 0, noise_max: float = NOISE_MAX) -> None:
        super().__init__()
        self.n_harmonics, self.n_noise, self.noise_max = n_harmonics, n_noise, noise_max
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            blocks: list[nn.Module] = []
            width = 2
            for _ in range(layers):
                blocks += [nn.Linear(width, hidden), nn.LayerNorm(hidden), nn.LeakyReLU(0.1)]
                width = hidden
            self.mlp = nn.Sequential(*blocks)
            self.gru = nn.GRU(hidden, hidden, batch_first=True) if gru else None
            self.head = nn.Linear(hidden * (2 if gru else 1), 1 + n_harmonics + n_noise)
        with torch.no_grad():
            self.head.bias[1 + n_harmonics:] = -5.0

    def forward(self, f0: torch.Tensor, loudness: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``f0, loudness: (B, T)`` -> ``amplitude (B, T, 1)``, ``distribution (B, T, K)`` (raw,
        positive), ``noise (B, T, M)``."""
        x = torch.stack([hz_to_midi(f0) / 127.0, loudness / 100.0 + 1.0], dim=-1)
        h = self.mlp(x)
        if self.gru is not None:
            h = torch.cat([h, self.gru(h)[0]], dim=-1)
        out = self.head(h)
        k = self.n_harmonics
        noise = exp_sigmoid(out[..., 1 + k:], max_value=self.noise_max)
        return exp_sigmoid(out[..., :1]), exp_sigmoid(out[..., 1:1 + k]), noise


class HarmonicPlusNoise(nn.Module):
    """The timbre model of attempt 4: a :class:`Decoder`, the harmonic and noise synthesisers and
    an optional learned reverb (an impulse response whose first tap is the dry signal).

    Notebook: notebooks/05_ddsp.ipynb
    """

    def __init__(self, *, sample_rate: int, hop_length: int, n_harmonics: int = 60, n_noise: int = 65,
                 hidden: int = 128, layers: int = 3, gru: bool = False, reverb_seconds: float = 0.0,
                 seed: int = 0, noise_max: float = NOISE_MAX) -> None:
        super().__init__()
        self.sample_rate, self.hop_length = sample_rate, hop_length
        self.decoder = Decoder(n_harmonics=n_harmonics, n_noise=n_noise, hidden=hidden, layers=layers, gru=gru,
                               seed=seed, noise_max=noise_max)
        n_ir = int(reverb_seconds * sample_rate)
        if n_ir > 1:
            g = torch.Generator().manual_seed(seed + 1)
            decay = torch.exp(-torch.arange(n_ir - 1) / (0.05 * sample_rate))
            self.reverb_ir = nn.Parameter(0.01 * torch.randn(n_ir - 1, generator=g) * decay)
        else:
            self.reverb_ir = None

    def controls(self, f0: torch.Tensor, loudness: torch.Tensor) -> dict[str, torch.Tensor]:
        """Frame parameters: ``harmonics (B, T, K)`` (amplitude times the Nyquist-masked,
        normalised distribution) and ``noise (B, T, M)``."""
        amp, dist, noise = self.decoder(f0, loudness)
        dist = dist * nyquist_mask(f0, n_harmonics=dist.shape[-1], sample_rate=self.sample_rate)
        dist = dist / dist.sum(-1, keepdim=True).clamp_min(1e-7)
        return {"harmonics": amp * dist, "noise": noise, "amplitude": amp[..., 0], "distribution": dist}

    def forward(self, f0: torch.Tensor, loudness: torch.Tensor, *, n_samples: int,
                basis: torch.Tensor | None = None, noise: torch.Tensor | None = None, seed: int = 0) -> torch.Tensor:
        """``f0, loudness: (B, T)`` -> ``audio: (B, n_samples)``. ``basis`` (from
        :func:`harmonic_basis`) and ``noise`` may be computed once and passed in."""
        c = self.controls(f0, loudness)
        if basis is None:
            basis = harmonic_basis(f0, n_harmonics=self.decoder.n_harmonics, sample_rate=self.sample_rate,
                                   hop_length=self.hop_length, n_samples=n_samples)
        audio = harmonics_from_basis(c["harmonics"], basis, n_samples=n_samples)
        audio = audio + filtered_noise(c["noise"], hop_length=self.hop_length, n_samples=n_samples, noise=noise,
                                       seed=seed)
        if self.reverb_ir is not None:
            audio = audio + convolve(audio, torch.cat([audio.new_zeros(1), self.reverb_ir]))
        return audio


# --------------------------------------------------------------------------------------------
# Loss
# --------------------------------------------------------------------------------------------
def _magnitude(audio: torch.Tensor, size: int) -> torch.Tensor:
    spec = S.stft(audio, n_fft=size, hop_length=size // 4)
    return torch.sqrt(spec.real.square() + spec.imag.square() + 1e-12) / (size / 2)  # finite gradient at 0


def spectral_targets(target: torch.Tensor, *, fft_sizes: Sequence[int]) -> dict[int, torch.Tensor]:
    """Magnitudes of ``target: (B, N)`` at each FFT size, computed once for
    :func:`multiscale_spectral_loss` (a fit compares against the same clip at every step)."""
    with torch.no_grad():
        return {size: _magnitude(target, size) for size in fft_sizes if size <= target.shape[-1]}


def multiscale_spectral_loss(generated: torch.Tensor, target: torch.Tensor | dict[int, torch.Tensor], *,
                             fft_sizes: Sequence[int] = (2048, 1024, 512, 256, 128, 64),
                             log_weight: float = 1.0) -> torch.Tensor:
    """Sum over FFT sizes of the mean |S - S'| of magnitudes (scaled by the window sum) plus
    ``log_weight`` times the mean |log S - log S'|; hop = size / 4. ``generated: (B, N)``,
    ``target: (B or 1, N)`` or its :func:`spectral_targets` -> ``(B,)``. Sizes longer than the
    clip are skipped.

    Notebook: notebooks/05_ddsp.ipynb
    """
    if isinstance(target, torch.Tensor):
        target = spectral_targets(target, fft_sizes=fft_sizes)
    total = generated.new_zeros(generated.shape[0])
    for size in fft_sizes:
        if size not in target:
            continue
        a, b = _magnitude(generated, size), target[size]
        total = total + (a - b).abs().mean((-2, -1))
        total = total + log_weight * (torch.log(a + 1e-5) - torch.log(b + 1e-5)).abs().mean((-2, -1))
    return total
