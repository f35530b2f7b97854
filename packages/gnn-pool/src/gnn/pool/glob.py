r"""Global pools: one vector per graph from the features of its nodes.

For graph :math:`g` with nodes :math:`\mathcal{V}_g = \{i : batch_i = g\}`:

.. math::
    r_g = \sum_{i \in \mathcal{V}_g} x_i, \qquad
    r_g = \frac{1}{|\mathcal{V}_g|} \sum_{i \in \mathcal{V}_g} x_i, \qquad
    r_g = \max_{i \in \mathcal{V}_g} x_i \ \text{(channel-wise)}

A sorted ``batch`` (nodes of a graph contiguous, as :class:`gnn.core.Batch`
builds it) runs :func:`gnn.core.ops.segment` on offsets; an unsorted one
:func:`gnn.core.ops.scatter`. Graphs without nodes give 0.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from gnn.core import ops
from gnn.core import validation as v

from ._utils import check_batch, check_size, is_sorted

__all__ = ["global_add_pool", "global_mean_pool", "global_max_pool"]


class _SortedSumOrMean(torch.autograd.Function):
    r"""Sum/mean over the contiguous segments of a sorted ``batch``: :func:`gnn.core.ops.segment` forward;
    the backward gathers the per-graph gradient with the ``batch`` vector itself,
    :math:`\partial L / \partial x_i = g_{batch_i}` (divided by :math:`N_{batch_i}` for the mean),
    so that no node-sized index is built (one ``[N, F]`` gradient is the only node-sized tensor)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, batch: Tensor, ptr: Tensor, dim: int, reduce: str) -> Tensor:
        ctx.save_for_backward(batch, ptr)
        ctx.dim, ctx.reduce = dim, reduce
        return ops.segment(x, ptr, dim=dim, reduce=reduce)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, None, None, None, None]:
        batch, ptr = ctx.saved_tensors
        if ctx.reduce == "mean":
            shape = [1] * grad.dim()
            shape[ctx.dim] = -1
            grad = grad / (ptr[1:] - ptr[:-1]).clamp(min=1).to(grad.dtype).view(shape)
        return grad.index_select(ctx.dim, batch), None, None, None, None


def _global_pool(x: Tensor, batch: Tensor | None, size: int | None, reduce: str) -> Tensor:
    v.check_tensor("x", x)
    if x.dim() == 0:
        raise ValueError(f"'x' must have at least one dimension (the nodes), got {v.describe(x)}")
    if reduce == "mean" and not (x.is_floating_point() or x.is_complex()):
        x = x.to(torch.get_default_dtype())  # a mean of integers is fractional (as PyG returns it)
    dim = x.dim() - 1 if x.dim() == 1 else x.dim() - 2
    num = x.size(dim)
    size = check_size("size", size)
    if batch is None:  # one graph: [F] -> [1], [N, F] -> [1, F], [*, N, F] -> [*, F]
        ptr = torch.tensor([0, num], dtype=torch.long, device=x.device)
        out = ops.segment(x, ptr, dim=dim, reduce=reduce)
        return out if x.dim() <= 2 else out.squeeze(dim)
    batch = check_batch("batch", batch, num, x.device)
    compiling = torch.compiler.is_compiling()
    if size is None:
        size = int(batch.max()) + 1 if num else 0
    if compiling or not is_sorted(batch):
        return ops.scatter(x, batch, dim=dim, dim_size=size, reduce=reduce)
    if num and v.validation_enabled():  # sorted: the extremes are the first and last entries
        v.check_index_range("batch", batch[[0, -1]], size, "graphs ('size')")
    # offsets of a sorted batch: O(B log N) binary searches instead of a pass over the nodes
    ptr = torch.searchsorted(batch, torch.arange(size + 1, device=batch.device))
    if reduce != "max" and x.requires_grad and torch.is_grad_enabled():
        return _SortedSumOrMean.apply(x, batch, ptr, dim, reduce)
    return ops.segment(x, ptr, dim=dim, reduce=reduce)


def global_add_pool(x: Tensor, batch: Tensor | None, size: int | None = None) -> Tensor:
    r"""Sum of the node features of every graph: :math:`r_g = \sum_{i: batch_i = g} x_i`.

    Args:
        x: ``[N, F]`` node features (``[N]``, or ``[*, N, F]`` with the nodes
            in the second-to-last dimension).
        batch: ``[N]`` graph of every node, or ``None`` for a single graph.
        size: number of graphs ``B`` (default ``batch.max() + 1``).

    Returns:
        ``[B, F]`` (``[1, F]`` without ``batch``; ``[*, B, F]`` / ``[*, F]``
        for higher-dimensional ``x``).

    Example:
        >>> x = torch.tensor([[1.0], [2.0], [4.0]])
        >>> global_add_pool(x, torch.tensor([0, 0, 1]))
        tensor([[3.],
                [4.]])
    """
    return _global_pool(x, batch, size, "sum")


def global_mean_pool(x: Tensor, batch: Tensor | None, size: int | None = None) -> Tensor:
    r"""Mean of the node features of every graph: :math:`r_g = \frac{1}{N_g}\sum_{i: batch_i = g} x_i`.

    Graphs without nodes give 0; integer features give floating means.

    Args:
        x: ``[N, F]`` node features (``[N]``, or ``[*, N, F]``).
        batch: ``[N]`` graph of every node, or ``None`` for a single graph.
        size: number of graphs ``B`` (default ``batch.max() + 1``).

    Returns:
        ``[B, F]`` (``[1, F]`` without ``batch``).

    Example:
        >>> x = torch.tensor([[1.0], [2.0], [4.0]])
        >>> global_mean_pool(x, torch.tensor([0, 0, 1]))
        tensor([[1.5000],
                [4.0000]])
    """
    return _global_pool(x, batch, size, "mean")


def global_max_pool(x: Tensor, batch: Tensor | None, size: int | None = None) -> Tensor:
    r"""Channel-wise maximum of the node features of every graph: :math:`r_g = \max_{i: batch_i = g} x_i`.

    Graphs without nodes give 0.

    Args:
        x: ``[N, F]`` node features (``[N]``, or ``[*, N, F]``).
        batch: ``[N]`` graph of every node, or ``None`` for a single graph.
        size: number of graphs ``B`` (default ``batch.max() + 1``).

    Returns:
        ``[B, F]`` (``[1, F]`` without ``batch``).

    Example:
        >>> x = torch.tensor([[1.0, 5.0], [2.0, 0.0], [4.0, 1.0]])
        >>> global_max_pool(x, torch.tensor([0, 0, 1]))
        tensor([[2., 5.],
                [4., 1.]])
    """
    return _global_pool(x, batch, size, "max")
