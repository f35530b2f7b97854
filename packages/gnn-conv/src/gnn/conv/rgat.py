r"""RGATConv: the relational graph attentional operator (Busbridge et al., 2019)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import Parameter

from gnn.core import Linear, ops, plans
from gnn.core import validation as v
from gnn.core.graph import read_graph
from gnn.core.message_passing import MessagePassing
from gnn.core.nn.inits import glorot, ones, zeros

from . import _attention as att
from . import _relational as rel
from ._utils import check_in_channels

_MECHANISMS = ("within-relation", "across-relation")
_MODES = ("additive-self-attention", "multiplicative-self-attention")
_MODS = (None, "additive", "scaled", "f-additive", "f-scaled")


class RGATConv(MessagePassing):
    r"""The relational graph attentional operator from "Relational Graph Attention Networks".

    Every edge ``j -> i`` of relation ``r`` carries :math:`\mathbf{x}^{(r)}_j = \mathbf{W}^{(r)}
    \mathbf{x}_j` (``heads`` x ``out_channels``); queries and keys are
    :math:`\mathbf{q}^{(r)}_i = \mathbf{x}^{(r)}_i \mathbf{Q}`,
    :math:`\mathbf{k}^{(r)}_j = \mathbf{x}^{(r)}_j \mathbf{K}` (``heads * dim`` each), and the logits

    .. math::
        a^{(r)}_{ij} = \mathrm{LeakyReLU}(\mathbf{q}^{(r)}_i + \mathbf{k}^{(r)}_j
        + \mathbf{W}_2 \mathbf{e}_{ij} \mathbf{E})
        \quad\text{or}\quad
        a^{(r)}_{ij} = \mathbf{q}^{(r)}_i \odot \mathbf{k}^{(r)}_j \odot
        (\mathbf{W}_2 \mathbf{e}_{ij} \mathbf{E})

    (additive or multiplicative ``attention_mode``; the edge term only with ``edge_dim``). The
    softmax runs over all incoming edges of ``i`` (``"across-relation"``) or over those of one
    relation (``"within-relation"``), and :math:`\mathbf{x}'_i = \sum_{r} \sum_{j \in
    \mathcal{N}_r(i)} \alpha^{(r)}_{ij} \mathbf{x}^{(r)}_j`, heads concatenated or averaged,
    plus the bias. The cardinality-preserving ``mod`` options (Zhang et al., 2019), with
    :math:`d_i` the in-degree of ``i``:

    * ``"additive"``: :math:`+\, \mathbf{w} \odot \sum_j \mathbf{x}^{(r)}_j`;
    * ``"scaled"``: :math:`\psi(d_i) \odot \sum_j \alpha_{ij} \mathbf{x}^{(r)}_j` with
      :math:`\psi(d) = \mathrm{ReLU}(d\, \mathbf{l}_1 + \mathbf{b}_1) \mathbf{L}_2 + \mathbf{b}_2`;
    * ``"f-additive"``: :math:`\sum_j (\alpha_{ij} + 1) \mathbf{x}^{(r)}_j`;
    * ``"f-scaled"``: :math:`d_i \sum_j \alpha_{ij} \mathbf{x}^{(r)}_j`.

    gnn computes :math:`\mathbf{x}^{(r)}_n`, :math:`\mathbf{q}^{(r)}_n` and
    :math:`\mathbf{k}^{(r)}_n` once per node and relation (a ``[N * R, ...]`` table: one matrix
    product), never per edge, and attends over a graph whose senders are the rows ``j * R + r``
    of that table; the additive mode then runs GAT's fused attention kernel
    (:class:`gnn.core.plans.NodeScoreAttention`).

    Args:
        in_channels: input size.
        out_channels: output size per head ``C``.
        num_relations: number of relations ``R``.
        num_bases: basis decomposition of :math:`\mathbf{W}^{(r)}` with this many bases.
        num_blocks: block-diagonal decomposition with this many blocks.
        mod: ``None``, ``"additive"``, ``"scaled"``, ``"f-additive"`` or ``"f-scaled"``.
        attention_mechanism: ``"across-relation"`` or ``"within-relation"``.
        attention_mode: ``"additive-self-attention"`` or ``"multiplicative-self-attention"``.
        heads: number of heads ``H``.
        dim: query/key size ``D`` per head (``1`` in the additive mode).
        concat: concatenate the heads (else average them).
        negative_slope: LeakyReLU slope (additive mode).
        dropout: dropout of the attention coefficients (only with ``mod=None``).
        edge_dim: edge feature size (``None``: no edge term).
        bias: learn an additive bias.
        **kwargs: :class:`~gnn.core.MessagePassing` arguments.

    Shapes:
        ``x`` ``[N, in_channels]`` (or ``[N]`` integer node indices: learned embeddings),
        ``edge_index`` ``[2, E]`` or a sparse adjacency whose values are the relations,
        ``edge_type`` ``[E]``, ``edge_attr`` ``[E, edge_dim]`` (or ``[R, edge_dim]``, one per
        relation) -> ``[N, H * C]`` (``concat``) or ``[N, C]``, times ``D`` in the
        multiplicative mode; with ``return_attention_weights`` also ``(edge_index, alpha
        [E, H * D])`` (a sparse adjacency of the weights for sparse inputs).

    Example:
        >>> conv = RGATConv(16, 8, num_relations=3, heads=2)
        >>> x, edge_index = torch.randn(10, 16), torch.randint(0, 10, (2, 40))
        >>> conv(x, edge_index, torch.randint(0, 3, (40,))).shape
        torch.Size([10, 16])
    """

    #: the additive mode: per-row scores of the relation table, the edge term
    #: (query and edge features) and the weighted sum in one fused kernel
    fused_message = plans.NodeScoreAttention(
        scores="alpha", edge_attr="edge_score", source="x", weights="alpha"
    )

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        num_relations: int,
        num_bases: int | None = None,
        num_blocks: int | None = None,
        mod: str | None = None,
        attention_mechanism: str = "across-relation",
        attention_mode: str = "additive-self-attention",
        heads: int = 1,
        dim: int = 1,
        concat: bool = True,
        negative_slope: float = 0.2,
        dropout: float = 0.0,
        edge_dim: int | None = None,
        bias: bool = True,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("aggr", "add")
        super().__init__(node_dim=0, **kwargs)
        if attention_mechanism not in _MECHANISMS:
            raise ValueError(
                f"'attention_mechanism' must be one of {_MECHANISMS}, got {attention_mechanism!r}"
            )
        if attention_mode not in _MODES:
            raise ValueError(f"'attention_mode' must be one of {_MODES}, got {attention_mode!r}")
        if mod not in _MODS:
            raise ValueError(f"'mod' must be one of {_MODS}, got {mod!r}")
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels), ("heads", heads)):
            rel.check_relations(name, value)
        rel.check_relations("dim", dim)
        rel.check_relations("num_relations", num_relations)
        rel.check_relations("num_bases", num_bases, optional=True)
        rel.check_relations("num_blocks", num_blocks, optional=True)
        if attention_mode == "additive-self-attention" and dim > 1:
            raise ValueError(
                "'additive-self-attention' mode cannot be applied when 'dim' is greater than 1; "
                "use 'multiplicative-self-attention' instead"
            )
        if dropout > 0.0 and mod is not None:
            raise ValueError(
                "'mod' must be None with a 'dropout' greater than 0 (the attention coefficients are "
                "sampled stochastically)"
            )
        if num_bases is not None and num_blocks is not None:
            raise ValueError(
                "Can not apply both basis-decomposition and block-diagonal-decomposition at the same time "
                "('num_bases' and 'num_blocks' are both set)."
            )
        self.heads = heads
        self.negative_slope = negative_slope
        self.dropout = dropout
        self.mod = mod
        self.activation = torch.nn.ReLU()
        self.concat = concat
        self.attention_mode = attention_mode
        self.attention_mechanism = attention_mechanism
        self.dim = dim
        self.edge_dim = edge_dim
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.num_relations = num_relations
        self.num_bases = num_bases
        self.num_blocks = num_blocks

        hc = heads * out_channels
        self.q = Parameter(torch.empty(hc, heads * dim))
        self.k = Parameter(torch.empty(hc, heads * dim))
        if bias:
            self.bias = Parameter(torch.empty((heads if concat else 1) * dim * out_channels))
        else:
            self.register_parameter("bias", None)
        if edge_dim is not None:
            self.lin_edge: Linear | None = Linear(edge_dim, hc, bias=False, weight_initializer="glorot")
            self.e = Parameter(torch.empty(hc, heads * dim))
        else:
            self.lin_edge = None
            self.register_parameter("e", None)
        if num_bases is not None:
            self.att = Parameter(torch.empty(num_relations, num_bases))
            self.basis = Parameter(torch.empty(num_bases, in_channels, hc))
        elif num_blocks is not None:
            if in_channels % num_blocks or hc % num_blocks:
                raise ValueError(
                    f"both 'in_channels' ({in_channels}) and 'heads * out_channels' ({hc}) must be "
                    f"multiples of 'num_blocks' ({num_blocks})"
                )
            self.weight = Parameter(
                torch.empty(num_relations, num_blocks, in_channels // num_blocks, hc // num_blocks)
            )
        else:
            self.weight = Parameter(torch.empty(num_relations, in_channels, hc))
        self.w = Parameter(torch.ones(out_channels))
        self.l1 = Parameter(torch.empty(1, out_channels))
        self.b1 = Parameter(torch.empty(1, out_channels))
        self.l2 = Parameter(torch.empty(out_channels, out_channels))
        self.b2 = Parameter(torch.empty(1, out_channels))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Glorot weights, queries, keys and edge maps; zero bias; the ``mod`` parameters at their
        start values (``w = 1``, ``l1 = 1``, ``b1 = b2 = 0``, ``L2 = 1 / C``)."""
        super().reset_parameters()
        if self.num_bases is not None:
            glorot(self.basis)
            glorot(self.att)
        else:
            glorot(self.weight)
        glorot(self.q)
        glorot(self.k)
        zeros(self.bias)
        ones(self.w)
        ones(self.l1)
        zeros(self.b1)
        with torch.no_grad():
            self.l2.fill_(1.0 / self.out_channels)
        zeros(self.b2)
        if self.lin_edge is not None:
            self.lin_edge.reset_parameters()
            glorot(self.e)

    # -- the per-relation table ------------------------------------------------------------
    def _table(self, x: Tensor) -> Tensor:
        """``[N * R, H * C]``: :math:`\\mathbf{W}^{(r)} \\mathbf{x}_n` in row ``n * R + r``."""
        if self.num_bases is not None:
            return rel.relation_table(x, self.basis, self.att, self.num_relations, blocks=False)
        blocks = self.num_blocks is not None
        if blocks and not x.is_floating_point():
            raise ValueError("Block-diagonal decomposition not supported for non-continuous input features.")
        return rel.relation_table(x, self.weight, None, self.num_relations, blocks)

    def _edge_term(self, edge_attr: Tensor | None, edge_type: Tensor, num_edges: int) -> Tensor | None:
        """``[E, H * D]`` edge term of the logits (``None`` without edge features)."""
        if edge_attr is None:
            return None
        if self.lin_edge is None:
            raise ValueError(
                "'edge_attr' was given but the layer was built without 'edge_dim'; set "
                "edge_dim=edge_attr.size(-1)"
            )
        v.check_tensor("edge_attr", edge_attr)
        if edge_attr.dim() == 1:
            edge_attr = edge_attr.view(-1, 1)
        if edge_attr.dim() != 2 or edge_attr.size(-1) != self.edge_dim:
            raise ValueError(
                f"'edge_attr' must have {self.edge_dim} features (edge_dim), got {v.describe(edge_attr)}"
            )
        rows = edge_attr.size(0)
        if rows != num_edges and rows != self.num_relations:
            raise ValueError(
                f"'edge_attr' must have one row per edge ({num_edges}) or per relation "
                f"({self.num_relations}), got {v.describe(edge_attr)}"
            )
        feats = self.lin_edge(edge_attr)
        if rows != num_edges:  # one attribute row per relation
            feats = feats.index_select(0, edge_type.long())
        return feats @ self.e

    # -- forward ---------------------------------------------------------------------------
    def forward(
        self,
        x: Tensor,
        edge_index: Any,
        edge_type: Tensor | None = None,
        edge_attr: Tensor | None = None,
        size: tuple[int, int] | None = None,
        return_attention_weights: bool | None = None,
    ) -> Tensor | tuple[Tensor, Any]:
        """Attend over the incoming edges of every node (see the class docstring for shapes)."""
        if not isinstance(x, Tensor):
            raise TypeError(f"'x' must be a torch.Tensor, got {v.describe(x)}")
        if x.is_floating_point():
            check_in_channels(x, self.in_channels)
            if x.dim() != 2:
                raise ValueError(f"'x' must hold [N, {self.in_channels}] node features, got {v.describe(x)}")
        elif x.dim() != 1 or x.dtype == torch.bool:
            raise ValueError(
                f"'x' must be [N, {self.in_channels}] features or a 1-D integer tensor of node indices, "
                f"got {v.describe(x)}"
            )
        else:
            v.check_index_range("x", x, self.in_channels, "embeddings ('in_channels')")
        R, H, C, D = self.num_relations, self.heads, self.out_channels, self.dim
        multiplicative = self.attention_mode == "multiplicative-self-attention"
        within = self.attention_mechanism == "within-relation"

        graph = read_graph(edge_index, size, self.flow)
        num_nodes = x.size(0)
        graph.set_nodes(num_nodes, num_nodes)
        edge_type = rel.read_edge_type(graph, edge_type, R)
        edge_term = self._edge_term(edge_attr, edge_type, graph.num_edges)

        table = self._table(x)  # [N * R, H * C]
        queries, keys = table @ self.q, table @ self.k  # [N * R, H * D]
        shape = (-1, H, D) if multiplicative else (-1, H)
        keys, queries = keys.view(shape), queries.view(shape)
        if edge_term is not None:
            edge_term = edge_term.view(shape)
        typed = rel.relation_edges(graph, edge_type, R, senders=True, receivers=True)
        if within:  # softmax per (receiver, relation): receivers i * R + r
            ei, rows = typed, num_nodes * R
            scores, edge_score = att.by_row(keys, queries, self.flow), edge_term
        else:  # softmax per receiver: the receiver's query enters as an edge term
            ei, rows = rel.relation_edges(graph, edge_type, R, senders=True, receivers=False), num_nodes
            q_edge = queries.index_select(0, typed[graph.i])
            if edge_term is None:
                edge_score = q_edge
            else:
                edge_score = q_edge * edge_term if multiplicative else q_edge + edge_term
            scores = att.by_row(keys, None, self.flow)
        size2 = rel.expanded_size(graph, num_nodes * R, rows)
        alpha = self.edge_updater(ei, alpha=scores, edge_score=edge_score, size=size2)
        messages = table.view(-1, H, C)
        out = self.propagate(ei, x=messages, alpha=alpha, size=size2)
        if within:
            out = out.view((num_nodes, R) + tuple(out.shape[1:])).sum(1)
        out = self._modify(out, ei, messages, graph, size2, within, num_nodes)
        out = self._merge_heads(out)
        if isinstance(return_attention_weights, bool):
            alpha = plans.materialize(alpha)
            alpha = alpha.reshape(alpha.size(0), -1)
            return out, att.attention_result(graph, graph.edge_index, alpha, (num_nodes, num_nodes))
        return out

    def _modify(
        self, out: Tensor, ei: Tensor, messages: Tensor, graph: Any, size: Any, within: bool, num_nodes: Any
    ) -> Tensor:
        """Apply ``mod`` to the aggregated ``[N, H, (D,) C]`` output."""
        if self.mod is None:
            return out
        heads_dims = out.dim() - 2  # 1 (heads) or 2 (heads, dims)
        if self.mod in ("additive", "f-additive"):
            total = self.propagate(ei, x=messages, alpha=None, size=size)  # sum_j x_j^(r): [rows, H, C]
            if within:
                total = total.view((num_nodes, self.num_relations) + tuple(total.shape[1:])).sum(1)
            if self.mod == "additive":
                total = total * self.w
            if heads_dims == 2:
                total = total.unsqueeze(2)
            return out + total
        ones_e = out.new_ones(graph.num_edges)
        degree = ops.scatter(ones_e, graph.index, 0, num_nodes, "sum").unsqueeze(-1)  # [N, 1]
        if self.mod == "f-scaled":
            return out * degree.view((-1,) + (1,) * (out.dim() - 1))
        psi = self.activation(degree @ self.l1 + self.b1) @ self.l2 + self.b2  # [N, C]
        return out * psi.view((psi.size(0),) + (1,) * heads_dims + (psi.size(1),))

    def _merge_heads(self, out: Tensor) -> Tensor:
        """Heads concatenated or averaged, then the bias."""
        num = out.size(0)
        if self.concat:
            out = out.reshape(num, -1)
        else:
            out = out.mean(dim=1).reshape(num, -1)
        if self.bias is not None:
            out = out + self.bias
        return out

    def edge_update(
        self,
        alpha_j: Tensor,
        alpha_i: Tensor | None,
        edge_score: Tensor | None,
        index: Tensor,
        ptr: Tensor | None,
        dim_size: int | None,
    ) -> Tensor:
        """Attention coefficients ``[E, H]`` (``[E, H, D]`` multiplicative) from the gathered keys,
        the receivers' queries (as ``alpha_i`` or inside ``edge_score``) and the edge term."""
        if self.attention_mode == "additive-self-attention":
            score = alpha_j
            if alpha_i is not None:
                score = score + alpha_i
            if edge_score is not None:
                score = score + self.edge_term(edge_score)
            score = F.leaky_relu(score, self.negative_slope)
        else:
            score = alpha_j
            if alpha_i is not None:
                score = score * alpha_i
            if edge_score is not None:
                score = score * edge_score
        return att.edge_softmax(score, index, dim_size if dim_size is not None else 0, ptr)

    def edge_term(self, edge_score: Tensor | None) -> Tensor | None:
        """The per-edge part of the additive logits (the query of the receiver through the
        edge's relation, plus the edge-feature term), computed in :meth:`forward`."""
        return edge_score

    def message(self, x_j: Tensor, alpha: Tensor | None) -> Tensor:
        """``alpha * x_j`` per head (``[E, H, D, C]`` multiplicative); ``x_j`` itself without
        ``alpha`` (the unweighted sums of the ``mod`` options)."""
        if alpha is None:
            return x_j
        alpha = F.dropout(alpha, p=self.dropout, training=self.training)
        if alpha.dim() == 3:
            return alpha.unsqueeze(-1) * x_j.unsqueeze(2)
        return att.weighted_message(x_j, alpha)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels}, heads={self.heads})"
