"""Compressed sparse row form of a graph, the input of :func:`gnn.core.ops.spmm`.

Rows are the nodes that receive messages (targets for
``flow="source_to_target"``), columns the nodes that send them. ``perm``
maps each CSR position back to the edge's position in the original
``edge_index`` so that per-edge tensors (weights, attributes) given in
edge order can be reordered without sorting again.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import torch
from torch import Tensor

from .. import validation as v

# torch.sparse CSR is used internally with indices we built and validated
warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
warnings.filterwarnings("ignore", message="Sparse invariant checks are implicitly disabled")


class KernelGraph(NamedTuple):
    """A graph as compiled backends receive it: plain int64 tensors, no gnn-core objects.

    Backends registered through ``gnn_register_kernels`` get this tuple where an op
    takes a graph (the pure-torch reference gets the :class:`CSR` itself). Rows receive,
    columns send.

    Attributes:
        rowptr: ``[num_rows + 1]`` int64 offsets into ``col``.
        col: ``[nnz]`` int64 sending node of each entry, grouped by row.
        perm: ``[nnz]`` int64 position of each CSR entry in the caller's edge order,
            or ``None`` when the edges already are in CSR order. Per-edge tensors that
            an op takes (weights, edge features, masks) come in edge order, and per-edge
            results (attention weights) go back in edge order.
        num_rows: number of receiving nodes.
        num_cols: number of sending nodes.
        t_rowptr, t_col: the transposed pattern (rows are the senders), present when a
            gradient flows back to the senders, else ``None``.
        t_perm: ``[nnz]`` int64 position in *CSR* order of each transposed entry.
    """

    rowptr: Tensor
    col: Tensor
    perm: Tensor | None
    num_rows: int
    num_cols: int
    t_rowptr: Tensor | None = None
    t_col: Tensor | None = None
    t_perm: Tensor | None = None


@dataclass(eq=False)
class CSR:
    """A ``num_rows x num_cols`` sparse pattern in CSR form.

    Attributes:
        rowptr: ``[num_rows + 1]`` offsets into ``col``.
        col: ``[nnz]`` column (source node) of each entry, sorted by row.
        num_rows: number of rows (receiving nodes).
        num_cols: number of columns (sending nodes).
        perm: ``[nnz]`` position of each entry in the original edge list,
            or ``None`` when the edges were already sorted by row.
        value: optional ``[nnz]`` (or ``[nnz, ...]``) per-entry values in CSR order.
    """

    rowptr: Tensor
    col: Tensor
    num_rows: int
    num_cols: int
    perm: Tensor | None = None
    value: Tensor | None = None
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def nnz(self) -> int:
        return self.col.numel()

    @property
    def device(self) -> torch.device:
        return self.col.device

    def row(self) -> Tensor:
        """``[nnz]`` row of each entry (expanded ``rowptr``; cached)."""
        row = self._cache.get("row")
        if row is None:
            row = ptr_to_index(self.rowptr, self.nnz, dtype=self.col.dtype)
            if not torch.compiler.is_compiling():
                self._cache["row"] = row
        return row

    def check_columns(self) -> None:
        """Check ``0 <= col < num_cols`` (once: a CSR is immutable)."""
        if self._cache.get("col_in_range"):
            return
        v.check_index_range("csr.col", self.col, self.num_cols, "source nodes")
        if v.validation_enabled():
            self._cache["col_in_range"] = True

    def degree(self) -> Tensor:
        """``[num_rows]`` number of entries per row."""
        return self.rowptr[1:] - self.rowptr[:-1]

    def mean_divisor(self, dtype: torch.dtype, ndim: int) -> Tensor:
        """``[num_rows, 1, ...]`` row sizes clamped to 1 (``ndim`` dimensions), to turn row sums
        into means; cached per dtype and rank."""
        key = ("mean_divisor", dtype, ndim)
        hit = self._cache.get(key)
        if hit is None:
            hit = self.degree().clamp(min=1).to(dtype).view((-1,) + (1,) * (ndim - 1))
            if not torch.compiler.is_compiling():
                self._cache[key] = hit
        return hit

    def in_csr_order(self, edge_tensor: Tensor | None) -> Tensor | None:
        """Reorder a tensor given in original edge order into CSR order."""
        if edge_tensor is None or self.perm is None:
            return edge_tensor
        return edge_tensor.index_select(0, self.perm)

    def in_edge_order(self, csr_tensor: Tensor | None) -> Tensor | None:
        """Reorder a per-entry tensor given in CSR order back into the original edge order
        (the inverse of :meth:`in_csr_order`)."""
        if csr_tensor is None or self.perm is None:
            return csr_tensor
        return torch.empty_like(csr_tensor).index_copy_(0, self.perm, csr_tensor)

    def transpose(self) -> CSR:
        """The transposed pattern (columns become rows); cached.

        Its ``perm`` maps into *this* CSR's order, so per-entry tensors in
        CSR order can be moved with :meth:`in_csr_order`.
        """
        t = self._cache.get("t")
        if t is None:
            t = from_coo(self.col, self.row(), self.num_cols, self.num_rows)
            if not torch.compiler.is_compiling():
                self._cache["t"] = t
        return t

    def kernel_graph(self, transposed: bool) -> KernelGraph:
        """This pattern as plain int64 tensors for a compiled backend (cached).

        Args:
            transposed: include the transposed pattern (needed when a gradient flows
                back to the sending nodes).
        """
        key = ("kernel", transposed)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        rowptr, col = self.rowptr.long().contiguous(), self.col.long().contiguous()
        perm = None if self.perm is None else self.perm.long().contiguous()
        t_rowptr = t_col = t_perm = None
        if transposed:
            t = self.transpose()
            t_rowptr, t_col = t.rowptr.long().contiguous(), t.col.long().contiguous()
            t_perm = t.perm.long() if t.perm is not None else torch.arange(t.nnz, device=t.col.device)
        graph = KernelGraph(rowptr, col, perm, self.num_rows, self.num_cols, t_rowptr, t_col, t_perm)
        if not torch.compiler.is_compiling():
            self._cache[key] = graph
        return graph

    def torch_sparse(self, value: Tensor | None, dtype: torch.dtype) -> Tensor:
        """A ``torch.sparse_csr_tensor`` view (values default to ones); the view of the last
        values tensor is kept (a static graph's weights are the same tensor every call)."""
        if value is None:
            key: Any = ("ones", dtype)
            cached = self._cache.get(key)
            if cached is not None:
                return cached
            value = torch.ones(self.nnz, dtype=dtype, device=self.device)
        else:
            last = self._cache.get("values")
            if (
                last is not None
                and last[0] is value
                and last[1] == value._version
                and not value.requires_grad
            ):
                return last[2]
            key = "values"
        rowptr, col = self.rowptr, self.col
        if rowptr.dtype != col.dtype:
            rowptr = rowptr.to(col.dtype)
        out = torch.sparse_csr_tensor(
            rowptr, col, value, (self.num_rows, self.num_cols), check_invariants=False
        )
        if not torch.compiler.is_compiling() and not value.requires_grad:
            self._cache[key] = out if key != "values" else (value, value._version, out)
        return out


def ptr_to_index(ptr: Tensor, size: int | None = None, *, dtype: torch.dtype | None = None) -> Tensor:
    """Expand ``[G + 1]`` CSR offsets into the ``[E]`` group of each element.

    ``index[e] = g`` for ``ptr[g] <= e < ptr[g + 1]``; the inverse of
    :func:`ptr_from_sorted_index`. Passing ``size`` (``E = ptr[-1]``) avoids a
    device sync.

    Args:
        ptr: ``[G + 1]`` non-decreasing offsets starting at 0.
        size: number of elements ``E`` (default: read from ``ptr[-1]``).
        dtype: dtype of the result (default: ``ptr.dtype``).

    Returns:
        ``[E]`` sorted group index.

    Example:
        >>> ptr_to_index(torch.tensor([0, 2, 2, 5]))
        tensor([0, 0, 2, 2, 2])
    """
    counts = ptr[1:] - ptr[:-1]
    groups = torch.arange(counts.numel(), device=ptr.device, dtype=dtype or ptr.dtype)
    return torch.repeat_interleave(groups, counts, output_size=size)


def ptr_from_sorted_index(index: Tensor, size: int) -> Tensor:
    """``[size + 1]`` offsets of a sorted ``index``."""
    counts = torch.bincount(index, minlength=size) if index.numel() else index.new_zeros(size)
    ptr = index.new_zeros(size + 1, dtype=torch.int64)
    torch.cumsum(counts, 0, out=ptr[1:])
    return ptr.to(index.dtype) if index.dtype == torch.int32 else ptr


def from_coo(row: Tensor, col: Tensor, num_rows: int, num_cols: int, *, is_sorted: bool = False) -> CSR:
    """Build a :class:`CSR` from COO ``row``/``col`` (stable sort by row)."""
    tracing = torch.compiler.is_compiling()
    if not is_sorted and (tracing or row.numel() > 1):
        if tracing:  # no data-dependent branch, no test of the size
            perm = torch.argsort(row, stable=True)
        else:
            sorted_already = bool((row[1:] >= row[:-1]).all())
            perm = None if sorted_already else torch.argsort(row, stable=True)
    else:
        perm = None
    if perm is not None:
        row = row.index_select(0, perm)
        col = col.index_select(0, perm)
    if tracing:  # torch._convert_indices_from_coo_to_csr would specialize on num_rows
        counts = torch.zeros(num_rows, dtype=torch.long, device=row.device)
        counts = counts.index_add(0, row.long(), torch.ones_like(row, dtype=torch.long))
        rowptr = torch.cat([counts.new_zeros(1), counts.cumsum(0)]).to(row.dtype)
        col = col if row.dtype == torch.int32 else col.long()
    elif row.dtype == torch.int32:
        rowptr = torch._convert_indices_from_coo_to_csr(row, num_rows, out_int32=True)
    else:
        rowptr = torch._convert_indices_from_coo_to_csr(row.long(), num_rows)
        col = col.long()
    csr = CSR(rowptr=rowptr, col=col, num_rows=num_rows, num_cols=num_cols, perm=perm)
    if not tracing:
        csr._cache["row"] = row if row.dtype == col.dtype else row.to(col.dtype)
    return csr
