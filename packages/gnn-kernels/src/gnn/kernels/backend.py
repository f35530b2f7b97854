"""The ``"native"`` backend: gnn.core.ops calls served by the compiled kernels.

gnn-core selects a backend per call with :meth:`NativeBackend.supports`;
this one takes float32/float64 CPU tensors and the sum/mean/max/min
reductions, and leaves everything else to the pure-torch reference.
Ops over a graph receive it as plain tensors, the ``KernelGraph`` tuple that
gnn-core documents: ``(rowptr, col, perm, num_rows, num_cols, t_rowptr, t_col,
t_perm)``, all int64 and contiguous, rows receiving, ``perm`` the CSR position ->
edge position map (``None``: edges in CSR order) and the transposed pattern present
when a gradient flows back to the senders. This module imports nothing of gnn-core.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from ._common import (  # noqa: F401
    _REDUCE_CODES,
    REDUCE_MAX,
    REDUCE_MEAN,
    REDUCE_MIN,
    REDUCE_MUL,
    REDUCE_SUM,
    contiguous_rows,
)
from ._library import load, load_error
from .geometry import GeometryOps
from .walk import WalkOps

_OPS = {
    "spmm",
    "spmm_self",
    "scatter",
    "segment",
    "node_score_attention",
    "segment_matmul",
    "gather_matmul",
    "gather_mul_sum",
    "gather_mul_project",
    "silu_second_order",
    "dot_attention",
    "additive_attention",
    "softmax",
    "segment_multi",
    "spmm_multi",
    "knn",
    "radius",
    "nearest",
    "fps",
    "graclus",
    "grid_cluster",
    "random_walk",
    "spline_basis",
    "spline_weighting",
}
#: below this many elements read (``work``), a call's fixed cost in the custom-op
#: machinery (about 60 us) exceeds what the kernel saves and the pure-torch reference runs.
#: Measured fwd+bwd on 2 cores: spmm and the sum/mean reductions break even near 400k
#: elements, max/min near 16k; the fused attention and softmax kernels win at any size.
_MIN_WORK = {"spmm": 1 << 19, "spmm_self": 1 << 19}
_MIN_WORK_REDUCE = {"sum": 1 << 19, "mean": 1 << 19}  # scatter / segment by reduction
_MIN_WORK_DEFAULT = 1 << 14
# random_walk: the reference runs a dozen torch ops per step, the kernel one call for the whole walk
_ALWAYS = {
    "node_score_attention",
    "additive_attention",
    "dot_attention",
    "softmax",
    "segment_matmul",
    "random_walk",
    "gather_matmul",  # faster than the reference at every size measured (100 rows and up)
    "gather_mul_sum",  # one pass without [Q, C] temporaries (the reference forms three)
    "gather_mul_project",
    "silu_second_order",  # one pass instead of about ten
}


def _min_work(op: str, reduce: str | None) -> int:
    if op in _ALWAYS:
        return 0
    if op in ("scatter", "segment"):
        return _MIN_WORK_REDUCE.get(reduce or "", _MIN_WORK_DEFAULT)
    return _MIN_WORK.get(op, _MIN_WORK_DEFAULT)


#: ops whose schema takes an output size as an ``int``: a symbolic size (torch.compile with
#: dynamic shapes, torch.export) would be specialized, so they are left to the pure-torch
#: reference (which the compiler turns into fused code of its own) while tracing
_SIZED_OPS = {"scatter", "softmax"}


def multi_codes(reductions: Any, dtype: torch.dtype) -> tuple[list[int], Tensor | None]:
    """The kernel codes of one-pass reductions (gnn-core's ``Reduction`` tuples: ``name``, ``t``
    as a ``[P]`` tensor for a softmax, ``semi_grad``) and the ``[S, P]`` softmax temperatures."""
    from ._multi_ops import MULTI_CODES, SEMI_GRAD

    codes = [MULTI_CODES[r.name] + (SEMI_GRAD if r.semi_grad else 0) for r in reductions]
    temps = [r.t.to(dtype) for r in reductions if r.name == "softmax"]
    return codes, (torch.stack(temps).contiguous() if temps else None)


def _needs_grad(*tensors: Tensor | None) -> bool:
    """Whether autograd will ask for a gradient of one of ``tensors`` (then the kernels keep the
    statistics their backward reads)."""
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


def in_graph_order(graph: Any, edge_tensor: Tensor | None) -> Tensor | None:
    """A per-edge tensor given in edge order, moved into the graph's CSR order."""
    if edge_tensor is None or graph.perm is None:
        return edge_tensor
    return edge_tensor.index_select(0, graph.perm)


def in_edge_order(graph: Any, csr_tensor: Tensor | None) -> Tensor | None:
    """A per-entry tensor in CSR order, moved back into the caller's edge order."""
    if csr_tensor is None or graph.perm is None:
        return csr_tensor
    return torch.empty_like(csr_tensor).index_copy_(0, graph.perm, csr_tensor)


