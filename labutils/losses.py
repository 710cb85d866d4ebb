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

_EPS = 1e-12


def correlation_tensor(features: torch.Tensor) -> torch.Tensor:
    """Time-summed correlations per frequency. ``features: (B, C, F, T) -> H: (B, F, C, C)``.

    H[b, f, i, j] = sum_t features[b, i, f, t] * features[b, j, f, t]: one batched matrix product
    per frequency.
    """
    return torch.matmul(features.transpose(1, 2), features.permute(0, 2, 3, 1))


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """Gram matrix normalised by its size. ``features: (B, C, ...) -> G: (B, C, C)``."""
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
    """
    if len(generated) != len(content):
        raise ValueError("content_loss: generated and content feature lists differ in length")
    norms = norms or [_energy(c) for c in content]
    return torch.stack([_sq_error(g, c) / n for g, c, n in zip(generated, content, norms)]).mean(0)


def time_correlations(features: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Per kernel size, H divided by the number of frames (so clips of any length compare).

    ``features``: list of ``(B, C, F, T)`` -> list of ``(B, F, C, C)``.
    """
    return [correlation_tensor(f) / f.shape[-1] for f in features]


def grams(features: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Gram matrix of each feature tensor. list of ``(B, C, ...)`` -> list of ``(B, C, C)``."""
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
    """
    if len(generated) != len(style):
        raise ValueError("style_loss: generated and style statistic lists differ in length")
    norms = norms or [_energy(s) / _blocks(s) for s in style]
    return torch.stack([_sq_error(g, s) / n for g, s, n in zip(generated, style, norms)]).sum(0)


def total_loss(content: torch.Tensor, style: torch.Tensor, *, alpha: float | torch.Tensor,
               beta: float | torch.Tensor) -> torch.Tensor:
    """alpha * content + beta * style, per batch item. alpha = 0 is texture synthesis."""
    return alpha * content + beta * style


# --------------------------------------------------------------------------------------------
# Fast path: content error and time correlations of one feature tensor, with a fused backward
# --------------------------------------------------------------------------------------------
class _ContentAndCorrelation(torch.autograd.Function):
    """(||F - F_c||^2 per item, H = sum_t F F^T per frequency) with a hand-written backward.

    Autograd's version of the same maths makes two matrix products for H's gradient (F appears
    twice) and several full-size passes for the content term; here the gradient is
    (dH + dH^T) F + 2 dE (F - F_c): one matrix product and one in-place pass.
    """

    @staticmethod
    def forward(ctx, features: torch.Tensor, target: torch.Tensor | None):  # (B,C,F,T), (1,C,F,T)|None
        H = torch.matmul(features.transpose(1, 2), features.permute(0, 2, 3, 1))
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
        grad = torch.matmul(sym, features.transpose(1, 2)).transpose(1, 2)  # (B, C, F, T) view
        if diff is not None:
            grad.addcmul_((2 * grad_err).view(-1, 1, 1, 1), diff)
        return grad, None


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
) -> tuple[torch.Tensor, torch.Tensor]:
    """Content loss and time-correlation style loss. Returns ``(content (B,), style (B,))``.

    ``features``: list of ``(B, C, F, T)``; ``targets.style`` from :func:`time_correlations` of the
    style's features; without content targets the content loss is 0 (texture synthesis).
    ``fast=False`` composes :func:`content_loss`, :func:`style_loss` and :func:`time_correlations`
    (the reference); both give the same values and gradients up to float rounding.
    """
    batch = features[0].shape[0]
    if not fast:
        c = (content_loss(features, targets.content, norms=targets.content_norms) if targets.content
             else features[0].new_zeros(batch))
        return c, style_loss(time_correlations(features), targets.style, norms=targets.style_norms)
    c_terms, s_terms = [], []
    for i, f in enumerate(features):
        target = targets.content[i] if targets.content else None
        err, H = _ContentAndCorrelation.apply(f, target)
        if target is not None:
            c_terms.append(err / targets.content_norms[i])
        diff = H / f.shape[-1] - targets.style[i]
        s_terms.append(torch.linalg.vector_norm(diff.flatten(1), dim=1).square() / targets.style_norms[i])
    c = torch.stack(c_terms).mean(0) if c_terms else features[0].new_zeros(batch)
    return c, torch.stack(s_terms).sum(0)
