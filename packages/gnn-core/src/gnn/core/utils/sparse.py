"""Sparse adjacency inputs: torch.sparse COO/CSR/CSC and ``torch_sparse.SparseTensor``.

A sparse input is read as PyG reads it, as the *transposed* adjacency
``adj_t`` of shape ``[N_dst, N_src]``: row ``i`` lists the nodes that send
to ``i``. Duplicate entries of an uncoalesced COO tensor are kept (each
counts as one edge).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from ..ops.csr import CSR, from_coo

_TORCH_SPARSE_LAYOUTS = (torch.sparse_coo, torch.sparse_csr, torch.sparse_csc)


def _is_sparse_tensor(obj: object) -> bool:
    """Duck-type check for ``torch_sparse.SparseTensor`` (no import needed)."""
    cls = type(obj)
    return cls.__name__ == "SparseTensor" and cls.__module__.startswith("torch_sparse")


def is_sparse(obj: object) -> bool:
    """Whether ``obj`` is a torch.sparse adjacency or a ``SparseTensor``."""
    if isinstance(obj, Tensor):
        return obj.layout in _TORCH_SPARSE_LAYOUTS
    return _is_sparse_tensor(obj)


@dataclass(eq=False)
class SparseInput:
    """A sparse ``adj_t`` as CSR (rows receive) plus its values (in CSR order)."""

    csr: CSR
    value: Tensor | None
    _edge_index: Tensor | None = field(default=None, repr=False)

    @property
    def size(self) -> tuple[int, int]:
        """``(N_src, N_dst)`` in ``edge_index`` convention."""
        return self.csr.num_cols, self.csr.num_rows

    def edge_index(self) -> Tensor:
        """``[2, E]`` with row 0 the senders and row 1 the receivers (built once)."""
        if self._edge_index is None:
            self._edge_index = torch.stack([self.csr.col, self.csr.row()])
        return self._edge_index


def from_sparse(adj_t: object) -> SparseInput:
    """Read a sparse ``adj_t`` into a :class:`SparseInput`."""
    if _is_sparse_tensor(adj_t):
        rowptr, col, value = adj_t.csr()  # type: ignore[attr-defined]
        n_dst, n_src = adj_t.sparse_sizes()  # type: ignore[attr-defined]
        csr = CSR(rowptr=rowptr, col=col, num_rows=int(n_dst), num_cols=int(n_src))
        return SparseInput(csr, value)
    if not isinstance(adj_t, Tensor) or adj_t.layout not in _TORCH_SPARSE_LAYOUTS:
        raise TypeError(f"expected a sparse adjacency, got {type(adj_t).__name__}")
    if adj_t.sparse_dim() != 2:
        raise ValueError(
            f"a sparse adjacency must have 2 sparse dimensions (extra dense dimensions hold "
            f"multi-dimensional edge values), got shape {list(adj_t.shape)}"
        )
    if adj_t.layout == torch.sparse_csr:
        n_dst, n_src = adj_t.shape[:2]
        csr = CSR(rowptr=adj_t.crow_indices(), col=adj_t.col_indices(), num_rows=n_dst, num_cols=n_src)
        return SparseInput(csr, adj_t.values())
    if adj_t.layout == torch.sparse_csc:
        n_dst, n_src = adj_t.shape[:2]
        ccol, row, value = adj_t.ccol_indices(), adj_t.row_indices(), adj_t.values()
        counts = ccol[1:] - ccol[:-1]
        col = torch.repeat_interleave(torch.arange(n_src, device=row.device, dtype=row.dtype), counts)
        return _sorted_input(from_coo(row, col, n_dst, n_src), value)
    indices = adj_t._indices()
    value = adj_t._values()
    n_dst, n_src = adj_t.shape[:2]
    csr = from_coo(indices[0], indices[1], n_dst, n_src, is_sorted=adj_t.is_coalesced())
    return _sorted_input(csr, value)


def _sorted_input(csr: CSR, value: Tensor) -> SparseInput:
    """Move ``value`` into CSR order; the CSR order becomes the edge order."""
    value = csr.in_csr_order(value)
    csr.perm = None
    return SparseInput(csr, value)


def to_edge_index(adj_t: object) -> tuple[Tensor, Tensor | None]:
    """``(edge_index, value)`` of a sparse ``adj_t`` (senders in row 0)."""
    sp = from_sparse(adj_t)
    return sp.edge_index(), sp.value
