"""Pure-torch implementations of every op: always present, the reference
that compiled backends are tested against.

These functions assume validated inputs (see :mod:`gnn.core.ops`).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .csr import CSR, ptr_to_index

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


def segment(src: Tensor, ptr: Tensor, dim: int, reduce: str) -> Tensor:
    """Reduce contiguous segments ``src[ptr[i]:ptr[i+1]]`` along ``dim``."""
    index = ptr_to_index(ptr, src.size(dim))
    return scatter(src, index, dim, ptr.numel() - 1, reduce)


def _sparse_mm(a: Tensor, x: Tensor, mean: bool) -> Tensor:
    """``a @ x`` (divided by the row sizes when ``mean``) for a torch.sparse CSR ``a``.

    On CPU, ``torch.sparse.mm(..., reduce)`` runs torch's row-parallel kernel
    (faster than ``a @ x``) and computes the mean in the same pass.
    """
    if x.device.type == "cpu":
        return torch.sparse.mm(a, x, "mean" if mean else "sum")
    out = a @ x
    if mean:
        rowptr = a.crow_indices()
        out = out / (rowptr[1:] - rowptr[:-1]).clamp(min=1).to(out.dtype).unsqueeze(-1)
    return out


class _CSRMatmul(torch.autograd.Function):
    """``A @ x`` (sum or mean) with a constant CSR ``A``, plus ``s * x_self``.

    Backward: ``grad_x = A^T @ (grad / deg if mean else grad)``, with the
    transposed pattern and its torch.sparse form cached on the CSR;
    ``grad_x_self = s * grad``. Nothing is computed for inputs that need no grad.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx,
        csr: CSR,
        x: Tensor,
        value: Tensor | None,
        mean: bool,
        x_self: Tensor | None,
        self_weight: float,
    ) -> Tensor:
        ctx.csr, ctx.value, ctx.mean, ctx.self_weight = csr, value, mean, self_weight
        out = _sparse_mm(csr.torch_sparse(value, x.dtype), x, mean)
        if x_self is not None:
            out.add_(x_self, alpha=self_weight)
        return out

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        csr: CSR = ctx.csr
        grad_x = grad_self = None
        if ctx.needs_input_grad[4]:
            grad_self = grad * ctx.self_weight if ctx.self_weight != 1.0 else grad
        if ctx.needs_input_grad[1]:
            if ctx.mean:
                grad = grad / csr.degree().clamp(min=1).to(grad.dtype).unsqueeze(-1)
            t = csr.transpose()
            value = t.in_csr_order(ctx.value)
            grad_x = _sparse_mm(t.torch_sparse(value, grad.dtype), grad.contiguous(), False)
        return None, grad_x, None, None, grad_self, None


#: below this many gathered elements (``nnz * features``) a gather and scatter is faster than
#: building and multiplying a torch.sparse matrix (its fixed cost is about 80 us per call)
_SPARSE_MM_MIN_WORK = 1 << 15


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
    return spmm_self(csr, x, edge_weight, reduce, None, 1.0)


