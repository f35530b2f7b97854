"""Row-wise lookups in a sparse ``[R, C]`` matrix held as sorted keys (not public API).

LPFormer asks, for every node pair ``(a, b)`` of a batch, for the neighbours and the
personalized-PageRank entries of ``a`` and of ``b``. :class:`SparseRows` keeps a matrix
as sorted keys ``row * C + col`` with CSR offsets, so that gathering many rows and
looking up many entries are a few vectorized tensor operations (no loop over rows).
"""

from __future__ import annotations

import torch
from torch import Tensor

from gnn.core import ops
from gnn.core.ops.csr import ptr_from_sorted_index


class SparseRows:
    """A coalesced sparse ``[num_rows, num_cols]`` matrix: entries ``(row, col, value)`` sorted by
    ``(row, col)`` with duplicates summed, plus CSR offsets ``ptr``."""

    def __init__(self, row: Tensor, col: Tensor, value: Tensor, num_rows: int, num_cols: int) -> None:
        self.num_rows, self.num_cols = num_rows, num_cols
        keys = row.long() * num_cols + col.long()
        keys, inverse = torch.unique(keys, sorted=True, return_inverse=True)
        self.keys, self.value = keys, ops.scatter(value, inverse, 0, keys.numel(), "sum")
        self.row, self.col = keys // num_cols, keys % num_cols
        self.ptr = ptr_from_sorted_index(self.row, num_rows)

    @classmethod
    def from_sparse(cls, matrix: Tensor) -> SparseRows:
        """From a ``torch.sparse`` COO/CSR/CSC matrix (2-D)."""
        coo = matrix.to_sparse_coo().coalesce() if matrix.layout != torch.sparse_coo else matrix.coalesce()
        index = coo.indices()
        return cls(index[0], index[1], coo.values(), coo.size(0), coo.size(1))

    def gather_rows(self, rows: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """The entries of the given rows: ``(k, col, value)`` with ``k`` the position in ``rows``,
        sorted by ``(k, col)``."""
        rows = rows.long()
        start = self.ptr.index_select(0, rows)
        counts = self.ptr.index_select(0, rows + 1) - start
        k = torch.repeat_interleave(torch.arange(rows.numel(), device=rows.device), counts)
        first = torch.cumsum(counts, 0) - counts
        pos = (
            start.index_select(0, k) + torch.arange(k.numel(), device=rows.device) - first.index_select(0, k)
        )
        return k, self.col.index_select(0, pos), self.value.index_select(0, pos)

    def lookup(self, row: Tensor, col: Tensor) -> tuple[Tensor, Tensor]:
        """``(value, found)`` of the entries ``(row, col)`` (value 0 where there is no entry)."""
        return lookup_sorted(self.keys, self.value, row.long() * self.num_cols + col.long())


def lookup_sorted(keys: Tensor, value: Tensor, query: Tensor) -> tuple[Tensor, Tensor]:
    """``(value[keys == query], found)`` for sorted unique ``keys`` (0 where a query is missing)."""
    if keys.numel() == 0:
        return value.new_zeros(query.shape), torch.zeros(query.shape, dtype=torch.bool, device=query.device)
    pos = torch.searchsorted(keys, query).clamp(max=keys.numel() - 1)
    found = keys.index_select(0, pos) == query
    return torch.where(found, value.index_select(0, pos), value.new_zeros(())), found


def union_of_rows(
    keys_a: Tensor, value_a: Tensor, keys_b: Tensor, value_b: Tensor
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Merge two sorted unique key lists: ``(keys, value_a, value_b, in_a, in_b)`` over the sorted
    union, each value 0 where its list lacks the key."""
    keys = torch.unique(torch.cat([keys_a, keys_b]), sorted=True)
    va, in_a = lookup_sorted(keys_a, value_a, keys)
    vb, in_b = lookup_sorted(keys_b, value_b, keys)
    return keys, va, vb, in_a, in_b
