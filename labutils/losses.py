"""Content and style losses over lists of feature tensors, whatever network made them.

* :func:`correlation_tensor`: H(i, j, f) = sum_t F_i(f, t) F_j(f, t), Caracalla and Roebel's
  statistic: filter correlations summed over time only, kept per frequency.
* :func:`gram_matrix`: G(i, j) = sum_n F_i(n) F_j(n) / (C * N), Gatys's statistic (attempts 1, 2).

Losses are normalised so that alpha and beta mean the same for any clip length and any network
scale: each statistic is taken per time frame (or per position), and each squared error is
divided by the energy of its target. The content loss is the mean relative error of the feature
maps. The style loss sums, over every statistic matrix (one per frequency and kernel size for
H, one per layer for a Gram matrix), its squared error relative to the mean energy of the
target's matrices: a sum like the report's, so that its beta = 0.01 still weighs style strongly.
Every loss returns one value per batch item ``(B,)``.

Notebook: notebooks/03_caracalla_roebel.ipynb
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch

from . import precision as PR

_EPS = 1e-12


def correlation_tensor(features: torch.Tensor) -> torch.Tensor:
    """Time-summed correlations per frequency. ``features: (B, C, F, T) -> H: (B, F, C, C)``.

    H[b, f, i, j] = sum_t features[b, i, f, t] * features[b, j, f, t]: one batched matrix product
    per frequency.

    Notebook: notebooks/03_caracalla_roebel.ipynb
    """
    return torch.matmul(features.transpose(1, 2), features.permute(0, 2, 3, 1))


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """Gram matrix normalised by its size. ``features: (B, C, ...) -> G: (B, C, C)``.

    Notebook: notebooks/01_vgg19.ipynb, notebooks/02_wav2vec2.ipynb
    """
    flat = features.flatten(2)
    return torch.matmul(flat, flat.transpose(1, 2)) / flat.shape[1] / flat.shape[2]


def _sq_error(value: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """||value - target||^2 over all but the batch axis. target: (1 or B, ...) -> (B,)."""
    return (value - target).square().sum(dim=tuple(range(1, value.ndim)))


def _energy(target: torch.Tensor) -> torch.Tensor:
    return target.square().sum().clamp_min(_EPS)


def content_loss(generated: Sequence[torch.Tensor], content: Sequence[torch.Tensor], *,
                 norms: Sequence[torch.Tensor] | None = None) -> torch.Tensor:
    """Mean over layers of ||F_gen - F_content||^2 / ||F_content||^2.

    ``generated``: list of ``(B, C, ...)``; ``content``: list of ``(1, C, ...)``; ``norms``: the
    targets' energies when already known (:class:`Targets`). Returns ``(B,)``.

    Notebook: notebooks/03_caracalla_roebel.ipynb
    """
    if len(generated) != len(content):
        raise ValueError("content_loss: generated and content feature lists differ in length")
    norms = norms or [_energy(c) for c in content]
    return torch.stack([_sq_error(g, c) / n for g, c, n in zip(generated, content, norms)]).mean(0)


def time_correlations(features: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Per kernel size, H divided by the number of frames (so clips of any length compare).

    ``features``: list of ``(B, C, F, T)`` -> list of ``(B, F, C, C)``.

    Notebook: notebooks/03_caracalla_roebel.ipynb
    """
    return [correlation_tensor(f) / f.shape[-1] for f in features]


