r"""Small built-in graphs for demos and tests (nothing is downloaded).

* :func:`karate_club`: Zachary's karate club (34 members, 78 friendships),
  read from the CSV files shipped with this package.
* :func:`planted_partition`: a seeded stochastic block model whose node
  features are noisy class centroids.

Shipped files (package data of ``gnn.core.data``):

* ``karate_club.csv``: header ``src,dst``, then one row per undirected
  friendship with ``src < dst`` (78 rows, nodes numbered 0..33).
* ``karate_club_labels.csv``: header ``node,club``, then one row per member
  with the club it joined after the split: ``Mr. Hi`` (label 0) or
  ``Officer`` (label 1).
"""

from __future__ import annotations

import csv
import io
import math
from importlib import resources

import torch
from torch import Tensor

from .. import validation as v
from ..utils import coalesce
from .data import Data

KARATE_CLUBS = ("Mr. Hi", "Officer")


def _read_csv(name: str) -> list[dict[str, str]]:
    text = resources.files(__package__).joinpath(name).read_text(encoding="utf-8")
    return list(csv.DictReader(io.StringIO(text)))


def karate_club() -> Data:
    r"""Zachary's karate club network.

    34 nodes, 78 undirected friendships stored as 156 directed edges (both
    directions, sorted by ``(src, dst)``); ``x`` is the identity ``[34, 34]``
    (float32); ``y`` ``[34]`` is the club each member joined after the split
    (0 = Mr. Hi, 1 = Officer; 17 each); ``train_mask`` ``[34]`` marks one
    member of each club, the instructor (node 0) and the officer (node 33).

    Example::

        >>> data = karate_club()
        >>> data
        Data(x=[34, 34], edge_index=[2, 156], y=[34], train_mask=[34])
    """
    edges = _read_csv("karate_club.csv")
    src = torch.tensor([int(row["src"]) for row in edges], dtype=torch.long)
    dst = torch.tensor([int(row["dst"]) for row in edges], dtype=torch.long)
    labels = sorted(_read_csv("karate_club_labels.csv"), key=lambda row: int(row["node"]))
    num_nodes = len(labels)
    y = torch.tensor([KARATE_CLUBS.index(row["club"]) for row in labels], dtype=torch.long)
    edge_index = torch.stack([torch.cat([src, dst]), torch.cat([dst, src])])
    edge_index, _ = coalesce(edge_index, num_nodes=num_nodes)
    train_mask = torch.zeros(num_nodes, dtype=torch.bool)
    train_mask[[0, num_nodes - 1]] = True
    x = torch.eye(num_nodes)
    return Data(x=x, edge_index=edge_index, y=y, train_mask=train_mask)


def _check_unit(name: str, value: float, closed_low: bool = True) -> float:
    value = float(value)
    if not (0.0 <= value <= 1.0) or (not closed_low and value == 0.0):
        interval = "[0, 1]" if closed_low else "(0, 1]"
        raise ValueError(f"'{name}' must lie in {interval}, got {value}")
    return value


def _sample_edges(y: Tensor, p_in: float, p_out: float, generator: torch.Generator) -> Tensor:
    """Undirected SBM edges (both directions), drawn block of rows by block of rows."""
    n = y.numel()
    rows, cols = [], []
    chunk = 1024
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        draw = torch.rand(stop - start, n, generator=generator)
        same = y[start:stop, None] == y[None, :]
        prob = torch.where(same, torch.tensor(p_in), torch.tensor(p_out))
        upper = torch.arange(start, stop)[:, None] < torch.arange(n)[None, :]
        r, c = ((draw < prob) & upper).nonzero(as_tuple=True)
        rows.append(r + start)
        cols.append(c)
    row, col = torch.cat(rows), torch.cat(cols)
    edge_index = torch.stack([torch.cat([row, col]), torch.cat([col, row])])
    edge_index, _ = coalesce(edge_index, num_nodes=n)
    return edge_index


