"""Pure-torch reference of the two primitives behind :func:`gnn.core.ops.projected_gather_sum`
(assumes validated inputs, see :mod:`gnn.core.ops.projected`). Both form ``[Q, C]`` temporaries,
which the compiled kernels avoid."""

from __future__ import annotations

from torch import Tensor

from .csr import ptr_to_index

__all__ = ["gather_mul_project", "gather_mul_sum"]


def gather_mul_sum(
    a: Tensor, index: Tensor, s: Tensor, weight: Tensor, ptr: Tensor, order: Tensor | None
) -> Tensor:
    """``out[i] = sum_{ptr[i] <= q < ptr[i+1]} a[index[q]] * (s[order[q]] @ weight^T)``."""
    rows = s if order is None else s.index_select(0, order)
    products = a.index_select(0, index) * (rows @ weight.t())
    out = products.new_zeros(ptr.numel() - 1, a.size(1))
    return out.index_add(0, ptr_to_index(ptr, index.numel()), products)


def gather_mul_project(
    g: Tensor,
    g_index: Tensor,
    a: Tensor,
    a_index: Tensor,
    weight: Tensor,
    s: Tensor | None,
    need_first: bool = True,
) -> tuple[Tensor, Tensor]:
    """``h = g[g_index] * a[a_index]``; returns ``(h @ weight, h^T @ s)`` (the first ``[0, B]``
    unless ``need_first``, the second without ``s``)."""
    h = g.index_select(0, g_index) * a.index_select(0, a_index)
    second = h.t() @ s if s is not None else h.new_zeros(0, weight.size(1))
    return (h @ weight if need_first else h.new_zeros(0, weight.size(1))), second
