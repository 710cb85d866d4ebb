"""How the random CNN's first layer computes: one input channel into many filters, same padding.

A layer ``y = conv2d(x, w, padding=k // 2)`` with ``x: (B, 1, F, T)`` and ``w: (C, 1, k, k)`` is
the costliest part of attempt 3 (forward and input gradient). Which way of computing it is fastest
depends on the machine (oneDNN's convolution of one input channel runs at a tenth of peak on AVX2
CPUs and falls off a cliff on long clips), on the kernel size and on the clip, so each kernel size
gets its own :class:`Plan`, chosen by a short timing on the running machine and cached on disk:

* forward ``direct``: PyTorch's conv2d, over chunks of the time axis (so its cost stays linear in T);
* forward ``fft``: overlap-save FFT correlation, one real FFT of each padded time block of the
  input, the filters' spectra computed once and cached, one inverse FFT per feature map and block;
* backward ``direct``: the convolution's own input gradient (conv2d with the flipped kernels);
* backward ``rows``: a (1, k) row convolution with k output channels, then k shifted sums;
* backward ``fft``: one FFT per incoming gradient map and block, products with the filters'
  spectra summed over filters in the frequency domain, one inverse FFT per block;
* forward and backward ``patches`` (the tensor-core plan for CUDA): the k x k patches of the
  input, unfolded once per time block, ``(B, k*k, F*T)``, times the filters ``(C, k*k)`` in one
  matrix product; the input gradient is ``W^T @ grad`` folded back (col2im). In ``bf16`` or
  ``tf32`` (:mod:`labutils.precision`) these products run on the tensor cores.

Each layer has a ``precision`` (fp32, tf32, bf16; emulated on the CPU): it applies to the
``patches`` and ``direct``/``rows`` plans' products; the ``fft`` plan computes in FP32 always
(cuFFT has no bf16 transform). Inputs of any float dtype are accepted (an autocast bf16 input
with FP32 weights computes in FP32 and returns the input's dtype).

All of them process time in blocks of at most a few hundred frames, so a 60 s clip costs twelve
times a 5 s clip. :func:`single_to_many` runs a plan with autograd; ``fast=False`` in
:class:`labutils.nets.RandomCNN` keeps PyTorch's plain conv2d as the correctness oracle.

The choice is cached in ``~/.cache/labutils/conv_algorithms.json`` (``$XDG_CACHE_HOME`` is
honoured; ``LABUTILS_CONV_CACHE=PATH`` names another file, ``LABUTILS_CONV_CACHE=off`` keeps it in
memory only), keyed by CPU, instruction set, threads, torch version and shape (on CUDA: by the
GPU's name, CUDA and torch versions, shape and precision; there the candidates include
``patches`` and are timed synchronised on the clip's own length, up to 4096 frames).
``LABUTILS_CONV_ALGORITHM=fft`` (or ``direct/rows``...) forces one plan everywhere.

Notebook: notebooks/03_caracalla_roebel.ipynb
"""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as Fn

from . import precision as PR

FORWARDS = ("direct", "fft", "patches")
BACKWARDS = ("direct", "rows", "fft", "patches")
#: output frames per time block of the chunked direct convolutions
DIRECT_BLOCK = 512
#: FFT lengths (time) tried for the overlap-save blocks
FFT_LENGTHS = (128, 256)
#: transient complex spectra are kept under this many bytes (filters are taken in groups)
CHUNK_BYTES = 64 * 2**20
#: the same bound on CUDA, where fewer, larger groups pay (a GPU has tens of GB)
CUDA_CHUNK_BYTES = 1024 * 2**20
#: FFT lengths also tried on CUDA
CUDA_FFT_LENGTHS = (128, 256, 512)
#: time frames of the probe on CUDA (a GPU's timing of a short probe says little about the clip)
CUDA_PROBE_FRAMES = 4096
#: time frames of the probe used to choose a plan (costs are linear in T beyond it)
PROBE_FRAMES = 256


