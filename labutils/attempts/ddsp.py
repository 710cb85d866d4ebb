"""Attempt 4: one-shot harmonic-plus-noise resynthesis (DDSP-style).

The content is its pitch and loudness curves; the timbre is a small decoder that turns them
into a harmonic distribution, an overall amplitude and noise band magnitudes for the
synthesiser of :mod:`labutils.dsp`. The optimised variables are the decoder's weights (and a
reverb impulse response), fitted to the style clip's own f0 and loudness with a multi-scale
spectral loss; ``decode`` then renders the content's curves (octave-shifted to the style's
register, loudness moved into the style's range) through the fitted decoder.

Notebook: notebooks/05_ddsp.ipynb
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch.func import functional_call

from .. import dsp
from .. import spectral as S
from ..config import DDSPConfig
from .base import Problem, prepare

DISPLAY_COMPRESSION = 1000.0  # the C of every displayed spectrogram (labutils.transfer uses the same)


def control_hop(cfg: DDSPConfig) -> int:
    """Samples per control frame: ``round(sample_rate / frame_rate)``."""
    return max(1, round(cfg.sample_rate / cfg.frame_rate))


#: said when the style is unpitched or polyphonic (notebook 05, "Where it fails")
STYLE_NOTE = ("style looks unpitched or polyphonic: the harmonic synthesiser fitted to it learns no one "
              "instrument's partials, and the result is a buzzing harmonic stack or filtered noise")


def build(content: torch.Tensor, style: torch.Tensor, cfg: DDSPConfig,
          betas: Sequence[float] | None = None) -> Problem:
    """Set up attempt 4 on ``content: (N,)`` and ``style: (M,)``: analyse both, build the decoder.

    ``Problem.init`` is the list of the model's parameters; the loss is the multi-scale spectral
    loss of the resynthesised style, reported as ``style`` (``content`` is 0). ``decode`` renders
    the content ``(B, N)`` (one copy per beta: beta is unused); ``preview`` is the log-compressed
    spectrogram of the current style reconstruction ``(B, F, T)``.

    Notebook: notebooks/05_ddsp.ipynb
    """
    setup = prepare(content, style, cfg, betas)
    device, batch, rate = setup.device, setup.batch, cfg.sample_rate
    hop = control_hop(cfg)
    kw = dict(sample_rate=rate, hop_length=hop, fmin=cfg.fmin, fmax=cfg.fmax)
    a_style, a_content = dsp.analyse(setup.style.cpu(), **kw), dsp.analyse(setup.content.cpu(), **kw)
    shift = dsp.octave_shift(a_content, a_style) if cfg.octave_shift == "auto" else int(cfg.octave_shift)
    c_f0 = (a_content.f0 * 2.0 ** shift).clamp(max=rate / 2)
    c_loud = dsp.restyle_articulation(a_content, a_style) if cfg.articulation == "style" else a_content.loudness
    c_loud = dsp.match_loudness(c_loud, a_style.loudness, shift_db=cfg.loudness_shift, auto=cfg.auto_loudness)

    model = dsp.HarmonicPlusNoise(sample_rate=rate, hop_length=hop, n_harmonics=cfg.harmonics,
                                  n_noise=cfg.noise_bands, hidden=cfg.hidden, layers=cfg.layers, gru=cfg.gru,
                                  reverb_seconds=cfg.reverb_seconds if cfg.reverb else 0.0, seed=cfg.seed,
                                  noise_max=cfg.noise_max).to(device)
    names = [n for n, _ in model.named_parameters()]
    init = [p.detach().clone() for _, p in model.named_parameters()]

    n_style, n_content = setup.style.shape[-1], setup.content.shape[-1]
    s_f0, s_loud = a_style.f0[None].to(device), a_style.loudness[None].to(device)
    with torch.no_grad():
        basis = dsp.harmonic_basis(s_f0, n_harmonics=cfg.harmonics, sample_rate=rate, hop_length=hop,
                                   n_samples=n_style)
        noise = dsp.white_noise(s_f0.shape[-1] * hop, seed=cfg.seed, device=device)
    n_frames = s_f0.shape[-1]
    crop = round(cfg.crop_seconds * rate / hop) if cfg.crop_seconds > 0 else 0
    lead = -(-int(cfg.reverb_seconds * rate) // hop) if cfg.reverb else 0  # frames of reverb tail to warm up
    windows = 0 < crop and crop + lead < n_frames
    target = None if windows else dsp.spectral_targets(setup.style[None], fft_sizes=cfg.fft_sizes)
    picker = torch.Generator().manual_seed(cfg.seed)

    def run(params: list[torch.Tensor], f0: torch.Tensor, loud: torch.Tensor, n: int, **extra) -> torch.Tensor:
        return functional_call(model, dict(zip(names, params)), (f0, loud), {"n_samples": n, "seed": cfg.seed, **extra})

    def reconstruct(params: list[torch.Tensor]) -> torch.Tensor:
        return run(params, s_f0, s_loud, n_style, basis=basis, noise=noise)  # (1, M)

    def window_loss(params: list[torch.Tensor]) -> torch.Tensor:
        # a random window of `crop` frames, synthesised from `lead` frames earlier so that the
        # reverb tail entering the window is there; the loss sees the window only
        start = int(torch.randint(0, n_frames - crop + 1, (1,), generator=picker))
        first = max(0, start - lead)
        n = min((start + crop - first) * hop, n_style - first * hop)
        audio = run(params, s_f0[:, first:start + crop], s_loud[:, first:start + crop], n,
                    basis=basis[:, first:start + crop], noise=noise[:, first * hop:(start + crop) * hop])
        skip = (start - first) * hop
        part = dsp.spectral_targets(setup.style[None, first * hop + skip:first * hop + n], fft_sizes=cfg.fft_sizes)
        return dsp.multiscale_spectral_loss(audio[:, skip:], part, fft_sizes=cfg.fft_sizes)

    def loss_fn(params: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        if windows:
            loss = window_loss(params)
        else:
            loss = dsp.multiscale_spectral_loss(reconstruct(params), target, fft_sizes=cfg.fft_sizes)
        loss = loss.expand(batch)
        return {"total": loss, "content": torch.zeros_like(loss), "style": loss}

    def decode(params: list[torch.Tensor]) -> torch.Tensor:
        audio = run(list(params), c_f0[None].to(device), c_loud[None].to(device), n_content)
        return audio.expand(batch, -1)

    def preview(params: list[torch.Tensor]) -> torch.Tensor:
        spec = S.log_spectrogram(reconstruct(list(params)), n_fft=cfg.n_fft, hop_length=cfg.hop_length,
                                 compression=DISPLAY_COMPRESSION)
        return spec.expand(batch, -1, -1)

    notes = [] if a_content.monophonic else [dsp.POLYPHONY_NOTE + f" (monophony score {a_content.monophony:.2f})"]
    if not a_style.monophonic:  # a drum loop, a chord: the synthesiser has no one pitch to learn from
        notes.append(STYLE_NOTE + f" (monophony score {a_style.monophony:.2f})")
    note = "; ".join(notes)
    info = {"ddsp": {"octave_shift": shift, "control_hop": hop, "content": a_content.summary(),
                     "style": a_style.summary(), "parameters": sum(p.numel() for p in init),
                     **({"note": note} if note else {})}}
    weights = {"source": "fitted to the style clip (no pretrained weights)", **({"note": note} if note else {})}
    return Problem(init=init, loss_fn=loss_fn, decode=decode, preview=preview, lr=cfg.lr, weights=weights,
                   device=device, info=info)
