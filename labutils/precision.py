"""Reduced-precision matrix work for attempt 3's fast path: fp32, tf32, bf16, each runnable on CPU.

On CUDA, ``"tf32"`` lets cuBLAS and cuDNN use TF32 tensor cores for the op at hand only (the
global switches are set around the op and restored afterwards: nothing in this module changes
process-wide state for longer than one call); ``"bf16"`` casts the operands of a matrix product
(or convolution) to bfloat16 and accumulates in FP32, returning FP32 (``torch.bmm(...,
out_dtype=torch.float32)`` where the build has it, else a bf16 product cast back). The loss and
the optimised variable stay FP32 throughout.

On the CPU each precision is *emulated* so that the tests can compare it with FP32: the operands
are rounded to bf16 (or to TF32's 10-bit mantissa) and the product is taken in FP32, which is
what a tensor core computes (products of rounded inputs, FP32 accumulation).

``"auto"`` resolves to ``"fp32"`` on the CPU and to ``"tf32"`` on CUDA (the default until
``bench/gpu.sh`` has measured on a GPU whether bf16 is both faster and within the accuracy bound).

Notebook: notebooks/03_caracalla_roebel.ipynb
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch
import torch.nn.functional as Fn

PRECISIONS = ("fp32", "tf32", "bf16")
CHOICES = ("auto",) + PRECISIONS
#: what "auto" means on CUDA until measured otherwise (bench/gpu.sh prints the evidence)
CUDA_AUTO = "tf32"


def resolve(precision: str, device: torch.device | str | None) -> str:
    """``"auto"`` -> ``"fp32"`` on the CPU, :data:`CUDA_AUTO` on CUDA; others pass through (checked)."""
    if precision not in CHOICES:
        raise ValueError(f"precision={precision!r}: one of {', '.join(CHOICES)}")
    if precision != "auto":
        return precision
    return CUDA_AUTO if torch.device(device or "cpu").type == "cuda" else "fp32"


@contextlib.contextmanager
def tf32(device: torch.device | str | None, enabled: bool = True) -> Iterator[None]:
    """Allow TF32 in cuBLAS matmuls and cuDNN convolutions inside the block, on CUDA only;
    the previous settings are restored on exit. Elsewhere (or ``enabled=False``) does nothing."""
    if not enabled or torch.device(device or "cpu").type != "cuda":
        yield
        return
    m, c = torch.backends.cuda.matmul, torch.backends.cudnn
    try:  # the legacy switches; reading them raises where the new API has been used
        old = (m.allow_tf32, c.allow_tf32)
        legacy = True
    except RuntimeError:
        old = (m.fp32_precision, c.conv.fp32_precision)
        legacy = False
    try:
        if legacy:
            m.allow_tf32, c.allow_tf32 = True, True
        else:
            m.fp32_precision, c.conv.fp32_precision = "tf32", "tf32"
        yield
    finally:
        if legacy:
            m.allow_tf32, c.allow_tf32 = old
        else:
            m.fp32_precision, c.conv.fp32_precision = old


def _round_tf32(x: torch.Tensor) -> torch.Tensor:
    """Round FP32 values to TF32's 10-bit mantissa (round to nearest), as FP32."""
    bits = x.detach().float().contiguous().view(torch.int32)
    return torch.bitwise_and(bits + 0x1000, -0x2000).view(torch.float32).to(x.dtype)


def emulate(x: torch.Tensor, precision: str) -> torch.Tensor:
    """``x`` rounded to what a ``precision`` tensor core reads, kept in ``x``'s dtype; differentiable
    (bf16: through the casts, which round the gradient too; tf32: straight through)."""
    if precision == "bf16":
        return x.to(torch.bfloat16).to(x.dtype)
    if precision == "tf32":
        return x + (_round_tf32(x) - x.detach())
    return x


def _bf16_bmm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a: (..., m, k) @ b: (..., k, n)`` (batch axes broadcast) with bf16 operands, FP32 out."""
    batch = torch.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    m, k, n = a.shape[-2], a.shape[-1], b.shape[-1]
    a3 = a.to(torch.bfloat16).expand(*batch, m, k).reshape(-1, m, k)
    b3 = b.to(torch.bfloat16).expand(*batch, k, n).reshape(-1, k, n)
    try:
        out = torch.bmm(a3, b3, out_dtype=torch.float32)
    except (RuntimeError, TypeError, NotImplementedError):  # builds without bmm.dtype: bf16 out
        out = torch.bmm(a3, b3).float()
    return out.reshape(*batch, m, n)


def matmul(a: torch.Tensor, b: torch.Tensor, *, precision: str = "fp32") -> torch.Tensor:
    """``torch.matmul(a, b)`` (FP32 operands, FP32 result) computed at ``precision``.

    CUDA: tf32 under :func:`tf32`, bf16 by :func:`_bf16_bmm`; CPU: operands rounded by
    :func:`emulate`, product in FP32. Not for autograd through ``a``/``b`` in bf16 on CUDA
    (the custom backward passes of :mod:`labutils.convolve` and :mod:`labutils.losses` call it).
    """
    if precision == "fp32":
        return torch.matmul(a, b)
    if a.device.type == "cuda":
        if precision == "tf32":
            with tf32(a.device):
                return torch.matmul(a, b)
        return _bf16_bmm(a, b)
    return torch.matmul(emulate(a, precision), emulate(b, precision))


def conv2d(x: torch.Tensor, weight: torch.Tensor, *, padding: tuple[int, int] | int,
           precision: str = "fp32") -> torch.Tensor:
    """``Fn.conv2d(x, weight, padding=padding)`` at ``precision``, FP32 (``x``'s dtype) out;
    differentiable. CUDA bf16: bf16 operands (cuDNN accumulates in FP32), result cast back;
    CUDA tf32: cuDNN TF32 for the forward (the backward follows the global setting, which
    PyTorch leaves on for cuDNN by default); CPU: operands rounded by :func:`emulate`."""
    if precision == "fp32":
        return Fn.conv2d(x, weight, padding=padding)
    if x.device.type == "cuda":
        if precision == "bf16":
            return Fn.conv2d(x.to(torch.bfloat16), weight.to(torch.bfloat16), padding=padding).to(x.dtype)
        with tf32(x.device):
            return Fn.conv2d(x, weight, padding=padding)
    return Fn.conv2d(emulate(x, precision), emulate(weight, precision), padding=padding)