def grams(features: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Gram matrix of each feature tensor. list of ``(B, C, ...)`` -> list of ``(B, C, C)``.

    Notebook: notebooks/01_vgg19.ipynb, notebooks/02_wav2vec2.ipynb
    """
    return [gram_matrix(f) for f in features]


def _blocks(stat: torch.Tensor) -> int:
    """Number of C x C matrices in one batch item of a statistic ``(B, ..., C, C)``."""
    return stat[0].numel() // (stat.shape[-1] * stat.shape[-2])


def style_loss(generated: Sequence[torch.Tensor], style: Sequence[torch.Tensor], *,
               norms: Sequence[torch.Tensor] | None = None) -> torch.Tensor:
    """Sum over statistic matrices of squared error / mean target energy. Returns ``(B,)``.

    For each statistic l with n_l matrices (n_l = F for H, 1 for a Gram matrix):
    n_l * ||S_gen - S_style||^2 / ||S_style||^2, summed over l. ``generated``, ``style``: lists of
    statistics (from :func:`time_correlations` or :func:`grams`), batch ``B`` and ``1``;
    ``norms``: the targets' mean energies per matrix when already known (:class:`Targets`).

    Notebook: notebooks/03_caracalla_roebel.ipynb
    """
    if len(generated) != len(style):
        raise ValueError("style_loss: generated and style statistic lists differ in length")
    norms = norms or [_energy(s) / _blocks(s) for s in style]
    return torch.stack([_sq_error(g, s) / n for g, s, n in zip(generated, style, norms)]).sum(0)


def total_loss(content: torch.Tensor, style: torch.Tensor, *, alpha: float | torch.Tensor,
               beta: float | torch.Tensor) -> torch.Tensor:
    """alpha * content + beta * style, per batch item. alpha = 0 is texture synthesis.

    Notebook: notebooks/03_caracalla_roebel.ipynb
    """
    return alpha * content + beta * style


# --------------------------------------------------------------------------------------------
# Fast path: content error and time correlations of one feature tensor, with a fused backward
# --------------------------------------------------------------------------------------------
class _ContentAndCorrelation(torch.autograd.Function):
    """(||F - F_c||^2 per item, H = sum_t F F^T per frequency) with a hand-written backward.

    Autograd's version of the same maths makes two matrix products for H's gradient (F appears
    twice) and several full-size passes for the content term; here the gradient is
    (dH + dH^T) F + 2 dE (F - F_c): one matrix product and one in-place pass.

    ``precision`` (fp32, tf32, bf16; :mod:`labutils.precision`) is that of the two matrix
    products (H and its gradient); the content error and everything returned stay FP32.
    """

    @staticmethod
    def forward(ctx, features: torch.Tensor, target: torch.Tensor | None,
                precision: str = "fp32"):  # (B,C,F,T), (1,C,F,T)|None
        ctx.precision = precision
        H = PR.matmul(features.transpose(1, 2), features.permute(0, 2, 3, 1), precision=precision)
        if target is None:
            err = features.new_zeros(features.shape[0])
            diff = None
        else:
            diff = features - target
            err = torch.linalg.vector_norm(diff.flatten(1), dim=1).square()
        ctx.save_for_backward(features, diff)
        return err, H

    @staticmethod
    def backward(ctx, grad_err: torch.Tensor, grad_H: torch.Tensor):
        features, diff = ctx.saved_tensors
        sym = grad_H + grad_H.transpose(-1, -2)  # (B, F, C, C)
        grad = PR.matmul(sym, features.transpose(1, 2), precision=ctx.precision).transpose(1, 2)  # (B, C, F, T)
        if diff is not None:
            grad.addcmul_((2 * grad_err).view(-1, 1, 1, 1), diff)
        return grad, None, None


@dataclass
class Targets:
    """Constant targets of a transfer, computed once under no_grad, with their squared norms.

    ``content``: list of ``(1, C, ...)`` features or None (texture synthesis); ``style``: list of
    statistics ``(1, ...)`` (time correlations or Gram matrices).
    """

    content: list[torch.Tensor] | None
    style: list[torch.Tensor]
    content_norms: list[torch.Tensor] = field(default_factory=list)
    style_norms: list[torch.Tensor] = field(default_factory=list)

    def __post_init__(self) -> None:
        with torch.no_grad():
            self.content_norms = [_energy(c) for c in (self.content or [])]
            self.style_norms = [_energy(s) / _blocks(s) for s in self.style]


def content_and_style(
    features: Sequence[torch.Tensor],
    targets: Targets,
    *,
    fast: bool = True,
    precision: str = "fp32",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Content loss and time-correlation style loss. Returns ``(content (B,), style (B,))``.

    ``features``: list of ``(B, C, F, T)``; ``targets.style`` from :func:`time_correlations` of the
    style's features; without content targets the content loss is 0 (texture synthesis).
    ``fast=False`` composes :func:`content_loss`, :func:`style_loss` and :func:`time_correlations`
    (the reference); both give the same values and gradients up to float rounding.
    ``precision`` (fast path only): that of the correlation products (:mod:`labutils.precision`).

    Notebook: notebooks/03_caracalla_roebel.ipynb
    """
    batch = features[0].shape[0]
    if not fast:
        c = (content_loss(features, targets.content, norms=targets.content_norms) if targets.content
             else features[0].new_zeros(batch))
        return c, style_loss(time_correlations(features), targets.style, norms=targets.style_norms)
    c_terms, s_terms = [], []
    for i, f in enumerate(features):
        target = targets.content[i] if targets.content else None
        err, H = _ContentAndCorrelation.apply(f, target, precision)
        if target is not None:
            c_terms.append(err / targets.content_norms[i])
        diff = H / f.shape[-1] - targets.style[i]
        s_terms.append(torch.linalg.vector_norm(diff.flatten(1), dim=1).square() / targets.style_norms[i])
    c = torch.stack(c_terms).mean(0) if c_terms else features[0].new_zeros(batch)
    return c, torch.stack(s_terms).sum(0)


# --------------------------------------------------------------------------------------------
# Attempt 3's levers (issue 14): other texture statistics, selected feature maps, chroma content
# --------------------------------------------------------------------------------------------
STATISTICS = ("per-frequency", "frequency-frequency", "time-frequency")


def frequency_correlations(features: torch.Tensor) -> torch.Tensor:
    """Per filter, frequency x frequency correlations summed over time.
    ``features: (B, C, F, T) -> (B, C, F, F)``, G[b, i, f, g] = sum_t F_i(f, t) F_i(g, t).

    Notebook: notebooks/06_exploring_attempt3.ipynb
    """
    return torch.matmul(features, features.transpose(-1, -2))


def shift_invariant_correlations(features: torch.Tensor) -> torch.Tensor:
    """Filter correlations summed over time *and* frequency.
    ``features: (B, C, F, T) -> (B, C, C)``, G[b, i, j] = sum_{f,t} F_i(f, t) F_j(f, t).

    A shift of the input along frequency (a pitch change on a log-frequency axis) shifts every
    feature map alike and leaves G unchanged, up to what crosses the edges.

    Notebook: notebooks/06_exploring_attempt3.ipynb
    """
    flat = features.flatten(2)
    return torch.matmul(flat, flat.transpose(1, 2))


def texture_statistic(features: torch.Tensor, *, statistic: str) -> torch.Tensor:
    """One feature tensor's statistic, per time frame (and per frequency for "time-frequency").

    ``features: (B, C, F, T)`` -> "per-frequency" ``(B, F, C, C)`` (H / T), "frequency-frequency"
    ``(B, C, F, F)`` (/ T), "time-frequency" ``(B, C, C)`` (/ (F T)).

    Notebook: notebooks/06_exploring_attempt3.ipynb
    """
    n_freq, n_frames = features.shape[-2:]
    if statistic == "per-frequency":
        return correlation_tensor(features) / n_frames
    if statistic == "frequency-frequency":
        return frequency_correlations(features) / n_frames
    if statistic == "time-frequency":
        return shift_invariant_correlations(features) / (n_freq * n_frames)
    raise ValueError(f"statistic={statistic!r}: one of {', '.join(STATISTICS)}")


def statistic_targets(content: Sequence[torch.Tensor] | None, style: Sequence[torch.Tensor], *,
                      statistic: str) -> Targets:
    """:class:`Targets` for :func:`content_and_statistics`: ``content`` feature maps (or None) and
    the ``statistic`` of each ``style`` feature map ``(1, C, F, T)``.

    Every statistic's squared error is taken relative to its target's energy and weighted by the
    number of frequency rows F of its feature map: n_F ||S_gen - S_style||^2 / ||S_style||^2.
    For "per-frequency" this is exactly :func:`style_loss` (F matrices), so one beta means the
    same amount of style for every statistic.

    Notebook: notebooks/06_exploring_attempt3.ipynb
    """
    stats = [texture_statistic(f, statistic=statistic) for f in style]
    targets = Targets(content=list(content) if content is not None else None, style=stats)
    targets.style_norms = [_energy(s) / f.shape[-2] for s, f in zip(stats, style)]
    return targets


def content_and_statistics(
    features: Sequence[torch.Tensor],
    targets: Targets,
    *,
    statistic: str,
    content_index: Sequence[int],
    style_index: Sequence[int],
    fast: bool = True,
    precision: str = "fp32",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Content loss on some feature maps, style loss on a statistic of others. ``-> (B,), (B,)``.

    ``features``: list of ``(B, C, F, T)``; ``targets`` from :func:`statistic_targets`, its
    ``content`` aligned with ``content_index`` (None: no content term) and its ``style`` with
    ``style_index`` (positions in ``features``). Content: mean over its maps of the relative
    squared error; style: sum over its maps of n_F x relative squared error of the statistic.
    With every map in both terms and "per-frequency" this equals :func:`content_and_style`;
    ``fast`` fuses a per-frequency map's content error and H as that function does.

    Notebook: notebooks/06_exploring_attempt3.ipynb
    """
    batch = features[0].shape[0]
    content_at = {i: n for n, i in enumerate(content_index)} if targets.content else {}
    style_at = {i: n for n, i in enumerate(style_index)}
    c_terms, s_terms = [], []
    for i in sorted(set(content_at) | set(style_at)):
        f = features[i]
        target = targets.content[content_at[i]] if i in content_at else None
        stat = None
        if fast and statistic == "per-frequency" and i in style_at:
            err, H = _ContentAndCorrelation.apply(f, target, precision)
            stat = H / f.shape[-1]
        elif target is not None:
            err = _sq_error(f, target)
        if target is not None:
            c_terms.append(err / targets.content_norms[content_at[i]])
        if i in style_at:
            n = style_at[i]
            stat = stat if stat is not None else texture_statistic(f, statistic=statistic)
            s_terms.append(_sq_error(stat, targets.style[n]) / targets.style_norms[n])
    c = torch.stack(c_terms).mean(0) if c_terms else features[0].new_zeros(batch)
    s = torch.stack(s_terms).sum(0) if s_terms else features[0].new_zeros(batch)
    return c, s


def chroma_loss(generated: torch.Tensor, target: torch.Tensor, *, weights: torch.Tensor) -> torch.Tensor:
    """Melody-only content loss: weighted mean over frames of ||c_gen(t) - c_content(t)||^2.

    ``generated: (B, 12, T)``, ``target: (1, 12, T)`` unit-length chroma frames
    (:func:`labutils.spectral.chroma`), ``weights: (T,)`` (e.g. 1 where the content is loud).
    Range [0, 4]; 0 when the pitch classes match frame by frame. Returns ``(B,)``.

    Notebook: notebooks/06_exploring_attempt3.ipynb
    """
    t = min(generated.shape[-1], target.shape[-1], weights.shape[-1])
    per_frame = (generated[..., :t] - target[..., :t]).square().sum(-2)  # (B, T)
    w = weights[:t].to(per_frame)
    return (per_frame * w).sum(-1) / w.sum().clamp_min(_EPS)


# --------------------------------------------------------------------------------------------
# Guided statistics: one statistic per soft time mask (Gatys et al. 2017's guided Gram matrices,
# in time: one mask per content note, each matched to its own pitch-aligned style note)
# --------------------------------------------------------------------------------------------
def resample_masks(masks: torch.Tensor, n_frames: int) -> torch.Tensor:
    """Soft time masks on another time axis. ``masks: (N, T) -> (N, n_frames)``.

    Unchanged when ``T == n_frames``; otherwise linear interpolation of frame centres (a feature
    map that pools time by 2 sees the mean of each pair of frames). Values stay in [0, 1].

    Notebook: notebooks/09_guided_statistics.ipynb
    """
    if masks.ndim != 2:
        raise ValueError(f"resample_masks: masks must be (N, T), got {tuple(masks.shape)}")
    if masks.shape[-1] == n_frames:
        return masks
    return torch.nn.functional.interpolate(masks[None], size=n_frames, mode="linear", align_corners=False)[0]


def _support(mask: torch.Tensor) -> tuple[int, int]:
    """First and one-past-last frame where ``mask: (T,)`` is above 0 ((0, 0) when nowhere)."""
    where = torch.nonzero(mask > 0).flatten()
    if where.numel() == 0:
        return 0, 0
    return int(where[0]), int(where[-1]) + 1


def guided_statistic(features: torch.Tensor, masks: torch.Tensor, *, statistic: str = "per-frequency") -> torch.Tensor:
    """One statistic per soft time mask, normalised by the mask's mass.

    ``features: (B, C, F, T)``, ``masks: (N, T')`` (resampled to T) -> per-frequency
    ``(B, N, F, C, C)`` with H_n(i, j, f) = sum_t m_n(t) F_i(f, t) F_j(f, t) / sum_t m_n(t);
    time-frequency ``(B, N, C, C)`` (the same summed over f as well, / (F sum_t m_n));
    frequency-frequency ``(B, N, C, F, F)``. With one mask of ones each equals
    :func:`texture_statistic`. Each mask only costs the frames where it is above zero, so
    non-overlapping note masks cost about one whole-clip statistic. A mask that is zero
    everywhere gives zeros.

    Notebook: notebooks/09_guided_statistics.ipynb
    """
    if statistic not in STATISTICS:
        raise ValueError(f"statistic={statistic!r}: one of {', '.join(STATISTICS)}")
    n_freq, n_frames = features.shape[-2:]
    masks = resample_masks(masks.to(features), n_frames)
    out = []
    for mask in masks:
        lo, hi = _support(mask)
        m = mask[lo:hi]
        mass = m.sum().clamp_min(_EPS)
        f = features[..., lo:hi]
        if statistic == "per-frequency":  # (B, F, C, T) @ (B, F, T, C)
            stat = torch.matmul((f * m).transpose(1, 2), f.permute(0, 2, 3, 1)) / mass
        elif statistic == "frequency-frequency":
            stat = torch.matmul(f * m, f.transpose(-1, -2)) / mass
        else:
            flat_w, flat = (f * m).flatten(2), f.flatten(2)
            stat = torch.matmul(flat_w, flat.transpose(1, 2)) / (mass * n_freq)
        out.append(stat)
    return torch.stack(out, dim=1)


def guided_gram(features: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Gram matrix per soft time mask (attempts 1 and 2). ``features: (B, C, ..., T)`` (time
    last: ``(B, C, F, T)`` for VGG on a spectrogram, ``(B, C, T)`` for Wav2Vec2),
    ``masks: (N, T')`` -> ``(B, N, C, C)``:
    G_n(i, j) = sum_{x, t} m_n(t) F_i(x, t) F_j(x, t) / (C * X * sum_t m_n(t)), X the positions
    along the other axes. With one mask of ones this is :func:`gram_matrix`.

    Notebook: notebooks/09_guided_statistics.ipynb
    """
    n_channels, n_frames = features.shape[1], features.shape[-1]
    n_other = features[0, 0, ..., 0].numel()
    masks = resample_masks(masks.to(features), n_frames)
    out = []
    for mask in masks:
        lo, hi = _support(mask)
        m = mask[lo:hi]
        f = features[..., lo:hi]
        flat_w, flat = (f * m).flatten(2), f.flatten(2)
        out.append(torch.matmul(flat_w, flat.transpose(1, 2)) / (n_channels * n_other * m.sum().clamp_min(_EPS)))
    return torch.stack(out, dim=1)


def guided_norms(targets: torch.Tensor, *, blocks: int) -> torch.Tensor:
    """Each note's target energy per statistic matrix. ``targets: (1, N, ...) -> (N,)``:
    ||S_n||^2 / blocks (blocks = F for per-frequency H, as :func:`statistic_targets` weighs it).

    Notebook: notebooks/09_guided_statistics.ipynb
    """
    return targets[0].flatten(1).square().sum(1).clamp_min(_EPS) / blocks


def guided_style_loss(generated: Sequence[torch.Tensor], targets: Sequence[torch.Tensor], *,
                      norms: Sequence[torch.Tensor], weights: torch.Tensor | None = None) -> torch.Tensor:
    """Sum over statistics and notes of w_n ||S_gen,n - S_n||^2 / norm_n. Returns ``(B,)``.

    ``generated``: list of ``(B, N, ...)`` (:func:`guided_statistic` or :func:`guided_gram`),
    ``targets``: list of ``(1, N, ...)``, ``norms``: list of ``(N,)`` (:func:`guided_norms`),
    ``weights: (N,)`` (default ones). Each note's distance is divided by its own target's
    energy; with one note of weight 1 this is :func:`style_loss` (and the loss of
    :func:`content_and_statistics`) of the whole-clip statistic.

    Notebook: notebooks/09_guided_statistics.ipynb
    """
    if len(generated) != len(targets) or len(targets) != len(norms):
        raise ValueError("guided_style_loss: generated, targets and norms differ in length")
    terms = []
    for g, t, n in zip(generated, targets, norms):
        per_note = (g - t).flatten(2).square().sum(-1) / n  # (B, N)
        if weights is not None:
            per_note = per_note * weights.to(per_note)
        terms.append(per_note.sum(-1))
    return torch.stack(terms).sum(0)


# --------------------------------------------------------------------------------------------
# Attempt 6, audio mosaicing (Driedger, Pratzlich and Muller, "Let it Bee", ISMIR 2015): a
# non-negative matrix factorisation V ~ W H with the templates W fixed to the style's frames
# --------------------------------------------------------------------------------------------


def kl_divergence(target: torch.Tensor, estimate: torch.Tensor, *, eps: float = 1e-10) -> torch.Tensor:
    """Generalised Kullback-Leibler divergence D(V | L) = sum V log(V / L) - V + L.

    ``target: (F, T)`` or ``(..., F, T)`` (V, non-negative), ``estimate: (..., F, T)`` (L = W H)
    -> ``(...)``: summed over the last two axes. 0 when L = V, never negative.

    Notebook: notebooks/08_mosaicing.ipynb
    """
    v, lam = target.clamp_min(0), estimate.clamp_min(eps)
    return (torch.xlogy(v, v) - v * torch.log(lam) - v + lam).sum((-2, -1))


def nmf_activation_update(target: torch.Tensor, templates: torch.Tensor, activations: torch.Tensor, *,
                          eps: float = 1e-10) -> tuple[torch.Tensor, torch.Tensor]:
    """One multiplicative update of the activations for the KL divergence, templates held fixed.

    H <- H * (W^T (V / (W H))) / (W^T 1) (Lee and Seung 2001): it never increases D(V | W H).
    ``target: (F, T)`` (V), ``templates: (F, K)`` (W), ``activations: (..., K, T)`` (H) ->
    ``(new activations (..., K, T), D(V | W H) of the activations given (...))``: the divergence
    comes from the product the update needs anyway, so it costs nothing extra.

    Notebook: notebooks/08_mosaicing.ipynb
    """
    lam = torch.matmul(templates, activations).clamp_min(eps)  # (..., F, T)
    kl = kl_divergence(target, lam, eps=eps)
    numer = torch.matmul(templates.transpose(-2, -1), target / lam)  # (..., K, T)
    denom = templates.sum(0).clamp_min(eps)[:, None]  # (K, 1)
    return activations * numer / denom, kl


def suppression(step: int, steps: int, *, strength: float = 1.0) -> float:
    """The factor that shrinks what a constraint suppresses at ``step`` of ``steps`` (1-based):
    1 - strength * step / steps, from nearly 1 at the first iteration to 1 - strength at the last
    (Let it Bee's 1 - (l + 1) / L with strength 1).

    Notebook: notebooks/08_mosaicing.ipynb
    """
    return 1.0 - strength * min(step, steps) / max(steps, 1)


def repetition_constraint(activations: torch.Tensor, *, width: int, factor: float) -> torch.Tensor:
    """Each template used in few places: an activation that is not the largest of its row within
    ``width`` frames either side is multiplied by ``factor`` (the maxima are kept).

    ``activations: (..., K, T)`` -> same shape. ``width = 0`` returns the input unchanged.

    Notebook: notebooks/08_mosaicing.ipynb
    """
    if width <= 0:
        return activations
    shape = activations.shape
    flat = activations.reshape(-1, 1, shape[-1])
    peak = torch.nn.functional.max_pool1d(flat, 2 * width + 1, stride=1, padding=width).reshape(shape)
    return torch.where(activations >= peak, activations, activations * factor)


def polyphony_constraint(activations: torch.Tensor, *, keep: int, factor: float) -> torch.Tensor:
    """A few templates per frame: in each column (frame) only the ``keep`` largest activations are
    kept; the others are multiplied by ``factor``.

    ``activations: (..., K, T)`` -> same shape. ``keep = 0`` or ``keep >= K`` changes nothing.

    Notebook: notebooks/08_mosaicing.ipynb
    """
    k = activations.shape[-2]
    if keep <= 0 or keep >= k:
        return activations
    # top-k along the last, contiguous axis is about 3x faster than along K in place
    columns = activations.transpose(-2, -1).contiguous()  # (..., T, K)
    threshold = torch.topk(columns, keep, dim=-1).values[..., -1:].transpose(-2, -1)  # (..., 1, T): keep-th largest
    return torch.where(activations >= threshold, activations, activations * factor)


def continuity_filter(activations: torch.Tensor, *, length: int,
                      segments: torch.Tensor | None = None) -> torch.Tensor:
    """Runs along the style's own time: C(k, m) = sum_{i=-c..c} H(k + i, m + i), a moving sum along
    each diagonal, so that template k active at frame m strengthens template k + 1 at frame m + 1.

    ``activations: (..., K, T)`` -> same shape; ``length`` = c (0 returns the input unchanged).
    ``segments: (K,)`` integer ids (e.g. one per pitch-shifted copy of the style; rows of one id
    contiguous): the sum never crosses from one segment into another, since their frames are not
    neighbours in time.
    Cost: 2c + 1 shifted additions of H.

    Notebook: notebooks/08_mosaicing.ipynb
    """
    if length <= 0:
        return activations
    k, t = activations.shape[-2:]
    # the segments as runs of rows [a, b): the sum is taken within each run by slicing, no masks
    if segments is None:
        bounds = [0, k]
    else:
        change = torch.nonzero(segments[1:] != segments[:-1]).squeeze(-1).tolist()
        bounds = [0, *(c + 1 for c in change), k]
    out = activations.clone()
    for a, b in zip(bounds, bounds[1:]):
        for i in range(1, min(length, b - a - 1, t - 1) + 1):
            out[..., a:b - i, :t - i] += activations[..., a + i:b, i:]  # H(k + i, m + i) added at (k, m)
            out[..., a + i:b, i:] += activations[..., a:b - i, :t - i]  # H(k - i, m - i) added at (k, m)
    return out


def guided_plan(masks: torch.Tensor, n_frames: int, *, like: torch.Tensor,
                cache: dict | None = None) -> tuple[tuple, list[torch.Tensor]]:
    """What the fused guided path needs of ``masks: (N, T)`` on a map of ``n_frames`` frames:
    each mask's support ``(first, one-past-last)`` and the square roots of its weights there,
    sqrt(m_n(t) / sum_t m_n(t)), each ``(T_n,)`` in ``like``'s dtype and device.

    ``cache``: a dict kept by the caller between steps (the masks must not change while it is
    kept): the plan is made once per frame count, dtype and device instead of once per step.

    Notebook: notebooks/09_guided_statistics.ipynb
    """
    key = (n_frames, like.dtype, like.device)
    if cache is not None and key in cache:
        return cache[key]
    with torch.no_grad():
        m = resample_masks(masks.to(like), n_frames)
        bounds = tuple(_support(row) for row in m)
        roots = [(row[lo:hi] / row[lo:hi].sum().clamp_min(_EPS)).sqrt() for row, (lo, hi) in zip(m, bounds)]
    plan = (bounds, roots)
    if cache is not None:
        cache[key] = plan
    return plan


class _GuidedCorrelation(torch.autograd.Function):
    """(||F - F_c||^2 per item, per-mask statistic) with a hand-written backward, for the
    per-frequency and time-frequency statistics of :func:`guided_statistic`.

    Autograd's version slices the feature map once per mask, and each slice's backward fills a
    zero tensor of the full map's size: N notes cost N full passes. Here each mask's frames are
    weighted once, Z_n = F(t) sqrt(w_n(t)) on its support only (w_n = m_n / mass_n), so that its
    statistic is one product of Z_n with itself, S_n = Z_n Z_n^T, and the gradient of every mask,
    w_n(t) (S_n + S_n^T) F(t) = sqrt(w_n(t)) (S_n + S_n^T) Z_n, is one product and one fused
    multiply-add on those frames, into one tensor. For "per-frequency" the map is laid out once as
    ``(B, F, C, T)``, so each mask's ``C x T_n`` blocks are close together in memory (as a strided
    view of ``(B, C, F, T)`` they are F * T floats apart) and the products read them in place.
    ``bounds`` and ``roots`` come from :func:`guided_plan` (on the map's frames).
    """

    @staticmethod
    def forward(ctx, features: torch.Tensor, target: torch.Tensor | None, bounds: tuple, roots: list,
                statistic: str, precision: str = "fp32"):
        ctx.bounds, ctx.statistic, ctx.precision = bounds, statistic, precision
        ctx.scale = 1.0 if statistic == "per-frequency" else 1.0 / features.shape[-2]
        ctx.shape = features.shape
        per_frequency = statistic == "per-frequency"
        x = features.transpose(1, 2).contiguous() if per_frequency else features  # (B, F, C, T) | (B, C, F, T)
        zs, stats = [], []
        for root, (lo, hi) in zip(roots, bounds):
            z = x[..., lo:hi] * root  # (B, F, C, Tn) | (B, C, F, Tn)
            zs.append(z)
            flat = z if per_frequency else z.flatten(2)
            stats.append(PR.matmul(flat, flat.transpose(-1, -2), precision=precision))
        stat = torch.stack(stats, dim=1)
        if ctx.scale != 1.0:
            stat = stat.mul_(ctx.scale)
        if target is None:
            err, diff = features.new_zeros(features.shape[0]), None
        else:
            diff = features - target
            err = torch.linalg.vector_norm(diff.flatten(1), dim=1).square()
        ctx.save_for_backward(diff, *roots, *zs)
        return err, stat

    @staticmethod
    def backward(ctx, grad_err: torch.Tensor, grad_stats: torch.Tensor):
        diff, *saved = ctx.saved_tensors
        n = len(ctx.bounds)
        roots, zs = saved[:n], saved[n:]
        b, c, f, t = ctx.shape
        per_frequency = ctx.statistic == "per-frequency"
        sym = grad_stats + grad_stats.transpose(-1, -2)  # (B, N, F, C, C) | (B, N, C, C)
        if ctx.scale != 1.0:
            sym = sym.mul_(ctx.scale)
        grad = sym.new_zeros((b, f, c, t) if per_frequency else (b, c, f, t))
        for k, (root, z, (lo, hi)) in enumerate(zip(roots, zs, ctx.bounds)):
            if per_frequency:  # (B, F, C, C) @ (B, F, C, Tn)
                prod = PR.matmul(sym[:, k], z, precision=ctx.precision)
            else:  # (B, C, C) @ (B, C, F Tn)
                prod = PR.matmul(sym[:, k], z.flatten(2), precision=ctx.precision).view(z.shape)
            grad[..., lo:hi].addcmul_(prod, root)
        if per_frequency:  # back to (B, C, F, T) in memory too: the layers below read it that way
            out = torch.empty(ctx.shape, dtype=grad.dtype, device=grad.device)
            if diff is not None:
                grad = torch.addcmul(grad.transpose(1, 2), (2 * grad_err).view(-1, 1, 1, 1), diff, out=out)
            else:
                grad = out.copy_(grad.transpose(1, 2))
        elif diff is not None:
            grad.addcmul_((2 * grad_err).view(-1, 1, 1, 1), diff)
        return grad, None, None, None, None, None


def content_and_guided(
    features: Sequence[torch.Tensor],
    content: Sequence[torch.Tensor] | None,
    content_norms: Sequence[torch.Tensor],
    style: Sequence[torch.Tensor],
    style_norms: Sequence[torch.Tensor],
    masks: torch.Tensor,
    *,
    statistic: str,
    content_index: Sequence[int],
    style_index: Sequence[int],
    weights: torch.Tensor | None = None,
    fast: bool = True,
    precision: str = "fp32",
    plan: dict | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Content loss on some feature maps, guided style loss on others. ``-> (B,), (B,)``.

    As :func:`content_and_statistics` with the style statistic taken per mask
    (:func:`guided_statistic`, ``masks: (N, T)``) and :func:`guided_style_loss` (``style``: per
    style map ``(1, N, ...)``, ``style_norms``: per map ``(N,)``). ``content``: feature maps
    aligned with ``content_index`` (None: no content term). ``fast`` fuses a map's content
    error and its per-frequency or time-frequency statistics with one backward for every mask;
    ``fast=False`` composes :func:`guided_statistic` through autograd (the reference).
    ``plan``: a dict kept between steps for :func:`guided_plan` (the masks' supports and weights
    made once; None: made on every call).

    Notebook: notebooks/09_guided_statistics.ipynb
    """
    batch = features[0].shape[0]
    content_at = {i: n for n, i in enumerate(content_index)} if content else {}
    style_at = {i: n for n, i in enumerate(style_index)}
    c_terms, s_terms = [], []
    for i in sorted(set(content_at) | set(style_at)):
        f = features[i]
        target = content[content_at[i]] if i in content_at else None
        stat = None
        if i in style_at and fast and statistic in ("per-frequency", "time-frequency"):
            bounds, roots = guided_plan(masks, f.shape[-1], like=f, cache=plan)
            err, stat = _GuidedCorrelation.apply(f, target, bounds, roots, statistic, precision)
        elif target is not None:
            err = _sq_error(f, target)
        if target is not None:
            c_terms.append(err / content_norms[content_at[i]])
        if i in style_at:
            n = style_at[i]
            stat = stat if stat is not None else guided_statistic(f, masks, statistic=statistic)
            s_terms.append(guided_style_loss([stat], [style[n]], norms=[style_norms[n]], weights=weights))
    c = torch.stack(c_terms).mean(0) if c_terms else features[0].new_zeros(batch)
    s = torch.stack(s_terms).sum(0) if s_terms else features[0].new_zeros(batch)
    return c, s