def planted_partition(
    num_nodes: int = 200,
    num_classes: int = 4,
    p_in: float = 0.1,
    p_out: float = 0.01,
    num_features: int = 16,
    feature_noise: float = 1.0,
    train_ratio: float = 0.2,
    val_ratio: float = 0.2,
    seed: int = 0,
) -> Data:
    r"""A seeded planted-partition graph (stochastic block model) for node classification.

    Node :math:`i` gets class :math:`y_i` (classes balanced: sizes differ by
    at most one, assigned in a random order). Each unordered pair
    :math:`\{i, j\}` is an edge with probability ``p_in`` when
    :math:`y_i = y_j` and ``p_out`` otherwise, so the expected number of
    intra-class edges is :math:`p_{in} \sum_c \binom{n_c}{2}` and of
    inter-class edges :math:`p_{out} (\binom{N}{2} - \sum_c \binom{n_c}{2})`.
    Edges are stored in both directions, sorted, without self loops.
    Features: :math:`x_i = \mu_{y_i} + \sigma \varepsilon_i` with class
    centroids :math:`\mu_c \sim \mathcal{N}(0, I_F)`, noise
    :math:`\varepsilon_i \sim \mathcal{N}(0, I_F)` and
    :math:`\sigma` = ``feature_noise``. Within each class,
    ``round(train_ratio * n_c)`` (at least one) random nodes go to
    ``train_mask``, ``round(val_ratio * n_c)`` to ``val_mask``, the rest to
    ``test_mask``. Everything is drawn from one ``torch.Generator`` seeded
    with ``seed``: the same arguments give the same graph.

    Returns:
        ``Data(x=[N, F], edge_index=[2, E], y=[N], train_mask=[N],
        val_mask=[N], test_mask=[N])``.

    Example::

        >>> data = planted_partition(num_nodes=100, num_classes=2, p_in=0.2, p_out=0.02, seed=1)
        >>> data.x.shape, int(data.y.max()) + 1
        (torch.Size([100, 16]), 2)
    """
    num_nodes = v.check_int("num_nodes", num_nodes, 1)
    num_classes = v.check_int("num_classes", num_classes, 1)
    if num_classes > num_nodes:
        raise ValueError(f"'num_classes' ({num_classes}) must not exceed 'num_nodes' ({num_nodes})")
    p_in = _check_unit("p_in", p_in)
    p_out = _check_unit("p_out", p_out)
    num_features = v.check_int("num_features", num_features, 1)
    feature_noise = float(feature_noise)
    if not math.isfinite(feature_noise) or feature_noise < 0:
        raise ValueError(f"'feature_noise' must be a finite non-negative number, got {feature_noise}")
    train_ratio = _check_unit("train_ratio", train_ratio, closed_low=False)
    val_ratio = _check_unit("val_ratio", val_ratio)
    if train_ratio + val_ratio > 1.0:
        raise ValueError(f"'train_ratio' + 'val_ratio' must not exceed 1, got {train_ratio} + {val_ratio}")
    seed = v.check_int("seed", seed, 0)

    generator = torch.Generator().manual_seed(seed)
    y = (torch.arange(num_nodes) % num_classes)[torch.randperm(num_nodes, generator=generator)]
    edge_index = _sample_edges(y, p_in, p_out, generator)
    centers = torch.randn(num_classes, num_features, generator=generator)
    x = centers[y] + feature_noise * torch.randn(num_nodes, num_features, generator=generator)

    train_mask = torch.zeros(num_nodes, dtype=torch.bool)
    val_mask = torch.zeros(num_nodes, dtype=torch.bool)
    for c in range(num_classes):
        members = (y == c).nonzero().view(-1)
        members = members[torch.randperm(members.numel(), generator=generator)]
        n_train = max(1, round(train_ratio * members.numel()))
        n_val = min(round(val_ratio * members.numel()), members.numel() - n_train)
        train_mask[members[:n_train]] = True
        val_mask[members[n_train : n_train + n_val]] = True
    test_mask = ~(train_mask | val_mask)
    return Data(
        x=x, edge_index=edge_index, y=y, train_mask=train_mask, val_mask=val_mask, test_mask=test_mask
    )
