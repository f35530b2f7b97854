r"""HypergraphConv: hypergraph convolution and attention (Bai et al., 2019)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import Parameter

from gnn.core import Linear, MessagePassing, ops
from gnn.core import validation as v
from gnn.core.cache import memo
from gnn.core.nn.inits import glorot, zeros

from . import _attention as att
from ._utils import check_in_channels

ATTENTION_MODES = ("node", "edge")


class HypergraphConv(MessagePassing):
    r"""The hypergraph convolution from "Hypergraph Convolution and Hypergraph Attention".

    .. math::
        \mathbf{X}^{\prime} = \mathbf{D}^{-1} \mathbf{H} \mathbf{B}^{-1}
        \mathbf{H}^{\top} \mathbf{X} \mathbf{\Theta} + \mathbf{b}

    with :math:`\mathbf{H} \in \{0, 1\}^{N \times M}` the incidence matrix
    (``hyperedge_index`` lists its non-zeros ``(node, hyperedge)``),
    :math:`\mathbf{B}_{ee} = \sum_i \mathbf{H}_{ie}` the hyperedge degrees and
    :math:`\mathbf{D}_{ii} = \sum_e w_e \mathbf{H}_{ie}` the node degrees weighted by the
    hyperedge weights :math:`w` (``hyperedge_weight``, default 1). As in PyG 2.8.1, the
    weights enter through :math:`\mathbf{D}` only (the paper's
    :math:`\mathbf{D}^{-1}\mathbf{H}\mathbf{W}\mathbf{B}^{-1}\mathbf{H}^{\top}` reads
    :math:`\mathbf{W}` a second time); a zero degree gives a zero row.

    With ``use_attention``, :math:`\mathbf{H}` is replaced per head by attention weights
    :math:`\alpha_{ie} = \mathrm{softmax}(\mathrm{LeakyReLU}(\mathbf{a}^{\top}
    [\mathbf{\Theta}\mathbf{x}_i \,\Vert\, \mathbf{\Theta}\mathbf{e}_e]))` over the nodes
    of each hyperedge (``attention_mode="node"``) or the hyperedges of each node
    (``"edge"``), with :math:`\mathbf{e}_e` the hyperedge features (``hyperedge_attr``),
    and dropout on :math:`\alpha`; the heads are concatenated or averaged.

    Both products run through ``propagate`` (nodes to hyperedges, then back), each a
    weighted sum of the senders' features (the fused ``edge_weight * x_j`` plan without
    attention).

    Args:
        in_channels: input size (``-1``: lazy).
        out_channels: output size per head.
        use_attention: use hypergraph attention (needs ``hyperedge_attr``).
        attention_mode: ``"node"`` or ``"edge"`` (see above).
        heads: attention heads (only with ``use_attention``).
        concat: concatenate the heads (``True``) or average them.
        negative_slope: LeakyReLU slope of the attention scores.
        dropout: dropout probability of the attention weights.
        bias: learn an additive bias.
        **kwargs: :class:`~gnn.core.MessagePassing` arguments.

    Shapes:
        ``x`` ``[N, F_in]``; ``hyperedge_index`` ``[2, nnz]`` (row 0 nodes, row 1
        hyperedges); ``hyperedge_weight`` ``[M]``; ``hyperedge_attr`` ``[M, F_in]``;
        output ``[N, heads * out_channels]`` (``concat``) or ``[N, out_channels]``.

    Example:
        >>> conv = HypergraphConv(8, 16)
        >>> hyperedge_index = torch.tensor([[0, 1, 2, 1, 2, 3], [0, 0, 0, 1, 1, 1]])
        >>> conv(torch.randn(4, 8), hyperedge_index).shape
        torch.Size([4, 16])
    """

    #: both propagates are weighted sums of the senders' features
    fused_message = "edge_weight * x_j"

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        use_attention: bool = False,
        attention_mode: str = "node",
        heads: int = 1,
        concat: bool = True,
        negative_slope: float = 0.2,
        dropout: float = 0,
        bias: bool = True,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("aggr", "add")
        super().__init__(flow="source_to_target", node_dim=0, **kwargs)
        if attention_mode not in ATTENTION_MODES:
            raise ValueError(f"'attention_mode' must be one of {ATTENTION_MODES}, got {attention_mode!r}")
        if isinstance(heads, bool) or not isinstance(heads, int) or heads < 1:
            raise ValueError(f"'heads' must be a positive int, got {heads!r}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.use_attention = use_attention
        self.attention_mode = attention_mode
        if use_attention:
            self.heads = heads
            self.concat = concat
            self.negative_slope = negative_slope
            self.dropout = dropout
            self.lin = Linear(in_channels, heads * out_channels, bias=False, weight_initializer="glorot")
            self.att = Parameter(torch.empty(1, heads, 2 * out_channels))
        else:
            self.heads = 1
            self.concat = True
            self.lin = Linear(in_channels, out_channels, bias=False, weight_initializer="glorot")
        # PyG sizes the bias by the heads given, with or without attention
        if bias:
            self.bias = Parameter(torch.empty(heads * out_channels if concat else out_channels))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Glorot weights (and attention vector), zero bias."""
        super().reset_parameters()
        self.lin.reset_parameters()
        if self.use_attention:
            glorot(self.att)
        zeros(self.bias)

    def forward(
        self,
        x: Tensor,
        hyperedge_index: Tensor,
        hyperedge_weight: Tensor | None = None,
        hyperedge_attr: Tensor | None = None,
        num_edges: int | None = None,
    ) -> Tensor:
        """Nodes to hyperedges and back (see the class docstring for shapes)."""
        check_in_channels(x, self.in_channels)
        if x.dim() != 2:
            raise ValueError(f"'x' must have shape [N, F], got {v.describe(x)}")
        v.check_edge_index(hyperedge_index, "hyperedge_index")
        num_nodes = x.size(0)
        if num_edges is None:
            num_edges = int(hyperedge_index[1].max()) + 1 if hyperedge_index.numel() > 0 else 0
        elif isinstance(num_edges, bool) or not isinstance(num_edges, int) or num_edges < 0:
            raise ValueError(f"'num_edges' must be a non-negative int, got {num_edges!r}")
        if v.validation_enabled():
            v.check_index_range("hyperedge_index[0]", hyperedge_index[0], num_nodes, "nodes")
            v.check_index_range("hyperedge_index[1]", hyperedge_index[1], num_edges, "hyperedges")
        if hyperedge_weight is None:
            hyperedge_weight = x.new_ones(num_edges)
        else:
            v.check_tensor("hyperedge_weight", hyperedge_weight)
            if hyperedge_weight.dim() != 1 or hyperedge_weight.numel() != num_edges:
                raise ValueError(
                    f"'hyperedge_weight' must have shape [{num_edges}] (one weight per hyperedge), "
                    f"got {v.describe(hyperedge_weight)}"
                )
        H, C = self.heads, self.out_channels
        if self.bias is not None and self.bias.numel() != (H * C if self.concat else C):
            raise ValueError(
                f"this HypergraphConv has a bias of {self.bias.numel()} entries for {H * C if self.concat else C} "
                "outputs: PyG sizes the bias by 'heads' even without attention; pass heads=1"
            )

        x = self.lin(x).view(-1, H, C)
        node, edge = hyperedge_index[0], hyperedge_index[1]
        alpha = None
        if self.use_attention:
            if hyperedge_attr is None:
                raise ValueError("'hyperedge_attr' is required with use_attention=True")
            check_in_channels(hyperedge_attr, self.in_channels, "hyperedge_attr")
            if hyperedge_attr.dim() != 2 or hyperedge_attr.size(0) != num_edges:
                raise ValueError(
                    f"'hyperedge_attr' must have shape [{num_edges}, F] (one row per hyperedge), "
                    f"got {v.describe(hyperedge_attr)}"
                )
            alpha = self._attention(
                x, self.lin(hyperedge_attr).view(-1, H, C), node, edge, num_nodes, num_edges
            )

        ones = x.new_ones(hyperedge_index.size(1))
        node_degree = ops.scatter(hyperedge_weight.to(x.dtype).index_select(0, edge), node, 0, num_nodes)
        edge_degree = ops.scatter(ones, edge, 0, num_edges)
        d_inv = _inverse(node_degree)
        b_inv = _inverse(edge_degree)

        w_edge = b_inv.index_select(0, edge)  # nodes -> hyperedges, weighted by 1 / B_e
        w_node = d_inv.index_select(0, node)  # hyperedges -> nodes, weighted by 1 / D_i
        if alpha is not None:
            w_edge, w_node = w_edge.view(-1, 1) * alpha, w_node.view(-1, 1) * alpha
        out = self.propagate(hyperedge_index, x=x, edge_weight=w_edge, size=(num_nodes, num_edges))
        flipped = memo(hyperedge_index, "flipped", lambda: hyperedge_index.flip([0]))  # its CSR is cached too
        out = self.propagate(flipped, x=out, edge_weight=w_node, size=(num_edges, num_nodes))
        out = out.reshape(-1, H * C) if self.concat else out.mean(dim=1)
        if self.bias is not None:
            out = out + self.bias
        return out

    def _attention(
        self, x: Tensor, e: Tensor, node: Tensor, edge: Tensor, num_nodes: int, num_edges: int
    ) -> Tensor:
        """``[nnz, H]`` attention of every (node, hyperedge) pair."""
        C = self.out_channels
        att_node = self.att[..., :C]
        att_edge = self.att[..., C:]
        scores = att.node_scores(x, att_node).index_select(0, node) + att.node_scores(
            e, att_edge
        ).index_select(0, edge)
        scores = F.leaky_relu(scores, self.negative_slope)
        if self.attention_mode == "node":
            alpha = att.edge_softmax(scores, edge, num_edges)
        else:
            alpha = att.edge_softmax(scores, node, num_nodes)
        return F.dropout(alpha, p=self.dropout, training=self.training)

    def message(self, x_j: Tensor, edge_weight: Tensor) -> Tensor:
        """``edge_weight * x_j`` per head (``edge_weight`` ``[nnz]`` or ``[nnz, H]``)."""
        w = (
            edge_weight.view(edge_weight.size(0), -1, 1)
            if edge_weight.dim() > 1
            else edge_weight.view(-1, 1, 1)
        )
        return w * x_j

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels})"


def _inverse(degree: Tensor) -> Tensor:
    """``1 / degree`` with 0 where the degree is 0."""
    inv = 1.0 / degree
    return inv.masked_fill(inv == float("inf"), 0.0)
