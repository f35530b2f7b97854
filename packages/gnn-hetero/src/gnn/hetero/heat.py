r""":class:`HEATConv`: the heterogeneous edge-enhanced graph attentional operator (Mo et al., 2021)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import Embedding

from gnn.conv import _attention as att
from gnn.core import HeteroLinear, Linear, MessagePassing
from gnn.core import validation as v
from gnn.core.graph import read_graph

__all__ = ["HEATConv"]


class HEATConv(MessagePassing):
    r"""The heterogeneous edge-enhanced graph attentional operator from "Heterogeneous
    Edge-Enhanced Graph Attention Network For Multi-Agent Trajectory Prediction".

    Node features are transformed per node type, :math:`\mathbf{h}_i =
    \mathbf{W}_{\tau(i)} \mathbf{x}_i + \mathbf{b}_{\tau(i)}`; every edge :math:`e = (j \to i)`
    has a type embedding :math:`\mathbf{t}_e = \operatorname{LeakyReLU}(\mathbf{T}[r_e])` and an
    embedding of its features :math:`\mathbf{a}_e = \operatorname{LeakyReLU}(\mathbf{W}_a
    \mathbf{e}_e)`; then, per head :math:`h`,

    .. math::
        \alpha^h_e = \operatorname{softmax}_{e \to i}\Big(\operatorname{LeakyReLU}\big(
            \mathbf{w}^{h\top} [\mathbf{h}_i \,\|\, \mathbf{h}_j \,\|\, \mathbf{t}_e \,\|\,
            \mathbf{a}_e]\big)\Big),
        \qquad
        \mathbf{x}'^h_i = \sum_{e = (j \to i)} \alpha^h_e\, \mathbf{W}_v [\mathbf{h}_j \,\|\, \mathbf{a}_e]
            \;(+\, \mathbf{h}_i),

    the heads concatenated (``concat``) or averaged, :math:`\mathbf{h}_i` added with
    ``root_weight``. The score is computed in parts (node terms once per node, edge
    terms once per edge), which gives the same numbers as the concatenation without an
    ``[E, 2F + ...]`` tensor.

    Args:
        in_channels: input size, or ``-1`` for lazy.
        out_channels: output size ``F`` per head.
        num_node_types: number of node types.
        num_edge_types: number of edge types.
        edge_type_emb_dim: size of the edge type embeddings.
        edge_dim: size of the edge features.
        edge_attr_emb_dim: size of the edge feature embeddings.
        heads: number of heads ``H``.
        concat: concatenate the heads (``[N, H * F]``) or average them (``[N, F]``).
        negative_slope: LeakyReLU slope.
        dropout: dropout probability of the attention coefficients.
        root_weight: add the transformed node features to the output.
        bias: learn additive biases.
        **kwargs: :class:`~gnn.core.MessagePassing` arguments.

    Shapes:
        ``x`` ``[N, F_in]``, ``edge_index`` ``[2, E]``, ``node_type`` ``[N]``, ``edge_type``
        ``[E]``, ``edge_attr`` ``[E, edge_dim]`` -> ``[N, H * F]`` (or ``[N, F]``).

    Example:
        >>> conv = HEATConv(16, 8, num_node_types=2, num_edge_types=3, edge_type_emb_dim=4,
        ...                 edge_dim=5, edge_attr_emb_dim=6, heads=2)
        >>> out = conv(x, edge_index, node_type, edge_type, edge_attr)   # [N, 16]
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        num_node_types: int,
        num_edge_types: int,
        edge_type_emb_dim: int,
        edge_dim: int,
        edge_attr_emb_dim: int,
        heads: int = 1,
        concat: bool = True,
        negative_slope: float = 0.2,
        dropout: float = 0.0,
        root_weight: bool = True,
        bias: bool = True,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("aggr", "add")
        super().__init__(node_dim=0, **kwargs)
        if not isinstance(heads, int) or isinstance(heads, bool) or heads < 1:
            raise ValueError(f"'heads' must be a positive int, got {heads!r}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.heads = heads
        self.concat = concat
        self.negative_slope = negative_slope
        self.dropout = dropout
        self.root_weight = root_weight
        self.num_node_types = num_node_types
        self.num_edge_types = num_edge_types
        self.edge_dim = edge_dim

        self.hetero_lin = HeteroLinear(in_channels, out_channels, num_node_types, bias=bias)
        self.edge_type_emb = Embedding(num_edge_types, edge_type_emb_dim)
        self.edge_attr_emb = Linear(edge_dim, edge_attr_emb_dim, bias=False)
        self.att = Linear(2 * out_channels + edge_type_emb_dim + edge_attr_emb_dim, heads, bias=False)
        self.lin = Linear(out_channels + edge_attr_emb_dim, out_channels, bias=bias)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Reset every projection and the edge type embeddings."""
        super().reset_parameters()
        self.hetero_lin.reset_parameters()
        self.edge_type_emb.reset_parameters()
        self.edge_attr_emb.reset_parameters()
        self.att.reset_parameters()
        self.lin.reset_parameters()

    def forward(
        self,
        x: Tensor,
        edge_index: Any,
        node_type: Tensor,
        edge_type: Tensor,
        edge_attr: Tensor | None = None,
    ) -> Tensor:
        """Attend over the incoming edges of every node (see the class docstring)."""
        v.check_tensor("x", x)
        if x.dim() != 2:
            raise ValueError(f"'x' must be a [N, F] tensor, got {v.describe(x)}")
        graph = read_graph(edge_index, None, self.flow)
        num_nodes = x.size(0)
        graph.set_nodes(num_nodes, num_nodes)
        num_edges = graph.num_edges
        v.check_tensor("edge_type", edge_type)
        v.check_index_dtype("edge_type", edge_type)
        if edge_type.shape != (num_edges,):
            raise ValueError(
                f"'edge_type' must have shape [{num_edges}] (one per edge), got {v.describe(edge_type)}"
            )
        v.check_index_range("edge_type", edge_type, self.num_edge_types, "edge types ('num_edge_types')")
        if edge_attr is None:
            raise ValueError(
                f"'edge_attr' is required: HEATConv embeds edge features ([E, {self.edge_dim}]), got None"
            )
        v.check_tensor("edge_attr", edge_attr)
        if edge_attr.dim() == 1:
            edge_attr = edge_attr.view(-1, 1)
        if edge_attr.shape[0] != num_edges or edge_attr.dim() != 2:
            raise ValueError(
                f"'edge_attr' must have shape [{num_edges}, {self.edge_dim}], got {v.describe(edge_attr)}"
            )

        h = self.hetero_lin(x, node_type)  # [N, F]
        C = self.out_channels
        type_emb = F.leaky_relu(self.edge_type_emb(edge_type), self.negative_slope)
        attr_emb = F.leaky_relu(self.edge_attr_emb(edge_attr), self.negative_slope)

        # att([h_i || h_j || t || a]) in parts: node terms per node, edge terms per edge
        w = self.att.weight  # [H, 2F + T + A]
        w_dst, w_src, w_edge = w[:, :C], w[:, C : 2 * C], w[:, 2 * C :]
        s_dst = h @ w_dst.t()
        s_src = h @ w_src.t()
        s_edge = torch.cat([type_emb, attr_emb], dim=-1) @ w_edge.t()
        # lin([h_j || a]) in parts likewise: the node part once per node
        lin_w = self.lin.weight
        value_node = F.linear(h, lin_w[:, :C], self.lin.bias)
        value_edge = attr_emb @ lin_w[:, C:].t()

        ei = graph.edge_index
        size = (num_nodes, num_nodes)
        alpha = self.edge_updater(ei, s=(s_src, s_dst), s_edge=s_edge, size=size)
        out = self.propagate(ei, x=value_node, alpha=alpha, value_edge=value_edge, size=size)  # [N, H, F]

        if self.concat:
            if self.root_weight:
                out = out + h.view(-1, 1, C)
            return out.reshape(-1, self.heads * C)
        out = out.mean(dim=1)
        return out + h if self.root_weight else out

    def edge_update(
        self,
        s_j: Tensor,
        s_i: Tensor,
        s_edge: Tensor,
        index: Tensor,
        ptr: Tensor | None,
        dim_size: int | None,
    ) -> Tensor:
        """``[E, H]`` attention: ``dropout(softmax(leaky_relu(s_i + s_j + s_e)))``."""
        return att.normalize_scores(
            s_i + s_j + s_edge,
            index,
            dim_size if dim_size is not None else 0,
            negative_slope=self.negative_slope,
            dropout=self.dropout,
            training=self.training,
            ptr=ptr,
        )

    def message(self, x_j: Tensor, alpha: Tensor, value_edge: Tensor) -> Tensor:
        """``alpha_e^h * W_v [h_j || a_e]`` per head: ``[E, H, F]``."""
        return (x_j + value_edge).unsqueeze(1) * alpha.unsqueeze(-1)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels}, heads={self.heads})"
