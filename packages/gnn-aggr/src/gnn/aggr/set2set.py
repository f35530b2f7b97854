r"""The Set2Set aggregation ("Order Matters: Sequence to sequence for Sets")."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from gnn.core import Aggregation, ops
from gnn.core.utils import ptr_to_index

__all__ = ["Set2Set"]


class Set2Set(Aggregation):
    r"""Iterative content-based attention over each group.

    Starting from :math:`\mathbf{q}^*_0 = \mathbf{0}` and a zero LSTM state,
    for :math:`t = 1, \dots, T`:

    .. math::
        \mathbf{q}_t &= \mathrm{LSTM}(\mathbf{q}^{*}_{t-1}) \\
        \alpha_{i,t} &= \mathrm{softmax}_{i \in g}(\mathbf{x}_i \cdot \mathbf{q}_t) \\
        \mathbf{r}_t &= \textstyle\sum_{i \in g} \alpha_{i,t} \mathbf{x}_i \\
        \mathbf{q}^{*}_t &= \mathbf{q}_t \,\Vert\, \mathbf{r}_t

    and the output is :math:`\mathbf{q}^*_T` (twice the input size). The
    softmax and sum go through :mod:`gnn.core.ops`, so ``index`` may be in
    any order; empty groups give :math:`\mathbf{r}_t = \mathbf{0}`.

    Args:
        in_channels: size of each element.
        processing_steps: number of iterations :math:`T`.
        **kwargs: further arguments of :class:`torch.nn.LSTM` (e.g. ``num_layers``).

    Shapes: ``x: [E, in_channels]``, ``index: [E]`` -> ``[dim_size, 2 * in_channels]``.

    Example:
        >>> aggr = Set2Set(16, processing_steps=3)
        >>> aggr(torch.randn(6, 16), torch.tensor([0, 0, 1, 1, 1, 2])).shape
        torch.Size([3, 32])
    """

    def __init__(self, in_channels: int, processing_steps: int, **kwargs: Any) -> None:
        super().__init__()
        if not isinstance(in_channels, int) or isinstance(in_channels, bool) or in_channels <= 0:
            raise ValueError(f"'in_channels' must be a positive int, got {in_channels!r}")
        if (
            not isinstance(processing_steps, int)
            or isinstance(processing_steps, bool)
            or processing_steps < 0
        ):
            raise ValueError(f"'processing_steps' must be a non-negative int, got {processing_steps!r}")
        self.in_channels = in_channels
        self.out_channels = 2 * in_channels
        self.processing_steps = processing_steps
        self.lstm = torch.nn.LSTM(self.out_channels, in_channels, **kwargs)

    def reset_parameters(self) -> None:
        self.lstm.reset_parameters()

    def forward(
        self,
        x: Tensor,
        index: Tensor | None = None,
        ptr: Tensor | None = None,
        dim_size: int | None = None,
        dim: int = -2,
    ) -> Tensor:
        """``x: [E, in_channels]`` -> ``[dim_size, 2 * in_channels]``."""
        self.assert_two_dimensional_input(x, dim)
        if index is None and ptr is not None:
            index = ptr_to_index(ptr, x.size(0))
        self.assert_index_present(index)
        assert index is not None
        if dim_size is None:
            dim_size = int(index.max()) + 1 if index.numel() else 0
        index = index.long()

        layers = self.lstm.num_layers
        h = (x.new_zeros(layers, dim_size, self.in_channels), x.new_zeros(layers, dim_size, self.in_channels))
        q_star = x.new_zeros(dim_size, self.out_channels)
        for _ in range(self.processing_steps):
            q, h = self.lstm(q_star.unsqueeze(0), h)
            q = q.view(dim_size, self.in_channels)
            score = (x * q[index]).sum(dim=-1, keepdim=True)
            if ptr is not None:
                alpha = ops.softmax(score, ptr=ptr, dim=0)
            else:
                alpha = ops.softmax(score, index, num_nodes=dim_size, dim=0)
            r = self.reduce(alpha * x, index, ptr, dim_size, 0, reduce="sum")
            q_star = torch.cat([q, r], dim=-1)
        return q_star

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.in_channels}, {self.out_channels})"
