"""approx_knn / approx_knn_graph on faiss: recall against exact search, batches, conventions."""

from __future__ import annotations

import importlib

import pytest
import torch

from gnn.core import ops
from gnn.pool import approx_knn, approx_knn_graph, knn, knn_graph

approx_module = importlib.import_module("gnn.pool.approx")

pytest.importorskip("faiss")


def clustered(n, dim, seed):
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(50, dim, generator=g) * 3
    return centers[torch.randint(0, 50, (n,), generator=g)] + torch.randn(n, dim, generator=g)


def recall(found, exact, num_queries):
    hits = 0
    for q in range(num_queries):
        a = set(found[1, found[0] == q].tolist())
        b = set(exact[1, exact[0] == q].tolist())
        hits += len(a & b)
    return hits / exact.size(1)


def test_recall_against_exact_search_on_a_large_graph(monkeypatch):
    monkeypatch.setattr(approx_module, "_EXACT_PAIRS", 0)
    x, y = clustered(6000, 16, seed=0), clustered(400, 16, seed=1)
    found = approx_knn(x, y, 8)
    exact = knn(x, y, 8)
    assert found.shape == exact.shape
    assert torch.equal(found[0], exact[0])  # every query has its k neighbours, grouped in order
    assert recall(found, exact, 400) >= 0.95
    d = ((y[found[0]] - x[found[1]]) ** 2).sum(1).view(400, 8)
    assert bool((d[:, 1:] >= d[:, :-1] - 1e-5).all())  # neighbours by increasing distance


def test_small_graphs_are_searched_exactly():
    x, y = clustered(300, 8, seed=2), clustered(50, 8, seed=3)
    bx = torch.tensor([0] * 100 + [1] * 200)
    by = torch.tensor([0] * 20 + [2] * 30)  # graph 1 has no queries, graph 2 no points
    assert torch.equal(approx_knn(x, y, 5, bx, by), knn(x, y, 5, bx, by))


def test_mixed_large_and_small_graphs(monkeypatch):
    monkeypatch.setattr(approx_module, "_EXACT_PAIRS", 200 * 200)
    x = torch.cat([clustered(1500, 8, seed=4), clustered(100, 8, seed=5)])
    bx = torch.tensor([0] * 1500 + [1] * 100)
    found = approx_knn(x, x, 6, bx, bx)
    exact = knn(x, x, 6, bx, bx)
    assert torch.equal(found[0], exact[0])
    assert bool((bx[found[0]] == bx[found[1]]).all())
    small = found[0] >= 1500
    assert torch.equal(found[:, small], exact[:, small])  # the small graph exactly
    assert recall(found, exact, 1600) >= 0.95


def test_graph_form_conventions(monkeypatch):
    monkeypatch.setattr(approx_module, "_EXACT_PAIRS", 0)
    x = clustered(800, 4, seed=6)
    out = approx_knn_graph(x, 5, flow="target_to_source")
    assert bool((out[0] != out[1]).all())
    assert torch.equal(torch.bincount(out[0], minlength=800), torch.full((800,), 5))
    exact = knn_graph(x, 5, flow="target_to_source")
    assert recall(out, exact, 800) >= 0.95
    flipped = approx_knn_graph(x, 5)
    assert torch.equal(flipped[1], out[0])  # source_to_target: the query is the target
    looped = approx_knn_graph(x, 5, loop=True, flow="target_to_source")
    assert bool((looped[0] == looped[1]).view(800, 5)[:, 0].all())  # a point is its own nearest


def test_graph_smaller_than_k_empty_and_errors(monkeypatch):
    monkeypatch.setattr(approx_module, "_EXACT_PAIRS", 0)
    x = clustered(4, 3, seed=7)
    out = approx_knn(x, x, 10)
    assert out.size(1) == 16
    assert torch.equal(out, ops.knn(x, x, 10))
    assert approx_knn(torch.empty(0, 3), x, 2).shape == (2, 0)
    assert approx_knn_graph(torch.empty(0, 3), 2).shape == (2, 0)
    with pytest.raises(ValueError, match="'k'"):
        approx_knn(x, x, 0)
    with pytest.raises(ValueError, match="'batch'"):
        approx_knn_graph(x, 2, torch.tensor([1, 1, 0, 0]))
    with pytest.raises(ValueError, match="'batch_x'"):
        approx_knn(x, x, 2, torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="'flow'"):
        approx_knn_graph(x, 2, flow="up")
