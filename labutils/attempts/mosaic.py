"""Attempt 6: audio mosaicing, the content rebuilt from the style's own frames ("Let it Bee").

Driedger, Pratzlich and Muller (ISMIR 2015) fix the templates W of a non-negative matrix
factorisation V ~ W H to the style's magnitude frames (here also those of pitch-shifted copies of
the style, to cover the content's notes) and learn only the activations H, with the KL
multiplicative update, so that W H approximates the content's magnitude spectrogram V. Between
iterations three constraints push H toward something that sounds like the style:

* repetition: a template keeps only its strongest activation within a few frames (no stutter),
* polyphony: a content frame keeps only its few strongest templates,
* continuity: a diagonal filter, so that template k at frame m favours template k + 1 at m + 1
  and the style's frames play in runs (its attacks and decays survive).

What the constraints suppress shrinks by a factor that falls from nearly 1 to 1 - strength over
the iterations (:func:`labutils.losses.suppression`). The result is the style's complex STFT
frames mixed by H (their phases come along) and an inverse STFT, with optional Griffin-Lim
iterations toward W H started from those phases (:func:`labutils.spectral.mosaic_resynthesis`).

How it runs: through the lab's one loop, :func:`labutils.optim.optimise`, on its non-gradient
path: :class:`~labutils.attempts.base.Problem` carries ``update(H, step)``, which applies the
constraints and one multiplicative update to H in place and returns the KL divergence (divided by
the content's total magnitude) as the loss; so progress, Stop, the live loss curve, the NaN guard,
interrupts and run folders work as for every other attempt. The loss reported at a step is that
of the (constrained) activations the step started from: it comes from the product W H the update
computes anyway. ``beta`` is unused (a beta list gives copies of one result).

Notebook: notebooks/08_mosaicing.ipynb
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch

from .. import losses as L
from .. import spectral as S
from ..config import MosaicConfig
from ..errors import ConfigError
from .base import Problem, prepare

DISPLAY_COMPRESSION = 1000.0  # the C of every displayed spectrogram (labutils.transfer uses the same)


@dataclass
class Templates:
    """The style's frames as NMF templates.

    ``frames: (F, K)`` complex STFT frames, each divided by its magnitude's sum; ``magnitude:
    (F, K)`` = |frames| (the templates W, columns summing to 1); ``segments: (K,)`` which copy of
    the style each template comes from (an index into ``shifts``); ``index: (K,)`` the frame's
    position in its copy; ``shifts``: the semitones of each copy.
    """

    frames: torch.Tensor
    magnitude: torch.Tensor
    segments: torch.Tensor
    index: torch.Tensor
    shifts: tuple[int, ...]

    @property
    def count(self) -> int:
        return self.magnitude.shape[-1]


def pitch_shifted(style: torch.Tensor, semitones: int, *, sample_rate: int) -> torch.Tensor:
    """The style played ``semitones`` higher by resampling (shorter when higher, as a tape runs
    faster; formants move with the pitch). ``style: (M,) -> (M')``; 0 returns the input.

    Notebook: notebooks/08_mosaicing.ipynb
    """
    if semitones == 0:
        return style
    import soxr  # librosa's own resampler (its "soxr_hq"), called directly

    ratio = 2.0 ** (semitones / 12.0)
    y = soxr.resample(style.detach().float().cpu().numpy(), sample_rate * ratio, sample_rate, quality="HQ")
    return torch.from_numpy(y.copy()).to(style)


def style_templates(style: torch.Tensor, *, sample_rate: int, n_fft: int, hop_length: int,
                    pitch_shifts: Sequence[int] = (0,), floor_db: float = -60.0) -> Templates:
    """The templates of attempt 6: the STFT frames of ``style: (M,)`` and of its pitch-shifted
    copies, frames quieter than ``floor_db`` below the loudest dropped, each scaled to unit sum.

    Notebook: notebooks/08_mosaicing.ipynb
    """
    shifts = tuple(int(s) for s in pitch_shifts) or (0,)
    specs = [S.stft(pitched, n_fft=n_fft, hop_length=hop_length)
             for pitched in (pitch_shifted(style, s, sample_rate=sample_rate) for s in shifts)]
    sums = [spec.abs().sum(0) for spec in specs]
    loudest = max(float(s.max()) for s in sums)
    if not loudest > 0:
        raise ConfigError("the style clip is silent: the mosaic has no frames to build from; pick another style clip")
    floor = loudest * 10.0 ** (floor_db / 20.0)
    frames, segments, index = [], [], []
    for n, (spec, total) in enumerate(zip(specs, sums)):
        kept = torch.nonzero(total > floor).squeeze(-1)
        frames.append(spec[:, kept] / total[kept])
        segments.append(torch.full((kept.numel(),), n, dtype=torch.long, device=spec.device))
        index.append(kept)
    frames_ = torch.cat(frames, dim=1)
    return Templates(frames=frames_, magnitude=frames_.abs(), segments=torch.cat(segments), index=torch.cat(index),
                     shifts=shifts)


def constrain(activations: torch.Tensor, step: int, cfg: MosaicConfig, *,
              segments: torch.Tensor | None = None) -> torch.Tensor:
    """Let it Bee's three constraints in order (repetition, polyphony, continuity) at ``step`` of
    ``cfg.steps``. ``activations: (..., K, T)`` -> same shape.

    Notebook: notebooks/08_mosaicing.ipynb
    """
    h = L.repetition_constraint(activations, width=cfg.repetition,
                                factor=L.suppression(step, cfg.steps, strength=cfg.repetition_strength))
    h = L.polyphony_constraint(h, keep=cfg.polyphony,
                               factor=L.suppression(step, cfg.steps, strength=cfg.polyphony_strength))
    return L.continuity_filter(h, length=cfg.continuity, segments=segments)


def initial_activations(templates: torch.Tensor, content_mag: torch.Tensor, *, init: str,
                        generator: torch.Generator) -> torch.Tensor:
    """H0 ``(K, T)``: seeded uniform values in (0, 1] (``init="noise"``, Let it Bee), or each
    template's cosine similarity to each content frame (``init="content"``), scaled so that
    W H0 has the content's total magnitude. ``templates: (F, K)``, ``content_mag: (F, T)``.

    Notebook: notebooks/08_mosaicing.ipynb
    """
    k, t = templates.shape[-1], content_mag.shape[-1]
    if init == "noise":
        h = 1.0 - torch.rand((k, t), generator=generator).to(templates)
    else:
        w = templates / torch.linalg.vector_norm(templates, dim=0, keepdim=True).clamp_min(1e-12)
        v = content_mag / torch.linalg.vector_norm(content_mag, dim=0, keepdim=True).clamp_min(1e-12)
        h = (w.transpose(0, 1) @ v).clamp_min(0) + 1e-6
    scale = content_mag.sum() / (templates @ h).sum().clamp_min(1e-12)
    return h * scale


def build(content: torch.Tensor, style: torch.Tensor, cfg: MosaicConfig,
          betas: Sequence[float] | None = None) -> Problem:
    """Set up attempt 6 on ``content: (N,)`` and ``style: (M,)``.

    ``Problem.init`` is H0 ``(1, K, T)`` (K templates, T content frames); ``update(H, step)``
    constrains H and applies one KL multiplicative update in place, returning the KL divergence
    over the content's total magnitude as ``total`` and ``content`` (``style`` is 0), each
    ``(B,)``. ``decode(H)`` is the mosaic's audio ``(B, N)`` (one copy per beta: beta is unused);
    ``preview(H)`` the log-compressed model W H ``(B, F, T)``.

    Notebook: notebooks/08_mosaicing.ipynb
    """
    setup = prepare(content, style, cfg, betas)
    device, batch = setup.device, setup.batch
    kw = dict(n_fft=cfg.n_fft, hop_length=cfg.hop_length)
    tpl = style_templates(setup.style, sample_rate=cfg.sample_rate, pitch_shifts=cfg.pitch_shifts,
                          floor_db=cfg.template_floor_db, **kw)
    target = S.magnitude(setup.content, **kw)  # V: (F, T)
    norm = target.sum().clamp_min(1e-12)
    if not float(norm) > 0:
        raise ConfigError("the content clip is silent: there is nothing to rebuild; pick another content clip")
    # the fit sees bands (bins summed, so energies are kept); the sound keeps every bin of every frame
    if cfg.bands_per_octave > 0:
        pool = S.band_pooling(sample_rate=cfg.sample_rate, n_fft=cfg.n_fft, bands_per_octave=cfg.bands_per_octave)
        pool = pool.to(device)
        w_full, w, target = tpl.magnitude, pool @ tpl.magnitude, pool @ target
    else:
        w_full = w = tpl.magnitude
    h0 = initial_activations(w, target, init=cfg.init, generator=setup.generator)[None]  # (1, K, T)
    n_content = setup.content.shape[-1]

    def update(h: torch.Tensor, step: int) -> dict[str, torch.Tensor]:
        constrained = constrain(h, step, cfg, segments=tpl.segments)
        new, kl = L.nmf_activation_update(target, w, constrained)
        h.copy_(new)
        loss = (kl / norm).reshape(-1)[:1].expand(batch)
        return {"total": loss, "content": loss, "style": torch.zeros_like(loss)}

    def decode(h: torch.Tensor) -> torch.Tensor:
        model = torch.matmul(w_full, h) if cfg.griffin_lim_iters > 0 else None
        audio = S.mosaic_resynthesis(tpl.frames, h, length=n_content, n_iter=cfg.griffin_lim_iters,
                                     magnitude_=model, **kw)
        return audio.reshape(-1, n_content)[:1].expand(batch, -1)

    def preview(h: torch.Tensor) -> torch.Tensor:
        model = torch.matmul(w_full, h) / (cfg.n_fft / 4)
        return S.compress(model, compression=DISPLAY_COMPRESSION).reshape(-1, *model.shape[-2:])[:1].expand(batch, -1, -1)

    def loss_fn(h: torch.Tensor) -> dict[str, torch.Tensor]:  # the KL of H as it is (no update)
        loss = (L.kl_divergence(target, torch.matmul(w, h)) / norm).reshape(-1)[:1].expand(batch)
        return {"total": loss, "content": loss, "style": torch.zeros_like(loss)}

    k, t = w.shape[-1], target.shape[-1]
    info = {"mosaic": {"templates": k, "content_frames": t, "fit_bands": w.shape[0], "pitch_shifts": list(tpl.shifts),
                       "templates_per_shift": [int((tpl.segments == i).sum()) for i in range(len(tpl.shifts))]}}
    weights = {"source": "the style clip's own STFT frames (no network, no pretrained weights)"}
    return Problem(init=h0, loss_fn=loss_fn, decode=decode, preview=preview, lr=cfg.lr, weights=weights,
                   device=device, info=info, update=update, flops_per_step=4.0 * w.shape[0] * k * t)


LONG_CONTENT = ("prelude_piano", "moonlight_piano", "furelise_piano", "ode_piano", "prelude_flute", "moonlight_flute",
                "furelise_flute", "ode_flute")
LONG_STYLE = ("drums_loop", "guitar_em9", "bass_voxy", "tabla_loop", "pad_drone", "piano_ambient", "ode_violin")


def long_pair(seconds: float = 30.0, *, sample_rate: int = 22050) -> tuple[torch.Tensor, torch.Tensor]:
    """A long real pair from the bundled clips, end to end: ``seconds`` of piano and flute
    melodies (content) and of drums, guitar, bass, tabla, pad and piano recordings (style), each
    ``(round(seconds * sample_rate),)``; the clips repeat only when ``seconds`` exceeds what they hold.

    Notebook: notebooks/08_mosaicing.ipynb
    """
    from .. import audio as A

    n = round(seconds * sample_rate)
    out = []
    for names in (LONG_CONTENT, LONG_STYLE):
        clips = torch.cat([A.load(A.resolve(name)[0], sample_rate=sample_rate) for name in names])
        out.append(clips.repeat(n // clips.numel() + 1)[:n])
    return out[0], out[1]


def time_long_pair(seconds: float = 30.0, config: MosaicConfig | None = None) -> dict:
    """Seconds a whole mosaic takes (templates, every iteration, resynthesis) on :func:`long_pair`.

    Printed by ``python -m labutils.attempts.mosaic --seconds 30``, with the CPU and thread count.

    Notebook: notebooks/08_mosaicing.ipynb
    """
    import os
    import time

    from .. import transfer
    from ..speed import cpu_info

    cfg = (config or MosaicConfig()).replace(duration=min(seconds, 60.0)).validate()
    content, style = long_pair(seconds, sample_rate=cfg.sample_rate)
    start = time.perf_counter()
    result = transfer.solve("mosaic", content, style, cfg, progress=False)
    wall = time.perf_counter() - start
    times = [row["time"] for row in result.history]
    return {"seconds_content": content.numel() / cfg.sample_rate, "seconds_style": style.numel() / cfg.sample_rate,
            "sample_rate": cfg.sample_rate, "iterations": result.steps_done, "wall_s": round(wall, 2),
            "iterations_s": round(times[-1], 2) if times else 0.0, **result.info["mosaic"],
            "device": result.device, **(cpu_info() if result.device == "cpu" else {}),
            "load_average_1min": round(os.getloadavg()[0], 2)}  # other work on the machine slows the figure


if __name__ == "__main__":  # python -m labutils.attempts.mosaic --seconds 30
    import argparse
    import json

    from ..optim import tune_allocator

    parser = argparse.ArgumentParser(description="time attempt 6 on a long real pair (bundled clips end to end)")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of content and style (default: 30)")
    parser.add_argument("--steps", type=int, default=None, help="NMF iterations (default: MosaicConfig's)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda (default: auto)")
    args = parser.parse_args()
    tune_allocator()
    base = MosaicConfig(device=args.device)
    print(json.dumps(time_long_pair(args.seconds, base.replace(steps=args.steps) if args.steps else base)))
