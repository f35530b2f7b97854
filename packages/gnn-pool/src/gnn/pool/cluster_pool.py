r""":class:`ClusterPooling`: merge the components of the best-scored edges (Snijder et al., 2024)."""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from gnn.core import ops
from gnn.core import validation as v
from gnn.core.utils import remove_self_loops

from .edge_pool import pair_scores
from .select import cluster_batch, coarsen_edges, connected_components
from .select._checks import (
    check_batch,
    check_channels,
    check_edges,
    check_features,
    check_probability,
    check_real,
)

_THRESHOLDS = {"tanh": 0.0, "sigmoid": 0.5, "log_softmax": 0.0}


class UnpoolInfo(NamedTuple):
    """The graph before a :class:`ClusterPooling` step (self loops removed) and its clusters."""

    edge_index: Tensor
    cluster: Tensor
    batch: Tensor


class ClusterPooling(torch.nn.Module):
    r"""The cluster pooling operator (Snijder et al., "Edge-Based Graph Component Pooling").

    Self loops are dropped; every remaining edge :math:`(i, j)` gets a score

    .. math::
        s_{ij} = f\big(\mathbf{w}^\top [\mathbf{x}_i \Vert \mathbf{x}_j] + b\big),

    :math:`f` being ``tanh``, ``sigmoid`` or ``log_softmax`` (over all edges of the batch).
    The edges scoring strictly above ``threshold`` are contracted: the connected components
    of those edges (directions ignored) are the clusters, numbered by their smallest node.
    A cluster :math:`c` becomes the node

    .. math::
        \mathbf{x}'_c = \sum_{(i, j) \in \mathcal{E},\ j \in c} s_{ij}\, \mathbf{x}_i
        \;+\; [c = \{i\}]\, \mathbf{x}_i,

    i.e. :math:`\mathbf{X}' = \mathbf{C}^\top (\mathbf{S} + \mathbf{D})^\top \mathbf{X}` with
    :math:`\mathbf{S}` the edge scores (every edge, duplicates added), :math:`\mathbf{C}` the
    cluster assignment and :math:`\mathbf{D}` the identity on the nodes left alone. Edges map to
    the clusters, duplicates merged and self loops dropped (sorted by row, then column).

    Args:
        in_channels: size :math:`F` of each node's features (``lin`` is ``Linear(2F, 1)``).
        edge_score_method: ``"tanh"``, ``"sigmoid"`` or ``"log_softmax"``.
        dropout: dropout probability on the raw scores during training.
        threshold: contraction threshold; ``None``: 0 for tanh and log_softmax, 0.5 for sigmoid.

    Shapes:
        ``x`` ``[N, F]``, ``edge_index`` ``[2, E]``, ``batch`` ``[N]`` ->
        ``(x [C, F], edge_index [2, E'], batch [C], unpool_info)``.

    Example:
        >>> pool = ClusterPooling(16)
        >>> x, edge_index = torch.randn(6, 16), torch.tensor([[0, 1, 2, 3, 4], [1, 2, 3, 4, 5]])
        >>> out, new_edge_index, new_batch, info = pool(x, edge_index, torch.zeros(6, dtype=torch.long))
        >>> info.cluster.shape
        torch.Size([6])
    """

    def __init__(
        self,
        in_channels: int,
        edge_score_method: str = "tanh",
        dropout: float = 0.0,
        threshold: float | None = None,
    ) -> None:
        super().__init__()
        self.in_channels = check_channels(in_channels, "in_channels")
        if edge_score_method not in _THRESHOLDS:
            raise ValueError(
                f"'edge_score_method' must be one of {sorted(_THRESHOLDS)}, got {v.describe(edge_score_method)}"
            )
        self.edge_score_method = edge_score_method
        self.dropout = check_probability(dropout, "dropout")
        if threshold is None:
            threshold = _THRESHOLDS[edge_score_method]
        self.threshold = check_real(threshold, "threshold")
        self.lin = torch.nn.Linear(2 * in_channels, 1)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialize ``lin``."""
        self.lin.reset_parameters()

    def _score(self, raw: Tensor) -> Tensor:
        if self.edge_score_method == "tanh":
            return torch.tanh(raw)
        if self.edge_score_method == "sigmoid":
            return torch.sigmoid(raw)
        return F.log_softmax(raw, dim=0)

    def forward(
        self, x: Tensor, edge_index: Tensor, batch: Tensor
    ) -> tuple[Tensor, Tensor, Tensor, UnpoolInfo]:
        """Contract the components of the selected edges; returns the pooled graph and its :class:`UnpoolInfo`."""
        x = check_features(x)
        n = x.size(0)
        if x.size(-1) != self.in_channels:
            raise ValueError(f"'x' must have {self.in_channels} features (in_channels), got {v.describe(x)}")
        check_edges(edge_index, n)
        batch = check_batch(batch, n, x.device)
        edge_index, _ = remove_self_loops(edge_index)
        raw = pair_scores(self.lin, x, edge_index)
        raw = F.dropout(raw, p=self.dropout, training=self.training)
        score = self._score(raw)
        chosen = edge_index[:, score.detach() > self.threshold]
        cluster, num_clusters = connected_components(chosen, n)
        alone = ops.scatter(torch.ones_like(cluster), cluster, 0, num_clusters, "sum")[cluster] == 1
        nodes = alone.nonzero().view(-1)
        rows = torch.cat([cluster[edge_index[1].long()], cluster[nodes]])
        cols = torch.cat([edge_index[0].long(), nodes])
        weight = torch.cat([score, score.new_ones(nodes.numel())]).to(x.dtype)
        new_x = ops.spmm(ops.from_coo(rows, cols, num_clusters, n), x, weight)
        new_edge_index, _ = coarsen_edges(edge_index, cluster, num_clusters, remove_self_loops=True)
        new_batch = cluster_batch(batch, cluster, num_clusters)
        return new_x, new_edge_index, new_batch, UnpoolInfo(edge_index, cluster, batch)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels})"
