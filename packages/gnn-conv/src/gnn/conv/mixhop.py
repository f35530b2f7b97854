r"""Higher-order mixing of neighbourhood powers (Abu-El-Haija et al., 2019), :class:`MixHopConv`."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.nn import Parameter

from gnn.core.message_passing import MessagePassing
from gnn.core.nn.inits import zeros
from gnn.core.nn.linear import Linear
from gnn.core.utils.normalization import gcn_norm

from ._utils import check_in_channels, num_nodes, weighted_message


class MixHopConv(MessagePassing):
    r"""MixHop layer: :math:`X' = \big\Vert_{p \in P} \hat{T}^p X \Theta_p + b`.

    :math:`\hat{T} = \hat{D}^{-1/2} \hat{A} \hat{D}^{-1/2}` and the outputs
    of the powers :math:`p \in P` are concatenated in the order of
    ``powers``. The transform is applied *after* the hops, so every power is
    a chain of fused ``ops.spmm`` calls on the input features.

    Args:
        in_channels: input size (``-1``: lazy).
        out_channels: output size per power.
        powers: the adjacency powers (default ``[0, 1, 2]``).
        add_self_loops: add self loops before normalizing.
        bias: learn a bias (``[len(powers) * out_channels]``).
        **kwargs: :class:`~gnn.core.MessagePassing` arguments.

    Shapes:
        ``x`` ``[N, in_channels]`` -> ``[N, len(powers) * out_channels]``.

    Example:
        >>> conv = MixHopConv(16, 8, powers=[0, 2])
        >>> conv(torch.randn(4, 16), torch.tensor([[0, 1], [1, 2]])).shape
        torch.Size([4, 16])
    """

    fused_message = "edge_weight * x_j"

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        powers: list[int] | None = None,
        add_self_loops: bool = True,
        bias: bool = True,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("aggr", "add")
        super().__init__(**kwargs)
        if powers is None:
            powers = [0, 1, 2]
        powers = list(powers)
        if not powers or any(not isinstance(p, int) or p < 0 for p in powers):
            raise ValueError(f"'powers' must be a non-empty list of non-negative ints, got {powers!r}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.powers = powers
        self.add_self_loops = add_self_loops
        self.lins = torch.nn.ModuleList(
            [
                Linear(in_channels, out_channels, bias=False) if p in powers else torch.nn.Identity()
                for p in range(max(powers) + 1)
            ]
        )
        if bias:
            self.bias = Parameter(torch.empty(len(powers) * out_channels))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialize the per-power maps, zero the bias."""
        super().reset_parameters()
        for lin in self.lins:
            if isinstance(lin, Linear):
                lin.reset_parameters()
        zeros(self.bias)

    def forward(self, x: Tensor, edge_index: Any, edge_weight: Tensor | None = None) -> Tensor:
        """Apply the layer (see the class docstring for shapes)."""
        check_in_channels(x, self.in_channels)
        edge_index, edge_weight = gcn_norm(
            edge_index,
            edge_weight,
            num_nodes(self, x),
            False,
            self.add_self_loops,
            self.flow,
            x.dtype,
            exact=self.exact_edges,
        )
        outs = {0: self.lins[0](x)}
        for p in range(1, len(self.lins)):
            x = self.propagate(edge_index, x=x, edge_weight=edge_weight)
            outs[p] = self.lins[p](x)
        out = torch.cat([outs[p] for p in self.powers], dim=-1)
        if self.bias is not None:
            out = out + self.bias
        return out

    def message(self, x_j: Tensor, edge_weight: Tensor | None) -> Tensor:
        """``edge_weight * x_j`` (or ``x_j`` without weights)."""
        return weighted_message(x_j, edge_weight)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels}, powers={self.powers})"
