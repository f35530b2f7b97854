r"""SGFormer (Wu et al., 2023): one-layer linear global attention next to a GCN, :class:`SGFormer`."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from gnn.conv import GCNConv, SGFormerAttention
from gnn.core import validation as v

from ._padding import check_batch, pad_nodes, unpad_nodes


def check_node_features(x: object, in_channels: int) -> Tensor:
    """``x`` is a floating-point ``[N, in_channels]`` tensor."""
    t = v.check_tensor("x", x)
    if not t.is_floating_point():
        raise TypeError(
            f"'x' must be a floating-point tensor of shape [N, {in_channels}], got {v.describe(t)}"
        )
    if t.dim() != 2 or t.size(1) != in_channels:
        raise ValueError(f"'x' must have shape [N, {in_channels}] (in_channels), got {v.describe(t)}")
    return t


class GraphModule(torch.nn.Module):
    r"""SGFormer's GNN branch: an input map and ``num_layers`` residual GCN layers.

    .. math::
        h^{(0)} = \mathrm{drop}(\mathrm{ReLU}(\mathrm{BN}_0(x W_0^\top + b_0))), \qquad
        h^{(l)} = \mathrm{drop}(\mathrm{ReLU}(\mathrm{BN}_l(\mathrm{GCN}_l(h^{(l-1)})))) + h^{(0)}

    (every layer adds the input map's output :math:`h^{(0)}`, not the previous layer's).
    """

    def __init__(self, in_channels: int, hidden_channels: int, num_layers: int = 2, dropout: float = 0.5):
        super().__init__()
        self.convs = torch.nn.ModuleList(
            [GCNConv(hidden_channels, hidden_channels) for _ in range(num_layers)]
        )
        self.fcs = torch.nn.ModuleList([torch.nn.Linear(in_channels, hidden_channels)])
        self.bns = torch.nn.ModuleList([torch.nn.BatchNorm1d(hidden_channels) for _ in range(num_layers + 1)])
        self.dropout = dropout
        self.activation = F.relu

    def reset_parameters(self) -> None:
        for module in (*self.convs, *self.bns, *self.fcs):
            module.reset_parameters()

    def forward(self, x: Tensor, edge_index: Any) -> Tensor:
        def block(h: Tensor, norm: torch.nn.Module) -> Tensor:
            return F.dropout(self.activation(norm(h)), p=self.dropout, training=self.training)

        h0 = block(self.fcs[0](x), self.bns[0])
        h = h0
        for conv, norm in zip(self.convs, self.bns[1:]):
            h = block(conv(h, edge_index), norm) + h0
        return h


class SGModule(torch.nn.Module):
    r"""SGFormer's attention branch over the nodes of each graph (padded per graph).

    .. math::
        h^{(0)} = \mathrm{drop}(\mathrm{ReLU}(\mathrm{LN}_0(x W_0^\top + b_0))), \qquad
        h^{(l)} = \mathrm{drop}\Big(\mathrm{ReLU}\Big(\mathrm{LN}_l\big(\tfrac12(\mathrm{Att}_l(h^{(l-1)})
                  + h^{(l-1)})\big)\Big)\Big)
    """

    def __init__(
        self,
        in_channels: int,
        hidden_channels: int,
        num_layers: int = 2,
        num_heads: int = 1,
        dropout: float = 0.5,
    ):
        super().__init__()
        self.attns = torch.nn.ModuleList(
            [SGFormerAttention(hidden_channels, num_heads, hidden_channels) for _ in range(num_layers)]
        )
        self.fcs = torch.nn.ModuleList([torch.nn.Linear(in_channels, hidden_channels)])
        self.bns = torch.nn.ModuleList([torch.nn.LayerNorm(hidden_channels) for _ in range(num_layers + 1)])
        self.dropout = dropout
        self.activation = F.relu

    def reset_parameters(self) -> None:
        for module in (*self.attns, *self.bns, *self.fcs):
            module.reset_parameters()

    def forward(self, x: Tensor, batch: Tensor | None) -> Tensor:
        padded = pad_nodes(x, batch)

        def block(h: Tensor, norm: torch.nn.Module) -> Tensor:
            return F.dropout(self.activation(norm(h)), p=self.dropout, training=self.training)

        h = block(self.fcs[0](padded.x), self.bns[0])
        for attn, norm in zip(self.attns, self.bns[1:]):
            h = block(0.5 * (attn(h, padded.mask) + h), norm)
        return unpad_nodes(h, padded)


class SGFormer(torch.nn.Module):
    r"""SGFormer: a simplified graph transformer for large graphs (Wu et al., 2023).

    Two branches read the node features ``x``: a stack of
    :class:`~gnn.conv.SGFormerAttention` layers over all nodes of each graph
    (:class:`SGModule`, linear in the number of nodes) and a residual GCN
    (:class:`GraphModule`). With ``aggregate="add"``

    .. math::
        \mathbf{Y} = \mathrm{log\_softmax}\big((w\,\mathbf{H}_{\mathrm{gnn}}
        + (1 - w)\,\mathbf{H}_{\mathrm{att}}) W^\top + b\big)

    (:math:`w` = ``graph_weight``); ``aggregate="cat"`` concatenates
    :math:`[\mathbf{H}_{\mathrm{att}} \Vert \mathbf{H}_{\mathrm{gnn}}]` instead.
    Graphs of a mini-batch are padded to the largest one for the attention
    (padded nodes take part in the normalizer, as in PyG 2.8).

    Args:
        in_channels: input feature size.
        hidden_channels: hidden size of both branches.
        out_channels: number of classes.
        trans_num_layers: attention layers.
        trans_num_heads: attention heads.
        trans_dropout: dropout of the attention branch.
        gnn_num_layers: GCN layers.
        gnn_dropout: dropout of the GNN branch.
        graph_weight: weight :math:`w` of the GNN branch (``"add"``).
        aggregate: ``"add"`` or ``"cat"``.

    Shapes:
        ``x`` ``[N, in_channels]``, ``edge_index`` ``[2, E]`` (or a sparse
        ``adj_t``), ``batch`` ``[N]`` or ``None`` (one graph) ->
        ``[N, out_channels]`` log-probabilities.

    Example:
        >>> model = SGFormer(16, 32, 4)
        >>> edge_index = torch.tensor([[0, 1, 2], [1, 2, 0]])
        >>> model(torch.randn(3, 16), edge_index, torch.zeros(3, dtype=torch.long)).shape
        torch.Size([3, 4])
    """

    def __init__(
        self,
        in_channels: int,
        hidden_channels: int,
        out_channels: int,
        trans_num_layers: int = 2,
        trans_num_heads: int = 1,
        trans_dropout: float = 0.5,
        gnn_num_layers: int = 3,
        gnn_dropout: float = 0.5,
        graph_weight: float = 0.5,
        aggregate: str = "add",
    ) -> None:
        super().__init__()
        if aggregate not in ("add", "cat"):
            raise ValueError(f"'aggregate' must be 'add' or 'cat', got {aggregate!r}")
        self.in_channels = in_channels
        self.trans_conv = SGModule(
            in_channels, hidden_channels, trans_num_layers, trans_num_heads, trans_dropout
        )
        self.graph_conv = GraphModule(in_channels, hidden_channels, gnn_num_layers, gnn_dropout)
        self.graph_weight = graph_weight
        self.aggregate = aggregate
        factor = 1 if aggregate == "add" else 2
        self.fc = torch.nn.Linear(factor * hidden_channels, out_channels)
        # the two parameter groups of the paper's optimizer set-up (attention / GNN + head)
        self.params1 = list(self.trans_conv.parameters())
        self.params2 = list(self.graph_conv.parameters()) + list(self.fc.parameters())
        self.out_channels = out_channels

    def reset_parameters(self) -> None:
        """Re-initialize both branches and the head."""
        self.trans_conv.reset_parameters()
        self.graph_conv.reset_parameters()
        self.fc.reset_parameters()

    def forward(self, x: Tensor, edge_index: Any, batch: Tensor | None) -> Tensor:
        """Log-probabilities per node (see the class docstring)."""
        if v.validation_enabled():
            x = check_node_features(x, self.in_channels)
            batch = check_batch(batch, x.size(0))
        h_att = self.trans_conv(x, batch)
        h_gnn = self.graph_conv(x, edge_index)
        if self.aggregate == "add":
            h = self.graph_weight * h_gnn + (1 - self.graph_weight) * h_att
        else:
            h = torch.cat([h_att, h_gnn], dim=1)
        return F.log_softmax(self.fc(h), dim=-1)
