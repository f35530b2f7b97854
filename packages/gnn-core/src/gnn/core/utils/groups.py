"""Groups given by an ``index`` (group of each element) or CSR offsets ``ptr``.

Aggregations and poolings receive their groups in either form; these helpers
convert between them and count group sizes.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .. import ops
from .. import validation as v
from ..ops.csr import ptr_from_sorted_index, ptr_to_index

__all__ = ["group_counts", "ptr_from_sorted_index", "ptr_to_index"]


def group_counts(
    index: Tensor | None = None,
    ptr: Tensor | None = None,
    dim_size: int | None = None,
    *,
    dtype: torch.dtype = torch.int64,
) -> Tensor:
    """``[G]`` number of elements in each group.

    ``count[g] = ptr[g + 1] - ptr[g]`` with ``ptr``, else
    ``count[g] = |{e : index[e] = g}|`` (a sum-scatter of ones through
    :func:`gnn.core.ops.scatter`, so empty groups count 0).

    Args:
        index: ``[E]`` group of each element (any order).
        ptr: ``[G + 1]`` offsets of grouped elements (takes precedence).
        dim_size: number of groups ``G`` with ``index`` (default ``index.max() + 1``);
            ignored with ``ptr``.
        dtype: dtype of the counts.

    Example:
        >>> group_counts(torch.tensor([0, 0, 2]), dim_size=4)
        tensor([2, 0, 1, 0])
        >>> group_counts(ptr=torch.tensor([0, 2, 2, 3]))
        tensor([2, 0, 1])
    """
    if ptr is not None:
        v.check_tensor("ptr", ptr)
        return (ptr[1:] - ptr[:-1]).to(dtype)
    if index is None:
        raise ValueError("group_counts needs 'index' or 'ptr', got neither")
    v.check_tensor("index", index)
    ones = torch.ones(index.numel(), dtype=dtype, device=index.device)
    return ops.scatter(ones, index, 0, dim_size, "sum")
