"""knn / radius / nearest / fps and their graph forms against brute-force distance references.

PyG 2.8.1's versions need pyg-lib or torch-cluster (not installed here), so the
references are written below from the distance matrix; the conventions (row 0
the query, ``flow``, loops, ordering) follow PyG's documentation.
"""

from __future__ import annotations

import math

import pytest
import torch

from gnn.pool import fps, knn, knn_graph, nearest, radius, radius_graph


def points(n, dim=3, seed=0, dtype=torch.float64):
    return torch.rand(n, dim, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def sorted_batch(n, graphs, seed=0):
    return torch.randint(0, graphs, (n,), generator=torch.Generator().manual_seed(seed)).sort().values


def sq_dist(y, x):
    return ((y.unsqueeze(1) - x.unsqueeze(0)) ** 2).sum(-1)


def brute_knn(x, y, k, bx, by, cosine=False):
    """For every query: the k points of its graph by (distance, index)."""
    if cosine:
        d = 1 - torch.nn.functional.cosine_similarity(y.unsqueeze(1), x.unsqueeze(0), dim=-1)
    else:
        d = sq_dist(y, x)
    rows, cols = [], []
    for i in range(y.size(0)):
        cand = [(float(d[i, j]), j) for j in range(x.size(0)) if bx[j] == by[i]]
        for _, j in sorted(cand)[:k]:
            rows.append(i)
            cols.append(j)
    return torch.tensor([rows, cols], dtype=torch.long).view(2, -1)


def brute_radius(x, y, r, bx, by, cap):
    d = sq_dist(y, x)
    rows, cols = [], []
    for i in range(y.size(0)):
        inside = [j for j in range(x.size(0)) if bx[j] == by[i] and d[i, j] < r * r][:cap]
        rows += [i] * len(inside)
        cols += inside
    return torch.tensor([rows, cols], dtype=torch.long).view(2, -1)


@pytest.mark.parametrize("k", [1, 4, 30])
def test_knn_matches_brute_force(k):
    x, y = points(60, seed=1), points(25, seed=2)
    bx, by = sorted_batch(60, 3, seed=3), sorted_batch(25, 3, seed=4)
    out = knn(x, y, k, bx, by)
    assert torch.equal(out, brute_knn(x, y, k, bx, by))
    out = knn(x, y, k)  # one graph
    zeros_x, zeros_y = torch.zeros(60, dtype=torch.long), torch.zeros(25, dtype=torch.long)
    assert torch.equal(out, brute_knn(x, y, k, zeros_x, zeros_y))


def test_knn_cosine_matches_brute_force():
    x, y = points(40, dim=4, seed=5) - 0.5, points(10, dim=4, seed=6) - 0.5
    out = knn(x, y, 5, cosine=True)
    assert torch.equal(out, brute_knn(x, y, 5, torch.zeros(40), torch.zeros(10), cosine=True))


def test_knn_graph_conventions_loop_and_flow():
    x, batch = points(50, seed=7), sorted_batch(50, 4, seed=8)
    pairs = brute_knn(x, x, 4, batch, batch)  # k + 1 with the point itself first (distance 0)
    no_self = pairs[:, pairs[0] != pairs[1]]
    out = knn_graph(x, 3, batch)
    assert torch.equal(out, no_self.flip(0))  # source_to_target: edge neighbour -> query
    assert torch.equal(knn_graph(x, 3, batch, flow="target_to_source"), no_self)
    with_loops = brute_knn(x, x, 3, batch, batch)
    assert torch.equal(knn_graph(x, 3, batch, loop=True), with_loops.flip(0))
    counts = torch.bincount(out[1], minlength=50)
    assert int(counts.max()) == 3


def test_knn_graph_keeps_k_neighbours_with_duplicate_points():
    x = torch.zeros(6, 2)  # every point at the same place: the point itself may fall past k + 1
    out = knn_graph(x, 2, flow="target_to_source")
    assert out.size(1) == 12
    assert bool((out[0] != out[1]).all())
    assert torch.equal(torch.bincount(out[0]), torch.full((6,), 2))


@pytest.mark.parametrize("cap", [32, 3, 0])
def test_radius_matches_brute_force(cap):
    x, y = points(70, seed=9), points(30, seed=10)
    bx, by = sorted_batch(70, 2, seed=11), sorted_batch(30, 2, seed=12)
    out = radius(x, y, 0.4, bx, by, max_num_neighbors=cap)
    assert torch.equal(out, brute_radius(x, y, 0.4, bx, by, cap))


@pytest.mark.parametrize("loop", [False, True])
@pytest.mark.parametrize("cap", [32, 2])
def test_radius_graph_conventions(loop, cap):
    x, batch = points(60, seed=13), sorted_batch(60, 3, seed=14)
    pairs = brute_radius(x, x, 0.35, batch, batch, 10**6)
    if not loop:
        pairs = pairs[:, pairs[0] != pairs[1]]
    rows, cols = [], []
    for i in range(60):
        nb = pairs[1, pairs[0] == i][:cap]
        rows += [i] * nb.numel()
        cols += nb.tolist()
    expected = torch.tensor([rows, cols])
    out = radius_graph(x, 0.35, batch, loop=loop, max_num_neighbors=cap)
    assert torch.equal(out, expected.flip(0))
    out = radius_graph(x, 0.35, batch, loop=loop, max_num_neighbors=cap, flow="target_to_source")
    assert torch.equal(out, expected)


def test_nearest_matches_brute_force():
    x, y = points(50, seed=15), points(12, seed=16)
    bx, by = sorted_batch(50, 3, seed=17), torch.tensor([0] * 4 + [1] * 4 + [2] * 4)
    d = sq_dist(x, y)
    d[bx.unsqueeze(1) != by.unsqueeze(0)] = math.inf
    assert torch.equal(nearest(x, y, bx, by), d.argmin(1))
    assert torch.equal(nearest(x, y), sq_dist(x, y).argmin(1))


def brute_fps(x, batch, ratio):
    """Start at each graph's first point, then repeatedly the farthest from the picked ones."""
    out = []
    for g in batch.unique().tolist():
        idx = (batch == g).nonzero().flatten()
        pts = x[idx]
        take = math.ceil(ratio * idx.numel())
        picked = [0]
        dist = ((pts - pts[0]) ** 2).sum(1)
        for _ in range(take - 1):
            dist[picked] = -1
            nxt = int(dist.argmax())
            picked.append(nxt)
            dist = torch.minimum(dist, ((pts - pts[nxt]) ** 2).sum(1))
        out += idx[picked].tolist()
    return torch.tensor(out)


@pytest.mark.parametrize("ratio", [0.25, 0.5, 1.0])
def test_fps_matches_brute_force(ratio):
    x, batch = points(80, seed=18), sorted_batch(80, 3, seed=19)
    assert torch.equal(fps(x, batch, ratio, random_start=False), brute_fps(x, batch, ratio))


def test_fps_random_start_is_seeded_and_valid():
    x, batch = points(80, seed=20), sorted_batch(80, 3, seed=21)
    torch.manual_seed(0)
    a = fps(x, batch, 0.3)
    torch.manual_seed(0)
    assert torch.equal(a, fps(x, batch, 0.3))
    counts = torch.bincount(batch[a], minlength=3)
    assert torch.equal(counts, torch.ceil(0.3 * torch.bincount(batch, minlength=3)).long())
    assert a.unique().numel() == a.numel()


def test_graphs_smaller_than_k_and_empty_inputs():
    x = points(5, seed=22)
    batch = torch.tensor([0, 0, 1, 1, 1])
    out = knn(x, x, 10, batch, batch)
    assert out.size(1) == 2 * 2 + 3 * 3
    assert torch.equal(out, brute_knn(x, x, 10, batch, batch))
    assert knn_graph(x, 10, batch).size(1) == 2 * 1 + 3 * 2
    empty = torch.empty(0, 3, dtype=torch.float64)
    assert knn(empty, x, 3).shape == (2, 0)
    assert knn(x, empty, 3).shape == (2, 0)
    assert knn_graph(empty, 3).shape == (2, 0)
    assert radius_graph(empty, 0.5).shape == (2, 0)
    assert fps(empty).numel() == 0
    assert nearest(empty, x).numel() == 0
    single = knn_graph(x[:1], 3)
    assert single.shape == (2, 0)


def test_float32_int32_batch_and_noncontiguous():
    x = points(40, dim=6, seed=23, dtype=torch.float32)[:, ::2]
    batch = sorted_batch(40, 2, seed=24).to(torch.int32)
    out = knn_graph(x, 3, batch, flow="target_to_source")
    pairs = brute_knn(x, x, 4, batch.long(), batch.long())
    assert torch.equal(out, pairs[:, pairs[0] != pairs[1]])


def test_bad_inputs_raise_clear_errors():
    x = points(10, seed=25)
    with pytest.raises(ValueError, match="'ratio'"):
        fps(x, ratio=0.0)
    with pytest.raises(ValueError, match="'ratio'"):
        fps(x, ratio=1.5)
    with pytest.raises(ValueError, match="'k'"):
        knn(x, x, 0)
    with pytest.raises(ValueError, match="'k'"):
        knn_graph(x, 0)
    with pytest.raises(TypeError, match="'k'"):
        knn_graph(x, 2.0)
    with pytest.raises(ValueError, match="'batch'"):
        knn_graph(x, 2, torch.zeros(9, dtype=torch.long))
    with pytest.raises(ValueError, match="'batch'"):
        knn_graph(x, 2, torch.tensor([1, 0] * 5))  # not sorted
    with pytest.raises(ValueError, match="'batch_x'"):
        knn(x, x, 2, torch.zeros(9, dtype=torch.long))
    with pytest.raises(ValueError, match="'batch'"):
        radius_graph(x, 0.5, torch.zeros(11, dtype=torch.long))
    with pytest.raises(ValueError, match="'flow'"):
        knn_graph(x, 2, flow="both")
    with pytest.raises(ValueError, match="'r'"):
        radius_graph(x, -1.0)
    with pytest.raises(ValueError, match="'max_num_neighbors'"):
        radius_graph(x, 0.5, max_num_neighbors=-1)
