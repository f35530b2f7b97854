"""Tests of the built-in graphs: Zachary's karate club and the planted partition model."""

import csv
import io
import math
from importlib import resources

import pytest
import torch

from gnn.core.data import Data, karate_club, planted_partition

# Degrees of Zachary's karate club members 0..33 (Zachary 1977, Table 1 / adjacency matrix).
KARATE_DEGREES = [
    16,
    9,
    10,
    6,
    3,
    4,
    4,
    4,
    5,
    2,
    3,
    1,
    2,
    5,
    2,
    2,
    2,
    2,
    2,
    3,
    2,
    2,
    2,
    5,
    3,
    3,
    2,
    4,
    3,
    4,
    4,
    6,
    12,
    17,
]
# Members who joined the officer's club after the split (the 17 others joined Mr. Hi).
KARATE_OFFICER = [9, 14, 15, 18, 20, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33]


def test_karate_structure():
    data = karate_club()
    assert isinstance(data, Data)
    assert repr(data) == "Data(x=[34, 34], edge_index=[2, 156], y=[34], train_mask=[34])"
    assert data.num_nodes == 34 and data.num_edges == 156
    assert data.validate() and data.is_undirected() and not data.has_self_loops()
    pairs = {tuple(sorted(e)) for e in data.edge_index.t().tolist()}
    assert len(pairs) == 78
    # sorted by (src, dst), no duplicates
    key = data.edge_index[0] * 34 + data.edge_index[1]
    assert bool((key[1:] > key[:-1]).all())
    degree = torch.bincount(data.edge_index[0], minlength=34)
    assert degree.tolist() == KARATE_DEGREES
    assert int(degree[33]) == 17 and int(degree[0]) == 16 and int(degree.sum()) == 156
    assert torch.equal(data.x, torch.eye(34)) and data.x.dtype == torch.float32


def test_karate_labels_and_mask():
    data = karate_club()
    assert data.y.dtype == torch.long
    assert data.y.nonzero().view(-1).tolist() == KARATE_OFFICER
    assert torch.bincount(data.y).tolist() == [17, 17]
    assert data.train_mask.dtype == torch.bool
    assert data.train_mask.nonzero().view(-1).tolist() == [0, 33]
    assert data.y[0] == 0 and data.y[33] == 1


def test_karate_shipped_csv():
    root = resources.files("gnn.core.data")
    edges = list(csv.DictReader(io.StringIO(root.joinpath("karate_club.csv").read_text())))
    labels = list(csv.DictReader(io.StringIO(root.joinpath("karate_club_labels.csv").read_text())))
    assert len(edges) == 78 and all(int(r["src"]) < int(r["dst"]) for r in edges)
    assert len(labels) == 34 and {r["club"] for r in labels} == {"Mr. Hi", "Officer"}


def test_karate_matches_pyg():
    pyg_datasets = pytest.importorskip("torch_geometric.datasets")
    theirs = pyg_datasets.KarateClub()[0]
    ours = karate_club()
    assert torch.equal(ours.edge_index, theirs.edge_index)
    assert torch.equal(ours.x, theirs.x)


def test_planted_partition_is_deterministic():
    a = planted_partition(num_nodes=120, num_classes=3, seed=7)
    b = planted_partition(num_nodes=120, num_classes=3, seed=7)
    c = planted_partition(num_nodes=120, num_classes=3, seed=8)
    assert a.keys() == ["x", "edge_index", "y", "train_mask", "val_mask", "test_mask"]
    for key in a.keys():
        assert torch.equal(a[key], b[key]), key
    assert not torch.equal(a.y, c.y) or not torch.equal(a.edge_index, c.edge_index)


def test_planted_partition_block_structure():
    n, k, p_in, p_out = 400, 4, 0.1, 0.01
    data = planted_partition(num_nodes=n, num_classes=k, p_in=p_in, p_out=p_out, seed=0)
    y, edge_index = data.y, data.edge_index
    assert torch.bincount(y).tolist() == [100] * 4
    assert data.validate() and data.is_undirected() and not data.has_self_loops()
    assert torch.unique(edge_index[0] * n + edge_index[1]).numel() == edge_index.size(1)
    upper = edge_index[:, edge_index[0] < edge_index[1]]
    intra = int((y[upper[0]] == y[upper[1]]).sum())
    inter = upper.size(1) - intra
    intra_pairs = sum(math.comb(int(c), 2) for c in torch.bincount(y))
    inter_pairs = math.comb(n, 2) - intra_pairs
    mean_in, sd_in = p_in * intra_pairs, math.sqrt(intra_pairs * p_in * (1 - p_in))
    mean_out, sd_out = p_out * inter_pairs, math.sqrt(inter_pairs * p_out * (1 - p_out))
    assert abs(intra - mean_in) < 4 * sd_in
    assert abs(inter - mean_out) < 4 * sd_out
    expected_fraction = mean_in / (mean_in + mean_out)
    assert abs(intra / upper.size(1) - expected_fraction) < 0.03
    # extreme probabilities give exact graphs
    full = planted_partition(num_nodes=30, num_classes=3, p_in=1.0, p_out=0.0, seed=1)
    assert full.edge_index.size(1) == 3 * 10 * 9
    assert bool((full.y[full.edge_index[0]] == full.y[full.edge_index[1]]).all())


def test_planted_partition_features_and_masks():
    clean = planted_partition(num_nodes=60, num_classes=3, feature_noise=0.0, seed=2)
    for c in range(3):
        rows = clean.x[clean.y == c]
        assert torch.equal(rows, rows[:1].expand_as(rows))
    noisy = planted_partition(num_nodes=300, num_classes=3, num_features=8, feature_noise=0.3, seed=3)
    # nearest class mean (estimated on the train nodes) recovers the classes
    means = torch.stack([noisy.x[noisy.train_mask & (noisy.y == c)].mean(0) for c in range(3)])
    pred = torch.cdist(noisy.x, means).argmin(1)
    assert (pred[noisy.test_mask] == noisy.y[noisy.test_mask]).float().mean() > 0.9
    # masks: disjoint, covering, stratified
    masks = torch.stack([noisy.train_mask, noisy.val_mask, noisy.test_mask]).long()
    assert bool((masks.sum(0) == 1).all())
    for c in range(3):
        members = noisy.y == c
        assert int((noisy.train_mask & members).sum()) == round(0.2 * int(members.sum()))
        assert int((noisy.val_mask & members).sum()) == round(0.2 * int(members.sum()))
    tiny = planted_partition(num_nodes=4, num_classes=4, train_ratio=0.1, seed=0)
    assert int(tiny.train_mask.sum()) == 4 and not bool(tiny.val_mask.any())


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(num_nodes=0), ValueError, "num_nodes"),
        (dict(num_nodes=2.5), TypeError, "num_nodes"),
        (dict(num_nodes=3, num_classes=4), ValueError, "num_classes"),
        (dict(p_in=1.5), ValueError, "p_in"),
        (dict(p_out=-0.1), ValueError, "p_out"),
        (dict(num_features=0), ValueError, "num_features"),
        (dict(feature_noise=-1.0), ValueError, "feature_noise"),
        (dict(train_ratio=0.0), ValueError, "train_ratio"),
        (dict(train_ratio=0.7, val_ratio=0.5), ValueError, "val_ratio"),
        (dict(seed=-1), ValueError, "seed"),
    ],
)
def test_planted_partition_rejects(kwargs, error, match):
    with pytest.raises(error, match=match):
        planted_partition(**kwargs)
