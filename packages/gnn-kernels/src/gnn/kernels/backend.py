"""The ``"native"`` backend: gnn.core.ops calls served by the compiled kernels.

gnn-core selects a backend per call with :meth:`NativeBackend.supports`;
this one takes float32/float64 CPU tensors and the sum/mean/max/min
reductions, and leaves everything else to the pure-torch reference.
The graph arguments are gnn-core's CSR objects, used by duck typing
(``rowptr``, ``col``, ``perm``, ``transpose()``, ``in_csr_order()``, ``in_edge_order()``), so this
module imports nothing of gnn-core.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from ._library import load, load_error
from .geometry import GeometryOps

_OPS = {
    "spmm",
    "spmm_self",
    "scatter",
    "segment",
    "attention",
    "segment_matmul",
    "dot_attention",
    "gatv2_attention",
    "softmax",
    "knn",
    "radius",
    "nearest",
    "fps",
    "graclus",
    "grid_cluster",
}
# reduction codes of scatter_reduce/segment_reduce (csrc/reduce.h)
REDUCE_SUM, REDUCE_MEAN, REDUCE_MAX, REDUCE_MIN, REDUCE_MUL = range(5)
_REDUCE_CODES = {
    "sum": REDUCE_SUM,
    "add": REDUCE_SUM,
    "mean": REDUCE_MEAN,
    "max": REDUCE_MAX,
    "min": REDUCE_MIN,
    "mul": REDUCE_MUL,
}


def _long_pattern(csr: Any) -> tuple[Tensor, Tensor]:
    """int64 rowptr/col of a CSR (cached on the CSR object)."""
    cache = csr._cache
    hit = cache.get("native_long")
    if hit is None:
        hit = (csr.rowptr.long().contiguous(), csr.col.long().contiguous())
        if not torch.compiler.is_compiling():
            cache["native_long"] = hit
    return hit


def _along_rows(src: Tensor, dim: int, rows_out: int, kernel: Any) -> Tensor:
    """``kernel`` (a contiguous ``[E, F]`` -> ``[rows_out, F]`` op) applied along ``dim`` of ``src``:
    ``dim`` moved first and the other dimensions flattened into ``F``, then both restored."""
    moved = src.movedim(dim, 0) if dim != 0 else src
    rest = tuple(moved.shape[1:])
    out = kernel(moved.reshape(moved.size(0), math.prod(rest)).contiguous()).view((rows_out,) + rest)
    return out.movedim(0, dim) if dim != 0 else out


def contiguous_rows(t: Tensor) -> Tensor:
    """``t`` with each row contiguous, keeping its row stride (a column block of a wider
    tensor stays a view) and a broadcast along rows (stride 0) broadcast. Only the CPU
    kernels read strided rows."""
    if t.device.type != "cpu":
        return t.contiguous()
    if t.dim() > 1 and t.size(0) > 1 and t.stride(0) == 0:
        return t[:1].contiguous().expand(t.shape)
    inner = t[0] if t.dim() > 1 and t.size(0) > 0 else t
    return t if inner.is_contiguous() else t.contiguous()


def _transposed(csr: Any) -> tuple[Tensor, Tensor, Tensor]:
    t = csr.transpose()
    rowptr, col = _long_pattern(t)
    perm = t.perm if t.perm is not None else torch.arange(t.nnz, device=t.col.device)
    return rowptr, col, perm.long()


class NativeBackend(GeometryOps):
    """Compiled CPU kernels (OpenMP-style row parallelism through torch's thread pool)."""

    name = "native"

    def __init__(self) -> None:
        if not load():
            raise RuntimeError(load_error())
        self.ops = torch.ops.gnn_kernels

    def supports(
        self, op: str, *, device: torch.device, dtype: torch.dtype, reduce: str | None, requires_grad: bool
    ) -> bool:
        if op not in _OPS or device.type != "cpu" or dtype not in (torch.float32, torch.float64):
            return False
        return reduce is None or reduce in _REDUCE_CODES

    # -- ops ---------------------------------------------------------------------------------
    def spmm(self, csr: Any, x: Tensor, edge_weight: Tensor | None, reduce: str) -> Tensor:
        return self.spmm_self(csr, x, edge_weight, reduce, None, 1.0)

    def spmm_self(
        self,
        csr: Any,
        x: Tensor,
        edge_weight: Tensor | None,
        reduce: str,
        x_self: Tensor | None,
        self_weight: float,
    ) -> Tensor:
        """``spmm`` plus ``self_weight * x_self``, fused into the kernel for sum/mean."""
        rowptr, col = _long_pattern(csr)
        value = csr.in_csr_order(edge_weight)
        if value is not None:
            value = value.to(x.dtype).contiguous()
        rest = tuple(x.shape[1:])
        feats = math.prod(rest)
        if reduce in ("max", "min"):
            out, _ = self.ops.spmm_minmax(
                rowptr, col, value, x.reshape(x.size(0), feats).contiguous(), reduce == "max"
            )
            out = out.view((csr.num_rows,) + rest)
            return out if x_self is None else out + self_weight * x_self
        t_rowptr = t_col = t_perm = None
        if x.requires_grad:
            t_rowptr, t_col, t_perm = _transposed(csr)
        if x_self is not None:
            x_self = x_self.to(x.dtype).reshape(csr.num_rows, 1, feats).contiguous()
        out = self.ops.spmm_sum(
            rowptr,
            col,
            value,
            x.reshape(x.size(0), 1, feats).contiguous(),
            reduce == "mean",
            t_rowptr,
            t_col,
            t_perm,
            x_self,
            self_weight,
        )
        return out.view((csr.num_rows,) + rest)

    def scatter(self, src: Tensor, index: Tensor, dim: int, dim_size: int, reduce: str) -> Tensor:
        index = index.long().contiguous()
        code = _REDUCE_CODES[reduce]
        return _along_rows(
            src, dim, dim_size, lambda flat: self.ops.scatter_reduce(flat, index, dim_size, code)[0]
        )

    def segment(self, src: Tensor, ptr: Tensor, dim: int, reduce: str) -> Tensor:
        ptr = ptr.long().contiguous()
        code = _REDUCE_CODES[reduce]
        return _along_rows(
            src, dim, ptr.numel() - 1, lambda flat: self.ops.segment_reduce(flat, ptr, code)[0]
        )

    def softmax(self, src: Tensor, index: Tensor, dim: int, dim_size: int) -> Tensor:
        """Group softmax along ``dim`` in one fused kernel (three passes, no [E, F] temporaries)."""
        index = index.long().contiguous()
        return _along_rows(
            src, dim, src.size(dim), lambda flat: self.ops.softmax_forward(flat, index, dim_size)
        )

    def segment_matmul(self, inputs: Tensor, ptr: Tensor, other: Tensor) -> Tensor:
        ptr = ptr.to(device="cpu", dtype=torch.long)
        rows, inner = inputs.shape[0], math.prod(inputs.shape[1:-1])
        if inputs.dim() != 2:  # [N, *, F_in]: every row of a type spans `inner` matrix rows
            flat = inputs.reshape(rows * inner, inputs.shape[-1])
            out = self.ops.segment_matmul(flat, (ptr * inner).contiguous(), other)
            return out.view(tuple(inputs.shape[:-1]) + (other.shape[-1],))
        return self.ops.segment_matmul(inputs, ptr.contiguous(), other)

    def attention(
        self,
        csr: Any,
        x: Tensor,
        a_src: Tensor,
        a_dst: Tensor,
        a_edge: Tensor | None,
        negative_slope: float,
        mask: Tensor | None = None,
        return_alpha: bool = True,
    ) -> tuple[Tensor, Tensor | None]:
        a_edge = csr.in_csr_order(a_edge)
        mask = csr.in_csr_order(mask)
        rowptr, col, t_rowptr, t_col, t_perm = self._fused_pattern(csr, x, a_src, a_dst, a_edge)
        out, alpha = self.ops.attention_forward(
            rowptr,
            col,
            contiguous_rows(a_src.to(x.dtype)),
            contiguous_rows(a_dst.to(x.dtype)),
            None if a_edge is None else a_edge.to(x.dtype).contiguous(),
            None if mask is None else mask.contiguous(),
            x.contiguous(),
            negative_slope,
            t_rowptr,
            t_col,
            t_perm,
        )
        # unless asked for, alpha stays in CSR order, saved for backward only
        return out, (csr.in_edge_order(alpha) if return_alpha else None)

    # -- fused attention with per-feature scores (TransformerConv, GATv2Conv) ---------------------
    def _fused_pattern(self, csr: Any, *inputs: Tensor | None) -> tuple[Tensor, ...]:
        """rowptr, col and (when a gradient is needed) the transposed pattern, else ``None``s."""
        rowptr, col = _long_pattern(csr)
        if any(t is not None and t.requires_grad for t in inputs):
            return (rowptr, col) + _transposed(csr)
        return rowptr, col, None, None, None

    def dot_attention(
        self,
        csr: Any,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        edge: Tensor | None,
        scale: float,
        return_alpha: bool = True,
    ) -> tuple[Tensor, Tensor | None]:
        edge = csr.in_csr_order(edge)
        rowptr, col, t_rowptr, t_col, t_perm = self._fused_pattern(csr, query, key, value, edge)
        dtype = query.dtype
        out, alpha = self.ops.dot_attention_forward(
            rowptr,
            col,
            query.contiguous(),
            key.to(dtype).contiguous(),
            value.to(dtype).contiguous(),
            None if edge is None else edge.to(dtype).contiguous(),
            scale,
            t_rowptr,
            t_col,
            t_perm,
        )
        return out, (csr.in_edge_order(alpha) if return_alpha else None)

    def gatv2_attention(
        self,
        csr: Any,
        x_src: Tensor,
        x_dst: Tensor,
        att: Tensor,
        edge: Tensor | None,
        negative_slope: float,
        return_alpha: bool = True,
    ) -> tuple[Tensor, Tensor | None]:
        edge = csr.in_csr_order(edge)
        rowptr, col, t_rowptr, t_col, t_perm = self._fused_pattern(csr, x_src, x_dst, att, edge)
        dtype = x_src.dtype
        out, alpha = self.ops.gatv2_attention_forward(
            rowptr,
            col,
            x_src.contiguous(),
            x_dst.to(dtype).contiguous(),
            att.to(dtype).contiguous(),
            None if edge is None else edge.to(dtype).contiguous(),
            negative_slope,
            t_rowptr,
            t_col,
            t_perm,
        )
        return out, (csr.in_edge_order(alpha) if return_alpha else None)
