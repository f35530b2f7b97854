r"""The edges of a pooled graph: after a node selection, after a clustering.

* :func:`filter_edges` keeps the edges whose two ends were both selected and
  renumbers them (node ``perm[k]`` becomes node ``k``), in the original edge order.
* :func:`coarsen_edges` maps each edge ``(i, j)`` to ``(c_i, c_j)`` for a cluster
  assignment ``c`` and merges duplicates, sorted by ``(row, col)``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from gnn.core import ops
from gnn.core.utils import coalesce

__all__ = ["cluster_batch", "coarsen_edges", "filter_edges", "node_relabel"]


def node_relabel(perm: Tensor, num_nodes: int) -> Tensor:
    """``[num_nodes]`` new index of each node: ``k`` for ``perm[k]``, ``-1`` for a dropped node."""
    new_index = torch.full((num_nodes,), -1, dtype=torch.long, device=perm.device)
    new_index[perm] = torch.arange(perm.numel(), device=perm.device)
    return new_index


def filter_edges(
    edge_index: Tensor, edge_attr: Tensor | None, perm: Tensor, num_nodes: int
) -> tuple[Tensor, Tensor | None]:
    r"""The subgraph induced by the nodes ``perm``, renumbered by their position in ``perm``.

    Edge :math:`(i, j)` is kept when :math:`i, j \in \mathrm{perm}` and becomes
    :math:`(\mathrm{pos}(i), \mathrm{pos}(j))`; kept edges stay in their order.

    Args:
        edge_index: ``[2, E]`` edges.
        edge_attr: optional ``[E, *]`` per-edge values (filtered alike).
        perm: ``[K]`` kept nodes (no repeats).
        num_nodes: :math:`N`.

    Returns:
        ``(edge_index [2, E'] int64, edge_attr [E', *] or None)``.

    Example:
        >>> filter_edges(torch.tensor([[0, 1, 2], [2, 2, 0]]), None, torch.tensor([2, 0]), 3)
        (tensor([[1, 0],
                [0, 1]]), None)
    """
    selected = torch.zeros(num_nodes, dtype=torch.bool, device=perm.device)
    selected[perm] = True
    keep = selected.index_select(0, edge_index[0])
    keep &= selected.index_select(0, edge_index[1])
    kept = keep.nonzero().view(-1)
    # renumber only the kept edges (byte-sized masks over all edges, int64 work on the kept ones)
    new_index = torch.empty(num_nodes, dtype=torch.long, device=perm.device)
    new_index[perm] = torch.arange(perm.numel(), device=perm.device)
    edge_index = new_index.index_select(0, edge_index.index_select(1, kept).reshape(-1)).view(2, -1)
    return edge_index, None if edge_attr is None else edge_attr.index_select(0, kept)


def coarsen_edges(
    edge_index: Tensor,
    cluster: Tensor,
    num_clusters: int,
    edge_attr: Tensor | None = None,
    *,
    remove_self_loops: bool = False,
    reduce: str = "sum",
) -> tuple[Tensor, Tensor | None]:
    r"""Edges between clusters: :math:`(i, j) \mapsto (c_i, c_j)`, duplicates merged.

    Args:
        edge_index: ``[2, E]`` edges between nodes.
        cluster: ``[N]`` cluster of each node, in ``[0, num_clusters)``.
        num_clusters: :math:`C`.
        edge_attr: optional ``[E, *]`` values, reduced over merged edges with ``reduce``.
        remove_self_loops: drop the edges inside a cluster.

    Returns:
        ``(edge_index [2, E'] sorted by (row, col), edge_attr or None)``.

    Example:
        >>> coarsen_edges(torch.tensor([[0, 1, 2], [1, 2, 0]]), torch.tensor([0, 0, 1]), 2)
        (tensor([[0, 0, 1],
                [0, 1, 0]]), None)
    """
    ends = cluster[edge_index.long()]
    if remove_self_loops:
        keep = ends[0] != ends[1]
        ends = ends[:, keep]
        edge_attr = None if edge_attr is None else edge_attr[keep]
    return coalesce(ends, edge_attr, num_clusters, reduce)


def cluster_batch(batch: Tensor, cluster: Tensor, num_clusters: int) -> Tensor:
    """``[C]`` graph of each cluster (the graph of its nodes; a cluster never spans two graphs).

    The largest graph index among a cluster's nodes (one max-scatter through ``gnn.core.ops``);
    an empty cluster gets 0.
    """
    if batch.numel() == 0:
        return batch.new_zeros(num_clusters)
    return ops.scatter(batch, cluster, 0, num_clusters, "max")
