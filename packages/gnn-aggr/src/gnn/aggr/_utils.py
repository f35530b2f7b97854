"""Helpers shared by several aggregations of gnn-aggr.

Every group reduction goes through :mod:`gnn.core.ops`; these helpers only
reshape, count and reorder.
"""

from __future__ import annotations

from torch import Tensor

from gnn.core.utils import ptr_to_index


def norm_dim(dim: int, ndim: int) -> int:
    """``dim`` as a non-negative axis of a tensor with ``ndim`` dimensions."""
    return dim % ndim


def along(values: Tensor, ndim: int, dim: int) -> Tensor:
    """View a ``[G]`` per-group tensor so it broadcasts along ``dim`` of an ``ndim``-D tensor."""
    shape = [1] * ndim
    shape[norm_dim(dim, ndim)] = -1
    return values.view(shape)


def sort_within_groups(x: Tensor, index: Tensor | None, ptr: Tensor | None, dim: int) -> Tensor:
    """Sort ``x`` along ``dim`` by group first, then by value within each group.

    Every feature column is sorted on its own (the order of the groups is the
    same in every column): in the result, group ``g`` occupies positions
    ``[start_g, start_g + count_g)`` along ``dim``, ``start`` being the
    exclusive cumulative sum of the group counts, in ascending value order.

    Args:
        x: ``[..., E, ..., F]`` values.
        index: ``[E]`` group of each element (any order), or ``None`` when
            ``ptr`` is given (elements already grouped).
        ptr: ``[G + 1]`` offsets of already-grouped elements.
        dim: the dimension of the elements.
    """
    dim = norm_dim(dim, x.dim())
    values, perm = x.sort(dim=dim)
    if index is None:
        assert ptr is not None
        index = ptr_to_index(ptr, x.size(dim))
    shape = [1] * x.dim()
    shape[dim] = -1
    groups = index.long().view(shape).expand_as(x).gather(dim, perm)
    _, order = groups.sort(dim=dim, stable=True)
    return values.gather(dim, order)
