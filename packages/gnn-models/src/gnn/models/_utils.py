"""Helpers shared by the models of gnn-models (not public API): negative sampling and the
ranking metrics (ROC AUC, average precision) that PyG takes from scikit-learn."""

from __future__ import annotations

import torch
from torch import Tensor

from gnn.core import validation as v
from gnn.core.utils import maybe_num_nodes

__all__ = [
    "average_precision",
    "check_edges",
    "negative_sampling",
    "roc_auc",
    "structured_negative_sampling",
]


def check_edges(name: str, edge_index: object, num_nodes: int) -> Tensor:
    """A ``[2, E]`` integer ``edge_index`` whose entries lie in ``[0, num_nodes)``."""
    edge_index = v.check_edge_index(edge_index, name)
    v.check_index_range(name, edge_index, num_nodes, "nodes")
    return edge_index


# --------------------------------------------------------------------------------------
# negative sampling
# --------------------------------------------------------------------------------------
def _member(keys: Tensor, sorted_keys: Tensor) -> Tensor:
    """Whether each of ``keys`` occurs in the sorted ``sorted_keys``."""
    if sorted_keys.numel() == 0:
        return torch.zeros_like(keys, dtype=torch.bool)
    pos = torch.searchsorted(sorted_keys, keys).clamp(max=sorted_keys.numel() - 1)
    return sorted_keys[pos] == keys


