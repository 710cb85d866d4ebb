"""Attempt 3: Caracalla and Roebel's sound-texture statistics (random multi-scale CNN).

Log-compressed spectrogram S = log(1 + C|X|) / log(1 + C), one layer (or more) of random k x k
convolutions per kernel size, and per kernel size the time-summed correlations per frequency
H(i, j, f) = sum_t F_i(f, t) F_j(f, t). The optimised variable is the spectrogram (then
Griffin-Lim) or the waveform itself (through the differentiable STFT).

The levers of issue 14 (each a config field, the report's choice by default):

* ``representation``: "stft" log-magnitude (report); "ri" the compressed real and imaginary
  parts (Caracalla and Roebel 2020; waveform domain only; the two parts go through the network
  as two images and their feature maps are stacked, 2C channels); "mel" / "cqt" log-compressed
  log-frequency bands of the STFT magnitude. In the spectrogram domain the optimised variable
  stays the log-STFT magnitude (Griffin-Lim needs it) and the bands are computed from it.
* ``statistic``: "per-frequency" H (report), "frequency-frequency" (per filter, F x F),
  "time-frequency" (C x C, summed over time and frequency: shift-invariant along frequency).
* ``content_term``: "features" (report), "chroma" (a differentiable chromagram of the STFT
  magnitude), "none" (alpha ignored; the start is the content and the steps are the brake).
* ``content_kernel_sizes`` / ``style_kernel_sizes``, ``content_depths`` / ``style_depths``:
  which feature maps each term uses (empty: all). The network is built with the kernel sizes
  some term uses.

With every lever at its default the loss is the report's, through the same fused fast path.

Notebook: notebooks/03_caracalla_roebel.ipynb
Notebook: notebooks/06_exploring_attempt3.ipynb
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch

from .. import losses as L
from .. import spectral as S
from ..config import CaracallaRoebelConfig
from ..errors import ConfigError
from ..nets import RandomCNN
from .base import Problem, prepare

_CHROMA_FLOOR = 1e-3  # chroma frames are normalised with a floor this far (-60 dB) below the loudest
_CHROMA_LOUD = 1e-2  # frames within 40 dB of the content's loudest count in the chroma loss


def selection(cfg: CaracallaRoebelConfig) -> tuple[list[int], list[int], list[int]]:
    """The kernel sizes to build and which feature maps each term reads.

    Returns ``(net_sizes, content_index, style_index)``: the network's kernel sizes (those some
    term uses, in ``kernel_sizes`` order) and positions in its features list (layer-major, as
    :meth:`labutils.nets.RandomCNN.features` returns them). ``content_index`` is empty unless
    the content term is "features".

    Notebook: notebooks/06_exploring_attempt3.ipynb
    """
    content_sizes = set(cfg.content_kernel_sizes or cfg.kernel_sizes)
    style_sizes = set(cfg.style_kernel_sizes or cfg.kernel_sizes)
    content_depths = set(cfg.content_depths or range(1, cfg.layers + 1))
    style_depths = set(cfg.style_depths or range(1, cfg.layers + 1))
    on_features = cfg.content_term == "features"
    net_sizes = [int(k) for k in cfg.kernel_sizes if k in style_sizes or (on_features and k in content_sizes)]

    def index(sizes: set, layers: set) -> list[int]:
        return [layer * len(net_sizes) + p for layer in range(cfg.layers) if layer + 1 in layers
                for p, k in enumerate(net_sizes) if k in sizes]

    return net_sizes, (index(content_sizes, content_depths) if on_features else []), index(style_sizes, style_depths)


def is_report_path(cfg: CaracallaRoebelConfig) -> bool:
    """True when every lever is at the report's choice (the loss runs the original fused path)."""
    net_sizes, c_idx, s_idx = selection(cfg)
    every = list(range(cfg.layers * len(net_sizes)))
    return (cfg.representation == "stft" and cfg.statistic == "per-frequency" and cfg.content_term == "features"
            and net_sizes == [int(k) for k in cfg.kernel_sizes] and c_idx == every and s_idx == every
            and getattr(cfg, "guide", "none") == "none")


