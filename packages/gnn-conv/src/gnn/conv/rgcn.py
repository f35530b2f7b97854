r"""The relational graph convolution (Schlichtkrull et al., 2018): :class:`RGCNConv`,
:class:`FastRGCNConv`."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.nn import Parameter

from gnn.core import ops
from gnn.core import validation as v
from gnn.core.graph import read_graph
from gnn.core.message_passing import MessagePassing
from gnn.core.nn.inits import glorot, zeros

from . import _relational as rel
from ._utils import check_in_channels

_BLOCK_ERROR = "Block-diagonal decomposition not supported for non-continuous input features."


class RGCNConv(MessagePassing):
    r"""The relational graph convolutional operator from "Modeling Relational Data with Graph
    Convolutional Networks".

    .. math::
        \mathbf{x}^{\prime}_i = \mathbf{\Theta}_{\textrm{root}} \cdot \mathbf{x}_i +
        \sum_{r \in \mathcal{R}} \sum_{j \in \mathcal{N}_r(i)}
        \frac{1}{|\mathcal{N}_r(i)|} \mathbf{\Theta}_r \cdot \mathbf{x}_j + \mathbf{b}

    with :math:`\mathcal{N}_r(i)` the senders of the edges of relation ``r`` into ``i``. The
    per-relation aggregation (``aggr``, the mean above by default) runs as *one* ``propagate``
    over the graph whose receivers are split by relation (node ``i * R + r``), through the fused
    ``ops.spmm`` path, and one matrix product with the stacked relation weights follows: no loop
    over relations, no ``[E, F]`` message tensor. Basis decomposition:
    :math:`\mathbf{\Theta}_r = \sum_b a_{rb} \mathbf{V}_b`; block-diagonal decomposition:
    :math:`\mathbf{\Theta}_r` made of ``num_blocks`` diagonal blocks.

    Without features (``x=None``, or an integer ``x`` of node indices) the nodes are
    ``in_channels`` learned embeddings: the message of ``j`` through ``r`` is row ``x_j`` of
    :math:`\mathbf{\Theta}_r` and the root term row ``x_i`` of :math:`\mathbf{\Theta}_{\textrm{root}}`.

    Args:
        in_channels: input size, ``(F_src, F_dst)`` for bipartite graphs, or the number of
            nodes for featureless inputs.
        out_channels: output size.
        num_relations: number of relations ``R``.
        num_bases: use the basis decomposition with this many bases.
        num_blocks: use the block-diagonal decomposition with this many blocks.
        aggr: per-relation aggregation (``"mean"``, ``"add"``, ``"max"``, ... or a list).
        root_weight: add the transformed root features.
        is_sorted: the edges are sorted by ``edge_type`` (accepted for compatibility: gnn's
            single propagate needs no sorting either way).
        bias: learn an additive bias.
        **kwargs: :class:`~gnn.core.MessagePassing` arguments.

    Shapes:
        ``x`` ``[N, F]``, ``([N_src, F_src], [N_dst, F_dst])``, ``[N]`` integer or ``None``;
        ``edge_index`` ``[2, E]``, or a sparse adjacency (torch.sparse, ``SparseTensor``)
        whose values are the relations; ``edge_type`` ``[E]`` -> ``[N_dst, out_channels]``.

    Example:
        >>> conv = RGCNConv(16, 32, num_relations=4)
        >>> x, edge_index = torch.randn(10, 16), torch.randint(0, 10, (2, 40))
        >>> conv(x, edge_index, torch.randint(0, 4, (40,))).shape
        torch.Size([10, 32])
    """

    fused_message = "edge_weight * x_j"

    def __init__(
        self,
        in_channels: int | tuple[int, int],
        out_channels: int,
        num_relations: int,
        num_bases: int | None = None,
        num_blocks: int | None = None,
        aggr: str = "mean",
        root_weight: bool = True,
        is_sorted: bool = False,
        bias: bool = True,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("aggr", aggr)
        super().__init__(node_dim=0, **kwargs)
        rel.check_relations("num_relations", num_relations)
        rel.check_relations("num_bases", num_bases, optional=True)
        rel.check_relations("num_blocks", num_blocks, optional=True)
        if num_bases is not None and num_blocks is not None:
            raise ValueError(
                "Can not apply both basis-decomposition and block-diagonal-decomposition at the same time "
                "('num_bases' and 'num_blocks' are both set)."
            )
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.num_relations = num_relations
        self.num_bases = num_bases
        self.num_blocks = num_blocks
        self.is_sorted = is_sorted

        channels = (in_channels, in_channels) if isinstance(in_channels, int) else tuple(in_channels)
        for c in channels:
            if isinstance(c, bool) or not isinstance(c, int) or c <= 0:
                raise ValueError(
                    f"'in_channels' must be a positive int or a pair of them (no lazy -1), got {in_channels!r}"
                )
        self.in_channels_l = channels[0]

        if num_bases is not None:
            self.weight = Parameter(torch.empty(num_bases, channels[0], out_channels))
            self.comp = Parameter(torch.empty(num_relations, num_bases))
        elif num_blocks is not None:
            if channels[0] % num_blocks or out_channels % num_blocks:
                raise ValueError(
                    f"'num_blocks' ({num_blocks}) must divide both the input size ({channels[0]}) and "
                    f"'out_channels' ({out_channels})"
                )
            self.weight = Parameter(
                torch.empty(num_relations, num_blocks, channels[0] // num_blocks, out_channels // num_blocks)
            )
            self.register_parameter("comp", None)
        else:
            self.weight = Parameter(torch.empty(num_relations, channels[0], out_channels))
            self.register_parameter("comp", None)
        if root_weight:
            self.root = Parameter(torch.empty(channels[1], out_channels))
        else:
            self.register_parameter("root", None)
        if bias:
            self.bias = Parameter(torch.empty(out_channels))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Glorot relation, composition and root weights; zero bias."""
        super().reset_parameters()
        glorot(self.weight)
        if self.comp is not None:
            glorot(self.comp)
        if self.root is not None:
            glorot(self.root)
        zeros(self.bias)

    # -- inputs ----------------------------------------------------------------------------
    def _node_inputs(self, x: Any) -> tuple[Tensor, Tensor]:
        """``(x_src, x_dst)``: features ``[N, F]`` or integer node indices ``[N]``."""
        if isinstance(x, (tuple, list)):
            if len(x) != 2:
                raise ValueError(f"'x' must be a tensor, None or a pair (x_src, x_dst), got {len(x)} items")
            x_src, x_dst = x
            if x_dst is None:
                raise ValueError("'x[1]' (the target nodes' features or indices) must be given")
        else:
            x_src = x_dst = x
        if x_src is None:
            x_src = torch.arange(self.in_channels_l, device=self.weight.device)
            if x_dst is None:
                x_dst = x_src
        channels = (
            (self.in_channels, self.in_channels) if isinstance(self.in_channels, int) else self.in_channels
        )
        for name, t, size in (("x[0]", x_src, channels[0]), ("x[1]", x_dst, channels[1])):
            label = name if isinstance(x, (tuple, list)) else "x"
            if not isinstance(t, Tensor):
                raise TypeError(f"'{label}' must be a torch.Tensor or None, got {v.describe(t)}")
            if t.is_floating_point():
                check_in_channels(t, size, label)
                if t.dim() != 2:
                    raise ValueError(f"'{label}' must hold [N, {size}] node features, got {v.describe(t)}")
            else:
                if t.dim() != 1 or t.dtype == torch.bool:
                    raise ValueError(
                        f"'{label}' must be [N, {size}] features or a 1-D integer tensor of node indices "
                        f"(learned embeddings), got {v.describe(t)}"
                    )
                v.check_index_range(label, t, size, "embeddings ('in_channels')")
        return x_src, x_dst

    # -- forward ---------------------------------------------------------------------------
    def forward(
        self,
        x: Tensor | None | tuple[Tensor | None, Tensor],
        edge_index: Any,
        edge_type: Tensor | None = None,
    ) -> Tensor:
        """Apply the convolution (see the class docstring for shapes)."""
        x_src, x_dst = self._node_inputs(x)
        graph = read_graph(edge_index, None, self.flow)
        graph.set_nodes(x_src.size(0), x_dst.size(0))
        edge_type = rel.read_edge_type(graph, edge_type, self.num_relations)
        return self._relations(graph, x_src, x_dst, edge_type)

    def _relations(self, graph: Any, x_src: Tensor, x_dst: Tensor, edge_type: Tensor) -> Tensor:
        """:math:`\\sum_r \\mathrm{aggr}_{j \\in \\mathcal{N}_r(i)} \\Theta_r x_j`, plus the root term
        and the bias: ``[N_dst, F_out]``.

        Two exact orders of the same sum, both one propagate:

        * *aggregate, then transform* (float ``x`` that needs no gradient, or an aggregation other
          than a sum or mean): the receivers are split by relation (node ``i * R + r``), the
          layer's aggregation gives ``[N_dst * R, F_in]`` and one product with the stacked weights
          (accumulated onto the root term) finishes. Nothing flows back through the aggregation.
        * *transform, then aggregate* (sum or mean when ``x`` needs a gradient, and featureless
          inputs): the senders are split by relation, reading row ``j * R + r`` of the table of all
          ``x_j \\Theta_r`` (one product), and the receivers sum them, weighted for the mean by
          :math:`d_i / |\\mathcal{N}_r(i)|` (the layer's mean then divides by :math:`d_i`): the
          gradient of ``x`` takes one pass back over the table instead of two over the aggregates.
        """
        R, num_dst = self.num_relations, x_dst.size(0)
        blocks = self.num_blocks is not None
        floating = x_src.is_floating_point()
        summed = self.aggr in ("sum", "add", "mean")
        if floating and not (summed and x_src.requires_grad and torch.is_grad_enabled()):
            ei = rel.relation_edges(graph, edge_type, R, senders=False, receivers=True)
            size = rel.expanded_size(graph, x_src.size(0), num_dst * R)
            h = self.propagate(ei, x=x_src, edge_weight=None, size=size)
            return rel.transform_aggregates(h, self.weight, self.comp, R, blocks, self._root_term(x_dst))
        if blocks and not floating:
            raise ValueError(_BLOCK_ERROR)
        table = rel.relation_table(x_src, self.weight, self.comp, R, blocks)  # [N_src * R, F_out]
        if summed:
            ei = rel.relation_edges(graph, edge_type, R, senders=True, receivers=False)
            weight = (
                rel.mean_weights(graph, edge_type, R, num_dst, table.dtype) if self.aggr == "mean" else None
            )
            size = rel.expanded_size(graph, x_src.size(0) * R, num_dst)
            return self._finish(self.propagate(ei, x=table, edge_weight=weight, size=size), x_dst)
        # featureless with another aggregation: embedding rows W_r[x_j] aggregated per relation
        ei = rel.relation_edges(graph, edge_type, R, senders=True, receivers=True)
        size = rel.expanded_size(graph, x_src.size(0) * R, num_dst * R)
        out = self.propagate(ei, x=table, edge_weight=None, size=size)
        return self._finish(out.view(-1, R, out.size(-1)).sum(1), x_dst)

    def message(self, x_j: Tensor, edge_weight: Tensor | None) -> Tensor:
        """``x_j`` (a node's features, or a row of the relation table), times ``edge_weight``
        (the mean's relation weights) when given."""
        return x_j if edge_weight is None else edge_weight.view(-1, 1) * x_j

    def _root_term(self, x_dst: Tensor) -> Tensor | None:
        """:math:`\\Theta_{\\textrm{root}} x_i + b` (``None`` without either; the bias alone is ``[F_out]``)."""
        if self.root is None:
            return self.bias
        if not x_dst.is_floating_point():
            term = self.root.index_select(0, x_dst.long())
            return term if self.bias is None else term + self.bias
        if self.bias is None:
            return x_dst @ self.root
        return torch.addmm(self.bias, x_dst, self.root)

    def _finish(self, out: Tensor, x_dst: Tensor) -> Tensor:
        """Add the root term and the bias."""
        term = self._root_term(x_dst)
        return out if term is None else out + term

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels}, num_relations={self.num_relations})"


