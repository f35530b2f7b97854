r"""TransformerConv: the graph transformer operator (Shi et al., 2021)."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from gnn.core import Linear, MessagePassing, plans
from gnn.core import validation as v
from gnn.core.graph import read_graph

from . import _attention as att
from ._utils import check_in_channels


class TransformerConv(MessagePassing):
    r"""The graph transformer operator from "Masked Label Prediction: Unified
    Message Passing Model for Semi-Supervised Classification".

    .. math::
        \mathbf{x}^{\prime}_i = \mathbf{W}_1 \mathbf{x}_i +
        \sum_{j \in \mathcal{N}(i)} \alpha_{i,j} \left(\mathbf{W}_2 \mathbf{x}_{j}
        + \mathbf{W}_6 \mathbf{e}_{ij}\right),
        \qquad
        \alpha_{i,j} = \operatorname{softmax}_j \left(
        \frac{(\mathbf{W}_3\mathbf{x}_i)^{\top} (\mathbf{W}_4\mathbf{x}_j + \mathbf{W}_6 \mathbf{e}_{ij})}
        {\sqrt{C}} \right)

    per head (``lin_query`` = :math:`\mathbf{W}_3`, ``lin_key`` =
    :math:`\mathbf{W}_4`, ``lin_value`` = :math:`\mathbf{W}_2`, ``lin_edge`` =
    :math:`\mathbf{W}_6`, ``lin_skip`` = :math:`\mathbf{W}_1`). With ``beta``
    the skip connection is gated:
    :math:`\mathbf{x}'_i = \beta_i \mathbf{r}_i + (1 - \beta_i) \mathbf{m}_i`,
    :math:`\beta_i = \sigma(\mathbf{w}_5^{\top} [\mathbf{m}_i, \mathbf{r}_i, \mathbf{m}_i - \mathbf{r}_i])`
    with :math:`\mathbf{r}_i = \mathbf{W}_1 \mathbf{x}_i` and
    :math:`\mathbf{m}_i` the aggregated messages. No self loops are added.

    Args:
        in_channels: input size, ``-1`` for lazy, or ``(F_src, F_dst)``.
        out_channels: output size per head ``C``.
        heads: number of heads ``H``.
        concat: concatenate the heads or average them.
        beta: gate the skip connection (needs ``root_weight``).
        dropout: dropout probability of the attention coefficients.
        edge_dim: edge feature size.
        bias: learn biases in the key/query/value/skip projections.
        root_weight: add the skip connection :math:`\mathbf{W}_1 \mathbf{x}_i`.
        **kwargs: :class:`~gnn.core.MessagePassing` arguments.

    Shapes:
        ``x`` ``[N, F]`` or ``([N_src, F_src], [N_dst, F_dst])``; output
        ``[N_dst, H * C]`` (or ``[N_dst, C]``); ``return_attention_weights``
        adds ``(edge_index, alpha [E, H])``.

    Example:
        >>> conv = TransformerConv(16, 8, heads=2)
        >>> conv(torch.randn(10, 16), torch.randint(0, 10, (2, 40))).shape
        torch.Size([10, 16])
    """

    #: the fused plan: the attention and weighted sum of ``message`` in one kernel
    fused_message = plans.DotAttention(query="query", key="key", value="value", edge_attr="edge_attr")

    def __init__(
        self,
        in_channels: int | tuple[int, int],
        out_channels: int,
        heads: int = 1,
        concat: bool = True,
        beta: bool = False,
        dropout: float = 0.0,
        edge_dim: int | None = None,
        bias: bool = True,
        root_weight: bool = True,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("aggr", "add")
        super().__init__(node_dim=0, **kwargs)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.heads = heads
        self.beta = beta and root_weight
        self.root_weight = root_weight
        self.concat = concat
        self.dropout = dropout
        self._alpha: Any = None
        self.edge_dim = edge_dim

        hc = heads * out_channels
        src_in, dst_in = (in_channels, in_channels) if isinstance(in_channels, int) else in_channels
        self.lin_key = Linear(src_in, hc, bias=bias)
        self.lin_query = Linear(dst_in, hc, bias=bias)
        self.lin_value = Linear(src_in, hc, bias=bias)
        if edge_dim is not None:
            self.lin_edge: Linear | None = Linear(edge_dim, hc, bias=False)
        else:
            self.lin_edge = None
        total_out = hc if concat else out_channels
        # PyG keeps lin_skip even without root_weight (unused then), so checkpoints match
        self.lin_skip = Linear(dst_in, total_out, bias=bias)
        if self.beta:
            self.lin_beta: Linear | None = Linear(3 * total_out, 1, bias=False)
        else:
            self.lin_beta = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Reset every projection."""
        super().reset_parameters()
        for lin in (
            self.lin_key,
            self.lin_query,
            self.lin_value,
            self.lin_edge,
            self.lin_skip,
            self.lin_beta,
        ):
            if lin is not None:
                lin.reset_parameters()

    def forward(
        self,
        x: Tensor | tuple[Tensor, Tensor],
        edge_index: Any,
        edge_attr: Tensor | None = None,
        return_attention_weights: bool | None = None,
    ) -> Tensor | tuple[Tensor, Any]:
        """Multi-head dot-product attention over the incoming edges of every node.

        Returns ``out``, or ``(out, attention)`` when ``return_attention_weights``
        is true.
        """
        check_in_channels(x, self.in_channels)
        H, C = self.heads, self.out_channels
        x_src, x_dst = (x, x) if isinstance(x, Tensor) else x
        if x_src is None or x_dst is None:
            raise ValueError("'x' must be a tensor or a pair of tensors (x_src, x_dst), got None in it")
        if x_src.dim() != 2 or x_dst.dim() != 2:
            raise ValueError(f"'x' must hold [N, F] node features, got {v.describe(x_src)}")

        query = self.lin_query(x_dst).view(-1, H, C)
        key = self.lin_key(x_src).view(-1, H, C)
        value = self.lin_value(x_src).view(-1, H, C)

        n_src, n_dst = x_src.size(0), x_dst.size(0)
        graph = read_graph(edge_index, None, self.flow)
        graph.set_nodes(n_src, n_dst)
        edge_attr = att.edge_features(graph, edge_attr, self.lin_edge)
        ei = graph.edge_index
        rows = att.by_row(n_src, n_dst, self.flow)
        out = self.propagate(ei, query=query, key=key, value=value, edge_attr=edge_attr, size=rows)
        alpha = plans.materialize(self._alpha)
        self._alpha = None
        out = att.heads_output(out, self.concat)

        if self.root_weight:
            x_r = self.lin_skip(x_dst)
            if self.lin_beta is not None:
                gate = self.lin_beta(torch.cat([out, x_r, out - x_r], dim=-1)).sigmoid()
                out = gate * x_r + (1 - gate) * out
            else:
                out = out + x_r

        if return_attention_weights:
            return out, att.attention_result(graph, ei, alpha, (n_src, n_dst))
        return out

    def edge_term(self, edge_attr: Tensor | None) -> Tensor | None:
        """``[E, H, C]`` edge embeddings added to keys and values (``None`` without edge features)."""
        if edge_attr is None or self.lin_edge is None:
            return None
        return self.lin_edge(edge_attr).view(-1, self.heads, self.out_channels)

    def message(
        self,
        query_i: Tensor,
        key_j: Tensor,
        value_j: Tensor,
        edge_attr: Tensor | None,
        index: Tensor,
        ptr: Tensor | None,
        size_i: int | None,
    ) -> Tensor:
        """``alpha_ij * (v_j (+ e_ij))`` per head, ``alpha = softmax_i(<q_i, k_j (+ e_ij)> / sqrt(C))``;
        the attention (before dropout) is kept in ``self._alpha``."""
        edge_emb = self.edge_term(edge_attr)
        if edge_emb is not None:
            key_j = key_j + edge_emb
            value_j = value_j + edge_emb
        scores = torch.einsum("ehc,ehc->eh", query_i, key_j) / math.sqrt(self.out_channels)
        alpha = att.edge_softmax(scores, index, size_i if size_i is not None else 0, ptr)
        self._alpha = alpha
        alpha = torch.nn.functional.dropout(alpha, p=self.dropout, training=self.training)
        return att.weighted_message(value_j, alpha)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels}, heads={self.heads})"
