"""Soft-attention aggregation (gated readout of Graph Matching Networks)."""

from __future__ import annotations

import torch
from torch import Tensor

from gnn.core import ops
from gnn.core import validation as v
from gnn.core.aggr.base import Aggregation


def _reset(module: torch.nn.Module | None) -> None:
    if module is None:
        return
    reset = getattr(module, "reset_parameters", None)
    if callable(reset):
        reset()
        return
    for child in module.children():
        _reset(child)


class AttentionalAggregation(Aggregation):
    r"""Soft attention aggregation from `Graph Matching Networks <https://arxiv.org/abs/1904.12787>`_.

    .. math::
        \mathbf{r}_g = \sum_{i \in g} \mathrm{softmax}_{i \in g}\big(h_{\mathrm{gate}}(\mathbf{x}_i)\big)
        \cdot h_{\mathbf{\Theta}}(\mathbf{x}_i)

    with the softmax taken over the elements of each group (feature-wise
    when ``gate_nn`` gives more than one channel).

    Shapes: ``x`` ``[..., E, ..., F]``; ``gate_nn(x)`` ``[..., E, ..., 1]`` or
    ``[..., E, ..., F']`` with ``F'`` the output size of ``nn`` (or ``F``);
    output ``[..., dim_size, ..., F']``. Empty groups give 0.

    Args:
        gate_nn: maps ``x`` to the attention scores.
        nn: maps ``x`` to the aggregated values (identity when ``None``).

    Example:
        >>> aggr = AttentionalAggregation(torch.nn.Linear(4, 1), torch.nn.Linear(4, 8))
        >>> aggr(torch.randn(5, 4), torch.tensor([0, 0, 1, 1, 1])).shape
        torch.Size([2, 8])
    """

    def __init__(self, gate_nn: torch.nn.Module, nn: torch.nn.Module | None = None):
        super().__init__()
        if not callable(gate_nn):
            raise TypeError(f"'gate_nn' must be a module (callable), got {v.describe(gate_nn)}")
        if nn is not None and not callable(nn):
            raise TypeError(f"'nn' must be a module (callable) or None, got {v.describe(nn)}")
        self.gate_nn = gate_nn
        self.nn = nn

    def reset_parameters(self) -> None:
        _reset(self.gate_nn)
        _reset(self.nn)

    def forward(
        self,
        x: Tensor,
        index: Tensor | None = None,
        ptr: Tensor | None = None,
        dim_size: int | None = None,
        dim: int = -2,
    ) -> Tensor:
        gate = self.gate_nn(x)
        values = self.nn(x) if self.nn is not None else x
        if gate.dim() != values.dim() or gate.shape[:-1] != values.shape[:-1]:
            raise ValueError(
                f"'gate_nn' must map 'x' to shape {list(values.shape[:-1]) + [1]} (or one score per "
                f"channel), got {v.describe(gate)}"
            )
        gate = ops.softmax(gate, index, ptr, dim_size, dim)
        return self.reduce(gate * values, index, ptr, dim_size, dim, reduce="sum")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(gate_nn={self.gate_nn}, nn={self.nn})"
