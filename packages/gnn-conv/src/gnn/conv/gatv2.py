r"""GATv2Conv: dynamic graph attention (Brody et al., 2022)."""

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


class GATv2Conv(MessagePassing):
    r"""The GATv2 operator from "How Attentive are Graph Attention Networks?".

    .. math::
        \mathbf{x}^{\prime}_i = \mathop{\Big\Vert}_{h=1}^{H}
        \sum_{j \in \mathcal{N}(i) \cup \{ i \}} \alpha^{h}_{i,j}\mathbf{\Theta}^{h}_{s}\mathbf{x}_{j}
        + \mathbf{b},
        \qquad
        \alpha^{h}_{i,j} = \operatorname{softmax}_{j}\Big(\mathbf{a}^{h\top}
        \operatorname{LeakyReLU}\big(\mathbf{\Theta}^{h}_{s}\mathbf{x}_j + \mathbf{b}_s
        + \mathbf{\Theta}^{h}_{t}\mathbf{x}_i + \mathbf{b}_t
        + \mathbf{\Theta}^{h}_{e}\mathbf{e}_{j,i}\big)\Big)

    Unlike :class:`~gnn.conv.gat.GATConv`, the nonlinearity is applied before
    the attention vector, so the ranking of neighbours depends on the target
    ("dynamic" attention). ``lin_l`` is :math:`\mathbf{\Theta}_s`, ``lin_r``
    :math:`\mathbf{\Theta}_t` (the same module with ``share_weights``).

    Args:
        in_channels: input size, ``-1`` for lazy, or ``(F_src, F_dst)``.
        out_channels: output size per head ``C``.
        heads: number of heads ``H``.
        concat: concatenate the heads or average them.
        negative_slope: LeakyReLU slope.
        dropout: dropout probability of the attention coefficients.
        add_self_loops: replace the self loops with one loop per node.
        edge_dim: edge feature size.
        fill_value: edge feature of the added loops (number, tensor or reduction).
        bias: learn biases (in ``lin_l``, ``lin_r`` and the output).
        share_weights: use the same weights for sources and targets.
        residual: add a linear projection of the target node's input.
        **kwargs: :class:`~gnn.core.MessagePassing` arguments.

    Shapes:
        ``x`` ``[N, F]`` or ``([N_src, F_src], [N_dst, F_dst])``; output
        ``[N_dst, H * C]`` (or ``[N_dst, C]``); ``return_attention_weights``
        adds ``(edge_index, alpha [E', H])``.

    Example:
        >>> conv = GATv2Conv(16, 8, heads=2)
        >>> conv(torch.randn(10, 16), torch.randint(0, 10, (2, 40))).shape
        torch.Size([10, 16])
    """

    #: the fused plan: edge_update's attention and message's weighted sum in one kernel
    fused_message = plans.AdditiveAttention(features="x", mask="loop_mask")

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
        share_weights: bool = False,
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
        self.share_weights = share_weights

        hc = heads * out_channels
        src_in, dst_in = (in_channels, in_channels) if isinstance(in_channels, int) else in_channels
        self.lin_l = Linear(src_in, hc, bias=bias, weight_initializer="glorot")
        if share_weights:
            self.lin_r = self.lin_l
        else:
            self.lin_r = Linear(dst_in, hc, bias=bias, weight_initializer="glorot")

        self.att = torch.nn.Parameter(torch.empty(1, heads, out_channels))
        if edge_dim is not None:
            self.lin_edge: Linear | None = Linear(edge_dim, hc, bias=False, weight_initializer="glorot")
        else:
            self.lin_edge = None

        att.init_output(self, dst_in, hc if concat else out_channels, residual, bias)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Glorot weights and attention vector, zero biases."""
        super().reset_parameters()
        self.lin_l.reset_parameters()
        self.lin_r.reset_parameters()
        if self.lin_edge is not None:
            self.lin_edge.reset_parameters()
        if self.res is not None:
            self.res.reset_parameters()
        glorot(self.att)
        zeros(self.bias)

    def forward(
        self,
        x: Tensor | tuple[Tensor, Tensor],
        edge_index: Any,
        edge_attr: Tensor | None = None,
        return_attention_weights: bool | None = None,
    ) -> Tensor | tuple[Tensor, Any]:
        """Attend over the incoming edges of every target node.

        Returns ``out``, or ``(out, attention)`` when ``return_attention_weights``
        is true.
        """
        check_in_channels(x, self.in_channels)
        H, C = self.heads, self.out_channels
        if isinstance(x, Tensor):
            if x.dim() != 2:
                raise ValueError(f"'x' must hold [N, F] node features, got {v.describe(x)}")
            x_src_in = x_dst_in = x
            x_l = self.lin_l(x).view(-1, H, C)
            x_r = x_l if self.share_weights else self.lin_r(x).view(-1, H, C)
        else:
            x_src_in, x_dst_in = x
            if x_src_in is None or x_dst_in is None:
                raise ValueError("'x' must be a tensor or a pair of tensors (x_src, x_dst), got None in it")
            x_l = self.lin_l(x_src_in).view(-1, H, C)
            x_r = self.lin_r(x_dst_in).view(-1, H, C)

        n_src, n_dst = x_l.size(0), x_r.size(0)
        graph = read_graph(edge_index, None, self.flow)
        graph.set_nodes(n_src, n_dst)
        edge_attr = att.edge_features(graph, edge_attr, self.lin_edge)
        ei, edge_attr, loops = att.apply_self_loops(
            self, graph.edge_index, edge_attr, min(n_src, n_dst), max(n_src, n_dst)
        )

        rows = att.by_row(n_src, n_dst, self.flow)
        pair = att.by_row(x_l, x_r, self.flow)
        loop_mask = loops.dropped if loops is not None else None
        alpha = self.edge_updater(ei, x=pair, edge_attr=edge_attr, loop_mask=loop_mask, size=rows)
        out = self.propagate(ei, x=pair, alpha=alpha, size=rows)
        out = att.finish_output(self, out, x_dst_in)
        if return_attention_weights:
            alpha = plans.materialize(alpha)
            return out, att.attention_weights(graph, ei, alpha, loops, (n_src, n_dst))
        return out

    def edge_update(
        self,
        x_j: Tensor,
        x_i: Tensor,
        edge_attr: Tensor | None,
        loop_mask: Tensor | None,
        index: Tensor,
        ptr: Tensor | None,
        dim_size: int | None,
    ) -> Tensor:
        """Normalized attention ``[E, H]``: ``a^T LeakyReLU(x_j + x_i (+ e))``, softmax per target."""
        z = x_j + x_i
        edge_emb = self.edge_term(edge_attr)
        if edge_emb is not None:
            z = z + edge_emb
        scores = att.additive_scores(z, self.att, self.negative_slope)
        return att.normalize_scores(
            scores,
            index,
            dim_size if dim_size is not None else 0,
            dropout=self.dropout,
            training=self.training,
            ptr=ptr,
            mask=loop_mask,
        )

    def edge_term(self, edge_attr: Tensor | None) -> Tensor | None:
        """``[E, H, C]`` edge terms of the score (``None`` without edge features)."""
        if edge_attr is None or self.lin_edge is None:
            return None
        return self.lin_edge(edge_attr).view(-1, self.heads, self.out_channels)

    def message(self, x_j: Tensor, alpha: Tensor) -> Tensor:
        """``alpha_ij * x_j`` per head."""
        return att.weighted_message(x_j, alpha)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels}, heads={self.heads})"
