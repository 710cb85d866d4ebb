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
    """STFT magnitude |X|. ``audio: (..., N) -> mag: (..., n_fft//2+1, T)``; differentiable.

    Notebook: notebooks/00_listening_to_spectrograms.ipynb, notebooks/01_vgg19.ipynb
    """
    return stft(audio, n_fft=n_fft, hop_length=hop_length).abs()


def n_frames(n_samples: int, *, hop_length: int) -> int:
    """Number of centred STFT frames for a clip of ``n_samples``."""
    return n_samples // hop_length + 1


def compress(mag: torch.Tensor, *, compression: float) -> torch.Tensor:
    """Log compression S = log(1 + C*X) / log(1 + C) (Caracalla and Roebel). Shape kept.

    Notebook: notebooks/00_listening_to_spectrograms.ipynb, notebooks/03_caracalla_roebel.ipynb
    """
    if not compression > 0 or not math.isfinite(compression):
        raise ConfigError(f"compression={compression}: must be a positive finite number (the report uses 1000)")
    return torch.log1p(compression * mag) / math.log1p(compression)


def decompress(spec: torch.Tensor, *, compression: float) -> torch.Tensor:
    """Exact inverse of :func:`compress`, clamped at zero: X = ((1 + C)^S - 1) / C. Shape kept.

    Notebook: notebooks/00_listening_to_spectrograms.ipynb
    """
    if not compression > 0 or not math.isfinite(compression):
        raise ConfigError(f"compression={compression}: must be a positive finite number (the report uses 1000)")
    return torch.expm1(spec * math.log1p(compression)).clamp_min(0) / compression


