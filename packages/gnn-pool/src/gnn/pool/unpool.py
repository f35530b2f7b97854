"""Unpooling: k-NN interpolation of features onto new points (PointNet++)."""

from __future__ import annotations

import torch
from torch import Tensor

from gnn.core import ops
from gnn.core import validation as v
from gnn.core.utils import ptr_from_sorted_index

__all__ = ["knn_interpolate"]

#: smallest squared distance used in the weights (a point on top of a source point takes its features)
_MIN_SQ_DIST = 1e-16


def knn_interpolate(
    x: Tensor,
    pos_x: Tensor,
    pos_y: Tensor,
    batch_x: Tensor | None = None,
    batch_y: Tensor | None = None,
    k: int = 3,
    num_workers: int = 1,
) -> Tensor:
    r"""Interpolate the features ``x`` of the points ``pos_x`` at the points ``pos_y``.

    .. math::
        f(y) = \frac{\sum_{i=1}^k w_i\, x_i}{\sum_{i=1}^k w_i}, \qquad
        w_i = \frac{1}{\max(d(y, x_i)^2, 10^{-16})}

    over the :math:`k` nearest points :math:`x_i` of :math:`y` (same graph),
    found by :func:`gnn.core.ops.knn`; the weighted sum runs through
    :func:`gnn.core.ops.spmm` (no ``[M * k, F]`` tensor). Gradients flow into
    ``x``; the positions are treated as constants. A point whose graph holds
    no point of ``pos_x`` gets 0.

    Args:
        x: ``[N, F]`` features of the points ``pos_x``.
        pos_x: ``[N, d]`` positions of the known points.
        pos_y: ``[M, d]`` positions to interpolate at.
        batch_x: ``[N]`` sorted graph of every point of ``pos_x``.
        batch_y: ``[M]`` sorted graph of every point of ``pos_y``.
        k: neighbours used.
        num_workers: accepted for PyG compatibility.

    Returns:
        ``[M, F]`` interpolated features.

    Example:
        >>> x = torch.tensor([[0.0], [10.0]])
        >>> pos_x = torch.tensor([[0.0], [1.0]])
        >>> knn_interpolate(x, pos_x, torch.tensor([[0.5], [0.25]]), k=2)
        tensor([[5.],
                [1.]])
    """
    v.check_tensor("x", x)
    v.check_tensor("pos_x", pos_x)
    num = pos_x.size(0) if pos_x.dim() else 0
    if x.dim() == 0 or x.size(0) != num:
        raise ValueError(f"'x' must have one row per point of 'pos_x' ({num}), got {v.describe(x)}")
    with torch.no_grad():
        query, point = ops.knn(pos_x.detach(), pos_y.detach(), k, batch_x, batch_y, False, num_workers)
        px, py = pos_x.detach(), pos_y.detach()
        if px.dim() == 1:
            px, py = px.unsqueeze(1), py.unsqueeze(1)
        diff = px[point] - py[query]
        weight = 1.0 / (diff * diff).sum(1).clamp(min=_MIN_SQ_DIST)
        weight = weight.to(x.dtype if x.is_floating_point() else weight.dtype)
        num_y = py.size(0)
        ptr = ptr_from_sorted_index(query, num_y)
        total = ops.segment(weight, ptr, 0, "sum")
        total = torch.where(total > 0, total, torch.ones_like(total))
    if not x.is_floating_point():
        x = x.to(weight.dtype)
    csr = ops.from_coo(query, point, num_y, num, is_sorted=True)
    out = ops.spmm(csr, x, weight, "sum")
    return out / total.view((-1,) + (1,) * (out.dim() - 1))
