r"""LPFormer (Shomer et al., 2024): an adaptive graph transformer for link prediction, :class:`LPFormer`."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import Parameter

from gnn.core import MessagePassing, ops
from gnn.core import validation as v
from gnn.core.cache import memo
from gnn.core.nn.inits import glorot, zeros
from gnn.core.nn.linear import Linear

from ._sparse_rows import SparseRows, lookup_sorted, union_of_rows
from .basic_gnn import GCN

__all__ = ["LPAttLayer", "LPFormer", "approximate_ppr"]


class MLP(torch.nn.Module):
    r"""LPFormer's small MLP: ``num_layers`` linear maps with one shared norm, ReLU and dropout between
    them; the output's last dimension is squeezed when it has size 1."""

    def __init__(
        self,
        in_channels: int,
        hid_channels: int,
        out_channels: int,
        num_layers: int = 2,
        drop: float = 0,
        norm: str | None = "layer",
    ) -> None:
        super().__init__()
        self.dropout = drop
        if norm == "batch":
            self.norm: torch.nn.Module | None = torch.nn.BatchNorm1d(hid_channels)
        elif norm == "layer":
            self.norm = torch.nn.LayerNorm(hid_channels)
        else:
            self.norm = None
        sizes = [in_channels] + [hid_channels] * (max(num_layers, 2) - 1) + [out_channels]
        if num_layers == 1:
            sizes = [in_channels, out_channels]
        self.linears = torch.nn.ModuleList(torch.nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))

    def reset_parameters(self) -> None:
        for lin in self.linears:
            lin.reset_parameters()
        if self.norm is not None:
            self.norm.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        for lin in self.linears[:-1]:
            x = lin(x)
            if self.norm is not None:
                x = self.norm(x)
            x = F.dropout(F.relu(x), p=self.dropout, training=self.training)
        return self.linears[-1](x).squeeze(-1)


class LPAttLayer(MessagePassing):
    r"""LPFormer's pairwise attention: each node pair :math:`(a, b)` attends to the nodes ``u`` it
    was given (edges ``pair -> node`` of ``edge_index``), with relative positional encodings
    :math:`\mathrm{pe}_{ab,u}`:

    .. math::
        m_u &= W_r\,[h_u \Vert \mathrm{pe}_{ab,u}], \qquad
        s_u = \big\langle \mathrm{LeakyReLU}_{0.2}\big(m_u \odot (W_l e_a + W_l e_b)\big), \mathbf{a}\big\rangle \\
        \mathrm{out}_{ab} &= \mathrm{drop}\Big(\mathrm{LN}\big(\textstyle\sum_u \mathrm{softmax}_u(s_u)\, m_u + b\big)\Big)

    per head, with :math:`[e_a \Vert e_b]` the pair's features.

    Shapes: ``edge_index`` ``[2, M]`` (row 0: pair, row 1: node), ``edge_feats`` ``[B, 2 * in_channels]``,
    ``node_feats`` ``[N, node_dim]``, ``ppr_rpes`` ``[M, *]`` -> ``[B, heads * out_channels]``.
    """

    _alpha: Tensor | None

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        node_dim: int | None,
        num_heads: int,
        dropout: float,
        concat: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(node_dim=0, flow="target_to_source", **kwargs)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.heads = num_heads
        self.concat = concat
        self.dropout = dropout
        self.negative_slope = 0.2
        width = 2 * (in_channels if node_dim is None else node_dim)  # node features and their encoding
        self.lin_l = Linear(in_channels, num_heads * out_channels, weight_initializer="glorot")
        self.lin_r = Linear(width, num_heads * out_channels, weight_initializer="glorot")
        self.att = Parameter(torch.empty(1, num_heads, out_channels))
        self.bias = Parameter(torch.empty(num_heads * out_channels if concat else out_channels))
        self._alpha = None
        self.post_att_norm = torch.nn.LayerNorm(out_channels)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.lin_l.reset_parameters()
        self.lin_r.reset_parameters()
        self.post_att_norm.reset_parameters()
        glorot(self.att)
        zeros(self.bias)

    def forward(self, edge_index: Tensor, edge_feats: Tensor, node_feats: Tensor, ppr_rpes: Tensor) -> Tensor:
        size = (edge_feats.size(0), node_feats.size(0))
        out = self.propagate(edge_index, x=(edge_feats, node_feats), ppr_rpes=ppr_rpes, size=size)
        self._alpha = None
        if self.concat:
            out = out.reshape(-1, self.heads * self.out_channels)
        else:
            out = out.mean(dim=1)
        out = self.post_att_norm(out + self.bias)
        return F.dropout(out, p=self.dropout, training=self.training)

    def message(
        self,
        x_i: Tensor,
        x_j: Tensor,
        ppr_rpes: Tensor,
        index: Tensor,
        ptr: Tensor | None,
        size_i: int | None,
    ) -> Tensor:
        heads, channels = self.heads, self.out_channels
        value = self.lin_r(torch.cat([x_j, ppr_rpes], dim=-1)).view(-1, heads, channels)
        end_a, end_b = x_i.chunk(2, dim=-1)
        query = self.lin_l(end_a).view(-1, heads, channels) + self.lin_l(end_b).view(-1, heads, channels)
        score = (F.leaky_relu(value * query, self.negative_slope) * self.att).sum(dim=-1)
        alpha = ops.softmax(score, index, ptr, size_i)
        self._alpha = alpha
        return value * alpha.unsqueeze(-1)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels}, heads={self.heads})"