# --------------------------------------------------------------------------------------------
# Plans
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Plan:
    """How one kernel size computes: ``forward`` in :data:`FORWARDS`, ``backward`` in :data:`BACKWARDS`,
    ``fft_length``: the FFT length of the overlap-save time blocks (used by the fft parts)."""

    forward: str = "direct"
    backward: str = "rows"
    fft_length: int = 512

    @property
    def name(self) -> str:
        """``"fft512"`` when both parts use the FFT, ``"patches"`` when both use patches, else
        ``"forward/backward"`` (``"direct/rows"``)."""
        if self.forward == "fft" and self.backward == "fft":
            return f"fft{self.fft_length}"
        if self.forward == "patches" and self.backward == "patches":
            return "patches"
        parts = [f"{p}{self.fft_length}" if p == "fft" else p for p in (self.forward, self.backward)]
        return "/".join(parts)

    @classmethod
    def parse(cls, name: str) -> "Plan":
        """Inverse of :attr:`name`; ``"fft"`` alone means ``fft512``, ``"patches"`` alone both parts."""
        parts = name.strip().lower().split("/")
        if len(parts) == 1:
            parts = parts * 2
        if len(parts) != 2:
            raise ValueError(f"conv algorithm {name!r}: expected FORWARD/BACKWARD, e.g. direct/rows, fft512 or patches")
        length, kinds = 512, []
        for p in parts:
            kind = "fft" if p.startswith("fft") else p
            if p.startswith("fft") and p[3:]:
                length = int(p[3:])
            kinds.append(kind)
        if kinds[0] not in FORWARDS or kinds[1] not in BACKWARDS or length < 8 or length % 2:
            raise ValueError(f"conv algorithm {name!r}: forward must be one of {FORWARDS}, backward one of "
                             f"{BACKWARDS}, an FFT length even")
        return cls(kinds[0], kinds[1], length)


#: today's behaviour before this module, used where nothing is measured (CUDA)
DEFAULT_PLAN = Plan("direct", "rows")


def fast_length(n: int) -> int:
    """Smallest even 2-3-5-smooth integer >= ``n`` (a length real FFTs handle fast)."""
    m = max(2, int(n))
    while True:
        r = m
        for p in (2, 3, 5):
            while r % p == 0:
                r //= p
        if r == 1 and m % 2 == 0:
            return m
        m += 1


# --------------------------------------------------------------------------------------------
# Direct convolutions over time blocks
# --------------------------------------------------------------------------------------------
def _conv_blocks(inp: torch.Tensor, weight: torch.Tensor, *, block: int | None = None,
                 channels_last: bool = False, precision: str = "fp32") -> torch.Tensor:
    """Same-size conv2d of ``inp: (B, Ci, F, T)`` with ``weight: (Co, Ci, kh, kw)`` (odd sizes),
    padding ``(kh // 2, kw // 2)``, computed ``block`` output frames at a time. -> ``(B, Co, F, T)``
    in ``inp``'s dtype; ``precision`` as in :func:`labutils.precision.conv2d` (no autograd here)."""
    ph, pw = weight.shape[-2] // 2, weight.shape[-1] // 2
    T, block = inp.shape[-1], int(block or DIRECT_BLOCK)
    dtype = inp.dtype
    if precision == "bf16" and inp.device.type == "cuda":
        inp, weight = inp.to(torch.bfloat16), weight.to(torch.bfloat16)
    elif precision != "fp32" and inp.device.type != "cuda":
        inp, weight = PR.emulate(inp, precision), PR.emulate(weight, precision)
    if channels_last:
        weight = weight.contiguous(memory_format=torch.channels_last)
    with PR.tf32(inp.device, precision == "tf32"):
        if T <= block:
            x = inp.contiguous(memory_format=torch.channels_last) if channels_last else inp
            return Fn.conv2d(x, weight, padding=(ph, pw)).to(dtype).contiguous()
        out = inp.new_empty(inp.shape[0], weight.shape[0], inp.shape[-2], T, dtype=dtype)
        for t0 in range(0, T, block):
            t1 = min(T, t0 + block)
            a, b = max(0, t0 - pw), min(T, t1 + pw)
            x = Fn.pad(inp[..., a:b], (pw - (t0 - a), pw - (b - t1)))
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            out[..., t0:t1] = Fn.conv2d(x, weight, padding=(ph, 0))
    return out


