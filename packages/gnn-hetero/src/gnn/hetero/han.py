r""":class:`HANConv`: the Heterogeneous Graph Attention operator (Wang et al., 2019)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from gnn.conv import _attention as att
from gnn.core import Linear, MessagePassing, plans
from gnn.core.graph import read_graph
from gnn.core.nn.inits import glorot, reset

from ._utils import EdgeType, Metadata, NodeType, check_dict, read_metadata, require

__all__ = ["HANConv", "semantic_attention"]


def semantic_attention(
    xs: list[Tensor], q: Tensor, k_lin: torch.nn.Module
) -> tuple[Tensor | None, Tensor | None]:
    r"""Combine the per-edge-type outputs ``xs`` (``[N, F]`` each) of one node type with
    HAN's semantic attention.

    .. math::
        w_r = \mathbf{q}^\top \frac{1}{N} \sum_{v} \tanh(\mathbf{W} \mathbf{z}^{(r)}_v + \mathbf{b}),
        \qquad \beta = \operatorname{softmax}_r(w_r), \qquad
        \mathbf{z}_v = \sum_r \beta_r \mathbf{z}^{(r)}_v

    Returns ``(z [N, F], beta [R])``; ``(None, None)`` without inputs, and an empty
    ``[0, F]`` result with ``beta = None`` when there are no nodes.
    """
    if not xs:
        return None, None
    if xs[0].numel() == 0:
        return xs[0].new_zeros(0, xs[0].size(-1)), None
    scores = torch.stack([(q * torch.tanh(k_lin(x)).mean(0)).sum(-1) for x in xs]).view(-1)
    beta = torch.softmax(scores, dim=0)
    out = beta[0] * xs[0]
    for r in range(1, len(xs)):
        out = out + beta[r] * xs[r]
    return out, beta


class HANConv(MessagePassing):
    r"""The Heterogeneous Graph Attention operator from "Heterogenous Graph Attention Network".

    Node features are projected per node type,
    :math:`\mathbf{h}_i = \mathbf{W}_{\tau(i)} \mathbf{x}_i` (``H`` heads of ``D`` channels);
    per edge type :math:`r` a GAT-style node-level attention gives

    .. math::
        \alpha^{h}_{ji} = \operatorname{softmax}_{j \in \mathcal{N}_r(i)}\Big(
        \operatorname{LeakyReLU}\big(\mathbf{a}^{h\top}_{r,src} \mathbf{h}^h_j
        + \mathbf{a}^{h\top}_{r,dst} \mathbf{h}^h_i\big)\Big),
        \qquad
        \mathbf{z}^{(r)}_i = \operatorname{ReLU}\Big(\Big\Vert_h \sum_j \alpha^h_{ji} \mathbf{h}^h_j\Big),

    and the semantic-level attention (:func:`semantic_attention`) combines the
    :math:`\mathbf{z}^{(r)}` of the edge types that end in the same node type. The
    node-level attention and its aggregation run as one fused op per edge type
    (:class:`gnn.core.plans.NodeScoreAttention`).

    Args:
        in_channels: input size per node type, or one size for all; ``-1`` for lazy.
        out_channels: output size ``F`` (``H * D``).
        metadata: ``(node_types, edge_types)``, or a ``HeteroData``.
        heads: number of heads ``H``.
        negative_slope: LeakyReLU slope.
        dropout: dropout probability of the attention coefficients.
        **kwargs: :class:`~gnn.core.MessagePassing` arguments.

    Shapes:
        ``x_dict`` ``{type: [N_t, F_t]}``, ``edge_index_dict`` ``{edge type: [2, E_r]}`` ->
        ``{type: [N_t, F]}`` for every type of ``x_dict`` (``None`` for a type no edge
        type reaches); with ``return_semantic_attention_weights=True`` also
        ``{type: beta [R_t]}``. Parameters as in PyG: ``proj.<type>``, ``lin_src`` /
        ``lin_dst.<src__rel__dst>`` ``[1, H, D]``, ``k_lin`` (``torch.nn.Linear(F, F)``),
        ``q`` ``[1, F]``.

    Example:
        >>> conv = HANConv(-1, 64, data.metadata(), heads=8)
        >>> out_dict = conv(data.x_dict, data.edge_index_dict)
    """

    fused_message = plans.NodeScoreAttention(
        scores="alpha", edge_attr="edge_attr", source="x", weights="alpha"
    )

    def __init__(
        self,
        in_channels: int | dict[str, int],
        out_channels: int,
        metadata: Metadata,
        heads: int = 1,
        negative_slope: float = 0.2,
        dropout: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(aggr="add", node_dim=0, **kwargs)
        if not isinstance(heads, int) or isinstance(heads, bool) or heads < 1:
            raise ValueError(f"'heads' must be a positive int, got {heads!r}")
        if not isinstance(out_channels, int) or isinstance(out_channels, bool) or out_channels % heads != 0:
            raise ValueError(
                f"'out_channels' must be an int divisible by 'heads' ({heads}), got {out_channels!r}"
            )
        metadata = read_metadata(metadata)
        if not isinstance(in_channels, Mapping):
            in_channels = {node_type: in_channels for node_type in metadata[0]}
        self.heads = heads
        self.in_channels = dict(in_channels)
        self.out_channels = out_channels
        self.negative_slope = negative_slope
        self.metadata = metadata
        self.dropout = dropout
        self.k_lin = torch.nn.Linear(out_channels, out_channels)
        self.q = torch.nn.Parameter(torch.empty(1, out_channels))
        self.proj = torch.nn.ModuleDict(
            {node_type: Linear(size, out_channels) for node_type, size in self.in_channels.items()}
        )
        dim = out_channels // heads
        self.lin_src = torch.nn.ParameterDict()
        self.lin_dst = torch.nn.ParameterDict()
        for edge_type in metadata[1]:
            key = "__".join(edge_type)
            self.lin_src[key] = torch.nn.Parameter(torch.empty(1, heads, dim))
            self.lin_dst[key] = torch.nn.Parameter(torch.empty(1, heads, dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Reset the projections; Glorot attention vectors."""
        super().reset_parameters()
        reset(self.proj)
        glorot(self.lin_src)
        glorot(self.lin_dst)
        self.k_lin.reset_parameters()
        glorot(self.q)

    def forward(
        self,
        x_dict: dict[NodeType, Tensor],
        edge_index_dict: dict[EdgeType, Any],
        return_semantic_attention_weights: bool = False,
    ) -> dict[NodeType, Tensor | None] | tuple[dict[NodeType, Tensor | None], dict[NodeType, Tensor | None]]:
        """Node-level attention per edge type, then semantic attention per node type."""
        x_dict = check_dict(x_dict, "x_dict")
        edge_index_dict = check_dict(edge_index_dict, "edge_index_dict")
        H, D = self.heads, self.out_channels // self.heads
        x_node_dict: dict[NodeType, Tensor] = {}
        out_lists: dict[NodeType, list[Tensor]] = {}
        for node_type, x in x_dict.items():
            if node_type not in self.proj:
                raise ValueError(
                    f"'x_dict' holds node type {node_type!r}, which is not among the node types of the "
                    f"layer's metadata {self.metadata[0]}"
                )
            x_node_dict[node_type] = self.proj[node_type](x).view(-1, H, D)
            out_lists[node_type] = []

        for edge_type, edge_index in edge_index_dict.items():
            src_type, _, dst_type = edge_type
            key = "__".join(edge_type)
            if key not in self.lin_src:
                raise ValueError(
                    f"'edge_index_dict' holds edge type {edge_type!r}, which is not among the edge types "
                    f"of the layer's metadata {self.metadata[1]}"
                )
            x_src = require(x_node_dict, src_type, "x_dict", f" (the source of edge type {edge_type!r})")
            x_dst = require(x_node_dict, dst_type, "x_dict", f" (the destination of edge type {edge_type!r})")
            alpha_src = att.node_scores(x_src, self.lin_src[key])
            alpha_dst = att.node_scores(x_dst, self.lin_dst[key])
            graph = read_graph(edge_index, None, self.flow)
            graph.set_nodes(x_src.size(0), x_dst.size(0))
            if graph.is_sparse:  # the engine reads the sparse input itself
                ei, rows = edge_index, None
            else:
                ei, rows = graph.edge_index, att.by_row(x_src.size(0), x_dst.size(0), self.flow)
            alpha = self.edge_updater(
                ei, alpha=att.by_row(alpha_src, alpha_dst, self.flow), edge_attr=None, size=rows
            )
            out = self.propagate(ei, x=att.by_row(x_src, x_dst, self.flow), alpha=alpha, size=rows)
            out_lists[dst_type].append(F.relu(out.reshape(-1, self.out_channels)))

        out_dict: dict[NodeType, Tensor | None] = {}
        semantic: dict[NodeType, Tensor | None] = {}
        for node_type, outs in out_lists.items():
            out_dict[node_type], semantic[node_type] = semantic_attention(outs, self.q, self.k_lin)
        if return_semantic_attention_weights:
            return out_dict, semantic
        return out_dict

    def edge_update(
        self, alpha_j: Tensor, alpha_i: Tensor | None, index: Tensor, ptr: Tensor | None, dim_size: int | None
    ) -> Tensor:
        """Normalized attention ``[E, H]``: ``dropout(softmax(leaky_relu(a_j + a_i)))``."""
        alpha = alpha_j if alpha_i is None else alpha_j + alpha_i
        return att.normalize_scores(
            alpha,
            index,
            dim_size if dim_size is not None else 0,
            negative_slope=self.negative_slope,
            dropout=self.dropout,
            training=self.training,
            ptr=ptr,
        )

    def edge_term(self, edge_attr: Tensor | None) -> Tensor | None:
        """HAN's scores have no edge term."""
        return None

    def message(self, x_j: Tensor, alpha: Tensor) -> Tensor:
        """``alpha_ji * x_j`` per head."""
        return att.weighted_message(x_j, alpha)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.out_channels}, heads={self.heads})"