# -- personalized PageRank ------------------------------------------------------------------------
def approximate_ppr(
    edge_index: Tensor, num_nodes: int, alpha: float = 0.15, eps: float = 5e-5
) -> tuple[Tensor, Tensor]:
    r"""Approximate personalized PageRank of every node by residual pushes (Andersen et al., 2006).

    For each source ``s`` the estimate :math:`p_s` approaches
    :math:`\pi_s = \alpha \sum_k ((1 - \alpha) D^{-1} A)^k e_s` (row ``s``, walks along
    ``edge_index[0] -> edge_index[1]``). All sources push at once, in rounds: every entry
    whose residual :math:`r_s(u) \ge \alpha\,\varepsilon\,\deg(u)` moves it to :math:`p_s(u)`
    and spreads :math:`(1 - \alpha) r_s(u) / \deg(u)` over the neighbours of ``u``; the
    rounds stop when no residual reaches its threshold, so that
    :math:`|\pi_s(u) - p_s(u)| \le \varepsilon \deg(u)`-scale errors remain, as with PyG's
    one-source-at-a-time push (whose exact values depend on its queue order).

    Returns ``(index [2, K], value [K])``: row ``s``, column ``u`` and :math:`p_s(u) > 0`.
    """
    edge_index = v.check_edge_index(edge_index)
    v.check_index_range("edge_index", edge_index, num_nodes)
    device, n = edge_index.device, num_nodes
    adjacency = SparseRows(
        edge_index[0],
        torch.arange(edge_index.size(1), device=device),
        torch.ones(edge_index.size(1), device=device),
        n,
        max(edge_index.size(1), 1),
    )
    neighbours = edge_index[1].long()  # gather_rows gives the positions of each source's edges
    degree = (adjacency.ptr[1:] - adjacency.ptr[:-1]).to(torch.float64)
    keys = torch.arange(n, device=device) * (n + 1)  # the residual of each source sits on itself
    residual = torch.full((n,), alpha, dtype=torch.float64, device=device)
    pushed_keys, pushed = [], []
    first = True
    while keys.numel():
        node = keys % n
        active = residual >= alpha * eps * degree.index_select(0, node)
        if first:
            active = torch.ones_like(active)
            first = False
        if not bool(active.any()):
            break
        a_keys, a_res, a_node = keys[active], residual[active], node[active]
        pushed_keys.append(a_keys)
        pushed.append(a_res)
        k, edge_pos, _ = adjacency.gather_rows(a_node)
        spread_keys = (a_keys.index_select(0, k) // n) * n + neighbours.index_select(0, edge_pos)
        share = ((1 - alpha) * a_res / degree.index_select(0, a_node).clamp(min=1)).index_select(0, k)
        merged = torch.cat([keys[~active], spread_keys])
        keys, inverse = torch.unique(merged, sorted=True, return_inverse=True)
        residual = ops.scatter(torch.cat([residual[~active], share]), inverse, 0, keys.numel(), "sum")
    if not pushed_keys:
        return torch.empty(2, 0, dtype=torch.long, device=device), torch.empty(0)
    keys, inverse = torch.unique(torch.cat(pushed_keys), sorted=True, return_inverse=True)
    value = ops.scatter(torch.cat(pushed), inverse, 0, keys.numel(), "sum")
    return torch.stack([keys // n, keys % n]), value.to(torch.get_default_dtype())


# -- LPFormer -------------------------------------------------------------------------------------
class _Group:
    """Nodes of one kind (common neighbours, 1-hop, >1-hop) for the pairs: ``index`` ``[2, K]``
    (pair, node), the PPR from each end of the pair, ``src`` and ``tgt`` ``[K]``."""

    def __init__(self, index: Tensor, src: Tensor, tgt: Tensor) -> None:
        self.index, self.src, self.tgt = index, src, tgt

    def select(self, keep: Tensor) -> _Group:
        return _Group(self.index[:, keep], self.src[keep], self.tgt[keep])

    def __iter__(self):  # (index, src, tgt), as PyG's tuples
        return iter((self.index, self.src, self.tgt))


class LPFormer(torch.nn.Module):
    r"""LPFormer: link prediction from a GNN's node codes and an attention over the nodes around
    each candidate pair, with PPR-based relative positional encodings (Shomer et al., 2024).

    For a pair :math:`(a, b)` with GCN codes :math:`h` (:math:`h = \mathrm{LN}(\mathrm{GCN}(x))`):

    * the nodes around the pair are split into common neighbours (CN), other 1-hop
      neighbours and farther nodes; a node ``u`` is kept when
      :math:`\mathrm{ppr}(a, u)` and :math:`\mathrm{ppr}(b, u)` both reach the
      group's threshold (``ppr_thresholds``: CN, 1-hop, >1-hop; 1 switches a group off);
    * each kept node gets :math:`\mathrm{pe}_u = f_g(\mathrm{ppr}(a,u), \mathrm{ppr}(b,u)) +
      f_g(\mathrm{ppr}(b,u), \mathrm{ppr}(a,u))` (an MLP :math:`f_g` per group) and
      :class:`LPAttLayer` pools the nodes into a pair code from :math:`[h_a \Vert h_b]`;
    * the pair code, with the counts of CN, 1-hop and >1-hop nodes above threshold and of
      all neighbours, goes through an MLP, is joined to :math:`\mathrm{MLP}(h_a \odot h_b)`
      and scored by a last MLP.

    ``forward`` returns raw logits ``[B]``. The PPR matrix comes from
    :meth:`calc_sparse_ppr`. In training mode, ``transformer_dropout`` also drops a share
    of the nodes around each pair, and the training pairs count as edges when the
    >1-hop nodes are chosen (they are expected to be removed from ``edge_index``).

    As in PyG 2.8, the architecture is consistent only for one transformer layer and one
    head (other values raise a ``ValueError`` here).

    Args:
        in_channels: input feature size.
        hidden_channels: hidden size.
        num_gnn_layers: GCN layers.
        gnn_dropout: dropout of the input features and inside the GCN.
        num_transformer_layers: attention layers (1).
        num_heads: attention heads (1).
        transformer_dropout: dropout of the attention output and of the nodes around a pair.
        ppr_thresholds: ``[CN, 1-hop, >1-hop]`` PPR thresholds (default ``[0, 1e-4, 1e-2]``).
        gcn_cache: cache the normalized graph in the GCN layers.

    Shapes:
        ``batch`` ``[2, B]`` (the pairs), ``x`` ``[N, in_channels]``, ``edge_index``
        ``[2, E]`` or a sparse ``[N, N]`` adjacency, ``ppr_matrix`` sparse ``[N, N]`` -> ``[B]``.

    Example:
        >>> model = LPFormer(8, 16)
        >>> edge_index = torch.tensor([[0, 1, 1, 2, 2, 3], [1, 0, 2, 1, 3, 2]])
        >>> ppr = model.calc_sparse_ppr(edge_index, num_nodes=4)
        >>> model.eval()(torch.tensor([[0], [2]]), torch.randn(4, 8), edge_index, ppr).shape
        torch.Size([1])
    """

    def __init__(
        self,
        in_channels: int,
        hidden_channels: int,
        num_gnn_layers: int = 2,
        gnn_dropout: float = 0.1,
        num_transformer_layers: int = 1,
        num_heads: int = 1,
        transformer_dropout: float = 0.1,
        ppr_thresholds: list | None = None,
        gcn_cache: bool = False,
    ) -> None:
        super().__init__()
        if ppr_thresholds is None:
            ppr_thresholds = [0, 1e-4, 1e-2]
        if len(ppr_thresholds) != 3:
            raise ValueError(
                f"'ppr_thresholds' must hold 3 values (CN, 1-hop, >1-hop), got {ppr_thresholds!r}"
            )
        if num_transformer_layers != 1:
            raise ValueError(
                f"'num_transformer_layers' must be 1 (PyG 2.8's LPFormer is consistent only for one layer), "
                f"got {num_transformer_layers!r}"
            )
        if num_heads != 1:
            raise ValueError(
                f"'num_heads' must be 1 (the attention's layer norm has hidden_channels features, as in PyG 2.8), "
                f"got {num_heads!r}"
            )
        self.thresh_cn, self.thresh_1hop, self.thresh_non1hop = ppr_thresholds
        self.in_dim = in_channels
        self.hid_dim = hidden_channels
        self.gnn_drop = gnn_dropout
        self.trans_drop = transformer_dropout
        self.gnn = GCN(
            in_channels,
            hidden_channels,
            num_gnn_layers,
            dropout=gnn_dropout,
            norm="layer_norm",
            cached=gcn_cache,
        )
        self.gnn_norm = torch.nn.LayerNorm(hidden_channels)
        self.out_dim = hidden_channels
        self.att_layers = torch.nn.ModuleList(
            [LPAttLayer(hidden_channels, self.out_dim, None, num_heads, transformer_dropout)]
        )
        self.elementwise_lin = MLP(hidden_channels, hidden_channels, hidden_channels)
        self.ppr_encoder_cn = MLP(2, hidden_channels, hidden_channels)
        self.ppr_encoder_onehop = MLP(2, hidden_channels, hidden_channels)
        self.ppr_encoder_non1hop = MLP(2, hidden_channels, hidden_channels)
        # a threshold of 1 switches a group of nodes off
        if self.thresh_non1hop == 1 and self.thresh_1hop == 1:
            self.mask = "cn"
        elif self.thresh_non1hop == 1:
            self.mask = "1-hop"
        else:
            self.mask = "all"
        pairwise_dim = hidden_channels * num_heads + 4  # + the four counts
        self.pairwise_lin = MLP(pairwise_dim, pairwise_dim, hidden_channels)
        self.score_func = MLP(hidden_channels * 2, hidden_channels * 2, 1, norm=None)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.in_dim}, {self.hid_dim}, num_gnn_layers={self.gnn.num_layers}, "
            f"num_transformer_layers={len(self.att_layers)})"
        )

    def reset_parameters(self) -> None:
        """Re-initialize every part."""
        for module in (
            self.gnn,
            self.gnn_norm,
            self.elementwise_lin,
            self.pairwise_lin,
            self.ppr_encoder_cn,
            self.ppr_encoder_onehop,
            self.ppr_encoder_non1hop,
            self.score_func,
            *self.att_layers,
        ):
            module.reset_parameters()

    # -- forward ----------------------------------------------------------------------------------
    def forward(self, batch: Tensor, x: Tensor, edge_index: Any, ppr_matrix: Tensor) -> Tensor:
        """Raw logits ``[B]`` of the pairs ``batch`` (see the class docstring)."""
        ppr = self._check_inputs(batch, x, edge_index, ppr_matrix)
        batch = batch.to(x.device).long()
        x_node = self.propagate(x, edge_index)
        x_a, x_b = x_node.index_select(0, batch[0]), x_node.index_select(0, batch[1])
        elementwise = self.elementwise_lin(x_a * x_b)
        adjacency = self._adjacency(edge_index, ppr.num_rows, x.device)
        pairwise = self._pairwise(batch, x_node, adjacency, ppr)
        return self.score_func(torch.cat([elementwise, pairwise], dim=-1))

    def propagate(self, x: Tensor, adj: Any) -> Tensor:
        """Node codes :math:`\\mathrm{LN}(\\mathrm{GCN}(\\mathrm{drop}(x)))` ``[N, hidden_channels]``."""
        x = F.dropout(x, p=self.gnn_drop, training=self.training)
        return self.gnn_norm(self.gnn(x, adj))

    def _check_inputs(self, batch: Any, x: Any, edge_index: Any, ppr_matrix: Any) -> SparseRows:
        v.check_tensor("x", x)
        if x.dim() != 2 or x.size(1) != self.in_dim:
            raise ValueError(f"'x' must have shape [N, {self.in_dim}] (in_channels), got {v.describe(x)}")
        v.check_tensor("ppr_matrix", ppr_matrix)
        if ppr_matrix.dim() != 2 or ppr_matrix.size(0) != ppr_matrix.size(1):
            raise ValueError(f"'ppr_matrix' must be a square [N, N] matrix, got {v.describe(ppr_matrix)}")
        num_nodes = ppr_matrix.size(1)
        if x.size(0) != num_nodes:
            raise ValueError(f"'x' has {x.size(0)} nodes but 'ppr_matrix' is [{num_nodes}, {num_nodes}]")
        batch = v.check_edge_index(batch, "batch")
        v.check_index_range("batch", batch, num_nodes)
        if isinstance(edge_index, Tensor) and not edge_index.is_sparse and edge_index.layout == torch.strided:
            v.check_edge_index(edge_index)
            v.check_index_range("edge_index", edge_index, num_nodes)
        # the row table of a PPR matrix is built once per matrix (kept in the per-graph cache)
        dense = ppr_matrix.layout == torch.strided
        return memo(
            ppr_matrix,
            "lpformer_ppr_rows",
            lambda: SparseRows.from_sparse(ppr_matrix.to_sparse() if dense else ppr_matrix),
        )

    def _adjacency(self, edge_index: Any, num_nodes: int, device: torch.device) -> SparseRows:
        """The 0/1 adjacency (duplicate edges merged) as rows ``edge_index[0]`` -> columns ``edge_index[1]``;
        a sparse input is read as it is (its row index first). Built once per graph (per-graph cache)."""
        if isinstance(edge_index, Tensor):
            key = ("lpformer_adjacency", num_nodes, str(device))
            return memo(edge_index, key, lambda: self._build_adjacency(edge_index, num_nodes, device))
        return self._build_adjacency(edge_index, num_nodes, device)

    @staticmethod
    def _build_adjacency(edge_index: Any, num_nodes: int, device: torch.device) -> SparseRows:
        if isinstance(edge_index, Tensor) and edge_index.layout == torch.strided:
            row, col = edge_index[0], edge_index[1]
        elif isinstance(edge_index, Tensor):
            coo = edge_index.to_sparse_coo().coalesce()
            row, col = coo.indices()[0], coo.indices()[1]
        else:  # torch_sparse.SparseTensor
            row, col, _ = edge_index.coo()
        ones = torch.ones(row.numel(), device=device)
        return SparseRows(row, col, ones, num_nodes, num_nodes)

    def _pairwise(self, batch: Tensor, x_node: Tensor, adjacency: SparseRows, ppr: SparseRows) -> Tensor:
        feats = torch.cat([x_node.index_select(0, batch[0]), x_node.index_select(0, batch[1])], dim=-1)
        cn, onehop, non1hop = (
            _Group(g.index, g.src.to(feats.dtype), g.tgt.to(feats.dtype))
            for g in self.compute_node_mask(batch, adjacency, ppr)
        )
        index = torch.cat([cn.index, onehop.index, non1hop.index], dim=1)
        pes = self.get_pos_encodings(tuple(cn)[1:], tuple(onehop)[1:], tuple(non1hop)[1:])
        for layer in self.att_layers:
            feats = layer(index, feats, x_node, pes)
        counts = self.get_structure_cnts(batch, cn, onehop, non1hop)
        return self.pairwise_lin(torch.cat([feats, *counts], dim=-1))

    def get_pos_encodings(
        self,
        cn_ppr: tuple[Tensor, Tensor],
        onehop_ppr: tuple[Tensor, Tensor] | None = None,
        non1hop_ppr: tuple[Tensor, Tensor] | None = None,
    ) -> Tensor:
        """Relative positional encodings ``[K, hidden_channels]`` of the CN, 1-hop and >1-hop nodes,
        each from its ``(ppr from a, ppr from b)`` pair by the group's encoder, symmetrized."""
        parts = []
        encoders = (self.ppr_encoder_cn, self.ppr_encoder_onehop, self.ppr_encoder_non1hop)
        for encoder, group in zip(encoders, (cn_ppr, onehop_ppr, non1hop_ppr)):
            if group is None:
                break
            src, tgt = group
            parts.append(encoder(torch.stack([src, tgt], dim=1)) + encoder(torch.stack([tgt, src], dim=1)))
        return torch.cat(parts, dim=0)

    def compute_node_mask(
        self, batch: Tensor, adj: SparseRows, ppr_matrix: SparseRows
    ) -> tuple[_Group, _Group, _Group]:
        """The CN, 1-hop and >1-hop nodes of every pair with their PPR values (groups switched off by a
        threshold of 1 are empty), each sorted by (pair, node)."""
        num_nodes = adj.num_cols
        k_a, col_a, _ = adj.gather_rows(batch[0])
        k_b, col_b, _ = adj.gather_rows(batch[1])
        keys_a, keys_b = k_a * num_nodes + col_a, k_b * num_nodes + col_b
        ones_a = torch.ones(keys_a.numel(), dtype=torch.int64, device=keys_a.device)
        ones_b = torch.ones(keys_b.numel(), dtype=torch.int64, device=keys_b.device)
        keys, in_a, in_b, _, _ = union_of_rows(keys_a, ones_a, keys_b, ones_b)
        node_type = in_a + in_b  # 2: common neighbour, 1: neighbour of one end only
        if self.mask == "cn":
            keys, node_type = keys[node_type == 2], torch.ones_like(node_type[node_type == 2])
        pair, node = keys // num_nodes, keys % num_nodes
        src, tgt = self._ppr_on_support(batch, pair, node, node_type, ppr_matrix)
        threshold = (
            torch.where(node_type == 1, self.thresh_1hop, self.thresh_cn) if self.mask != "cn" else None
        )
        if threshold is None:
            keep = (src >= self.thresh_cn) & (tgt >= self.thresh_cn)
        else:
            keep = (src >= threshold) & (tgt >= threshold)
        near = _Group(torch.stack([pair, node])[:, keep], src[keep], tgt[keep])
        node_type = node_type[keep]
        far = self.get_non_1hop_ppr(batch, adj, ppr_matrix) if self.mask == "all" else self._empty(near)
        if self.training and self.trans_drop > 0:
            kept = self._drop(near.index.size(1))
            near, node_type = near.select(kept), node_type[kept]
            far = far.select(self._drop(far.index.size(1)))
        if self.mask == "cn":
            return near, self._empty(near), self._empty(near)
        return near.select(node_type == 2), near.select(node_type == 1), far

    @staticmethod
    def _empty(like: _Group) -> _Group:
        return _Group(like.index[:, :0], like.src[:0], like.tgt[:0])

    def _drop(self, size: int) -> Tensor:
        """A random subset of ``ceil(size * (1 - transformer_dropout))`` of ``size`` entries."""
        keep = math.ceil(size * (1 - self.trans_drop))
        return torch.randperm(size)[:keep]

    @staticmethod
    def _ppr_on_support(
        batch: Tensor, pair: Tensor, node: Tensor, node_type: Tensor, ppr: SparseRows
    ) -> tuple[Tensor, Tensor]:
        """PPR of ``node`` from both ends of ``pair``, computed as PyG 2.8 computes it from the sparse
        product ``(ppr * t + t - t) / t`` with ``t`` the node type (the same float rounding)."""
        raw_a, _ = ppr.lookup(batch[0].index_select(0, pair), node)
        raw_b, _ = ppr.lookup(batch[1].index_select(0, pair), node)
        t = node_type.to(ppr.value.dtype)
        return ((raw_a * t + t) - t) / t, ((raw_b * t + t) - t) / t

    def get_non_1hop_ppr(self, batch: Tensor, adj: SparseRows, ppr_matrix: SparseRows) -> _Group:
        """The >1-hop nodes of each pair: nodes with PPR from both ends, neither end's neighbour
        (in training the batch's pairs count as edges), both PPR values at least the >1-hop threshold."""
        n = ppr_matrix.num_cols
        k_a, col_a, val_a = ppr_matrix.gather_rows(batch[0])
        k_b, col_b, val_b = ppr_matrix.gather_rows(batch[1])
        keys, src, tgt, _, _ = union_of_rows(k_a * n + col_a, val_a, k_b * n + col_b, val_b)
        pair, node = keys // n, keys % n
        near = self._is_neighbour(batch[0].index_select(0, pair), node, adj, batch) | self._is_neighbour(
            batch[1].index_select(0, pair), node, adj, batch
        )
        src = torch.where(near, torch.zeros_like(src), src)
        tgt = torch.where(near, torch.zeros_like(tgt), tgt)
        src_vals = (src + torch.sign(tgt)) - 1
        tgt_vals = (tgt + torch.sign(src)) - 1
        keep = (src_vals >= self.thresh_non1hop) & (tgt_vals >= self.thresh_non1hop)
        return _Group(torch.stack([pair, node])[:, keep], src_vals[keep], tgt_vals[keep])

    def _is_neighbour(self, end: Tensor, node: Tensor, adj: SparseRows, batch: Tensor) -> Tensor:
        _, found = adj.lookup(end, node)
        if self.training:  # the training pairs, in both directions, count as edges
            n = adj.num_cols
            pair_keys = torch.unique(
                torch.cat([batch[0] * n + batch[1], batch[1] * n + batch[0]]), sorted=True
            )
            _, is_pair = lookup_sorted(pair_keys, torch.ones_like(pair_keys), end.long() * n + node)
            found = found | is_pair
        return found

    def get_structure_cnts(
        self, batch: Tensor, cn_info: _Group, onehop_info: _Group, non1hop_info: _Group | None
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Per pair ``[B, 1]`` each: CN and 1-hop nodes at or above their threshold, >1-hop nodes,
        and all neighbours (CN at threshold plus every 1-hop node)."""
        num_cns = self.get_num_ppr_thresh(batch, *cn_info, self.thresh_cn)
        num_1hop = self.get_num_ppr_thresh(batch, *onehop_info, self.thresh_1hop)
        num_neighbors = num_cns + self.get_num_ppr_thresh(batch, *onehop_info, thresh=0)
        if non1hop_info is None:
            num_non1hop = torch.zeros_like(num_cns)
        else:
            num_non1hop = self.get_count(non1hop_info.index, batch)
        return num_cns, num_1hop, num_non1hop, num_neighbors

    def get_num_ppr_thresh(
        self, batch: Tensor, node_mask: Tensor, src_ppr: Tensor, tgt_ppr: Tensor, thresh: float
    ) -> Tensor:
        """``[B, 1]``: per pair, the nodes ``u`` of ``node_mask`` with both PPR values ``>= thresh``."""
        above = ((src_ppr >= thresh) & (tgt_ppr >= thresh)).to(src_ppr.dtype)
        return ops.scatter(above, node_mask[0].long(), 0, batch.size(1), "sum").unsqueeze(-1)

    def get_count(self, node_mask: Tensor, batch: Tensor) -> Tensor:
        """``[B, 1]``: the number of entries of each pair in ``node_mask``."""
        ones = torch.ones(node_mask.size(1), device=node_mask.device)
        return ops.scatter(ones, node_mask[0].long(), 0, batch.size(1), "sum").unsqueeze(-1)

    def calc_sparse_ppr(
        self, edge_index: Tensor, num_nodes: int, alpha: float = 0.15, eps: float = 5e-5
    ) -> Tensor:
        """The approximate PPR matrix of the graph, sparse COO ``[num_nodes, num_nodes]``
        (see :func:`approximate_ppr`; computed on the CPU, as PyG does)."""
        index, value = approximate_ppr(edge_index.cpu(), num_nodes, alpha=alpha, eps=eps)
        # the entries come sorted by (row, column) without repeats: a coalesced matrix
        return torch.sparse_coo_tensor(
            index, value, [num_nodes, num_nodes], is_coalesced=True, check_invariants=False
        )