def log_spectrogram(audio: torch.Tensor, *, n_fft: int, hop_length: int, compression: float) -> torch.Tensor:
    """Differentiable waveform -> log-compressed magnitude. ``audio: (..., N) -> (..., F, T)``.

    The gradient of |X| at X = 0 is undefined; a tiny floor keeps it finite when the waveform
    itself is optimised.

    Notebook: notebooks/03_caracalla_roebel.ipynb
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

    Notebook: notebooks/00_listening_to_spectrograms.ipynb
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
    """|| |X_ref| - |X_est| ||_F / || |X_ref| ||_F over the last two axes (0 is perfect).

    Notebook: notebooks/00_listening_to_spectrograms.ipynb
    """
    return torch.linalg.vector_norm(reference - estimate, dim=(-2, -1)) / torch.linalg.vector_norm(reference, dim=(-2, -1))


def to_db(mag: torch.Tensor, *, floor_db: float = -80.0) -> torch.Tensor:
    """Magnitude in decibels relative to its maximum, floored at ``floor_db``.

    Notebook: notebooks/00_listening_to_spectrograms.ipynb
    """
    ref = mag.amax(dim=(-2, -1), keepdim=True).clamp_min(1e-10)
    return (20 * torch.log10(mag.clamp_min(1e-10) / ref)).clamp_min(floor_db)


def power_db(mag: torch.Tensor, *, top_db: float = 80.0) -> torch.Tensor:
    """Power in decibels, 10 log10(|X|^2), floored at ``top_db`` below each clip's maximum (as
    librosa's power_to_db with ref=1, the report's attempt 1). Shape kept; differentiable.

    Notebook: notebooks/01_vgg19.ipynb
    """
    db = 10 * torch.log10(mag.square().clamp_min(1e-10))
    floor = db.amax(dim=(-2, -1), keepdim=True).detach() - top_db
    return torch.maximum(db, floor)


def from_power_db(db: torch.Tensor) -> torch.Tensor:
    """Magnitude from power in decibels: sqrt(10^(dB/10)), the inverse of :func:`power_db` above
    its floor.

    Notebook: notebooks/01_vgg19.ipynb
    """
    return torch.pow(10.0, db / 20.0)


def equalise(content: torch.Tensor, style: torch.Tensor, *, n_fft: int, hop_length: int,
             floor_db: float = -80.0) -> torch.Tensor:
    """The plain-equaliser baseline: ``content`` filtered by the ratio of the style's to the
    content's long-term average magnitude spectrum, its phase kept.

    Y(f, t) = X_content(f, t) * (A_style(f) + e_s) / (A_content(f) + e_c), where A is the STFT
    magnitude averaged over time and each e is ``floor_db`` below that spectrum's maximum (so a
    bin empty in the content is not blown up). Back to sound by inverse STFT (Hann, centred
    frames). The result's average spectrum is the style's, its level the style's; what an
    equaliser cannot change (attack, decay, vibrato, how harmonics evolve) stays the content's.
    ``content: (N,)``, ``style: (M,)`` -> ``(N,)``.

    Notebook: notebooks/04_compare.ipynb
    """
    _check(n_fft, hop_length)
    content, style = torch.as_tensor(content), torch.as_tensor(style).to(content)
    spec = stft(content, n_fft=n_fft, hop_length=hop_length)
    avg_c = spec.abs().mean(-1)
    avg_s = magnitude(style, n_fft=n_fft, hop_length=hop_length).mean(-1)
    floor = 10.0 ** (floor_db / 20.0)
    ratio = (avg_s + floor * avg_s.amax(-1, keepdim=True)) / (avg_c + floor * avg_c.amax(-1, keepdim=True)).clamp_min(1e-12)
    out = torch.istft(spec * ratio[..., None], n_fft=n_fft, hop_length=hop_length, window=window(n_fft, like=content),
                      center=True, length=content.shape[-1])
    return out


# --------------------------------------------------------------------------------------------
# Attempt 3's other representations (issue 14): RI spectrograms, log-frequency bands, chroma
# --------------------------------------------------------------------------------------------
CQT_FMIN = 32.70319566257483  # C1 (Hz): the lowest band of the log-frequency ("cqt") representation


def ri_compress(values: torch.Tensor, *, compression: float) -> torch.Tensor:
    """Sign-preserving log compression sign(x) log(1 + C|x|) / log(1 + C) of real values. Shape kept.

    Notebook: notebooks/06_exploring_attempt3.ipynb
    """
    return torch.sign(values) * compress(values.abs(), compression=compression)


def ri_decompress(values: torch.Tensor, *, compression: float) -> torch.Tensor:
    """Exact inverse of :func:`ri_compress`: sign(y) ((1 + C)^|y| - 1) / C. Shape kept.

    Notebook: notebooks/06_exploring_attempt3.ipynb
    """
    return torch.sign(values) * decompress(values.abs(), compression=compression)


def ri_spectrogram(audio: torch.Tensor, *, n_fft: int, hop_length: int, compression: float) -> torch.Tensor:
    """Compressed real/imaginary STFT stack (Caracalla and Roebel 2020, "RI spectrograms").

    ``audio: (..., N) -> (..., 2, n_fft//2+1, T)``: channel 0 the compressed real part, channel 1
    the compressed imaginary part (:func:`ri_compress`). Differentiable; the phase is kept, so
    :func:`ri_to_audio` inverts it exactly.

    Notebook: notebooks/06_exploring_attempt3.ipynb
    """
    spec = stft(audio, n_fft=n_fft, hop_length=hop_length)
    return ri_compress(torch.stack([spec.real, spec.imag], dim=-3), compression=compression)


def ri_to_stft(ri: torch.Tensor, *, compression: float) -> torch.Tensor:
    """The complex STFT back from an RI stack. ``ri: (..., 2, F, T) -> (..., F, T)`` complex.

    Notebook: notebooks/06_exploring_attempt3.ipynb
    """
    raw = ri_decompress(ri, compression=compression)
    return torch.complex(raw[..., 0, :, :], raw[..., 1, :, :])


def ri_to_audio(ri: torch.Tensor, *, n_fft: int, hop_length: int, compression: float,
                length: int | None = None) -> torch.Tensor:
    """Waveform from an RI stack by inverse STFT (Hann, centred). ``(..., 2, F, T) -> (..., N)``.

    Notebook: notebooks/06_exploring_attempt3.ipynb
    """
    _check(n_fft, hop_length)
    spec = ri_to_stft(ri, compression=compression)
    flat = spec.reshape(-1, *spec.shape[-2:])
    audio = torch.istft(flat, n_fft=n_fft, hop_length=hop_length, window=window(n_fft, like=flat.real),
                        center=True, length=length)
    return audio.reshape(*spec.shape[:-2], audio.shape[-1])


def mel_filterbank(*, sample_rate: int, n_fft: int, n_bins: int) -> torch.Tensor:
    """Triangular mel filterbank (HTK scale, peak 1, 0 Hz to Nyquist). ``-> (n_bins, n_fft//2+1)``.

    Band b rises from mel point b to b + 1 and falls to b + 2 (``n_bins + 2`` points equally
    spaced in mel); each side is at least one STFT bin wide, so a band narrower than the STFT's
    resolution interpolates between the nearest bins instead of coming out empty.

    Notebook: notebooks/06_exploring_attempt3.ipynb
    """
    def to_mel(hz: torch.Tensor) -> torch.Tensor:
        return 2595.0 * torch.log10(1.0 + hz / 700.0)

    top = to_mel(torch.tensor(sample_rate / 2, dtype=torch.float64))
    hz = 700.0 * (10.0 ** (torch.linspace(0, float(top), n_bins + 2, dtype=torch.float64) / 2595.0) - 1.0)
    freqs = torch.linspace(0, sample_rate / 2, n_fft // 2 + 1, dtype=torch.float64)
    step = sample_rate / n_fft
    lo, mid, hi = hz[:-2, None], hz[1:-1, None], hz[2:, None]
    rise = 1.0 - (mid - freqs) / (mid - lo).clamp_min(step)
    fall = 1.0 - (freqs - mid) / (hi - mid).clamp_min(step)
    return torch.where(freqs <= mid, rise, fall).clamp_min(0.0).float()


def log_frequency_filterbank(*, sample_rate: int, n_fft: int, n_bins: int, fmin: float = CQT_FMIN) -> torch.Tensor:
    """A constant-Q-like filterbank on STFT bins: ``n_bins`` triangles log-spaced from ``fmin`` to
    Nyquist (same number of bands per octave throughout). ``-> (n_bins, n_fft//2+1)``.

    Band b is centred at f_b = fmin * 2^(b / bpo), bpo = n_bins / log2(Nyquist / fmin), and
    weighs STFT bin k by max(0, 1 - |f_k - f_b| / w_b), w_b = max(f_b (2^(1/bpo) - 1), bin
    spacing): where a band is narrower than the STFT's resolution it interpolates between the two
    nearest bins, so no band is empty. A pitch change of s semitones shifts the bands by
    s * bpo / 12 along the band axis (exactly, where bands are wider than a bin).

    Notebook: notebooks/06_exploring_attempt3.ipynb
    """
    nyquist = sample_rate / 2
    if not 0 < fmin < nyquist:
        raise ConfigError(f"fmin={fmin}: must lie between 0 and Nyquist ({nyquist} Hz)")
    bpo = n_bins / math.log2(nyquist / fmin)
    centres = fmin * 2.0 ** (torch.arange(n_bins, dtype=torch.float64) / bpo)
    freqs = torch.linspace(0, nyquist, n_fft // 2 + 1, dtype=torch.float64)
    width = torch.clamp(centres * (2.0 ** (1.0 / bpo) - 1.0), min=sample_rate / n_fft)
    fb = (1.0 - (freqs[None, :] - centres[:, None]).abs() / width[:, None]).clamp_min(0.0)
    return fb.float()


def band_spectrogram(magnitude_: torch.Tensor, filterbank: torch.Tensor, *, compression: float) -> torch.Tensor:
    """Log-compressed band energies: compress(filterbank @ |X|). ``(..., F, T), (K, F) -> (..., K, T)``.

    Notebook: notebooks/06_exploring_attempt3.ipynb
    """
    return compress(torch.matmul(filterbank.to(magnitude_), magnitude_), compression=compression)


def chroma_filterbank(*, sample_rate: int, n_fft: int) -> torch.Tensor:
    """librosa's chroma filterbank (12 pitch classes from C, A440 tuning) as a tensor ``(12, n_fft//2+1)``.

    Notebook: notebooks/06_exploring_attempt3.ipynb
    """
    import librosa

    return torch.from_numpy(librosa.filters.chroma(sr=sample_rate, n_fft=n_fft, tuning=0.0)).float()


def chroma(magnitude_: torch.Tensor, filterbank: torch.Tensor, *, floor: float) -> torch.Tensor:
    """Differentiable chromagram, unit length per frame: c_t / sqrt(||c_t||^2 + floor^2).

    ``magnitude_: (..., F, T)``, ``filterbank: (12, F)`` -> ``(..., 12, T)``. ``floor`` (> 0) keeps
    the gradient finite in silent frames, which come out near zero instead of a random direction.

    Notebook: notebooks/06_exploring_attempt3.ipynb
    """
    c = torch.matmul(filterbank.to(magnitude_), magnitude_)
    return c * torch.rsqrt(c.square().sum(-2, keepdim=True) + floor ** 2)


# --------------------------------------------------------------------------------------------
# Attempt 6, audio mosaicing: back to sound from the style's complex frames and the activations
# --------------------------------------------------------------------------------------------


def istft(spec: torch.Tensor, *, n_fft: int, hop_length: int, length: int) -> torch.Tensor:
    """Inverse of :func:`stft` (Hann window, centred frames). ``spec: (..., n_fft//2+1, T) -> (..., length)``.

    Notebook: notebooks/08_mosaicing.ipynb
    """
    _check(n_fft, hop_length)
    lead = spec.shape[:-2]
    flat = spec.reshape(-1, *spec.shape[-2:])
    audio = torch.istft(flat, n_fft=n_fft, hop_length=hop_length, window=window(n_fft, like=flat.real),
                        center=True, length=length)
    return audio.reshape(*lead, length)


def phase_iterations(spec: torch.Tensor, magnitude_: torch.Tensor, *, n_fft: int, hop_length: int, length: int,
                     n_iter: int) -> torch.Tensor:
    """Griffin-Lim iterations that start from ``spec``'s own phase instead of a random one.

    Each iteration goes to sound and back (inverse STFT, STFT) and puts ``magnitude_`` under the
    phase that came back, so the frames agree where they overlap. ``spec: (..., F, T)`` complex,
    ``magnitude_: (..., F, T)`` -> ``audio: (..., length)``. ``n_iter = 0`` is a plain inverse STFT.

    Notebook: notebooks/08_mosaicing.ipynb
    """
    current = spec
    for _ in range(n_iter):
        back = stft(istft(current, n_fft=n_fft, hop_length=hop_length, length=length), n_fft=n_fft,
                    hop_length=hop_length)[..., :spec.shape[-1]]
        current = magnitude_ * torch.exp(1j * torch.angle(back))
    return istft(current, n_fft=n_fft, hop_length=hop_length, length=length)


def mosaic_resynthesis(frames: torch.Tensor, activations: torch.Tensor, *, n_fft: int, hop_length: int,
                       length: int, n_iter: int = 0, magnitude_: torch.Tensor | None = None) -> torch.Tensor:
    """The mosaic as sound: Y = X_style H, the style's complex frames (their phases included)
    mixed by the activations, then an inverse STFT (Driedger et al. 2015).

    ``frames: (F, K)`` complex (one style frame per template, scaled like the templates),
    ``activations: (..., K, T)`` -> ``audio: (..., length)``. With ``n_iter > 0``,
    :func:`phase_iterations` then moves the phase toward ``magnitude_`` (default |Y|; the
    mosaic's model W H is the usual choice), starting from Y's phase.

    Notebook: notebooks/08_mosaicing.ipynb
    """
    h = activations.to(frames.real.dtype)
    spec = torch.complex(torch.matmul(frames.real, h), torch.matmul(frames.imag, h))  # (..., F, T)
    if n_iter <= 0:
        return istft(spec, n_fft=n_fft, hop_length=hop_length, length=length)
    target = spec.abs() if magnitude_ is None else magnitude_
    return phase_iterations(spec, target, n_fft=n_fft, hop_length=hop_length, length=length, n_iter=n_iter)


def band_pooling(*, sample_rate: int, n_fft: int, bands_per_octave: int) -> torch.Tensor:
    """A 0/1 matrix ``(F', n_fft//2+1)`` that sums STFT bins into bands no narrower than one bin
    and no wider than 1/``bands_per_octave`` of an octave: every bin on its own at the bottom (where
    a bin is already wider than such a band), log-spaced bands above. Each bin lies in exactly one
    band, so sums (and the energy a KL fit sees) are kept. ``bands_per_octave = 0``: the identity.

    Notebook: notebooks/08_mosaicing.ipynb
    """
    n_bins = n_fft // 2 + 1
    if bands_per_octave <= 0:
        return torch.eye(n_bins)
    ratio = 2.0 ** (1.0 / bands_per_octave)
    edges = [0]
    while edges[-1] < n_bins:
        lo = edges[-1]
        width = max(1, int(lo * (ratio - 1.0)))  # bins of the band [lo, lo * ratio)
        edges.append(min(n_bins, lo + width))
    pool = torch.zeros(len(edges) - 1, n_bins)
    for i, (a, b) in enumerate(zip(edges, edges[1:])):
        pool[i, a:b] = 1.0
    return pool
