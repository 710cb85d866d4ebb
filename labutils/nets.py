"""Frozen feature extractors behind one interface: ``features(x) -> list[Tensor]``.

* :class:`RandomCNN`: Caracalla and Roebel's random multi-scale CNN on log-spectrograms.
* :class:`VGGFeatures`: ImageNet VGG-19 on spectrograms copied to three channels (attempt 1).
* :class:`Wav2Vec2Features`: the convolutional feature encoder of a Wav2Vec2 genre model (attempt 2).

Each network is frozen (``requires_grad=False``, eval mode) and seeded; none computes a loss.

Notebook: notebooks/03_caracalla_roebel.ipynb
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Sequence

import torch
import torch.nn.functional as Fn

from .errors import ConfigError

KERNEL_SIZES = (3, 5, 7, 11, 15, 19, 23, 27)


@dataclass
class WeightsInfo:
    """Which weights a network runs on: recorded in every run's config.json."""

    name: str
    pretrained: bool
    source: str
    note: str = ""

    def as_dict(self) -> dict:
        return {"name": self.name, "pretrained": self.pretrained, "source": self.source, "note": self.note}


# --------------------------------------------------------------------------------------------
# Random multi-scale CNN (attempt 3)
# --------------------------------------------------------------------------------------------
class _SingleToManyConv(torch.autograd.Function):
    """A same-padded conv from one input channel to many, with a faster gradient for its input.

    The forward is PyTorch's conv2d, which runs near peak on CPU. Its input gradient (many
    channels into one) is several times slower than its FLOPs justify, so the backward computes
    it as a (1, k) row convolution with k output channels, one per kernel row, followed by k
    shifted sums along frequency. Same maths, same result up to float rounding.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:  # x: (B,1,F,T), weight: (C,1,k,k)
        ctx.save_for_backward(weight)
        k = weight.shape[-1]
        return Fn.conv2d(x, weight, padding=k // 2)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # grad: (B, C, F, T)
        (weight,) = ctx.saved_tensors
        k = weight.shape[-1]
        pad = k // 2
        # rows[d] : (k, C, 1, k), the kernel's row d flipped in time
        rows = torch.flip(weight[:, 0], (-1,)).permute(1, 0, 2).unsqueeze(2)
        if k >= 17 and grad.device.type == "cpu":
            grad = grad.contiguous(memory_format=torch.channels_last)
            rows = rows.contiguous(memory_format=torch.channels_last)
        else:
            rows = rows.contiguous()
        per_row = Fn.conv2d(grad, rows, padding=(0, pad))  # (B, k, F, T)
        per_row = Fn.pad(per_row, (0, 0, pad, pad))  # (B, k, F + 2 pad, T)
        n_freq = grad.shape[-2]
        out = per_row[:, 0, 2 * pad : 2 * pad + n_freq].clone()
        for d in range(1, k):
            out += per_row[:, d, 2 * pad - d : 2 * pad - d + n_freq]
        return out.unsqueeze(1), None


class RandomCNN(torch.nn.Module):
    """Random multi-scale CNN over (frequency, time), as in Caracalla and Roebel (2019).

    For each kernel size k: ``filters`` 2-D k x k convolutions of the log-spectrogram, ReLU; with
    ``layers`` > 1, further k x k convolutions (``filters`` -> ``filters``) and ReLU stacked on top.
    Weights are drawn from N(0, 1/fan_in) with ``seed`` and frozen; no bias.

    ``fast=True`` uses the faster input gradient of the first layer (:class:`_SingleToManyConv`);
    ``fast=False`` is the straightforward reference (PyTorch's conv2d and autograd).

    Notebook: notebooks/03_caracalla_roebel.ipynb
    """

    def __init__(
        self,
        *,
        filters: int = 32,
        kernel_sizes: Sequence[int] = KERNEL_SIZES,
        layers: int = 1,
        seed: int = 0,
        fast: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        if int(filters) != filters or filters < 1:
            raise ConfigError(f"filters={filters}: must be a positive integer (32 in the report, 128 in the paper)")
        sizes = tuple(int(k) for k in kernel_sizes)
        if not sizes or any(k < 1 or k % 2 == 0 for k in sizes):
            raise ConfigError(f"kernel_sizes={list(kernel_sizes)}: must be odd positive integers, e.g. 3,5,7,11,15,19,23,27")
        if int(layers) != layers or not 1 <= layers <= 3:
            raise ConfigError(f"layers={layers}: must be 1, 2 or 3")
        self.filters, self.kernel_sizes, self.layers, self.seed, self.fast = int(filters), sizes, int(layers), seed, fast
        gen = torch.Generator().manual_seed(int(seed))
        weights = []
        for layer in range(self.layers):
            c_in = 1 if layer == 0 else self.filters
            for k in sizes:
                w = torch.randn(self.filters, c_in, k, k, generator=gen) / math.sqrt(c_in * k * k)
                weights.append(torch.nn.Parameter(w.to(device=device, dtype=dtype), requires_grad=False))
        self.weights = torch.nn.ParameterList(weights)
        self.weights_info = WeightsInfo(name="random-multiscale-cnn", pretrained=False,
                                        source=f"random N(0, 1/fan_in), seed {seed}")
        self.eval()

    def features(self, spec: torch.Tensor) -> list[torch.Tensor]:
        """``spec: (B, F, T)`` or ``(F, T)`` log-spectrogram -> features: list of ``(B, C, F, T)``.

        The list holds, for each layer in turn, one tensor per kernel size (``kernel_sizes`` order).
        """
        x = spec.reshape(-1, 1, *spec.shape[-2:])
        n = len(self.kernel_sizes)
        out: list[torch.Tensor] = []
        previous: list[torch.Tensor] = []
        for layer in range(self.layers):
            current = []
            for i, k in enumerate(self.kernel_sizes):
                w = self.weights[layer * n + i]
                if layer == 0:
                    y = _SingleToManyConv.apply(x, w) if self.fast else Fn.conv2d(x, w, padding=k // 2)
                else:
                    y = Fn.conv2d(previous[i], w, padding=k // 2)
                current.append(torch.relu(y))
            out.extend(current)
            previous = current
        return out

    forward = features

    def flops_per_step(self, n_freq: int, n_frames: int, batch: int = 1) -> float:
        """Multiply-adds x 2 of one forward + input-gradient pass over a ``(F, T)`` spectrogram."""
        total = 0
        for layer in range(self.layers):
            c_in = 1 if layer == 0 else self.filters
            for k in self.kernel_sizes:
                total += 2 * n_freq * n_frames * self.filters * c_in * k * k
        return 2.0 * total * batch
