"""Pure-torch implementations of every op: always present, the reference
that compiled backends are tested against.

These functions assume validated inputs (see :mod:`gnn.core.ops`).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .csr import CSR

_SCATTER_REDUCE = {"min": "amin", "max": "amax", "mul": "prod"}


def broadcast_index(index: Tensor, src: Tensor, dim: int) -> Tensor:
    """Expand a 1-D ``index`` along ``dim`` to the shape of ``src``."""
    shape = [1] * src.dim()
    shape[dim] = -1
    return index.view(shape).expand_as(src)


def scatter(src: Tensor, index: Tensor, dim: int, dim_size: int, reduce: str) -> Tensor:
    """Reduce slices of ``src`` along ``dim`` into ``dim_size`` groups given by ``index``."""
    index = index.long() if index.dtype != torch.int64 else index
    shape = list(src.shape)
    shape[dim] = dim_size
    if reduce in ("sum", "add"):
        return src.new_zeros(shape).index_add_(dim, index, src)
    if reduce == "mean":
        total = src.new_zeros(shape).index_add_(dim, index, src)
        count = torch.zeros(dim_size, dtype=src.dtype, device=src.device)
        count.index_add_(0, index, torch.ones_like(index, dtype=src.dtype))
        count_shape = [1] * src.dim()
        count_shape[dim] = dim_size
        return total / count.clamp(min=1).view(count_shape)
    if reduce in _SCATTER_REDUCE:
        fill = 1.0 if reduce == "mul" else 0.0
        out = src.new_full(shape, fill)
        return out.scatter_reduce(
            dim, broadcast_index(index, src, dim), src, _SCATTER_REDUCE[reduce], include_self=False
        )
    raise ValueError(f"unknown reduce {reduce!r}")


def ptr_to_index(ptr: Tensor, size: int | None = None) -> Tensor:
    """Expand CSR offsets into a group index of each element."""
    counts = ptr[1:] - ptr[:-1]
    groups = torch.arange(counts.numel(), device=ptr.device)
    return torch.repeat_interleave(groups, counts, output_size=size)


def segment(src: Tensor, ptr: Tensor, dim: int, reduce: str) -> Tensor:
    """Reduce contiguous segments ``src[ptr[i]:ptr[i+1]]`` along ``dim``."""
    index = ptr_to_index(ptr, src.size(dim))
    return scatter(src, index, dim, ptr.numel() - 1, reduce)


class _CSRMatmul(torch.autograd.Function):
    """``A @ x`` with a constant CSR ``A``; backward is ``A^T @ grad``."""

    @staticmethod
    def forward(ctx, csr: CSR, x: Tensor, value: Tensor | None) -> Tensor:  # type: ignore[override]
        ctx.csr = csr
        ctx.value = value
        return csr.torch_sparse(value, x.dtype) @ x

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        csr: CSR = ctx.csr
        if not ctx.needs_input_grad[1]:
            return None, None, None
        t = csr.transpose()
        value = t.in_csr_order(ctx.value)
        return None, t.torch_sparse(value, grad.dtype) @ grad.contiguous(), None


def _torch_sparse_ok(x: Tensor, value: Tensor | None) -> bool:
    if torch.compiler.is_compiling():
        return False
    if x.dtype not in (torch.float32, torch.float64):
        return False
    if x.device.type not in ("cpu", "cuda"):
        return False
    return value is None or (not value.requires_grad and value.dim() == 1)


def spmm(csr: CSR, x: Tensor, edge_weight: Tensor | None, reduce: str) -> Tensor:
    """``out[i] = reduce_{e in row i} edge_weight[e] * x[col[e]]``.

    ``x`` is ``[num_cols, *]``; ``edge_weight`` (optional) is in the original
    edge order. The output is ``[num_rows, *]``; empty rows give 0.
    """
    value = csr.in_csr_order(edge_weight)
    flat = x.reshape(x.size(0), math.prod(x.shape[1:]))
    if reduce in ("sum", "add", "mean") and _torch_sparse_ok(flat, value):
        if value is not None and value.dtype != flat.dtype:
            value = value.to(flat.dtype)
        out = _CSRMatmul.apply(csr, flat.contiguous(), value)
        if reduce == "mean":
            out = out / csr.degree().clamp(min=1).to(out.dtype).unsqueeze(-1)
        return out.view((csr.num_rows,) + tuple(x.shape[1:]))
    messages = x.index_select(0, csr.col)
    if value is not None:
        messages = messages * value.view((-1,) + (1,) * (x.dim() - 1)).to(messages.dtype)
    return scatter(messages, csr.row(), 0, csr.num_rows, "sum" if reduce == "add" else reduce)


def softmax(src: Tensor, index: Tensor, dim: int, dim_size: int) -> Tensor:
    """Softmax of ``src`` within each group of ``index`` along ``dim``."""
    index = index.long() if index.dtype != torch.int64 else index
    src_max = scatter(src.detach(), index, dim, dim_size, "max")
    out = (src - src_max.index_select(dim, index)).exp()
    out_sum = scatter(out, index, dim, dim_size, "sum") + 1e-16
    return out / out_sum.index_select(dim, index)


def segment_matmul(inputs: Tensor, ptr: Tensor, other: Tensor) -> Tensor:
    """``out[ptr[t]:ptr[t+1]] = inputs[ptr[t]:ptr[t+1]] @ other[t]``."""
    sizes = (ptr[1:] - ptr[:-1]).tolist()
    chunks = torch.split(inputs, sizes, dim=0)
    outs = [chunk @ other[t] for t, chunk in enumerate(chunks)]
    if not outs:
        return inputs.new_zeros(0, other.size(-1))
    return torch.cat(outs, dim=0)


def attention(
    csr: CSR,
    x: Tensor,
    a_src: Tensor,
    a_dst: Tensor,
    a_edge: Tensor | None,
    negative_slope: float,
    mask: Tensor | None = None,
    return_alpha: bool = True,
) -> tuple[Tensor, Tensor | None]:
    """GAT-style attention aggregation (see :func:`gnn.core.ops.attention`)."""
    row, col = csr.row(), csr.col
    score = a_src.index_select(0, col) + a_dst.index_select(0, row)
    if a_edge is not None:
        score = score + csr.in_csr_order(a_edge)
    score = torch.nn.functional.leaky_relu(score, negative_slope)
    if mask is None:
        alpha = softmax(score, row, 0, csr.num_rows)
    else:  # masked entries: exp(-inf) = 0; a fully masked row keeps a finite maximum and alpha = 0
        score = score.masked_fill(csr.in_csr_order(mask).unsqueeze(-1), float("-inf"))
        top = scatter(score.detach(), row, 0, csr.num_rows, "max")
        top = top.masked_fill(top == float("-inf"), 0.0)
        num = (score - top.index_select(0, row)).exp()
        den = scatter(num, row, 0, csr.num_rows, "sum") + 1e-16
        alpha = num / den.index_select(0, row)
    out = scatter(x.index_select(0, col) * alpha.unsqueeze(-1), row, 0, csr.num_rows, "sum")
    if not return_alpha:
        return out, None
    if csr.perm is not None:  # back to the original edge order
        alpha = torch.empty_like(alpha).index_copy_(0, csr.perm, alpha)
    return out, alpha