def spmm_self(
    csr: CSR,
    x: Tensor,
    edge_weight: Tensor | None,
    reduce: str,
    x_self: Tensor | None,
    self_weight: float,
) -> Tensor:
    """:func:`spmm` plus ``self_weight * x_self`` (``[num_rows, *]``, optional), in one pass when possible."""
    value = csr.in_csr_order(edge_weight)
    feats = math.prod(x.shape[1:])
    flat = x.reshape(x.size(0), feats)
    flat_self = None if x_self is None else x_self.reshape(csr.num_rows, feats)
    if (
        reduce in ("sum", "add", "mean")
        and not torch.compiler.is_compiling()  # before the size test, which would specialize a trace
        and csr.nnz * feats >= _SPARSE_MM_MIN_WORK  # small graphs stop here
        and _torch_sparse_ok(flat, value)
    ):
        if value is not None and value.dtype != flat.dtype:
            value = value.to(flat.dtype)
        if flat_self is not None and flat_self.dtype != flat.dtype:
            flat_self = flat_self.to(flat.dtype)
        out = _CSRMatmul.apply(csr, flat.contiguous(), value, reduce == "mean", flat_self, float(self_weight))
        return out.view((csr.num_rows,) + tuple(x.shape[1:]))
    messages = x.index_select(0, csr.col)
    if value is not None:
        messages = messages * value.view((-1,) + (1,) * (x.dim() - 1)).to(messages.dtype)
    if reduce == "mean":  # a sum divided by the (cached) row sizes: no count pass per call
        out = scatter(messages, csr.row(), 0, csr.num_rows, "sum") / csr.mean_divisor(x.dtype, x.dim())
    else:
        out = scatter(messages, csr.row(), 0, csr.num_rows, "sum" if reduce == "add" else reduce)
    if x_self is not None:  # in place on the fresh result (its backward does not need it)
        out = out.add_(x_self, alpha=self_weight) if reduce in ("sum", "add") else out + self_weight * x_self
    return out


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


def node_score_attention(
    csr: CSR,
    x: Tensor,
    a_src: Tensor,
    a_dst: Tensor,
    a_edge: Tensor | None,
    negative_slope: float,
    mask: Tensor | None = None,
    return_alpha: bool | str = True,
) -> tuple[Tensor, Tensor | None]:
    """Attention from per-node scores (see :func:`gnn.core.ops.node_score_attention`)."""
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
    return out, (alpha if return_alpha == "csr" else csr.in_edge_order(alpha))


def dot_attention(
    csr: CSR,
    query: Tensor,
    key: Tensor,
    value: Tensor,
    edge: Tensor | None,
    scale: float,
    return_alpha: bool | str = True,
) -> tuple[Tensor, Tensor | None]:
    """Dot-product attention aggregation (see :func:`gnn.core.ops.dot_attention`)."""
    row, col = csr.row(), csr.col
    key_e, value_e = key.index_select(0, col), value.index_select(0, col)
    edge = csr.in_csr_order(edge)
    if edge is not None:
        key_e, value_e = key_e + edge, value_e + edge
    score = (query.index_select(0, row) * key_e).sum(-1) * scale
    alpha = softmax(score, row, 0, csr.num_rows)
    out = scatter(value_e * alpha.unsqueeze(-1), row, 0, csr.num_rows, "sum")
    return out, (alpha if return_alpha == "csr" else csr.in_edge_order(alpha) if return_alpha else None)


def additive_attention(
    csr: CSR,
    x_src: Tensor,
    x_dst: Tensor,
    att: Tensor,
    edge: Tensor | None,
    negative_slope: float,
    return_alpha: bool | str = True,
) -> tuple[Tensor, Tensor | None]:
    """Additive attention (see :func:`gnn.core.ops.additive_attention`)."""
    row, col = csr.row(), csr.col
    src = x_src.index_select(0, col)
    z = src + x_dst.index_select(0, row)
    edge = csr.in_csr_order(edge)
    if edge is not None:
        z = z + edge
    score = (torch.nn.functional.leaky_relu(z, negative_slope) * att).sum(-1)
    alpha = softmax(score, row, 0, csr.num_rows)
    out = scatter(src * alpha.unsqueeze(-1), row, 0, csr.num_rows, "sum")
    return out, (alpha if return_alpha == "csr" else csr.in_edge_order(alpha) if return_alpha else None)


# ops whose pure-torch reference lives in a topic module of its own, found here by the backend
# selection (gnn.core.ops.backends looks the reference of an op up in this module)
from .reference_activation import silu_second_order  # noqa: E402,F401
from .reference_gather_scatter import gather_mul_scatter  # noqa: E402,F401
from .reference_projected import gather_mul_project, gather_mul_sum  # noqa: E402,F401
from .reference_relational import gather_matmul  # noqa: E402,F401