def representation(cfg: CaracallaRoebelConfig, *, device: torch.device | str = "cpu") -> Callable:
    """``represent(audio (B, N)) -> (rep, mag)``: what the network sees and the STFT magnitude.

    ``rep``: ``(B, F, T)`` ("stft": log-compressed magnitude; "mel"/"cqt": ``(B, n_bins, T)``
    log-compressed bands) or ``(B, 2, F, T)`` ("ri"); ``mag``: ``(B, n_fft//2+1, T)``.

    Notebook: notebooks/06_exploring_attempt3.ipynb
    """
    bank = band_filterbank(cfg, device=device)

    def represent(audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        spec = S.stft(audio, n_fft=cfg.n_fft, hop_length=cfg.hop_length)
        mag = torch.sqrt(spec.real.square() + spec.imag.square() + 1e-12)
        if cfg.representation == "ri":
            return S.ri_compress(torch.stack([spec.real, spec.imag], dim=-3), compression=cfg.compression), mag
        if bank is not None:
            return S.band_spectrogram(mag, bank, compression=cfg.compression), mag
        return S.compress(mag, compression=cfg.compression), mag

    return represent


def band_filterbank(cfg: CaracallaRoebelConfig, *, device: torch.device | str = "cpu") -> torch.Tensor | None:
    """The ``(n_bins, n_fft//2+1)`` filterbank of a "mel" or "cqt" representation, else None."""
    if cfg.representation == "mel":
        return S.mel_filterbank(sample_rate=cfg.sample_rate, n_fft=cfg.n_fft, n_bins=cfg.n_bins).to(device)
    if cfg.representation == "cqt":
        return S.log_frequency_filterbank(sample_rate=cfg.sample_rate, n_fft=cfg.n_fft, n_bins=cfg.n_bins).to(device)
    return None


def build(content: torch.Tensor, style: torch.Tensor, cfg: CaracallaRoebelConfig,
          betas: Sequence[float] | None = None) -> Problem:
    """Set up attempt 3 on ``content: (N,)`` and ``style: (M,)``; targets computed once, no_grad.

    Notebook: notebooks/03_caracalla_roebel.ipynb
    Notebook: notebooks/06_exploring_attempt3.ipynb
    """
    setup = prepare(content, style, cfg, betas)
    if not is_report_path(cfg):
        return _build_levers(setup, cfg)
    content, device, batch = setup.content, setup.device, setup.batch
    net = RandomCNN(filters=cfg.filters, kernel_sizes=cfg.kernel_sizes, layers=cfg.layers, seed=cfg.net_seed,
                    fast=cfg.fast, device=device, precision=getattr(cfg, "precision", "fp32"))
    spec_kw = dict(n_fft=cfg.n_fft, hop_length=cfg.hop_length, compression=cfg.compression)
    with torch.no_grad():
        content_spec = S.log_spectrogram(content, **spec_kw)  # (F, T)
        targets = L.Targets(content=net.features(content_spec) if cfg.alpha > 0 else None,
                            style=L.time_correlations(net.features(S.log_spectrogram(setup.style, **spec_kw))))

    if cfg.domain == "spectrogram":
        if cfg.init == "content":
            init = content_spec.expand(batch, -1, -1).clone()
        else:
            init = torch.rand(batch, *content_spec.shape, generator=setup.generator).to(device) * content_spec.mean() * 2
        lr = cfg.lr

        def to_spec(p: torch.Tensor) -> torch.Tensor:
            return p

        def decode(p: torch.Tensor) -> torch.Tensor:
            mag = S.decompress(p.clamp(0, None), compression=cfg.compression)
            return S.griffin_lim(mag, n_fft=cfg.n_fft, hop_length=cfg.hop_length, n_iter=cfg.griffin_lim_iters,
                                 seed=cfg.seed, length=content.shape[-1])
    else:
        if cfg.init == "content":
            init = content.expand(batch, -1).clone()
        else:
            init = torch.randn(batch, content.shape[-1], generator=setup.generator).to(device) * 0.1
        lr = cfg.lr * cfg.waveform_lr_scale if cfg.optimizer == "adam" else cfg.lr

        def to_spec(p: torch.Tensor) -> torch.Tensor:
            return S.log_spectrogram(p, **spec_kw)

        def decode(p: torch.Tensor) -> torch.Tensor:
            return p

    def one_pass(p: torch.Tensor, b: torch.Tensor) -> dict[str, torch.Tensor]:
        c, s = L.content_and_style(net.features(to_spec(p)), targets, fast=cfg.fast, precision=net.precision)
        return {"total": L.total_loss(c, s, alpha=cfg.alpha, beta=b), "content": c, "style": s}

    def loss_fn(p: torch.Tensor) -> dict[str, torch.Tensor]:
        if device.type == "cuda" or p.shape[0] == 1:
            return one_pass(p, setup.beta)
        # On a CPU a batch is no faster than a loop, and its larger feature maps fall out of the
        # allocator's reuse (measured: 8 clips of 2 s, 3.3 s per step batched, 1.1 s looped).
        parts = [one_pass(p[i:i + 1], setup.beta[i:i + 1]) for i in range(p.shape[0])]
        return {k: torch.cat([part[k] for part in parts]) for k in parts[0]}

    n_freq, n_frames = content_spec.shape
    info = {"algorithms": dict(net.algorithms)} if getattr(net, "algorithms", None) else {}
    info["precision"] = net.precision
    return Problem(init=init, loss_fn=loss_fn, decode=decode, preview=to_spec, lr=lr,
                   weights=net.weights_info.as_dict(), device=device,
                   flops_per_step=net.flops_per_step(n_freq, n_frames, batch), info=info)


def _build_levers(setup, cfg: CaracallaRoebelConfig) -> Problem:
    """:func:`build` when some lever is off the report's choice (see the module docstring)."""
    content, device, batch = setup.content, setup.device, setup.batch
    net_sizes, content_index, style_index = selection(cfg)
    net = RandomCNN(filters=cfg.filters, kernel_sizes=net_sizes, layers=cfg.layers, seed=cfg.net_seed,
                    fast=cfg.fast, device=device, precision=getattr(cfg, "precision", "fp32"))
    represent = representation(cfg, device=device)
    bank = band_filterbank(cfg, device=device)
    ri = cfg.representation == "ri"
    alpha = 0.0 if cfg.content_term == "none" else cfg.alpha

    def features(rep: torch.Tensor, via: RandomCNN = net) -> list[torch.Tensor]:
        if not ri:
            return via.features(rep)
        b = rep.shape[0]  # (B, 2, F, T): real and imaginary parts as two images, feature maps stacked
        return [f.reshape(b, 2 * f.shape[1], *f.shape[-2:]) for f in via.features(rep.flatten(0, 1))]

    guide = None
    with torch.no_grad():
        content_rep, content_mag = represent(content[None])
        if cfg.guide == "notes":
            guide = note_guide(content, setup.style, cfg, n_frames=content_rep.shape[-1])
            # the style notes' targets: one batch of short clips through the same weights (plain
            # convolutions, so no algorithm is timed for their shape)
            reference = RandomCNN(filters=cfg.filters, kernel_sizes=net_sizes, layers=cfg.layers, seed=cfg.net_seed,
                                  fast=False, device=device)
            guide.set_targets(lambda audio: [features(represent(audio)[0], via=reference)[i] for i in style_index],
                              statistic=cfg.statistic)
        style_rep, _ = represent(setup.style[None])
        style_feats = features(style_rep) if guide is None else None
        content_feats = features(content_rep) if content_index and alpha > 0 else None
        targets = L.statistic_targets([content_feats[i] for i in content_index] if content_feats else None,
                                      [style_feats[i] for i in style_index] if guide is None else [],
                                      statistic=cfg.statistic)
        if cfg.content_term == "chroma" and alpha > 0:
            chroma_fb = S.chroma_filterbank(sample_rate=cfg.sample_rate, n_fft=cfg.n_fft).to(device)
            raw = torch.matmul(chroma_fb, content_mag[0]).norm(dim=0)  # (T,)
            floor = float(raw.max().clamp_min(1e-8)) * _CHROMA_FLOOR
            chroma_target = S.chroma(content_mag, chroma_fb, floor=floor)  # (1, 12, T)
            chroma_weights = (raw > raw.max() * _CHROMA_LOUD).float()
        content_spec = S.compress(content_mag[0], compression=cfg.compression)  # (F, T) log-STFT

    if cfg.domain == "spectrogram":  # the variable is the log-STFT magnitude; bands are computed from it
        if cfg.init == "content":
            init = content_spec.expand(batch, -1, -1).clone()
        else:
            init = torch.rand(batch, *content_spec.shape, generator=setup.generator).to(device) * content_spec.mean() * 2
        lr = cfg.lr

        def analyse(p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
            need_mag = bank is not None or cfg.content_term == "chroma"
            mag = S.decompress(p, compression=cfg.compression) if need_mag else None
            return (p if bank is None else S.band_spectrogram(mag, bank, compression=cfg.compression)), mag

        def to_spec(p: torch.Tensor) -> torch.Tensor:
            return p

        def decode(p: torch.Tensor) -> torch.Tensor:
            mag = S.decompress(p.clamp(0, None), compression=cfg.compression)
            return S.griffin_lim(mag, n_fft=cfg.n_fft, hop_length=cfg.hop_length, n_iter=cfg.griffin_lim_iters,
                                 seed=cfg.seed, length=content.shape[-1])
    else:
        if cfg.init == "content":
            init = content.expand(batch, -1).clone()
        else:
            init = torch.randn(batch, content.shape[-1], generator=setup.generator).to(device) * 0.1
        lr = cfg.lr * cfg.waveform_lr_scale if cfg.optimizer == "adam" else cfg.lr
        analyse = represent

        def to_spec(p: torch.Tensor) -> torch.Tensor:
            return S.log_spectrogram(p, n_fft=cfg.n_fft, hop_length=cfg.hop_length, compression=cfg.compression)

        def decode(p: torch.Tensor) -> torch.Tensor:
            return p

    def one_pass(p: torch.Tensor, b: torch.Tensor) -> dict[str, torch.Tensor]:
        rep, mag = analyse(p)
        if guide is None:
            c, s = L.content_and_statistics(features(rep), targets, statistic=cfg.statistic,
                                            content_index=content_index, style_index=style_index, fast=cfg.fast,
                                            precision=net.precision)
        else:
            c, s = L.content_and_guided(features(rep), targets.content, targets.content_norms, guide.targets,
                                        guide.norms, guide.masks, statistic=cfg.statistic, content_index=content_index,
                                        style_index=style_index, weights=guide.weights, fast=cfg.fast,
                                        precision=net.precision, plan=guide.plans)
        if cfg.content_term == "chroma" and alpha > 0:
            c = L.chroma_loss(S.chroma(mag, chroma_fb, floor=floor), chroma_target, weights=chroma_weights)
        return {"total": L.total_loss(c, s, alpha=alpha, beta=b), "content": c, "style": s}

    def loss_fn(p: torch.Tensor) -> dict[str, torch.Tensor]:
        if device.type == "cuda" or p.shape[0] == 1:
            return one_pass(p, setup.beta)
        parts = [one_pass(p[i:i + 1], setup.beta[i:i + 1]) for i in range(p.shape[0])]  # see build()
        return {k: torch.cat([part[k] for part in parts]) for k in parts[0]}

    n_freq, n_frames = content_rep.shape[-2:]
    info = {"algorithms": dict(net.algorithms)} if getattr(net, "algorithms", None) else {}
    info["precision"] = net.precision
    info["levers"] = {"representation": cfg.representation, "statistic": cfg.statistic,
                      "content_term": cfg.content_term, "net_kernel_sizes": net_sizes,
                      "content_maps": len(content_index), "style_maps": len(style_index)}
    if guide is not None:
        info["guide"] = guide.summary()
    return Problem(init=init, loss_fn=loss_fn, decode=decode, preview=to_spec, lr=lr,
                   weights=net.weights_info.as_dict(), device=device,
                   flops_per_step=net.flops_per_step(n_freq, n_frames, batch * (2 if ri else 1)), info=info)


# --------------------------------------------------------------------------------------------
# guide = notes: one statistic per content note, matched to a pitch-aligned style note
# --------------------------------------------------------------------------------------------
def note_masks(intervals: np.ndarray, *, n_frames: int, hop_length: int, sample_rate: int, fade: float = 0.0,
               attack: float = 0.0) -> tuple[torch.Tensor, list[int], list[str]]:
    """Soft time masks of notes on the STFT's frames (frame t is centred at t * hop / rate).

    ``intervals: (N, 2)`` onset and offset in seconds. Each note's mask is 1 from its onset to its
    offset and falls linearly to 0 over ``fade`` seconds on both sides (0: a box). With
    ``attack > 0`` each note gives two masks: its attack (frames before onset + attack, with the
    fade-in) and its sustain (the rest, with the fade-out); a part with no frame is left out.
    Returns ``(masks (M, n_frames), note index of each mask, part of each mask)`` with parts
    "note", "attack" or "sustain"; notes outside the clip give no mask.

    Notebook: notebooks/09_guided_statistics.ipynb
    """
    t = np.arange(n_frames) * hop_length / sample_rate
    masks, owner, parts = [], [], []
    for n, (onset, offset) in enumerate(np.asarray(intervals, dtype=float).reshape(-1, 2)):
        distance = np.maximum(np.maximum(onset - t, t - offset), 0.0)
        m = (distance <= 0).astype(float) if fade <= 0 else np.clip(1.0 - distance / fade, 0.0, 1.0)
        if attack > 0:
            split = t < onset + attack
            pieces = [("attack", m * split), ("sustain", m * ~split)]
        else:
            pieces = [("note", m)]
        for part, piece in pieces:
            if piece.sum() > 0:
                masks.append(piece)
                owner.append(n)
                parts.append(part)
    values = np.stack(masks) if masks else np.zeros((0, n_frames))
    return torch.as_tensor(values, dtype=torch.float32), owner, parts


@dataclass
class NoteGuide:
    """What ``guide = notes`` matches: content masks, the style note each one is matched to.

    ``masks: (M, T)`` soft masks over the content's frames (one per note, or attack and sustain),
    ``weights: (M,)`` each mask's share of the total mask mass (so beta means what it means
    without the guide); ``content_notes`` / ``style_notes``: the note finder's notes;
    ``chosen[n]``: the style note matched to content note n; ``semitones[n]``: the shift that
    moves it to content note n's pitch; ``pieces[n]``: that style note moved, ``(L_n,)`` audio;
    ``owner`` / ``parts``: content note and part of each mask. After :meth:`set_targets`:
    ``targets`` (per style feature map ``(1, M, ...)``) and ``norms`` (per map ``(M,)``);
    ``plans``: what :func:`labutils.losses.guided_plan` made of the masks, kept between steps.

    Notebook: notebooks/09_guided_statistics.ipynb
    """

    masks: torch.Tensor
    weights: torch.Tensor
    content_notes: Any
    style_notes: Any
    chosen: list[int]
    semitones: list[float]
    pieces: list[torch.Tensor]
    owner: list[int]
    parts: list[str]
    hop_length: int
    sample_rate: int
    attack: float = 0.0
    targets: list[torch.Tensor] = field(default_factory=list)
    norms: list[torch.Tensor] = field(default_factory=list)
    plans: dict = field(default_factory=dict)  # the fused path's mask plans, made once (losses.guided_plan)

    def piece_masks(self, n_frames: int) -> torch.Tensor:
        """Each mask's counterpart on its style piece's frames (the piece padded to ``n_frames``):
        ones over the piece (its attack, or the rest, when the notes are split). ``-> (M, n_frames)``."""
        t = torch.arange(n_frames) * self.hop_length / self.sample_rate
        rows = []
        for n, part in zip(self.owner, self.parts):
            inside = (t <= self.pieces[n].shape[-1] / self.sample_rate).float()
            if part == "attack":
                inside = inside * (t < self.attack)
            elif part == "sustain":
                inside = inside * (t >= self.attack)
                if inside.sum() == 0:  # a style piece shorter than the attack: its last frame
                    inside[int((t <= self.pieces[n].shape[-1] / self.sample_rate).sum()) - 1] = 1.0
            rows.append(inside)
        return torch.stack(rows).to(self.masks)

    def set_targets(self, style_maps: Callable[[torch.Tensor], list[torch.Tensor]], *, statistic: str) -> None:
        """Compute each mask's target statistics, once: the style pieces, zero-padded to one
        length, go through ``style_maps(audio (P, L)) -> list of (P, C, F, T')`` (the network's
        style feature maps), and mask m's target is the statistic of its piece under
        :meth:`piece_masks` (zero padding stays outside every mask)."""
        with torch.no_grad():
            length = max(p.shape[-1] for p in self.pieces)
            batch = torch.stack([torch.nn.functional.pad(p, (0, length - p.shape[-1])) for p in self.pieces])
            maps = style_maps(batch.to(self.masks.device))
            self.targets, self.norms = [], []
            for f in maps:
                piece_masks = self.piece_masks(f.shape[-1])
                stat = torch.stack([L.guided_statistic(f[n:n + 1], piece_masks[k:k + 1], statistic=statistic)[0, 0]
                                    for k, n in enumerate(self.owner)])[None]  # (1, M, ...)
                self.targets.append(stat)
                self.norms.append(L.guided_norms(stat, blocks=f.shape[-2]))

    def loss(self, maps: Sequence[torch.Tensor], *, statistic: str) -> torch.Tensor:
        """The guided style loss of the generated clip's style feature maps ``(B, C, F, T)``. ``-> (B,)``."""
        return L.guided_style_loss([L.guided_statistic(f, self.masks, statistic=statistic) for f in maps],
                                   self.targets, norms=self.norms, weights=self.weights)

    def summary(self) -> dict[str, Any]:
        """What the run records: notes found, masks, the match and shift per content note."""
        return {"content_notes": len(self.content_notes.notes), "style_notes": len(self.style_notes.notes),
                "masks": int(self.masks.shape[0]), "chosen": [int(j) for j in self.chosen],
                "semitones": [round(float(s), 3) for s in self.semitones]}


def note_guide(content: torch.Tensor, style: torch.Tensor, cfg: CaracallaRoebelConfig, *,
               n_frames: int) -> NoteGuide:
    """Find the notes of ``content: (N,)`` and ``style: (M,)``, match each content note to a style
    note (the sampler's choice), move that note to the content note's pitch, and build the masks
    over the content's ``n_frames`` STFT frames. Targets come with :meth:`NoteGuide.set_targets`.

    Notebook: notebooks/09_guided_statistics.ipynb
    """
    from .. import notes as N

    rate = cfg.sample_rate
    content_notes = N.find_notes(content.detach().cpu(), sample_rate=rate, pitch=cfg.guide_pitch).on_line()
    style_notes = N.find_notes(style.detach().cpu(), sample_rate=rate, pitch=cfg.guide_pitch).on_line()
    if not content_notes.notes:
        raise ConfigError("guide=notes: the note finder found no note in the content clip; use --guide none")
    if not style_notes.notes:
        raise ConfigError("guide=notes: the note finder found no note in the style clip; use --guide none")
    chosen = [int(j) for j in N.match_notes(content_notes, style_notes)]
    if any(j < 0 for j in chosen):
        raise ConfigError("guide=notes: the note finder found no pitched note in the style clip; use --guide none")
    style_cpu = style.detach().cpu()
    semitones, pieces, cache = [], [], {}
    for note, j in zip(content_notes.notes, chosen):
        source = style_notes.notes[j]
        # a content note without a pitch (a drum hit) takes its style note as it is
        shift = float(note.pitch) - float(source.pitch) if note.pitched and source.pitched else 0.0
        key = (j, round(shift, 3))
        if key not in cache:
            piece = style_cpu[int(source.start):int(source.end)]
            cache[key] = N.shift_pitch(piece, shift, sample_rate=rate, method=cfg.guide_shift).float() \
                if abs(shift) > 1e-3 else piece.float()
        semitones.append(shift)
        pieces.append(torch.as_tensor(cache[key]).flatten())
    masks, owner, parts = note_masks(np.asarray([[n.onset, n.offset] for n in content_notes.notes]), n_frames=n_frames,
                                     hop_length=cfg.hop_length, sample_rate=rate, fade=cfg.guide_fade,
                                     attack=cfg.guide_attack)
    if masks.shape[0] == 0:
        raise ConfigError("guide=notes: no content note lies inside the clip; use --guide none")
    mass = masks.sum(1)
    return NoteGuide(masks=masks.to(content.device), weights=(mass / mass.sum()).to(content.device),
                     content_notes=content_notes, style_notes=style_notes, chosen=chosen, semitones=semitones,
                     pieces=pieces, owner=owner, parts=parts, hop_length=cfg.hop_length, sample_rate=rate,
                     attack=cfg.guide_attack)
