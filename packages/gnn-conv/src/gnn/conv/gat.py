r"""GATConv: the graph attentional operator (Veličković et al., 2018)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from gnn.core import Linear, MessagePassing, plans
from gnn.core import validation as v
from gnn.core.graph import read_graph
from gnn.core.nn.inits import glorot, zeros

from . import _attention as att
from ._utils import check_in_channels


class GATConv(MessagePassing):
    r"""The graph attentional operator from "Graph Attention Networks".

    .. math::
        \mathbf{x}^{\prime}_i = \mathop{\Big\Vert}_{h=1}^{H} \Big(
        \alpha^{h}_{i,i}\mathbf{\Theta}^{h}_{t}\mathbf{x}_{i} +
        \sum_{j \in \mathcal{N}(i)} \alpha^{h}_{i,j}\mathbf{\Theta}^{h}_{s}\mathbf{x}_{j}\Big)
        + \mathbf{b},
        \qquad
        \alpha^{h}_{i,j} = \operatorname{softmax}_{j}\Big(\operatorname{LeakyReLU}\big(
        \mathbf{a}^{h\top}_{s}\mathbf{\Theta}^{h}_{s}\mathbf{x}_j
        + \mathbf{a}^{h\top}_{t}\mathbf{\Theta}^{h}_{t}\mathbf{x}_i
        + \mathbf{a}^{h\top}_{e}\mathbf{\Theta}^{h}_{e}\mathbf{e}_{j,i}\big)\Big)

    with the softmax over the incoming edges of ``i`` (its self loop
    included when ``add_self_loops``), the heads concatenated (``concat``)
    or averaged, and :math:`\mathbf{\Theta}_s = \mathbf{\Theta}_t` unless
    ``in_channels`` is a pair.

    Args:
        in_channels: input size, ``-1`` for lazy, or ``(F_src, F_dst)`` for
            bipartite graphs (separate source/target weights).
        out_channels: output size per head ``C``.
        heads: number of heads ``H``.
        concat: concatenate the heads (``[N, H * C]``) or average them (``[N, C]``).
        negative_slope: LeakyReLU slope.
        dropout: dropout probability of the attention coefficients.
        add_self_loops: replace the self loops with one loop per node.
        edge_dim: edge feature size; edge features then enter the scores.
        fill_value: edge feature of the added loops (number, tensor, or a
            reduction of the incoming ones such as ``"mean"``).
        bias: learn an additive bias.
        residual: add a linear projection of the target node's input.
        **kwargs: :class:`~gnn.core.MessagePassing` arguments.

    Shapes:
        ``x`` ``[N, F]`` or ``([N_src, F_src], [N_dst, F_dst])``;
        ``edge_index`` ``[2, E]`` or sparse ``adj_t``; ``edge_attr``
        ``[E, edge_dim]``; output ``[N_dst, H * C]`` (or ``[N_dst, C]``); with
        ``return_attention_weights=True`` also ``(edge_index, alpha [E', H])``
        (the sparse form for sparse inputs).

    Example:
        >>> conv = GATConv(16, 8, heads=4)
        >>> x, edge_index = torch.randn(10, 16), torch.randint(0, 10, (2, 40))
        >>> conv(x, edge_index).shape
        torch.Size([10, 32])
    """

    #: the fused plan: edge_update's attention and message's weighted sum in one kernel
    fused_message = plans.NodeScoreAttention(scores="alpha", mask="loop_mask")

    def __init__(
        self,
        in_channels: int | tuple[int, int],
        out_channels: int,
        heads: int = 1,
        concat: bool = True,
        negative_slope: float = 0.2,
        dropout: float = 0.0,
        add_self_loops: bool = True,
        edge_dim: int | None = None,
        fill_value: float | Tensor | str = "mean",
        bias: bool = True,
        residual: bool = False,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("aggr", "add")
        super().__init__(node_dim=0, **kwargs)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.heads = heads
        self.concat = concat
        self.negative_slope = negative_slope
        self.dropout = dropout
        self.add_self_loops = add_self_loops
        self.edge_dim = edge_dim
        self.fill_value = fill_value
        self.residual = residual

        hc = heads * out_channels
        self.lin: Linear | None = None
        self.lin_src: Linear | None = None
        self.lin_dst: Linear | None = None
        if isinstance(in_channels, int):
            self.lin = Linear(in_channels, hc, bias=False, weight_initializer="glorot")
        else:
            self.lin_src = Linear(in_channels[0], hc, bias=False, weight_initializer="glorot")
            self.lin_dst = Linear(in_channels[1], hc, bias=False, weight_initializer="glorot")

        self.att_src = torch.nn.Parameter(torch.empty(1, heads, out_channels))
        self.att_dst = torch.nn.Parameter(torch.empty(1, heads, out_channels))
        if edge_dim is not None:
            self.lin_edge: Linear | None = Linear(edge_dim, hc, bias=False, weight_initializer="glorot")
            self.att_edge: torch.nn.Parameter | None = torch.nn.Parameter(torch.empty(1, heads, out_channels))
        else:
            self.lin_edge = None
            self.register_parameter("att_edge", None)

        dst_in = in_channels if isinstance(in_channels, int) else in_channels[1]
        att.init_output(self, dst_in, hc if concat else out_channels, residual, bias)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Glorot weights and attention vectors, zero bias."""
        super().reset_parameters()
        for lin in (self.lin, self.lin_src, self.lin_dst, self.lin_edge, self.res):
            if lin is not None:
                lin.reset_parameters()
        glorot(self.att_src)
        glorot(self.att_dst)
        glorot(self.att_edge)
        zeros(self.bias)

    def forward(
        self,
        x: Tensor | tuple[Tensor, Tensor | None],
        edge_index: Any,
        edge_attr: Tensor | None = None,
        size: tuple[int, int] | None = None,
        return_attention_weights: bool | None = None,
    ) -> Tensor | tuple[Tensor, Any]:
        """Attend over the incoming edges of every target node.

        Returns ``out``, or ``(out, attention)`` when ``return_attention_weights``
        is true (see the class docstring for the form of ``attention``).
        """
        check_in_channels(x, self.in_channels)
        H, C = self.heads, self.out_channels
        x_src_in, x_dst_in = (x, x) if isinstance(x, Tensor) else x
        if x_src_in is None:
            raise ValueError("'x' must provide source node features, got None")
        if x_src_in.dim() != 2 or (x_dst_in is not None and x_dst_in.dim() != 2):
            raise ValueError(f"'x' must hold [N, F] node features, got {v.describe(x_src_in)}")

        if self.lin is not None:
            x_src = self.lin(x_src_in).view(-1, H, C)
            if x_dst_in is None:
                x_dst = None
            elif x_dst_in is x_src_in:
                x_dst = x_src
            else:
                x_dst = self.lin(x_dst_in).view(-1, H, C)
        else:
            assert self.lin_src is not None and self.lin_dst is not None
            x_src = self.lin_src(x_src_in).view(-1, H, C)
            x_dst = self.lin_dst(x_dst_in).view(-1, H, C) if x_dst_in is not None else None

        graph = read_graph(edge_index, size, self.flow)
        n_src = x_src.size(0)
        if x_dst is not None:
            n_dst = x_dst.size(0)
        else:
            known = graph.size[graph.i]
            n_dst = known if known is not None else n_src
        graph.set_nodes(n_src, n_dst)
        edge_attr = att.edge_features(graph, edge_attr, self.lin_edge, strict=False)
        num_loops = min(n_src, n_dst) if size is None else min(size)
        ei, edge_attr, loops = att.apply_self_loops(
            self, graph.edge_index, edge_attr, num_loops, max(n_src, n_dst)
        )

        if x_dst is x_src:
            alpha_src, alpha_dst = att.node_scores_pair(x_src, self.att_src, self.att_dst)
        else:
            alpha_src = att.node_scores(x_src, self.att_src)
            alpha_dst = att.node_scores(x_dst, self.att_dst) if x_dst is not None else None
        rows = att.by_row(n_src, n_dst, self.flow)
        loop_mask = loops.dropped if loops is not None else None
        alpha = self.edge_updater(
            ei,
            alpha=att.by_row(alpha_src, alpha_dst, self.flow),
            edge_attr=edge_attr,
            loop_mask=loop_mask,
            size=rows,
        )
        out = self.propagate(ei, x=att.by_row(x_src, x_dst, self.flow), alpha=alpha, size=rows)
        out = att.finish_output(self, out, x_dst_in)
        if return_attention_weights:
            alpha = plans.materialize(alpha)
            return out, att.attention_weights(graph, ei, alpha, loops, (n_src, out.size(0)))
        return out

    def edge_update(
        self,
        alpha_j: Tensor,
        alpha_i: Tensor | None,
        edge_attr: Tensor | None,
        loop_mask: Tensor | None,
        index: Tensor,
        ptr: Tensor | None,
        dim_size: int | None,
    ) -> Tensor:
        """Normalized attention ``[E, H]`` from the gathered node terms (and edge features)."""
        alpha = alpha_j if alpha_i is None else alpha_j + alpha_i
        edge_score = self.edge_term(edge_attr)
        if edge_score is not None:
            alpha = alpha + edge_score
        return att.normalize_scores(
            alpha,
            index,
            dim_size if dim_size is not None else 0,
            negative_slope=self.negative_slope,
            dropout=self.dropout,
            training=self.training,
            ptr=ptr,
            mask=loop_mask,
        )

    def edge_term(self, edge_attr: Tensor | None) -> Tensor | None:
        """``[E, H]`` edge terms of the score (``None`` without edge features)."""
        if edge_attr is None or self.lin_edge is None:
            return None
        e = self.lin_edge(edge_attr).view(-1, self.heads, self.out_channels)
        return att.node_scores(e, self.att_edge)

    def message(self, x_j: Tensor, alpha: Tensor) -> Tensor:
        """``alpha_ij * x_j`` per head."""
        return att.weighted_message(x_j, alpha)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels}, heads={self.heads})"