def _along_rows(src: Tensor, dim: int, rows_out: int, kernel: Any) -> Tensor:
    """``kernel`` (a contiguous ``[E, F]`` -> ``[rows_out, F]`` op) applied along ``dim`` of ``src``:
    ``dim`` moved first and the other dimensions flattened into ``F``, then both restored."""
    moved = src.movedim(dim, 0) if dim != 0 else src
    rest = tuple(moved.shape[1:])
    out = kernel(moved.reshape(moved.size(0), math.prod(rest)).contiguous()).view((rows_out,) + rest)
    return out.movedim(0, dim) if dim != 0 else out


class NativeBackend(GeometryOps, WalkOps):
    """Compiled CPU kernels (OpenMP-style row parallelism through torch's thread pool)."""

    name = "native"

    def __init__(self) -> None:
        if not load():
            raise RuntimeError(load_error())
        self.ops = torch.ops.gnn_kernels

    def supports(
        self,
        op: str,
        *,
        device: torch.device,
        dtype: torch.dtype,
        reduce: str | None,
        work: int | None = None,
        **ctx: Any,
    ) -> bool:
        if op not in _OPS or device.type != "cpu" or dtype not in (torch.float32, torch.float64):
            return False
        if work is not None and work < _min_work(op, reduce):
            return False
        if op in _SIZED_OPS and torch.compiler.is_compiling():
            return False
        return reduce is None or reduce in _REDUCE_CODES

    # -- ops ---------------------------------------------------------------------------------
    def spmm(self, graph: Any, x: Tensor, edge_weight: Tensor | None, reduce: str) -> Tensor:
        return self.spmm_self(graph, x, edge_weight, reduce, None, 1.0)

    def spmm_self(
        self,
        graph: Any,
        x: Tensor,
        edge_weight: Tensor | None,
        reduce: str,
        x_self: Tensor | None,
        self_weight: float,
    ) -> Tensor:
        """``spmm`` plus ``self_weight * x_self``, fused into the kernel for sum/mean."""
        rowptr, col = graph.rowptr, graph.col
        value = in_graph_order(graph, edge_weight)
        if value is not None:
            value = value.to(x.dtype).contiguous()
        rest = tuple(x.shape[1:])
        feats = math.prod(rest)
        if reduce in ("max", "min"):
            out, _ = self.ops.spmm_minmax(
                rowptr, col, value, x.reshape(x.size(0), feats).contiguous(), reduce == "max"
            )
            out = out.view((graph.num_rows,) + rest)
            return out if x_self is None else out + self_weight * x_self
        t_rowptr = t_col = t_perm = None
        if x.requires_grad:
            t_rowptr, t_col, t_perm = graph.t_rowptr, graph.t_col, graph.t_perm
        if x_self is not None:
            x_self = x_self.to(x.dtype).reshape(graph.num_rows, 1, feats).contiguous()
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
        return out.view((graph.num_rows,) + rest)

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

    def segment_multi(self, src: Tensor, ptr: Tensor, perm: Tensor | None, reductions: Any) -> Tensor:
        """One-pass multi-reduction of ``src`` ``[E, P]`` over sorted groups ``ptr`` (read through
        ``perm`` when ``src`` is not sorted): ``[G, R, P]``."""
        codes, temps = multi_codes(reductions, src.dtype)
        perm = None if perm is None else perm.long().contiguous()
        stats = _needs_grad(src, temps)
        out, _ = self.ops.multi_reduce(
            ptr.long().contiguous(), perm, src.contiguous(), codes, temps, None, None, stats
        )
        return out

    def spmm_multi(self, graph: Any, x: Tensor, reductions: Any) -> Tensor:
        """One-pass multi-reduction of ``x[col]`` over each row of the graph: ``[num_rows, R, P]``."""
        codes, temps = multi_codes(reductions, x.dtype)
        t_rowptr = t_col = None
        if x.requires_grad:
            t_rowptr, t_col = graph.t_rowptr, graph.t_col
        stats = _needs_grad(x, temps)
        out, _ = self.ops.multi_reduce(
            graph.rowptr, graph.col, x.contiguous(), codes, temps, t_rowptr, t_col, stats
        )
        return out

    def spline_basis(
        self, pseudo: Tensor, kernel_size: Tensor, is_open_spline: Tensor, degree: int
    ) -> tuple[Tensor, Tensor]:
        """B-spline basis products and kernel indices of every row of ``pseudo`` ``[E, D]``."""
        device = pseudo.device
        return self.ops.spline_basis(
            pseudo.contiguous(),
            kernel_size.to(device=device, dtype=torch.long).contiguous(),
            is_open_spline.to(device=device, dtype=torch.uint8).contiguous(),
            degree,
        )

    def spline_weighting(self, x: Tensor, weight: Tensor, basis: Tensor, weight_index: Tensor) -> Tensor:
        """``sum_s basis[e, s] * x[e] @ weight[weight_index[e, s]]`` without any per-edge matrix."""
        return self.ops.spline_weighting(
            x.contiguous(),
            weight.contiguous(),
            basis.to(x.dtype).contiguous(),
            weight_index.long().contiguous(),
        )

    def segment_matmul(self, inputs: Tensor, ptr: Tensor, other: Tensor) -> Tensor:
        ptr = ptr.to(device="cpu", dtype=torch.long)
        rows, inner = inputs.shape[0], math.prod(inputs.shape[1:-1])
        if inputs.dim() != 2:  # [N, *, F_in]: every row of a type spans `inner` matrix rows
            flat = inputs.reshape(rows * inner, inputs.shape[-1])
            out = self.ops.segment_matmul(flat, (ptr * inner).contiguous(), other)
            return out.view(tuple(inputs.shape[:-1]) + (other.shape[-1],))
        return self.ops.segment_matmul(inputs, ptr.contiguous(), other)

    def gather_matmul(self, inputs: Tensor, types: Tensor, other: Tensor, index: Tensor | None) -> Tensor:
        """``out[e] = inputs[index[e]] @ other[types[e]]`` (the table or grouped route in C++)."""
        types = types.long().contiguous()
        index = None if index is None else index.long().contiguous()
        return self.ops.gather_matmul(inputs, types, other, index)

    def gather_mul_sum(
        self, a: Tensor, index: Tensor, s: Tensor, weight: Tensor, ptr: Tensor, order: Tensor | None
    ) -> Tensor:
        """``out[i] = sum_{ptr[i] <= q < ptr[i+1]} a[index[q]] * (s[order[q]] @ weight^T)``."""
        return self.ops.gather_mul_sum(a, index.contiguous(), s, weight, ptr.contiguous(), order)

    def gather_mul_project(
        self,
        g: Tensor,
        g_index: Tensor,
        a: Tensor,
        a_index: Tensor,
        weight: Tensor,
        s: Tensor | None,
        need_first: bool = True,
    ) -> tuple[Tensor, Tensor]:
        """``h = g[g_index] * a[a_index]``: ``(h @ weight, h^T @ s)`` (the first ``[0, B]`` unless
        ``need_first``)."""
        return self.ops.gather_mul_project(
            g, g_index.contiguous(), a, a_index.contiguous(), weight, s, need_first
        )

    def silu_second_order(
        self, z: Tensor, g: Tensor, u: Tensor, overwrite_u: bool
    ) -> tuple[Tensor, Tensor, Tensor]:
        """``(g silu'(z), u silu'(z), u g silu''(z))`` in one pass (the second written over ``u``
        when ``overwrite_u``)."""
        return self.ops.silu_second_order(z, g, u, overwrite_u)

    def node_score_attention(
        self,
        graph: Any,
        x: Tensor,
        a_src: Tensor,
        a_dst: Tensor,
        a_edge: Tensor | None,
        negative_slope: float,
        mask: Tensor | None = None,
        return_alpha: bool | str = True,
    ) -> tuple[Tensor, Tensor | None]:
        a_edge = in_graph_order(graph, a_edge)
        mask = in_graph_order(graph, mask)
        rowptr, col, t_rowptr, t_col, t_perm = self._fused_pattern(graph, x, a_src, a_dst, a_edge)
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
        return out, (
            alpha if return_alpha == "csr" else in_edge_order(graph, alpha) if return_alpha else None
        )

    # -- fused attention with per-feature scores (TransformerConv, GATv2Conv) ---------------------
    def _fused_pattern(self, graph: Any, *inputs: Tensor | None) -> tuple[Tensor | None, ...]:
        """rowptr, col and (when a gradient is needed) the transposed pattern, else ``None``s."""
        if any(t is not None and t.requires_grad for t in inputs):
            return graph.rowptr, graph.col, graph.t_rowptr, graph.t_col, graph.t_perm
        return graph.rowptr, graph.col, None, None, None

    def dot_attention(
        self,
        graph: Any,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        edge: Tensor | None,
        scale: float,
        return_alpha: bool | str = True,
    ) -> tuple[Tensor, Tensor | None]:
        edge = in_graph_order(graph, edge)
        rowptr, col, t_rowptr, t_col, t_perm = self._fused_pattern(graph, query, key, value, edge)
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
        return out, (
            alpha if return_alpha == "csr" else in_edge_order(graph, alpha) if return_alpha else None
        )

    def additive_attention(
        self,
        graph: Any,
        x_src: Tensor,
        x_dst: Tensor,
        att: Tensor,
        edge: Tensor | None,
        negative_slope: float,
        return_alpha: bool | str = True,
    ) -> tuple[Tensor, Tensor | None]:
        edge = in_graph_order(graph, edge)
        rowptr, col, t_rowptr, t_col, t_perm = self._fused_pattern(graph, x_src, x_dst, att, edge)
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
        return out, (
            alpha if return_alpha == "csr" else in_edge_order(graph, alpha) if return_alpha else None
        )