def negative_sampling(
    edge_index: Tensor,
    num_nodes: int | None = None,
    num_neg_samples: int | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Up to ``num_neg_samples`` (default ``E``) random node pairs ``(i, j)``, ``i != j``, that are
    not edges of ``edge_index``, without repetition.

    Pairs are drawn uniformly from the ``N (N - 1)`` ordered pairs without self loops,
    with rejection of edges and repeats in a few rounds; on a nearly complete graph
    fewer pairs may come back (as with PyG's sampler).

    Shapes: ``edge_index`` ``[2, E]`` -> ``[2, K]``.
    """
    edge_index = v.check_edge_index(edge_index)
    n = maybe_num_nodes(edge_index, num_nodes)
    want = edge_index.size(1) if num_neg_samples is None else int(num_neg_samples)
    device = edge_index.device
    population = n * (n - 1)
    if n < 2 or want <= 0:
        return torch.empty(2, 0, dtype=torch.long, device=device)
    existing = torch.unique(edge_index[0].long() * n + edge_index[1].long())
    free = population - int((existing // n != existing % n).sum())  # pairs that are not edges
    want = min(want, free)
    if want <= 0:
        return torch.empty(2, 0, dtype=torch.long, device=device)
    found = torch.empty(0, dtype=torch.long, device=device)
    for _ in range(8):
        draw = int(1.2 * (want - found.numel())) + 16
        # a pair index p in [0, N (N - 1)) -> row p // (N - 1), col skipping the diagonal
        p = torch.randint(0, population, (draw,), generator=generator, device=device)
        row, col = p // (n - 1), p % (n - 1)
        col = col + (col >= row).long()
        keys = row * n + col
        keys = keys[~_member(keys, existing)]
        found = torch.unique(torch.cat([found, keys]))  # distinct pairs (sorted)
        if found.numel() >= want:
            break
    # a uniformly random subset of the distinct pairs, in random order
    found = found[torch.randperm(found.numel(), generator=generator, device=device)]
    found = found[:want]
    return torch.stack([found // n, found % n])


def structured_negative_sampling(
    edge_index: Tensor, num_nodes: int | None = None, contains_neg_self_loops: bool = True
) -> tuple[Tensor, Tensor, Tensor]:
    """For every edge ``(i, j)`` a random node ``k`` such that ``(i, k)`` is not an edge.

    Without ``contains_neg_self_loops``, ``k != i`` too. Returns ``(i, j, k)``, each ``[E]``.
    A node linked to every other node gets no valid ``k``; it then keeps its last draw.
    """
    edge_index = v.check_edge_index(edge_index)
    n = maybe_num_nodes(edge_index, num_nodes)
    row, col = edge_index[0].long(), edge_index[1].long()
    existing = row * n + col
    if not contains_neg_self_loops:
        loops = torch.arange(n, device=row.device) * (n + 1)
        existing = torch.cat([existing, loops])
    existing = torch.unique(existing)
    k = torch.randint(0, max(n, 1), (row.numel(),), device=row.device)
    bad = _member(row * n + k, existing)
    for _ in range(32):
        todo = bad.nonzero().view(-1)
        if todo.numel() == 0:
            break
        redraw = torch.randint(0, max(n, 1), (todo.numel(),), device=row.device)
        k[todo] = redraw
        bad[todo] = _member(row[todo] * n + redraw, existing)
    return edge_index[0], edge_index[1], k


# --------------------------------------------------------------------------------------
# ranking metrics
# --------------------------------------------------------------------------------------
def _check_scores(y_true: Tensor, y_score: Tensor) -> tuple[Tensor, Tensor]:
    y_true = v.check_tensor("y_true", y_true).detach().reshape(-1)
    y_score = v.check_tensor("y_score", y_score).detach().reshape(-1)
    if y_true.numel() != y_score.numel():
        raise ValueError(f"'y_true' and 'y_score' differ in length: {y_true.numel()} vs {y_score.numel()}")
    return y_true.to(torch.float64), y_score.to(torch.float64)


def roc_auc(y_true: Tensor, y_score: Tensor) -> float:
    r"""Area under the ROC curve of binary labels ``y_true`` (0/1) scored by ``y_score``.

    The Mann-Whitney statistic :math:`P(s^+ > s^-) + \tfrac12 P(s^+ = s^-)` over all
    positive/negative pairs, from the average ranks of the scores (ties share their
    rank), which equals the trapezoidal area under the ROC curve.
    """
    y, s = _check_scores(y_true, y_score)
    num_pos = float((y > 0.5).sum())
    num_neg = float(y.numel() - num_pos)
    if num_pos == 0 or num_neg == 0:
        raise ValueError("ROC AUC needs both positive and negative examples in 'y_true'")
    order = torch.argsort(s)
    sorted_s = s[order]
    # average 1-based rank of each run of equal scores
    _, counts = torch.unique_consecutive(sorted_s, return_counts=True)
    ends = counts.cumsum(0).to(torch.float64)
    avg = ends - (counts.to(torch.float64) - 1) / 2
    ranks = torch.empty_like(s)
    ranks[order] = torch.repeat_interleave(avg, counts)
    rank_sum = float(ranks[y > 0.5].sum())
    return (rank_sum - num_pos * (num_pos + 1) / 2) / (num_pos * num_neg)


def average_precision(y_true: Tensor, y_score: Tensor) -> float:
    r"""Average precision :math:`\sum_k (R_k - R_{k-1}) P_k` over the distinct score thresholds,
    highest first (precision :math:`P_k` and recall :math:`R_k` of the examples scored at least
    the :math:`k`-th threshold; no interpolation, as scikit-learn's ``average_precision_score``)."""
    y, s = _check_scores(y_true, y_score)
    num_pos = float((y > 0.5).sum())
    if num_pos == 0:
        raise ValueError("average precision needs positive examples in 'y_true'")
    order = torch.argsort(s, descending=True, stable=True)
    sorted_s, sorted_y = s[order], (y[order] > 0.5).to(torch.float64)
    _, counts = torch.unique_consecutive(sorted_s, return_counts=True)
    last = counts.cumsum(0) - 1  # the last example of each threshold
    tp = sorted_y.cumsum(0)[last]
    seen = (last + 1).to(torch.float64)
    precision = tp / seen
    recall = tp / num_pos
    gained = torch.diff(recall, prepend=recall.new_zeros(1))
    return float((gained * precision).sum())