def _direct_forward(x: torch.Tensor, weight: torch.Tensor, precision: str = "fp32") -> torch.Tensor:
    """``x: (B, 1, F, T)``, ``weight: (C, 1, k, k)`` -> ``(B, C, F, T)``."""
    return _conv_blocks(x, weight, precision=precision)


def _direct_backward(grad: torch.Tensor, weight: torch.Tensor, precision: str = "fp32") -> torch.Tensor:
    """Input gradient as conv2d of ``grad: (B, C, F, T)`` with the flipped kernels -> ``(B, 1, F, T)``."""
    flipped = torch.flip(weight, (-2, -1)).transpose(0, 1)  # (1, C, k, k)
    return _conv_blocks(grad, flipped, precision=precision)


def _rows_backward(grad: torch.Tensor, weight: torch.Tensor, precision: str = "fp32") -> torch.Tensor:
    """Input gradient as a (1, k) row convolution into k channels, then k shifted sums along F."""
    k = weight.shape[-1]
    pad = k // 2
    rows = torch.flip(weight[:, 0], (-1,)).permute(1, 0, 2).unsqueeze(2).contiguous()  # (k, C, 1, k)
    per_row = _conv_blocks(grad, rows, channels_last=k >= 17 and grad.device.type == "cpu",
                           precision=precision)  # (B, k, F, T)
    per_row = Fn.pad(per_row, (0, 0, pad, pad))
    n_freq = grad.shape[-2]
    out = per_row[:, 0, 2 * pad: 2 * pad + n_freq].clone()
    for d in range(1, k):
        out += per_row[:, d, 2 * pad - d: 2 * pad - d + n_freq]
    return out.unsqueeze(1)


# --------------------------------------------------------------------------------------------
# Patches: one matrix product per time block (the tensor-core plan)
# --------------------------------------------------------------------------------------------
def _chunk_bytes(device: torch.device) -> int:
    return CUDA_CHUNK_BYTES if device.type == "cuda" else CHUNK_BYTES


