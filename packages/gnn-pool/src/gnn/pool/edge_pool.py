r""":class:`EdgePooling`: contract the best-scored edges (Diehl et al., 2019)."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from gnn.core import ops
from gnn.core import validation as v

from .select import cluster_batch, coarsen_edges, greedy_matching
from .select._checks import (
    check_batch,
    check_channels,
    check_edges,
    check_features,
    check_probability,
    check_real,
)


class UnpoolInfo(NamedTuple):
    """What :meth:`EdgePooling.unpool` needs to undo one pooling step."""

    edge_index: Tensor
    cluster: Tensor
    batch: Tensor
    new_edge_score: Tensor


def pair_scores(lin: torch.nn.Linear, x: Tensor, edge_index: Tensor) -> Tensor:
    r"""``lin(cat([x[src], x[dst]]))`` for every edge, without forming the ``[E, 2F]`` input.

    With :math:`\mathbf{w} = [\mathbf{w}_1 \Vert \mathbf{w}_2]`,
    :math:`s_{ij} = \mathbf{w}_1^\top\mathbf{x}_i + \mathbf{w}_2^\top\mathbf{x}_j + b` is two node-level
    projections gathered per edge.
    """
    channels = x.size(-1)
    weight = lin.weight.to(x.dtype).view(2, channels)
    proj = x @ weight.t()  # [N, 2]
    raw = proj[edge_index[0], 0] + proj[edge_index[1], 1]
    return raw + lin.bias.to(x.dtype) if lin.bias is not None else raw


class EdgePooling(torch.nn.Module):
    r"""The edge pooling operator (Diehl et al., "Towards Graph Pooling by Edge Contraction" and
    "Edge Contraction Pooling for Graph Neural Networks").

    Every edge :math:`(i, j)` gets a score

    .. math::
        s_{ij} = f\big(\mathbf{w}^\top [\mathbf{x}_i \Vert \mathbf{x}_j] + b\big) + c,

    with :math:`f` the ``edge_score_method`` (default: softmax over the edges entering
    :math:`j`) and :math:`c` = ``add_to_edge_score``. Edges are then contracted by decreasing
    score, an edge only when neither end was contracted yet (a self loop contracts its node
    alone); every contracted pair becomes one node
    :math:`\mathbf{x}' = s_{ij}(\mathbf{x}_i + \mathbf{x}_j)`, and each node left over is kept
    as is (score 1). New nodes are numbered in contraction order, then the left-over nodes in
    node order; edges map to the new nodes, duplicates merged (sorted by row, then column;
    self loops made by the contraction are kept).

    The contraction is computed in vectorized rounds that give exactly the one-edge-at-a-time
    greedy result (``gnn.pool.select.greedy_matching``). Equal scores (common: the softmax
    score of a node's only incoming edge is exactly 1) are taken in the order of
    ``torch.sort(score, descending=True)``, as in PyG, so the same edges are contracted.

    Args:
        in_channels: size :math:`F` of each node's features (``lin`` is ``Linear(2F, 1)``).
        edge_score_method: ``f(raw_edge_score, edge_index, num_nodes)``; one of
            :meth:`compute_edge_score_softmax` (default), :meth:`compute_edge_score_tanh`,
            :meth:`compute_edge_score_sigmoid`, or any such callable.
        dropout: dropout probability on the raw scores during training.
        add_to_edge_score: :math:`c`, added to every score (helps unpooling stability).

    Shapes:
        ``x`` ``[N, F]``, ``edge_index`` ``[2, E]``, ``batch`` ``[N]`` ->
        ``(x [C, F], edge_index [2, E'], batch [C], unpool_info)``.

    Example:
        >>> pool = EdgePooling(16)
        >>> x, edge_index = torch.randn(6, 16), torch.tensor([[0, 1, 2, 3, 4], [1, 2, 3, 4, 5]])
        >>> out, new_edge_index, new_batch, info = pool(x, edge_index, torch.zeros(6, dtype=torch.long))
        >>> x_back, _, _ = pool.unpool(out, info)  # [6, 16]
    """

    def __init__(
        self,
        in_channels: int,
        edge_score_method: Callable | None = None,
        dropout: float = 0.0,
        add_to_edge_score: float = 0.5,
    ) -> None:
        super().__init__()
        self.in_channels = check_channels(in_channels, "in_channels")
        if edge_score_method is None:
            edge_score_method = self.compute_edge_score_softmax
        elif not callable(edge_score_method):
            raise TypeError(
                f"'edge_score_method' must be a callable or None, got {v.describe(edge_score_method)}"
            )
        self.compute_edge_score = edge_score_method
        self.add_to_edge_score = check_real(add_to_edge_score, "add_to_edge_score")
        self.dropout = check_probability(dropout, "dropout")
        self.lin = torch.nn.Linear(2 * in_channels, 1)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialize ``lin``."""
        self.lin.reset_parameters()

    @staticmethod
    def compute_edge_score_softmax(raw_edge_score: Tensor, edge_index: Tensor, num_nodes: int) -> Tensor:
        """Softmax of the raw scores over the edges entering each node."""
        return ops.softmax(raw_edge_score, edge_index[1], num_nodes=num_nodes)

    @staticmethod
    def compute_edge_score_tanh(
        raw_edge_score: Tensor, edge_index: Tensor | None = None, num_nodes: int | None = None
    ) -> Tensor:
        """``tanh`` of the raw scores."""
        return torch.tanh(raw_edge_score)

    @staticmethod
    def compute_edge_score_sigmoid(
        raw_edge_score: Tensor, edge_index: Tensor | None = None, num_nodes: int | None = None
    ) -> Tensor:
        """``sigmoid`` of the raw scores."""
        return torch.sigmoid(raw_edge_score)

    def forward(
        self, x: Tensor, edge_index: Tensor, batch: Tensor
    ) -> tuple[Tensor, Tensor, Tensor, UnpoolInfo]:
        """Contract edges; returns the pooled graph and the :class:`UnpoolInfo` to undo it."""
        x = check_features(x)
        n = x.size(0)
        if x.size(-1) != self.in_channels:
            raise ValueError(f"'x' must have {self.in_channels} features (in_channels), got {v.describe(x)}")
        check_edges(edge_index, n)
        batch = check_batch(batch, n, x.device)
        raw = pair_scores(self.lin, x, edge_index)
        raw = F.dropout(raw, p=self.dropout, training=self.training)
        score = self.compute_edge_score(raw, edge_index, n)
        score = score + self.add_to_edge_score
        cluster, taken, num_clusters = greedy_matching(edge_index, score, n)
        new_edge_score = torch.cat([score[taken], score.new_ones(num_clusters - taken.numel())])
        new_x = ops.scatter(x, cluster, 0, num_clusters, "sum") * new_edge_score.view(-1, 1).to(x.dtype)
        new_edge_index, _ = coarsen_edges(edge_index, cluster, num_clusters)
        new_batch = cluster_batch(batch, cluster, num_clusters)
        info = UnpoolInfo(edge_index=edge_index, cluster=cluster, batch=batch, new_edge_score=new_edge_score)
        return new_x, new_edge_index, new_batch, info

    def unpool(self, x: Tensor, unpool_info: UnpoolInfo) -> tuple[Tensor, Tensor, Tensor]:
        r"""Undo one pooling step: :math:`\mathbf{x}_i = \mathbf{x}'_{c_i} / s_{c_i}`.

        Args:
            x: ``[C, *]`` features of the pooled nodes (as :meth:`forward` returned them).
            unpool_info: the :class:`UnpoolInfo` of that :meth:`forward` call.

        Returns:
            ``(x [N, *], edge_index, batch)`` of the graph before pooling.
        """
        if not isinstance(unpool_info, tuple) or len(unpool_info) != 4:
            raise TypeError(f"'unpool_info' must be the UnpoolInfo of forward, got {v.describe(unpool_info)}")
        edge_index, cluster, batch, new_edge_score = unpool_info
        v.check_tensor("x", x)
        if x.dim() == 0 or x.size(0) != new_edge_score.numel():
            raise ValueError(
                f"'x' must have one row per pooled node ({new_edge_score.numel()}), got {v.describe(x)}"
            )
        shape = (-1,) + (1,) * (x.dim() - 1)
        new_x = (x / new_edge_score.view(shape).to(x.dtype))[cluster]
        return new_x, edge_index, batch

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels})"
