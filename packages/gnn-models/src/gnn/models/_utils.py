"""Helpers shared by gnn-models' modules (package-private)."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

import torch
from torch import Tensor

from gnn.core import validation as v

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


def check_int(name: str, value: object, low: int) -> int:
    """``value`` checked as an ``int >= low``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"'{name}' must be an int, got {v.describe(value)}")
    if value < low:
        raise ValueError(f"'{name}' must be at least {low}, got {value}")
    return value


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
    """
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