def _patch_block(B: int, k: int, F: int, T: int, itemsize: int, device: torch.device) -> int:
    """Output frames per block so that the unfolded patches ``(B, k*k, F*frames)`` stay under
    :func:`_chunk_bytes`."""
    return max(1, min(T, _chunk_bytes(device) // max(1, B * k * k * F * itemsize)))


def _patches_forward(x: torch.Tensor, weight: torch.Tensor, precision: str = "fp32") -> torch.Tensor:
    """``x: (B, 1, F, T)``, ``weight: (C, 1, k, k)`` -> ``(B, C, F, T)`` as ``W (C, k*k) @ patches``.

    The patches of a time block, ``(B, k*k, F*frames)`` (``Fn.unfold`` of the zero-padded input),
    are read by all C filters in one matrix product (on CUDA in bf16 with the patches unfolded in
    bf16, or in TF32, per ``precision``).
    """
    B, _, F, T = x.shape
    C, k = weight.shape[0], weight.shape[-1]
    p = k // 2
    cast = precision == "bf16" and x.device.type == "cuda"
    xp = Fn.pad(x.to(torch.bfloat16) if cast else x, (p, p, p, p))  # (B, 1, F + 2p, T + 2p)
    w = weight.reshape(C, k * k)
    block = _patch_block(B, k, F, T, xp.element_size(), x.device)
    out = x.new_empty(B, C, F, T)
    for t0 in range(0, T, block):
        t1 = min(T, t0 + block)
        cols = Fn.unfold(xp[..., t0:t1 + 2 * p], k)  # (B, k*k, F * (t1 - t0))
        y = PR.matmul(w, cols, precision=precision)  # (B, C, F * (t1 - t0))
        if t0 == 0 and t1 == T:
            return y.view(B, C, F, T).to(x.dtype)
        out[..., t0:t1] = y.view(B, C, F, t1 - t0)
    return out


def _patches_backward(grad: torch.Tensor, weight: torch.Tensor, precision: str = "fp32") -> torch.Tensor:
    """Input gradient of :func:`_patches_forward`: ``W^T (k*k, C) @ grad`` per time block, folded
    back onto the padded input (``Fn.fold``, the adjoint of unfold). ``grad: (B, C, F, T) -> (B, 1, F, T)``."""
    B, C, F, T = grad.shape
    k = weight.shape[-1]
    p = k // 2
    wt = weight.reshape(C, k * k).t()
    block = _patch_block(B, k, F, T, 4, grad.device)
    gxp = grad.new_zeros(B, 1, F + 2 * p, T + 2 * p)
    for t0 in range(0, T, block):
        t1 = min(T, t0 + block)
        g = grad[..., t0:t1].reshape(B, C, F * (t1 - t0))
        cols = PR.matmul(wt, g, precision=precision).to(grad.dtype)  # (B, k*k, F * (t1 - t0))
        gxp[..., t0:t1 + 2 * p] += Fn.fold(cols, (F + 2 * p, t1 - t0 + 2 * p), k)
    return gxp[..., p:p + F, p:p + T].contiguous()


# --------------------------------------------------------------------------------------------
# FFT (overlap-save) convolutions
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Geometry:
    """Sizes of an overlap-save FFT correlation of ``(F, T)`` with a ``k x k`` kernel."""

    F: int
    T: int
    k: int
    NF: int  # FFT length along frequency (no blocking: the whole padded axis)
    M: int  # FFT length along time (one block)
    L: int  # output frames per block
    nb: int  # blocks

    @classmethod
    def of(cls, F: int, T: int, k: int, fft_length: int) -> "_Geometry":
        M = max(int(fft_length), fast_length(2 * (k - 1) + 2))
        L = M - (k - 1)
        nb = -(-T // L)
        if nb == 1:  # one block: no need for more than the clip needs
            M = fast_length(T + k - 1)
            L = M - (k - 1)
        return cls(F, T, k, fast_length(F + k - 1), M, L, nb)

    @property
    def padded_frames(self) -> int:
        return self.nb * self.L + self.k - 1


def filter_spectra(weight: torch.Tensor, geo: _Geometry) -> torch.Tensor:
    """``weight: (C, 1, k, k)`` -> the filters' spectra packed in pairs, ``(ceil(C / 2), NF, M)`` complex:
    ``conj(W[2j]) + i conj(W[2j + 1])`` with ``W = fft2`` of the zero-padded kernel.

    Packing two real filters in one complex spectrum halves the inverse transforms of the forward
    (their outputs come back as real and imaginary parts: complex inverse FFTs run 2-3 times
    faster than the same work as complex-to-real ones here) and serves the backward as well.
    """
    C, k = weight.shape[0], weight.shape[-1]
    w = weight[:, 0]
    if C % 2:
        w = torch.cat([w, w.new_zeros(1, k, k)])
    W = torch.fft.fft2(w, s=(geo.NF, geo.M)).conj()
    return W[0::2] + 1j * W[1::2]


def _group(n_items: int, bytes_per_item: int, device: torch.device | None = None) -> int:
    limit = _chunk_bytes(device) if device is not None else CHUNK_BYTES
    return max(1, min(n_items, limit // max(1, bytes_per_item)))


def _fft_forward(x: torch.Tensor, spec: torch.Tensor, geo: _Geometry, filters: int) -> torch.Tensor:
    """``x: (B, 1, F, T)``, ``spec``: :func:`filter_spectra` -> ``(B, filters, F, T)``.

    Correlation by overlap-save: y[n] = sum_m x[n + m - p] w[m] = ifft(X conj(W)) on each block;
    filters 2j and 2j + 1 come out of one complex inverse FFT as its real and imaginary parts.
    """
    B, P = x.shape[0], spec.shape[0]
    F, T, k, NF, M, L, nb = geo.F, geo.T, geo.k, geo.NF, geo.M, geo.L, geo.nb
    p = k // 2
    xp = Fn.pad(x[:, 0], (p, geo.padded_frames - T - p, p, NF - F - p))  # (B, NF, nb L + k - 1)
    X = torch.fft.fft2(xp.unfold(-1, M, L).transpose(1, 2))  # (B, nb, NF, M) complex
    out = x.new_empty(B, P, 2, F, T)
    full, last = (nb - 1) * L, T - (nb - 1) * L
    step = _group(P, B * X[0].numel() * 8 * 2, x.device)
    for j0 in range(0, P, step):
        j1 = min(P, j0 + step)
        z = torch.fft.ifft2(X[:, None] * spec[None, j0:j1, None])  # (B, j, nb, NF, M)
        y = torch.view_as_real(z)[..., :F, :L, :].permute(0, 1, 5, 3, 2, 4)  # (B, j, 2, F, nb, L)
        if full:
            out[:, j0:j1, :, :, :full].unflatten(-1, (nb - 1, L)).copy_(y[..., : nb - 1, :])
        out[:, j0:j1, :, :, full:] = y[..., nb - 1, :last]
    out = out.view(B, 2 * P, F, T)
    return out if filters == 2 * P else out[:, :filters].contiguous()


def _fft_backward(grad: torch.Tensor, spec: torch.Tensor, geo: _Geometry) -> torch.Tensor:
    """``grad: (B, C, F, T)`` -> input gradient ``(B, 1, F, T)``: sum_c of g_c convolved with w_c.

    Gradient maps 2j and 2j + 1 go through one complex FFT as real and imaginary parts; with the
    packed spectra V = conj(W1) + i conj(W2), Re ifft(sum_j FFT(g1 + i g2) conj(V)) is
    g1 * w1 + g2 * w2 (convolutions), so one inverse FFT per block serves all filters.
    """
    B, C = grad.shape[:2]
    P = spec.shape[0]
    F, T, k, NF, M, L, nb = geo.F, geo.T, geo.k, geo.NF, geo.M, geo.L, geo.nb
    p = k // 2
    frames = geo.padded_frames
    acc = None
    step = _group(P, B * nb * NF * M * 8 * 3, grad.device)
    for j0 in range(0, P, step):
        j1 = min(P, j0 + step)
        buf = grad.new_zeros(B, j1 - j0, NF, frames, 2)
        c0, c1 = 2 * j0, min(C, 2 * j1)
        re, im = grad[:, c0:c1:2], grad[:, c0 + 1:c1:2]
        buf[:, : re.shape[1], p:p + F, p:p + T, 0] = re
        buf[:, : im.shape[1], p:p + F, p:p + T, 1] = im
        z = torch.view_as_complex(buf).unfold(-1, M, L).transpose(2, 3)  # (B, j, nb, NF, M)
        part = (torch.fft.fft2(z) * spec[None, j0:j1, None].conj()).sum(1)  # (B, nb, NF, M)
        acc = part if acc is None else acc.add_(part)
    z = torch.fft.ifft2(acc).real  # (B, nb, NF, M)
    z = z[..., 2 * p: 2 * p + F, k - 1:].permute(0, 2, 1, 3).reshape(B, F, nb * L)  # (B, F, nb L)
    return z[:, None, :, :T].contiguous()


# --------------------------------------------------------------------------------------------
# The layer, with autograd
# --------------------------------------------------------------------------------------------
class SingleToMany:
    """One first-layer convolution ``(B, 1, F, T) -> (B, C, F, T)`` (no ReLU) run by a :class:`Plan`
    at ``precision`` (fp32, tf32, bf16: :mod:`labutils.precision`; the fft parts compute in FP32).

    Keeps the filters' spectra for the FFT parts, computed once per shape and device. The input
    may be of any float dtype (e.g. bf16 under autocast): it is computed against the FP32 weights
    in FP32 and the output and input gradient come back in the input's dtype.

    Notebook: notebooks/03_caracalla_roebel.ipynb
    """

    def __init__(self, weight: torch.Tensor, plan: Plan = DEFAULT_PLAN, *, precision: str = "fp32") -> None:
        if precision not in PR.PRECISIONS:
            raise ValueError(f"precision={precision!r}: one of {', '.join(PR.PRECISIONS)} (resolve 'auto' first)")
        self.weight, self.plan, self.precision = weight, plan, precision
        self._spectra: dict[tuple, torch.Tensor] = {}

    def geometry(self, F: int, T: int) -> _Geometry:
        return _Geometry.of(F, T, self.weight.shape[-1], self.plan.fft_length)

    def spectra(self, geo: _Geometry) -> torch.Tensor:
        w = self.weight
        key = (geo.NF, geo.M, w.device, w.dtype, w._version, w.data_ptr())
        if key not in self._spectra:
            self._spectra.clear()
            with torch.no_grad():
                self._spectra[key] = filter_spectra(w.detach(), geo)
        return self._spectra[key]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return _SingleToManyFn.apply(x, self.weight, self)


class _SingleToManyFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, layer: SingleToMany) -> torch.Tensor:
        ctx.layer, ctx.shape, ctx.dtype = layer, x.shape, x.dtype
        ctx.save_for_backward(weight)
        x = x.to(weight.dtype)  # a bf16 input (autocast) meets FP32 weights in FP32
        kind, precision = layer.plan.forward, layer.precision
        if kind == "fft":
            geo = layer.geometry(x.shape[-2], x.shape[-1])
            y = _fft_forward(x, layer.spectra(geo), geo, weight.shape[0])
        elif kind == "patches":
            y = _patches_forward(x, weight, precision)
        else:
            y = _direct_forward(x, weight, precision)
        return y.to(ctx.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (weight,) = ctx.saved_tensors
        layer, kind, precision = ctx.layer, ctx.layer.plan.backward, ctx.layer.precision
        grad = grad.to(weight.dtype)
        if kind == "fft":
            geo = layer.geometry(ctx.shape[-2], ctx.shape[-1])
            gx = _fft_backward(grad, layer.spectra(geo), geo)
        elif kind == "patches":
            gx = _patches_backward(grad, weight, precision)
        elif kind == "rows":
            gx = _rows_backward(grad, weight, precision)
        else:
            gx = _direct_backward(grad, weight, precision)
        return gx.to(ctx.dtype), None, None


def single_to_many(x: torch.Tensor, weight: torch.Tensor, plan: Plan | str = DEFAULT_PLAN, *,
                   precision: str = "fp32") -> torch.Tensor:
    """``x: (B, 1, F, T)``, ``weight: (C, 1, k, k)`` (k odd) -> ``conv2d(x, weight, padding=k // 2)``
    computed by ``plan`` (a :class:`Plan` or its name) at ``precision``, differentiable in ``x``.
    For repeated calls keep a :class:`SingleToMany`, which caches the filters' spectra."""
    return SingleToMany(weight, Plan.parse(plan) if isinstance(plan, str) else plan, precision=precision)(x)


# --------------------------------------------------------------------------------------------
# Choosing a plan on the running machine
# --------------------------------------------------------------------------------------------
def instruction_set() -> str:
    """The vector instruction set PyTorch's CPU kernels use, with the oneDNN/MKL limits in force,
    e.g. ``"AVX512"``, ``"AVX2"``, ``"AVX2 (ONEDNN_MAX_CPU_ISA=AVX2)"``, ``"NEON"``."""
    try:
        isa = torch.backends.cpu.get_cpu_capability()
    except AttributeError:  # older torch
        isa = "unknown"
    limits = [f"{v}={os.environ[v]}" for v in ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS",
                                                 "ATEN_CPU_CAPABILITY") if os.environ.get(v)]
    return f"{isa} ({', '.join(limits)})" if limits else isa


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (``platform.processor()`` elsewhere)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("model name", "Model", "Hardware")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine() or "cpu"


def cache_file() -> Path | None:
    """Where chosen plans are kept: ``$LABUTILS_CONV_CACHE``, else ``$XDG_CACHE_HOME`` or ``~/.cache``
    ``/labutils/conv_algorithms.json``; None when ``LABUTILS_CONV_CACHE=off``."""
    env = os.environ.get("LABUTILS_CONV_CACHE")
    if env:
        return None if env.lower() in ("off", "0", "none") else Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "labutils" / "conv_algorithms.json"


_MEMORY: dict[str, dict] = {}


def _read_cache(path: Path | None) -> dict:
    if path is None:
        return _MEMORY
    try:
        data = json.loads(path.read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_cache(path: Path | None, data: dict) -> None:
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
        os.replace(tmp, path)
    except OSError:  # a read-only home is no reason to fail a transfer
        pass


def machine_key(device: torch.device | str | None = None) -> str:
    """What a timing depends on besides the shape: CPU, instruction set, threads, torch version
    (on CUDA: the GPU's name, CUDA and torch versions)."""
    dev = torch.device(device or "cpu")
    if dev.type == "cuda":
        return f"{torch.cuda.get_device_name(dev)} | cuda {torch.version.cuda} | torch {torch.__version__}"
    return f"{cpu_model()} | {instruction_set()} | threads {torch.get_num_threads()} | torch {torch.__version__}"


def _load() -> float | None:
    """The 1-minute load average where the OS has one: a probe taken under load is less sure."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def _probe_frames(T: int, device: torch.device | str | None = None) -> int:
    cuda = torch.device(device or "cpu").type == "cuda"
    return min(int(T), CUDA_PROBE_FRAMES if cuda else PROBE_FRAMES)


def shape_key(*, batch: int, filters: int, k: int, n_freq: int, n_frames: int, dtype: torch.dtype,
              precision: str = "fp32", device: torch.device | str | None = None) -> str:
    key = (f"B{batch} C{filters} k{k} F{n_freq} T{_probe_frames(n_frames, device)} "
           f"{str(dtype).replace('torch.', '')}")
    return key if precision == "fp32" else f"{key} {precision}"


def _race(candidates: dict[str, Callable[[], object]], *, rounds: int,
          sync: Callable[[], None] | None = None) -> dict[str, float]:
    """Fastest time in ms of each candidate over ``rounds`` round-robin runs after a warm-up run.

    Round-robin with the minimum: a burst of load from other processes slows whichever candidate
    runs during it, not the comparison as a whole. A candidate whose warm-up took over three
    twice the best warm-up is not run again (its warm-up time stands).
    """
    sync = sync or (lambda: None)
    warm: dict[str, float] = {}
    for name, fn in candidates.items():
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        warm[name] = (time.perf_counter() - t0) * 1e3
    best = {name: math.inf for name in candidates}
    live = [n for n in candidates if warm[n] <= 2 * min(warm.values())]
    for _ in range(rounds):
        for name in live:
            sync()
            t0 = time.perf_counter()
            candidates[name]()
            sync()
            best[name] = min(best[name], (time.perf_counter() - t0) * 1e3)
    return {n: best[n] if n in live else warm[n] for n in candidates}


def measure(weight: torch.Tensor, *, batch: int, n_freq: int, n_frames: int,
            rounds: int = 2, precision: str = "fp32") -> dict[str, float]:
    """Milliseconds of each forward and backward candidate on a ``(batch, 1, n_freq, n_frames)`` input.

    Keys ``"forward:direct"``, ``"forward:fft256"``, ``"backward:rows"``... (see :func:`_race`);
    the direct input gradient (many channels into one, far off peak in oneDNN) is tried for
    k <= 7 only on the CPU. On CUDA the ``patches`` plan (tensor cores at ``precision``) and
    longer FFTs are candidates too, every call is synchronised and the direct input gradient is
    tried for every k.
    """
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 1, n_freq, n_frames, generator=gen).to(weight)
    g = torch.randn(batch, weight.shape[0], n_freq, n_frames, generator=gen).to(weight)
    k, C = weight.shape[-1], weight.shape[0]
    cuda = weight.device.type == "cuda"
    forward: dict[str, Callable[[], object]] = {"direct": lambda: _direct_forward(x, weight, precision)}
    backward: dict[str, Callable[[], object]] = {"rows": lambda: _rows_backward(g, weight, precision)}
    if k <= 7 or cuda:
        backward["direct"] = lambda: _direct_backward(g, weight, precision)
    if cuda:
        forward["patches"] = lambda: _patches_forward(x, weight, precision)
        backward["patches"] = lambda: _patches_backward(g, weight, precision)
    for m in (CUDA_FFT_LENGTHS if cuda else FFT_LENGTHS):
        geo = _Geometry.of(n_freq, n_frames, k, m)
        spec = filter_spectra(weight, geo)
        forward[f"fft{m}"] = lambda geo=geo, spec=spec: _fft_forward(x, spec, geo, C)
        backward[f"fft{m}"] = lambda geo=geo, spec=spec: _fft_backward(g, spec, geo)
    sync = (lambda: torch.cuda.synchronize(weight.device)) if cuda else None
    with torch.no_grad():
        out = {f"forward:{n}": ms for n, ms in _race(forward, rounds=rounds, sync=sync).items()}
        out.update({f"backward:{n}": ms for n, ms in _race(backward, rounds=rounds, sync=sync).items()})
    return out


def _plan_from_timings(timings: dict[str, float]) -> Plan:
    fwd = min((v, k) for k, v in timings.items() if k.startswith("forward:"))[1].split(":")[1]
    bwd = min((v, k) for k, v in timings.items() if k.startswith("backward:"))[1].split(":")[1]
    length = 512
    for part in (bwd, fwd):  # one FFT length for both parts (they share the cached spectra)
        if part.startswith("fft"):
            length = int(part[3:])
    if fwd.startswith("fft") and bwd.startswith("fft") and fwd != bwd:
        lengths = [int(n.split(":fft")[1]) for n in timings if n.startswith("forward:fft")]
        both = {m: timings[f"forward:fft{m}"] + timings[f"backward:fft{m}"] for m in lengths
                if f"backward:fft{m}" in timings}
        length = min(both, key=both.get)
    return Plan("fft" if fwd.startswith("fft") else fwd, "fft" if bwd.startswith("fft") else bwd, length)


def choose(weight: torch.Tensor, *, batch: int, n_freq: int, n_frames: int,
           cache: Path | None | str = "default", precision: str = "fp32") -> tuple[Plan, dict]:
    """The fastest :class:`Plan` for ``weight: (C, 1, k, k)`` on ``(batch, 1, n_freq, n_frames)``
    at ``precision``.

    Looks in the disk cache (:func:`cache_file`) first; otherwise times the candidates on at most
    :data:`PROBE_FRAMES` frames (:data:`CUDA_PROBE_FRAMES` on CUDA; each costs time linear in T
    beyond that) and stores the result (in memory only when the load average exceeded the CPU
    count during a CPU probe). ``LABUTILS_CONV_ALGORITHM`` forces a plan. On devices other than
    the CPU and CUDA, returns :data:`DEFAULT_PLAN`.
    Returns ``(plan, record)``: the record holds the timings in ms and whether it came from the cache.
    """
    forced = os.environ.get("LABUTILS_CONV_ALGORITHM")
    if forced:
        return Plan.parse(forced), {"source": "LABUTILS_CONV_ALGORITHM"}
    device = weight.device
    if device.type not in ("cpu", "cuda"):
        return DEFAULT_PLAN, {"source": f"default on {device.type}"}
    path = cache_file() if cache == "default" else (Path(cache) if isinstance(cache, str) else cache)
    mkey = machine_key(device)
    skey = shape_key(batch=batch, filters=weight.shape[0], k=weight.shape[-1], n_freq=n_freq, n_frames=n_frames,
                     dtype=weight.dtype, precision=precision, device=device)
    # a plan measured on a busy machine lives in memory for this process (so that two runs in one
    # process use the same kernels and a seed repeats them exactly); the disk cache holds the rest
    entry = _read_cache(path).get(mkey, {}).get(skey) or _MEMORY.get(mkey, {}).get(skey)
    if entry:
        try:
            return Plan.parse(entry["plan"]), {**entry, "source": "cache"}
        except (KeyError, ValueError, TypeError):
            pass
    t0 = time.perf_counter()
    frames = _probe_frames(n_frames, device)
    timings = measure(weight.detach(), batch=batch, n_freq=n_freq, n_frames=frames, precision=precision)
    plan = _plan_from_timings(timings)
    entry = {"plan": plan.name, "probe_frames": frames,
             "ms": {k: round(v, 3) for k, v in timings.items()},
             "probe_s": round(time.perf_counter() - t0, 3), "load_average": _load()}
    load = entry["load_average"]
    if device.type == "cpu" and load is not None and load > (os.cpu_count() or 1):
        path = None  # measured on a busy machine: keep it for this process, measure again next time
    data = _read_cache(path)  # re-read: another process may have written meanwhile
    data.setdefault(mkey, {})[skey] = entry
    _write_cache(path, data)
    return plan, {**entry, "source": "measured"}
