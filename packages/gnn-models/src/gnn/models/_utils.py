"""Helpers shared by the models of gnn-models (not public API): negative sampling, the
ranking metrics (ROC AUC, average precision) that PyG takes from scikit-learn, argument
checks, a progress display and the skip-gram pieces of the embedding models."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

import torch
from torch import Tensor

from gnn.core import validation as v
from gnn.core.utils import maybe_num_nodes
from gnn.core.validation import check_int as check_int  # re-exported: the models import it from here

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


T = TypeVar("T")


def check_index_vector(name: str, value: object, upper: int | None = None, size: int | None = None) -> Tensor:
    """``value`` checked as a 1-D integer tensor (of ``size`` entries, in ``[0, upper)``)."""
    t = v.check_tensor(name, value)
    if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        raise TypeError(f"'{name}' must be an integer tensor, got {v.describe(t)}")
    v.check_index_dtype(name, t)
    if t.dim() != 1:
        raise ValueError(f"'{name}' must be a 1-D tensor of indices, got {v.describe(t)}")
    if size is not None and t.numel() != size:
        raise ValueError(f"'{name}' must have {size} entries, got {v.describe(t)}")
    if upper is not None:
        v.check_index_range(name, t, upper)
    return t


class _TextProgress:
    """A minimal progress display on stderr (used when tqdm is not installed)."""

    def __init__(self, iterable: Iterable[T], total: int, desc: str) -> None:
        self.iterable, self.total, self.desc = iterable, total, desc

    def __iter__(self) -> Iterator[T]:
        step = max(1, self.total // 10)
        done = 0
        for item in self.iterable:
            yield item
            done += 1
            if done % step == 0 or done == self.total:
                print(f"\r{self.desc}: {done}/{self.total} ({100 * done // max(self.total, 1)}%)",
                      end="" if done < self.total else "\n", file=sys.stderr, flush=True)  # fmt: skip


def progress(iterable: Iterable[T], total: int, desc: str = "") -> Iterable[T]:
    """``iterable`` with a progress bar: tqdm's when tqdm is installed, else a short text one."""
    try:
        from tqdm import tqdm  # type: ignore[import-untyped]
    except ImportError:
        return _TextProgress(iterable, total, desc or "progress")
    return tqdm(iterable, total=total, desc=desc or None)


def csr_sorted(edge_index: Tensor, num_src: int, num_dst: int) -> tuple[Tensor, Tensor]:
    """``(rowptr [num_src + 1], col [E])`` of ``edge_index`` with edges sorted by (source, target)."""
    row, col = edge_index[0].long(), edge_index[1].long()
    order = torch.argsort(row * max(num_dst, 1) + col, stable=True)
    row, col = row[order], col[order]
    counts = torch.bincount(row, minlength=num_src)
    rowptr = torch.cat([counts.new_zeros(1), counts.cumsum(0)])
    return rowptr, col


def context_windows(walks: Tensor, context_size: int) -> Tensor:
    """Every window of ``context_size`` consecutive nodes of every walk, window by window:
    ``[W * S, context_size]`` for ``S`` walks of ``L`` nodes (``W = L - context_size + 1``)."""
    return walks.unfold(1, context_size, 1).transpose(0, 1).reshape(-1, context_size)


def skipgram_loss(embedding: torch.nn.Embedding, pos_rw: Tensor, neg_rw: Tensor, eps: float) -> Tensor:
    r"""Skip-gram with negative sampling over context windows (their first node is the centre):

    .. math::
        -\frac{1}{|P|}\sum_{(u, v) \in P} \log(\sigma(z_u^\top z_v) + \epsilon)
        -\frac{1}{|N|}\sum_{(u, v) \in N} \log(1 - \sigma(z_u^\top z_v) + \epsilon)

    over the (centre, other) pairs ``P`` of ``pos_rw`` and ``N`` of ``neg_rw``.

    Both must be ``[num_windows, context_size]`` index tensors into ``embedding``'s rows
    (``ValueError`` / ``v.IndexRangeError`` naming ``pos_rw`` or ``neg_rw`` otherwise).
    """
    for name, rw in (("pos_rw", pos_rw), ("neg_rw", neg_rw)):
        v.check_tensor(name, rw)
        if rw.dim() != 2:
            raise ValueError(f"'{name}' must have shape [num_windows, context_size], got {v.describe(rw)}")
        v.check_index_range(name, rw, embedding.weight.size(0))
    total = pos_rw.new_zeros((), dtype=embedding.weight.dtype)
    for rw, positive in ((pos_rw, True), (neg_rw, False)):
        z = embedding(rw.long())  # [n, C, D]
        out = torch.bmm(z[:, 1:], z[:, :1].transpose(1, 2)).reshape(-1)
        p = torch.sigmoid(out)
        total = total - torch.log((p if positive else 1 - p) + eps).mean()
    return total


def logistic_regression_score(
    train_z: Tensor, train_y: Tensor, test_z: Tensor, test_y: Tensor, solver: str, *args: Any, **kwargs: Any
) -> float:
    """Accuracy on the test set of scikit-learn's ``LogisticRegression`` fitted on the train set."""
    try:
        from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]
    except ImportError as error:
        raise ImportError(
            "test() fits scikit-learn's LogisticRegression: `pip install scikit-learn`"
        ) from error
    clf = LogisticRegression(*args, solver=solver, **kwargs)
    clf.fit(train_z.detach().cpu().numpy(), train_y.detach().cpu().numpy())
    return float(clf.score(test_z.detach().cpu().numpy(), test_y.detach().cpu().numpy()))
