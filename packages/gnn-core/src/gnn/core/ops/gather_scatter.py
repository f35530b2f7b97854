r"""Weighted gather-sum with a memory-lean autograd: :func:`gather_mul_scatter`.

.. math::
    \mathbf{o}_i = \sum_{e:\ \mathrm{scatter\_index}_e = i}
    \mathbf{x}_{\mathrm{gather\_index}_e} \odot \mathbf{w}_e \; (\cdot\, c_e)

with ``x`` ``[N, F]`` (node features), ``w`` ``[E, F]`` (one weight per edge and channel, e.g.
SchNet's continuous filters or DimeNet's triplet bases), an optional per-edge scalar ``c`` ``[E]``
(e.g. a cosine cutoff) and ``o`` ``[dim_size, F]``.

Training on forces differentiates twice (``F = -dE/dpos`` with ``create_graph=True``, then the loss on
``F`` into the weights). Written as ``scatter(x[gather] * w * c)``, autograd keeps the gathered
``x[gather]`` and ``w * c`` for the first backward, and that backward, built with ``create_graph``,
keeps the gathered incoming gradient and the gradient of ``w * c`` for the second: several ``[E, F]``
tensors per call. Here the forward keeps ``x``, ``w`` and ``c`` only; its backward is itself a
function that keeps the node-sized incoming gradient, and its own backward (the double backward) is
written out, so every ``[E, F]`` intermediate of every order is transient
(:mod:`gnn.core.ops.reference_gather_scatter`).

Backends: a compiled backend implements ``gather_mul_scatter(x [N, F], weight [E, F], scale [E] or
None, gather_index [E] int64, scatter_index [E] int64, ptr [dim_size + 1] int64 or None, dim_size)``
with autograd of first and second order to ``x``, ``weight`` and ``scale``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .. import validation as v
from ._dispatch import context, run

__all__ = ["gather_mul_scatter"]


def gather_mul_scatter(
    x: Tensor,
    weight: Tensor,
    gather_index: Tensor,
    scatter_index: Tensor,
    dim_size: int,
    *,
    scale: Tensor | None = None,
    ptr: Tensor | None = None,
) -> Tensor:
    r"""``out[i] = sum_{e: scatter_index[e] = i} x[gather_index[e]] * weight[e] (* scale[e])``.

    Args:
        x: ``[N, F]`` floating rows (node features).
        weight: ``[E, F]`` per-edge, per-channel weights, dtype of ``x``.
        gather_index: ``[E]`` integer row of ``x`` each edge reads, in ``[0, N)``.
        scatter_index: ``[E]`` integer output row of each edge, in ``[0, dim_size)``.
        dim_size: number of output rows.
        scale: optional ``[E]`` per-edge scalar, dtype of ``x``.
        ptr: optional ``[dim_size + 1]`` offsets of a sorted ``scatter_index`` (lets the sums run as
            segment reductions).

    Returns:
        ``[dim_size, F]``; differentiable (first and second order) with respect to ``x``, ``weight``
        and ``scale``, keeping no ``[E, F]`` tensor for any backward.

    Example:
        >>> x, w = torch.randn(3, 4), torch.randn(2, 4)
        >>> out = gather_mul_scatter(x, w, torch.tensor([2, 0]), torch.tensor([1, 1]), 2)
        >>> torch.allclose(out[1], x[2] * w[0] + x[0] * w[1])
        True
    """
    v.check_tensor("x", x)
    v.check_tensor("weight", weight)
    v.check_tensor("gather_index", gather_index)
    v.check_tensor("scatter_index", scatter_index)
    if x.dim() != 2 or not x.is_floating_point():
        raise ValueError(f"'x' must be a floating-point tensor of shape [N, F], got {v.describe(x)}")
    if weight.dtype != x.dtype:
        raise TypeError(f"'weight' must have the dtype of 'x' ({x.dtype}), got {weight.dtype}")
    if weight.dim() != 2 or weight.size(1) != x.size(1):
        raise ValueError(f"'weight' must have shape [E, {x.size(1)}], got {v.describe(weight)}")
    num_edges = weight.size(0)
    for name, index in (("gather_index", gather_index), ("scatter_index", scatter_index)):
        v.check_index_dtype(name, index)
        v.check_per_entry(name, index, num_edges, "row of 'weight'")
    if isinstance(dim_size, bool) or not isinstance(dim_size, (int, torch.SymInt)):
        raise TypeError(f"'dim_size' must be an int, got {v.describe(dim_size)}")
    if dim_size < 0:
        raise ValueError(f"'dim_size' must be non-negative, got {dim_size}")
    if scale is not None:
        v.check_tensor("scale", scale)
        if scale.dtype != x.dtype:
            raise TypeError(f"'scale' must have the dtype of 'x' ({x.dtype}), got {scale.dtype}")
        v.check_per_entry("scale", scale, num_edges, "row of 'weight'")
    if ptr is not None:
        v.check_ptr("ptr", ptr, num_edges)
        if ptr.numel() != dim_size + 1:
            raise ValueError(f"'ptr' must have dim_size + 1 = {dim_size + 1} entries, got {v.describe(ptr)}")
    v.check_index_range("gather_index", gather_index, x.size(0), "rows of 'x'")
    v.check_index_range("scatter_index", scatter_index, dim_size, "output rows ('dim_size')")
    gather_index = gather_index if gather_index.dtype == torch.int64 else gather_index.long()
    scatter_index = scatter_index if scatter_index.dtype == torch.int64 else scatter_index.long()
    if ptr is not None and ptr.dtype != torch.int64:
        ptr = ptr.long()
    ctx = context(x, "sum", weight, scale, work=weight.numel())
    return run("gather_mul_scatter", ctx, x, weight, scale, gather_index, scatter_index, ptr, dim_size)
