"""Spectral tools: magnitude STFT, log compression and its inverse, Griffin-Lim, and the
differentiable waveform -> log-spectrogram used when the waveform itself is optimised.

Every function takes batched tensors (any leading dimensions) and runs where its tensor lives.
``n_fft`` and ``hop_length`` are always explicit: a defaulted n_fft is how the report's scripts
silently computed 1025 frequency bins where 257 were meant.

Notebook: notebooks/00_listening_to_spectrograms.ipynb
"""
from __future__ import annotations

import math

import torch
import torchaudio.functional as AF

from .errors import ConfigError


def _check(n_fft: int, hop_length: int) -> None:
    if int(n_fft) != n_fft or n_fft < 16:
        raise ConfigError(f"n_fft={n_fft}: must be an integer >= 16 (the report uses 512)")
    if int(hop_length) != hop_length or not 0 < hop_length <= n_fft:
        raise ConfigError(f"hop_length={hop_length}: must be an integer in 1..n_fft={n_fft} (the report uses 256)")


def window(n_fft: int, *, like: torch.Tensor | None = None) -> torch.Tensor:
    """The periodic Hann window of length ``n_fft`` on ``like``'s device and dtype."""
    kw = {} if like is None else {"device": like.device, "dtype": like.dtype if like.is_floating_point() else torch.float32}
    return torch.hann_window(n_fft, **kw)


def stft(audio: torch.Tensor, *, n_fft: int, hop_length: int) -> torch.Tensor:
    """Complex STFT, Hann window, centred frames. ``audio: (..., N) -> (..., n_fft//2+1, T)``."""
    _check(n_fft, hop_length)
    lead = audio.shape[:-1]
    spec = torch.stft(audio.reshape(-1, audio.shape[-1]), n_fft=n_fft, hop_length=hop_length,
                      window=window(n_fft, like=audio), center=True, return_complex=True)
    return spec.reshape(*lead, *spec.shape[-2:])


def magnitude(audio: torch.Tensor, *, n_fft: int, hop_length: int) -> torch.Tensor:
    """STFT magnitude |X|. ``audio: (..., N) -> mag: (..., n_fft//2+1, T)``; differentiable."""
    return stft(audio, n_fft=n_fft, hop_length=hop_length).abs()


def n_frames(n_samples: int, *, hop_length: int) -> int:
    """Number of centred STFT frames for a clip of ``n_samples``."""
    return n_samples // hop_length + 1


def compress(mag: torch.Tensor, *, compression: float) -> torch.Tensor:
    """Log compression S = log(1 + C*X) / log(1 + C) (Caracalla and Roebel). Shape kept."""
    if not compression > 0 or not math.isfinite(compression):
        raise ConfigError(f"compression={compression}: must be a positive finite number (the report uses 1000)")
    return torch.log1p(compression * mag) / math.log1p(compression)


def decompress(spec: torch.Tensor, *, compression: float) -> torch.Tensor:
    """Exact inverse of :func:`compress`, clamped at zero: X = ((1 + C)^S - 1) / C. Shape kept."""
    if not compression > 0 or not math.isfinite(compression):
        raise ConfigError(f"compression={compression}: must be a positive finite number (the report uses 1000)")
    return torch.expm1(spec * math.log1p(compression)).clamp_min(0) / compression


def log_spectrogram(audio: torch.Tensor, *, n_fft: int, hop_length: int, compression: float) -> torch.Tensor:
    """Differentiable waveform -> log-compressed magnitude. ``audio: (..., N) -> (..., F, T)``.

    The gradient of |X| at X = 0 is undefined; a tiny floor keeps it finite when the waveform
    itself is optimised.
    """
    spec = stft(audio, n_fft=n_fft, hop_length=hop_length)
    mag = torch.sqrt(spec.real.square() + spec.imag.square() + 1e-12)
    return compress(mag, compression=compression)


def griffin_lim(
    mag: torch.Tensor,
    *,
    n_fft: int,
    hop_length: int,
    n_iter: int = 100,
    momentum: float = 0.99,
    seed: int = 0,
    length: int | None = None,
) -> torch.Tensor:
    """Waveform from a magnitude spectrogram by Griffin-Lim (torchaudio's fast variant).

    ``mag: (..., n_fft//2+1, T) -> audio: (..., N)``. The initial phase is drawn from ``seed``
    for each clip of a batch alike (so a batched call equals a loop over clips), without
    touching the global random state; runs on ``mag``'s device.
    """
    _check(n_fft, hop_length)
    if mag.shape[-2] != n_fft // 2 + 1:
        raise ConfigError(f"spectrogram has {mag.shape[-2]} frequency bins but n_fft={n_fft} needs {n_fft // 2 + 1}")
    if n_iter < 1 or not 0 <= momentum < 1:
        raise ConfigError(f"griffin_lim: n_iter must be >= 1 and 0 <= momentum < 1 (got {n_iter}, {momentum})")
    devices = [mag.device] if mag.device.type == "cuda" else []
    flat = mag.detach().reshape(-1, *mag.shape[-2:])
    out = []
    with torch.random.fork_rng(devices=devices), torch.no_grad():
        for item in flat:
            torch.manual_seed(seed)
            out.append(AF.griffinlim(item, window(n_fft, like=mag), n_fft, hop_length, n_fft, 1.0,
                                     n_iter, momentum, length, True))
    audio = torch.stack(out)
    return audio.reshape(*mag.shape[:-2], audio.shape[-1])


def spectral_convergence(reference: torch.Tensor, estimate: torch.Tensor) -> torch.Tensor:
    """|| |X_ref| - |X_est| ||_F / || |X_ref| ||_F over the last two axes (0 is perfect)."""
    return torch.linalg.vector_norm(reference - estimate, dim=(-2, -1)) / torch.linalg.vector_norm(reference, dim=(-2, -1))


def to_db(mag: torch.Tensor, *, floor_db: float = -80.0) -> torch.Tensor:
    """Magnitude in decibels relative to its maximum, floored at ``floor_db``."""
    ref = mag.amax(dim=(-2, -1), keepdim=True).clamp_min(1e-10)
    return (20 * torch.log10(mag.clamp_min(1e-10) / ref)).clamp_min(floor_db)


def power_db(mag: torch.Tensor, *, top_db: float = 80.0) -> torch.Tensor:
    """Power in decibels, 10 log10(|X|^2), floored at ``top_db`` below each clip's maximum (as
    librosa's power_to_db with ref=1, the report's attempt 1). Shape kept; differentiable."""
    db = 10 * torch.log10(mag.square().clamp_min(1e-10))
    floor = db.amax(dim=(-2, -1), keepdim=True).detach() - top_db
    return torch.maximum(db, floor)


def from_power_db(db: torch.Tensor) -> torch.Tensor:
    """Magnitude from power in decibels: sqrt(10^(dB/10)), the inverse of :func:`power_db` above
    its floor."""
    return torch.pow(10.0, db / 20.0)
