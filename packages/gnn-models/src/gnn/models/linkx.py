r"""LINKX (Lim et al., 2021): :class:`LINKX`."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor
from torch.nn import BatchNorm1d, Parameter

from gnn.core import plans
from gnn.core.message_passing import MessagePassing
from gnn.core.nn.inits import kaiming_uniform, uniform
from gnn.core.nn.mlp import MLP

__all__ = ["LINKX"]


class SparseLinear(MessagePassing):
    r"""A linear map of the adjacency rows: :math:`\mathbf{h}_i = \sum_{j \in \mathcal{N}(i)}
    w_{ji}\,\mathbf{W}_j + \mathbf{b}`, i.e. :math:`\mathbf{A}\mathbf{W} + \mathbf{b}` with one
    weight row per node (``[num_nodes, out_channels]``).

    The message ``edge_weight * weight_j`` is declared as a fused weighted sum, so
    propagate runs one ``spmm`` (no ``[E, C]`` tensor).
    """

    fused_message = plans.WeightedSum(weight="edge_weight", source="weight")

    def __init__(self, in_channels: int, out_channels: int, bias: bool = True) -> None:
        super().__init__(aggr="add")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.weight = Parameter(torch.empty(in_channels, out_channels))
        if bias:
            self.bias = Parameter(torch.empty(out_channels))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Kaiming-uniform weights and a uniform bias (as :class:`torch.nn.Linear`)."""
        kaiming_uniform(self.weight, fan=self.in_channels, a=math.sqrt(5))
        uniform(self.in_channels, self.bias)

    def forward(self, edge_index: Any, edge_weight: Tensor | None = None) -> Tensor:
        """``[num_nodes, out_channels]`` for ``edge_index`` ``[2, E]`` (or a sparse ``adj_t``)."""
        out = self.propagate(edge_index, weight=self.weight, edge_weight=edge_weight)
        if self.bias is not None:
            out = out + self.bias
        return out

    def message(self, weight_j: Tensor, edge_weight: Tensor | None) -> Tensor:
        """``edge_weight * weight_j`` (or ``weight_j`` without weights)."""
        return weight_j if edge_weight is None else edge_weight.view(-1, 1) * weight_j


class LINKX(torch.nn.Module):
    r"""LINKX: separate embeddings of the adjacency and of the features, combined by MLPs.

    .. math::
        \mathbf{H}_A &= \mathrm{MLP}_A(\mathbf{A}\mathbf{W}_A + \mathbf{b}_A), \qquad
        \mathbf{H}_X = \mathrm{MLP}_X(\mathbf{X}) \\
        \mathbf{Y} &= \mathrm{MLP}_f\big(\sigma(\mathbf{W}_1\mathbf{H}_A + \mathbf{H}_A
        + \mathbf{W}_2\mathbf{H}_X + \mathbf{H}_X)\big)

    :math:`\mathrm{MLP}_A` (with ``num_edge_layers > 1``) is ReLU, batch norm and an
    MLP of ``num_edge_layers - 1`` layers; without ``x`` the feature branch is skipped.
    The MLPs apply the activation before their batch normalizations.

    Args:
        num_nodes: number of nodes (rows of :math:`\mathbf{W}_A`).
        in_channels: node feature size.
        hidden_channels: hidden size.
        out_channels: output size.
        num_layers: layers of the final MLP.
        num_edge_layers: layers of the adjacency branch.
        num_node_layers: layers of the feature MLP.
        dropout: dropout of the final MLP.

    Shapes:
        ``x`` ``[num_nodes, in_channels]`` or ``None``, ``edge_index`` ``[2, E]``,
        ``edge_weight`` ``[E]`` -> ``[num_nodes, out_channels]``.

    Example:
        >>> model = LINKX(num_nodes=3, in_channels=4, hidden_channels=8, out_channels=2, num_layers=2)
        >>> model(torch.randn(3, 4), torch.tensor([[0, 1], [1, 2]])).shape
        torch.Size([3, 2])
    """

    def __init__(
        self,
        num_nodes: int,
        in_channels: int,
        hidden_channels: int,
        out_channels: int,
        num_layers: int,
        num_edge_layers: int = 1,
        num_node_layers: int = 1,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.num_nodes = num_nodes
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.num_edge_layers = num_edge_layers

        self.edge_lin = SparseLinear(num_nodes, hidden_channels)
        if num_edge_layers > 1:
            self.edge_norm = BatchNorm1d(hidden_channels)
            self.edge_mlp = MLP([hidden_channels] * num_edge_layers, dropout=0.0, act_first=True)
        else:
            self.edge_norm = None
            self.edge_mlp = None
        self.node_mlp = MLP([in_channels] + [hidden_channels] * num_node_layers, dropout=0.0, act_first=True)
        self.cat_lin1 = torch.nn.Linear(hidden_channels, hidden_channels)
        self.cat_lin2 = torch.nn.Linear(hidden_channels, hidden_channels)
        self.final_mlp = MLP([hidden_channels] * num_layers + [out_channels], dropout=dropout, act_first=True)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialize every part."""
        self.edge_lin.reset_parameters()
        if self.edge_norm is not None:
            self.edge_norm.reset_parameters()
            self.edge_mlp.reset_parameters()
        self.node_mlp.reset_parameters()
        self.cat_lin1.reset_parameters()
        self.cat_lin2.reset_parameters()
        self.final_mlp.reset_parameters()

    def forward(self, x: Tensor | None, edge_index: Any, edge_weight: Tensor | None = None) -> Tensor:
        """Run LINKX (see the class docstring)."""
        out = self.edge_lin(edge_index, edge_weight)
        if self.edge_norm is not None:
            out = self.edge_mlp(self.edge_norm(torch.relu(out)))
        out = out + self.cat_lin1(out)
        if x is not None:
            x = self.node_mlp(x)
            out = out + x + self.cat_lin2(x)
        return self.final_mlp(torch.relu(out))

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(num_nodes={self.num_nodes}, in_channels={self.in_channels}, "
            f"out_channels={self.out_channels})"
        )
