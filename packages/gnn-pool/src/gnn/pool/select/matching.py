r"""Clusterings of nodes from scored edges: greedy edge contraction, connected components.

:func:`greedy_matching` is the contraction order of EdgePooling: edges are taken by
decreasing score, an edge is contracted when neither of its ends is contracted yet.
It is computed in rounds instead of one edge at a time: an edge whose score ranks
first among the remaining edges at both its ends (*locally dominant*) is certainly
taken by the sequential greedy pass, so every round contracts all of them at once
and drops the edges that touch a contracted node. The result is the sequential
greedy matching exactly (for the strict order the sort gives), and on
typical graphs a few dozen rounds finish it. The order is that of
``torch.sort(score, descending=True)`` (ties as PyG breaks them). Where rounds stop paying (long chains of
decreasing scores, where each round takes only a few edges) the remaining edges are
finished one at a time, in the same order.

:func:`connected_components` labels the weakly connected components of a set of
edges (ClusterPooling), by pointer jumping on a forest whose parents always have a
smaller index (hooking + shortcutting, a few rounds of vectorized ops).
"""

from __future__ import annotations

import torch
from torch import Tensor

from gnn.core import ops

__all__ = ["connected_components", "greedy_matching"]

#: rounds always run before the progress check may switch to the sequential finish
_MIN_ROUNDS = 8
#: a round that removes less than this fraction of the remaining edges hands over to the sequential finish
_MIN_PROGRESS = 1 / 32


def _sequential_finish(src: Tensor, dst: Tensor, rank: Tensor, free: Tensor, matched: list[Tensor]) -> None:
    """The greedy pass over the remaining edges, in rank order (one edge at a time); updates ``free``."""
    order = torch.argsort(rank)
    src_l, dst_l, rank_l = src[order].tolist(), dst[order].tolist(), rank[order].tolist()
    free_l = free.tolist()
    taken = []
    for s, d, r in zip(src_l, dst_l, rank_l):
        if free_l[s] and free_l[d]:
            free_l[s] = free_l[d] = False
            taken.append(r)
    matched.append(torch.tensor(taken, dtype=torch.long, device=src.device))
    free.copy_(torch.tensor(free_l, dtype=torch.bool))


def greedy_matching(edge_index: Tensor, score: Tensor, num_nodes: int) -> tuple[Tensor, Tensor, Tensor]:
    r"""Greedy maximal matching by decreasing edge score, and the clusters it makes.

    Edges are visited by decreasing ``score``, equal scores in the order of
    ``torch.sort(score, descending=True)`` (not a stable sort; PyG's order, see
    :func:`gnn.pool.select.topk`); an
    edge :math:`(i, j)` whose ends are both still free is taken and contracts :math:`i` and
    :math:`j` into one cluster (a self loop :math:`(i, i)` contracts :math:`i` alone).
    Clusters are numbered in the order their edges were taken; the nodes left free follow,
    each its own cluster, in node order.

    Args:
        edge_index: ``[2, E]`` edges.
        score: ``[E]`` edge scores.
        num_nodes: :math:`N`.

    Returns:
        ``(cluster [N], taken [M], num_clusters)``: each node's cluster (int64), the positions
        of the taken edges in cluster order (cluster ``m`` comes from edge ``taken[m]``), and
        the number of clusters :math:`C` (an int).

    Example:
        >>> ei = torch.tensor([[0, 1, 2], [1, 2, 3]])
        >>> cluster, taken, c = greedy_matching(ei, torch.tensor([0.5, 0.9, 0.1]), 4)
        >>> cluster.tolist(), taken.tolist(), c
        ([1, 0, 0, 2], [1], 3)
    """
    device = edge_index.device
    num_edges = edge_index.size(1)
    order = torch.sort(score.detach().view(-1), descending=True).indices
    rank = torch.empty(num_edges, dtype=torch.long, device=device)
    rank[order] = torch.arange(num_edges, device=device)
    src, dst = edge_index[0].long(), edge_index[1].long()
    free = torch.ones(num_nodes, dtype=torch.bool, device=device)
    matched: list[Tensor] = []
    rounds = 0
    while src.numel():
        rounds += 1
        # each node's best (lowest) rank among its remaining edges; every end has one
        best = ops.scatter(torch.cat([rank, rank]), torch.cat([src, dst]), 0, num_nodes, "min")
        dominant = (best[src] == rank) & (best[dst] == rank)
        matched.append(rank[dominant])
        free[src[dominant]] = False
        free[dst[dominant]] = False
        keep = free[src] & free[dst]
        before = src.numel()
        src, dst, rank = src[keep], dst[keep], rank[keep]
        if rounds >= _MIN_ROUNDS and before - src.numel() < _MIN_PROGRESS * before:
            _sequential_finish(src, dst, rank, free, matched)
            break
    taken_rank = torch.sort(torch.cat(matched)).values if matched else rank.new_zeros(0)
    taken = order[taken_rank]
    num_taken = taken.numel()
    cluster = torch.empty(num_nodes, dtype=torch.long, device=device)
    ids = torch.arange(num_taken, device=device)
    cluster[edge_index[0, taken].long()] = ids
    cluster[edge_index[1, taken].long()] = ids
    rest = free.nonzero().view(-1)
    cluster[rest] = torch.arange(num_taken, num_taken + rest.numel(), device=device)
    return cluster, taken, num_taken + rest.numel()


def connected_components(edge_index: Tensor, num_nodes: int) -> tuple[Tensor, int]:
    r"""Weakly connected components of the graph ``edge_index`` on ``num_nodes`` nodes.

    Components are numbered in the order of their smallest node (as a breadth-first search
    from node 0, 1, ... numbers them).

    Returns:
        ``(component [N] int64, number of components)``.

    Example:
        >>> connected_components(torch.tensor([[0, 3], [2, 4]]), 5)
        (tensor([0, 1, 0, 2, 2]), 3)
    """
    device = edge_index.device
    parent = torch.arange(num_nodes, device=device)
    src, dst = edge_index[0].long(), edge_index[1].long()
    nodes = torch.arange(num_nodes, device=device)
    while src.numel():
        ps, pd = parent[src], parent[dst]
        differ = ps != pd
        if not bool(differ.any()):
            break
        lo, hi = torch.minimum(ps, pd)[differ], torch.maximum(ps, pd)[differ]
        # hook: the larger parent points to the smallest parent it shares an edge with
        # (parents only ever decrease, so the pointers form a forest rooted at each component's minimum)
        hook = ops.scatter(torch.cat([lo, parent]), torch.cat([hi, nodes]), 0, num_nodes, "min")
        parent = torch.minimum(parent, hook)
        # shortcut until every node points to a root
        while True:
            grand = parent[parent]
            if torch.equal(grand, parent):
                break
            parent = grand
        keep = parent[src] != parent[dst]
        src, dst = src[keep], dst[keep]
    roots, component = torch.unique(parent, sorted=True, return_inverse=True)
    return component, roots.numel()