class FastRGCNConv(RGCNConv):
    r""":class:`RGCNConv` computed edge by edge: every message is
    :math:`\frac{1}{|\mathcal{N}_{r}(i)|}\mathbf{\Theta}_{r} \mathbf{x}_j` for the relation ``r``
    of its edge, summed at the receiver (``aggr`` ``"add"``/``"sum"`` drops the normalization).

    The per-edge transform is :func:`gnn.core.ops.gather_matmul`, which never forms the
    ``[E, F_in, F_out]`` tensor of per-edge weight matrices: it multiplies every node by every
    relation once and gathers the products when ``N * R <= E``, or multiplies the gathered
    rows type by type otherwise. Same arguments, shapes and parameters as :class:`RGCNConv`;
    ``aggr`` must be ``"add"``, ``"sum"`` or ``"mean"``.

    Example:
        >>> conv = FastRGCNConv(16, 32, num_relations=4, num_bases=2)
        >>> x, edge_index = torch.randn(10, 16), torch.randint(0, 10, (2, 40))
        >>> conv(x, edge_index, torch.randint(0, 4, (40,))).shape
        torch.Size([10, 32])
    """

    def forward(
        self,
        x: Tensor | None | tuple[Tensor | None, Tensor],
        edge_index: Any,
        edge_type: Tensor | None = None,
    ) -> Tensor:
        """Apply the convolution (see :class:`RGCNConv` for shapes)."""
        if self.aggr not in ("add", "sum", "mean"):
            raise ValueError(
                f"'{type(self).__name__}' supports aggr 'add', 'sum' or 'mean', got {self.aggr!r}"
            )
        if self.decomposed_layers != 1:
            raise ValueError(f"'{type(self).__name__}' does not support decomposed_layers > 1")
        x_src, x_dst = self._node_inputs(x)
        graph = read_graph(edge_index, None, self.flow)
        graph.set_nodes(x_src.size(0), x_dst.size(0))
        edge_type = rel.read_edge_type(graph, edge_type, self.num_relations)
        size = rel.expanded_size(graph, x_src.size(0), x_dst.size(0))
        out = self.propagate(graph.edge_index, x=x_src, edge_type=edge_type, size=size)
        return self._finish(out, x_dst)

    def message(self, x: Tensor, edge_type: Tensor, edge_index_j: Tensor) -> Tensor:
        """``x[j] @ Theta_r`` per edge (the embedding row ``Theta_r[x_j]`` for integer ``x``)."""
        R, out_channels = self.num_relations, self.out_channels
        if not x.is_floating_point():
            if self.num_blocks is not None:
                raise ValueError(_BLOCK_ERROR)
            w = rel.combined_weight(self.weight, self.comp, R)
            rows = edge_type.long() * w.size(1) + x.index_select(0, edge_index_j).long()
            return w.reshape(-1, out_channels).index_select(0, rows)
        if self.num_blocks is not None:
            # block b of each row through block b of its relation's matrix: B typed products per edge
            nb, bi, bo = self.weight.shape[1:]
            offsets = torch.arange(nb, device=edge_type.device)
            types = (edge_type.long().unsqueeze(-1) * nb + offsets).reshape(-1)
            index = (edge_index_j.long().unsqueeze(-1) * nb + offsets).reshape(-1)
            out = ops.gather_matmul(x.reshape(-1, bi), types, self.weight.reshape(-1, bi, bo), index)
            return out.view(-1, out_channels)
        w = rel.combined_weight(self.weight, self.comp, R)
        return ops.gather_matmul(x, edge_type, w, edge_index_j)

    def aggregate(
        self, inputs: Tensor, edge_type: Tensor, index: Tensor, dim_size: int | None = None
    ) -> Tensor:
        """Sum at the receiver, each message divided by its relation's in-degree for ``"mean"``:
        one weighted ``ops.spmm`` over the messages (rows: receivers, columns: edges), so the
        normalization forms no second ``[E, F_out]`` tensor, forward or backward."""
        num_dst = dim_size if dim_size is not None else (int(index.max()) + 1 if index.numel() else 0)
        csr, weight = rel.edge_rows(
            index, edge_type, self.num_relations, num_dst, self.aggr == "mean", inputs.dtype
        )
        return ops.spmm(csr, inputs, weight, "sum")
