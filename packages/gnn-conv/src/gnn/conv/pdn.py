r"""PDNConv: the pathfinder discovery network convolution (Rozemberczki et al., 2021)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from gnn.core import Linear, MessagePassing
from gnn.core.graph import read_graph
from gnn.core.nn.inits import glorot, zeros
from gnn.core.utils import gcn_norm

from ._utils import check_edge_attr, check_in_channels, num_nodes


class PDNConv(MessagePassing):
    r"""The pathfinder discovery network convolutional operator from
    "Pathfinder Discovery Networks for Neural Message Passing".

    .. math::
        \mathbf{x}^{\prime}_i = \sum_{j \in \mathcal{N}(i) \cup \{i\}} f_{\Theta}(\textbf{e}_{(j,i)})
        \cdot f_{\Omega}(\mathbf{x}_{j}) + \mathbf{b}

    with :math:`f_{\Omega}` the linear map ``lin`` (no bias) and
    :math:`f_{\Theta}` the edge MLP ``mlp`` (Linear, ReLU, Linear, Sigmoid)
    that turns the edge features into a weight in ``(0, 1)``. With
    ``normalize`` the weights are symmetrically normalized as in GCN, after
    adding self loops of weight 1 (existing loops keep their learned weight)
    when ``add_self_loops``; without ``normalize`` the graph is used as is.
    The message is ``edge_weight * x_j`` (fused ``ops.spmm`` path).

    Args:
        in_channels: input size (``-1`` for lazy).
        out_channels: output size.
        edge_dim: edge feature size.
        hidden_channels: hidden size of the edge MLP.
        add_self_loops: add a self loop to nodes without one (with ``normalize``).
        normalize: apply the symmetric normalization.
        bias: learn an additive bias.
        **kwargs: :class:`~gnn.core.MessagePassing` arguments.

    Shapes:
        ``x`` ``[N, F]``, ``edge_attr`` ``[E, edge_dim]``; output ``[N, out_channels]``.

    Example:
        >>> conv = PDNConv(16, 32, edge_dim=4, hidden_channels=8)
        >>> edge_index = torch.randint(0, 10, (2, 40))
        >>> conv(torch.randn(10, 16), edge_index, torch.randn(40, 4)).shape
        torch.Size([10, 32])
    """

    fused_message = "edge_weight * x_j"

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        edge_dim: int,
        hidden_channels: int,
        add_self_loops: bool = True,
        normalize: bool = True,
        bias: bool = True,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("aggr", "add")
        super().__init__(**kwargs)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.edge_dim = edge_dim
        self.hidden_channels = hidden_channels
        self.add_self_loops = add_self_loops
        self.normalize = normalize

        self.lin = Linear(in_channels, out_channels, bias=False, weight_initializer="glorot")
        self.mlp = torch.nn.Sequential(
            torch.nn.Linear(edge_dim, hidden_channels),
            torch.nn.ReLU(inplace=True),
            torch.nn.Linear(hidden_channels, 1),
            torch.nn.Sigmoid(),
        )
        if bias:
            self.bias: torch.nn.Parameter | None = torch.nn.Parameter(torch.empty(out_channels))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Glorot weights (``lin`` and the MLP), zero biases."""
        super().reset_parameters()
        self.lin.reset_parameters()
        for layer in (self.mlp[0], self.mlp[2]):
            glorot(layer.weight)
            zeros(layer.bias)
        zeros(self.bias)

    def forward(self, x: Tensor, edge_index: Any, edge_attr: Tensor | None = None) -> Tensor:
        """Propagate ``lin(x)`` with the learned (normalized) edge weights."""
        check_in_channels(x, self.in_channels)
        graph = read_graph(edge_index, None, self.flow)
        n = num_nodes(self, x)
        graph.set_nodes(n, n)
        ei = graph.edge_index
        if edge_attr is None:
            edge_attr = graph.value
        if edge_attr is None:
            raise ValueError("'edge_attr' is required: PDNConv learns its edge weights from it")
        edge_attr = check_edge_attr(edge_attr, ei.size(1))
        if edge_attr.dim() == 1:
            edge_attr = edge_attr.view(-1, 1)
        weight = self.mlp(edge_attr).squeeze(-1)

        if self.normalize:
            ei, weight = gcn_norm(
                ei, weight, n, False, self.add_self_loops, self.flow, x.dtype, exact=self.exact_edges
            )

        out = self.propagate(ei, x=self.lin(x), edge_weight=weight, size=(n, n))
        if self.bias is not None:
            out = out + self.bias
        return out

    def message(self, x_j: Tensor, edge_weight: Tensor) -> Tensor:
        """``edge_weight * x_j``."""
        return edge_weight.view(-1, 1) * x_j

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels})"
