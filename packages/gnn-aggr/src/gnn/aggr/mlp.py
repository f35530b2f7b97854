r"""MLP aggregation ("Graph Neural Networks with Adaptive Readouts")."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from gnn.core import Aggregation
from gnn.core.nn.mlp import MLP

__all__ = ["MLPAggregation"]


class MLPAggregation(Aggregation):
    r"""Flatten each group into one vector and apply an :class:`~gnn.core.nn.mlp.MLP`:

    .. math::
        \mathbf{o}_g = \mathrm{MLP}\big(\mathbf{x}_{g,1} \,\Vert\, \dots \,\Vert\,
        \mathbf{x}_{g,M}\big)

    where the group is zero-padded (or cut) to exactly
    :math:`M` = ``max_num_elements`` elements, in ``index`` order. Not
    permutation invariant; needs ``index`` sorted in ascending order (an
    unsorted ``index`` raises ``ValueError``). Each group is one sample for
    the MLP's normalizations.

    Args:
        in_channels: size of each element.
        out_channels: size of each output.
        max_num_elements: number of elements :math:`M` per group.
        **kwargs: arguments of :class:`~gnn.core.nn.mlp.MLP` (``num_layers``
            is required, ``hidden_channels`` when it is above 1).

    Shapes: ``x: [E, in_channels]``, ``index: [E]`` (sorted) -> ``[dim_size, out_channels]``.

    Example:
        >>> aggr = MLPAggregation(16, 32, max_num_elements=3, num_layers=1)
        >>> aggr(torch.randn(6, 16), torch.tensor([0, 0, 1, 1, 1, 2])).shape
        torch.Size([3, 32])
    """

    def __init__(self, in_channels: int, out_channels: int, max_num_elements: int, **kwargs: Any) -> None:
        super().__init__()
        for name, value in (
            ("in_channels", in_channels),
            ("out_channels", out_channels),
            ("max_num_elements", max_num_elements),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"'{name}' must be a positive int, got {value!r}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.max_num_elements = max_num_elements
        self.mlp = MLP(in_channels=in_channels * max_num_elements, out_channels=out_channels, **kwargs)

    def reset_parameters(self) -> None:
        self.mlp.reset_parameters()

    def forward(
        self,
        x: Tensor,
        index: Tensor | None = None,
        ptr: Tensor | None = None,
        dim_size: int | None = None,
        dim: int = -2,
    ) -> Tensor:
        """``x: [E, in_channels]`` -> ``[dim_size, out_channels]``."""
        dense, _ = self.to_dense_batch(x, index, ptr, dim_size, dim, max_num_elements=self.max_num_elements)
        num_groups = dense.size(0)
        flat = dense.reshape(num_groups, self.max_num_elements * dense.size(-1))
        batch = torch.arange(num_groups, device=x.device)
        return self.mlp(flat, batch, num_groups)

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}({self.in_channels}, {self.out_channels}, "
            f"max_num_elements={self.max_num_elements})"
        )
