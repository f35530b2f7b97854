"""gnn.core.ops' geometric ops on the pure-torch reference, against brute-force loops."""

from __future__ import annotations

import math

import pytest
import torch

from gnn.core import ops, set_validation
from gnn.core.ops import reference_geometry


@pytest.fixture(autouse=True)
def pure_torch():
    with ops.backend("torch"):
        yield


def sq(a: torch.Tensor, b: torch.Tensor) -> float:
    """Squared distance, the squares added in order (in the points' dtype)."""
    t = a - b
    acc = t[0] * t[0]
    for d in range(1, t.numel()):
        acc = acc + t[d] * t[d]
    return float(acc)


def groups(batch: torch.Tensor | None, n: int) -> list[int]:
    return [0] * n if batch is None else batch.tolist()


def loop_knn(x, y, k, batch_x=None, batch_y=None, cosine=False):
    bx, by = groups(batch_x, x.size(0)), groups(batch_y, y.size(0))
    pairs = []
    for i in range(y.size(0)):
        cand = [j for j in range(x.size(0)) if bx[j] == by[i]]
        if cosine:
            dist = [1 - float(x[j] @ y[i]) / max(float(x[j].norm() * y[i].norm()), 1e-12) for j in cand]
        else:
            dist = [sq(x[j], y[i]) for j in cand]
        pairs += [(i, j) for _, j in sorted(zip(dist, cand))[:k]]
    return torch.tensor(pairs, dtype=torch.long).reshape(-1, 2).T


def loop_radius(x, y, r, batch_x=None, batch_y=None, cap=32):
    bx, by = groups(batch_x, x.size(0)), groups(batch_y, y.size(0))
    pairs = []
    for i in range(y.size(0)):
        inside = [j for j in range(x.size(0)) if bx[j] == by[i] and sq(x[j], y[i]) < r * r]
        pairs += [(i, j) for j in inside[:cap]]
    return torch.tensor(pairs, dtype=torch.long).reshape(-1, 2).T


def batched_points(seed: int, dim: int, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    batch_x = torch.tensor([0] * 30 + [2] * 3 + [3] * 25)  # example 1: no x
    batch_y = torch.tensor([0] * 7 + [1] * 2 + [2] * 4 + [3] * 6)
    x = torch.randn(58, dim, generator=g, dtype=dtype)
    y = torch.randn(19, dim, generator=g, dtype=dtype)
    return x, y, batch_x, batch_y


@pytest.mark.parametrize("dim", [1, 3, 7])
def test_knn_matches_loop(dim):
    x, y, batch_x, batch_y = batched_points(dim, dim)
    assert torch.equal(ops.knn(x, y, 4, batch_x, batch_y), loop_knn(x, y, 4, batch_x, batch_y))
    assert torch.equal(ops.knn(x, y, 5), loop_knn(x, y, 5))
    if dim > 1:  # in one dimension every cosine is +-1: all ties
        out = ops.knn(x, y, 4, batch_x, batch_y, cosine=True)
        assert torch.equal(out, loop_knn(x, y, 4, batch_x, batch_y, cosine=True))


def test_knn_one_dimensional_input_and_float32():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(40, generator=g), torch.randn(9, generator=g)
    assert torch.equal(ops.knn(x, y, 3), loop_knn(x.view(-1, 1), y.view(-1, 1), 3))


def test_knn_ties_and_exhaustive_fallback():
    # lattice points: exact ties everywhere; the smaller index wins, as in the loop
    grid = torch.stack(torch.meshgrid(torch.arange(7.0), torch.arange(7.0), indexing="ij"), -1).reshape(-1, 2)
    x = grid[torch.randperm(49, generator=torch.Generator().manual_seed(1))]
    assert torch.equal(ops.knn(x, x, 9), loop_knn(x, x, 9))


def test_knn_far_from_the_origin():
    # large offsets: the matrix-product estimate cancels badly; centring keeps it exact
    g = torch.Generator().manual_seed(2)
    x = torch.randn(60, 3, generator=g) * 1e-2 + 1e3
    y = torch.randn(6, 3, generator=g) * 1e-2 + 1e3
    assert torch.equal(ops.knn(x, y, 5), loop_knn(x, y, 5))


def test_knn_in_several_blocks(monkeypatch):
    x, y, batch_x, batch_y = batched_points(4, 3)
    expected = loop_knn(x, y, 6, batch_x, batch_y)
    monkeypatch.setattr(
        reference_geometry, "_BLOCK", 64
    )  # test-local: force many small blocks and example splits
    assert torch.equal(ops.knn(x, y, 6, batch_x, batch_y), expected)
    expected = loop_radius(x, y, 1.1, batch_x, batch_y, 5)
    assert torch.equal(ops.radius(x, y, 1.1, batch_x, batch_y, max_num_neighbors=5), expected)


@pytest.mark.parametrize("dim", [2, 3])
def test_radius_matches_loop(dim):
    x, y, batch_x, batch_y = batched_points(10 + dim, dim)
    for cap in (0, 2, 100):
        out = ops.radius(x, y, 1.2, batch_x, batch_y, max_num_neighbors=cap)
        assert torch.equal(out, loop_radius(x, y, 1.2, batch_x, batch_y, cap))
    assert torch.equal(ops.radius(x, y, 0.9), loop_radius(x, y, 0.9))


def test_radius_is_strict():
    x = torch.tensor([[0.0], [1.0], [-1.0], [0.5]])
    assert ops.radius(x, torch.zeros(1, 1), 1.0).tolist() == [[0, 0], [0, 3]]


def test_nearest_matches_loop():
    x, y, batch_x, batch_y = batched_points(20, 3)
    # nearest maps the points of y onto x here (every example holding y holds x except 1)
    keep = batch_y != 1
    y, batch_y = y[keep], batch_y[keep]
    out = ops.nearest(y, x, batch_y, batch_x)
    bx = batch_x.tolist()
    for i in range(y.size(0)):
        cand = [j for j in range(x.size(0)) if bx[j] == int(batch_y[i])]
        assert int(out[i]) == min(cand, key=lambda j: (sq(x[j], y[i]), j))
    assert ops.nearest(torch.tensor([[0.0], [0.9], [3.0]]), torch.tensor([[0.0], [2.5]])).tolist() == [
        0,
        0,
        1,
    ]


def check_fps(src, batch, ratio, out, start_first=False):
    """Distinct picks, counts ceil(ratio * n_b), the farthest-point property at every step."""
    batch = torch.zeros(src.size(0), dtype=torch.long) if batch is None else batch
    assert out.unique().numel() == out.numel()
    pos = 0
    for b in range(int(batch.max()) + 1):
        members = (batch == b).nonzero().flatten().tolist()
        count = math.ceil(float(torch.tensor(len(members), dtype=torch.float32) * ratio))
        picks = out[pos : pos + count].tolist()
        pos += count
        assert set(picks) <= set(members)
        if start_first and picks:
            assert picks[0] == members[0]
        for i in range(1, len(picks)):
            far = {j: min(sq(src[j], src[p]) for p in picks[:i]) for j in members if j not in picks[:i]}
            best = max(far.values())
            assert far[picks[i]] == best
            assert picks[i] == min(j for j, d in far.items() if d == best)
    assert pos == out.numel()


def test_fps_invariants_and_reproducibility():
    g = torch.Generator().manual_seed(3)
    src = torch.randn(45, 3, generator=g, dtype=torch.float64)
    batch = torch.tensor([0] * 20 + [2] * 7 + [3] * 18)
    out = ops.fps(src, batch, ratio=0.5, random_start=False)
    check_fps(src, batch, 0.5, out, start_first=True)
    torch.manual_seed(11)
    a = ops.fps(src, batch, ratio=0.3)
    check_fps(src, batch, 0.3, a)
    torch.manual_seed(11)
    assert torch.equal(ops.fps(src, batch, ratio=0.3), a)
    assert ops.fps(torch.tensor([[0.0], [1.0], [10.0], [4.0]]), ratio=0.75, random_start=False).tolist() == [
        0,
        2,
        3,
    ]
    assert torch.equal(ops.fps(src, ratio=1.0).sort().values, torch.arange(45))


def simple_fps(src, members, count, start):
    """One example's fps with a loop over the picks (squares added in order)."""
    pts = src[members]
    picks = [start]
    dist = torch.full((len(members),), math.inf, dtype=src.dtype)
    for _ in range(1, count):
        diff = pts - pts[picks[-1]]
        d2 = diff[:, 0] * diff[:, 0]
        for d in range(1, diff.size(1)):
            d2 = d2 + diff[:, d] * diff[:, d]
        dist = torch.minimum(dist, d2)
        dist[picks] = -1
        picks.append(int(torch.argmax(dist)))
    return [members[p] for p in picks]


def test_fps_unbalanced_examples_match_a_simple_loop():
    # one big example and tiny ones: sampled in separate padded groups
    g = torch.Generator().manual_seed(6)
    sizes = [5, 2000, 3, 7, 0, 1]
    batch = torch.arange(len(sizes)).repeat_interleave(torch.tensor(sizes))
    src = torch.randn(int(batch.numel()), 2, generator=g)
    out = ops.fps(src, batch, ratio=0.02, random_start=False)
    expected, first = [], 0
    for size in sizes:
        count = math.ceil(float(torch.tensor(size, dtype=torch.float32) * 0.02))
        if count:
            expected += simple_fps(src, list(range(first, first + size)), count, 0)
        first += size
    assert out.tolist() == expected


def random_graph(n: int, e: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    edge_index = torch.randint(0, n, (2, e), generator=g)
    return torch.cat([edge_index, edge_index.flip(0)], 1)


def check_matching(edge_index, cluster, weight=None):
    """Clusters of one node or of two nodes joined by an edge, and no edge left between two singletons."""
    n = cluster.numel()
    edges = {(int(u), int(v)) for u, v in edge_index.T if u != v}
    if weight is not None:
        edges = {(int(u), int(v)) for (u, v), w in zip(edge_index.T, weight) if u != v and w >= 0}
    members: dict[int, list[int]] = {}
    for node, c in enumerate(cluster.tolist()):
        members.setdefault(c, []).append(node)
    for c, nodes in members.items():
        assert len(nodes) <= 2 and c == min(nodes)
        if len(nodes) == 2:
            assert (nodes[0], nodes[1]) in edges or (nodes[1], nodes[0]) in edges
    single = {nodes[0] for nodes in members.values() if len(nodes) == 1}
    assert not any(u in single and v in single for u, v in edges)
    return n


def test_graclus_gives_a_maximal_matching():
    edge_index = random_graph(30, 40, seed=4)
    torch.manual_seed(0)
    cluster = ops.graclus(edge_index, num_nodes=33)  # nodes 30..32 isolated
    check_matching(edge_index, cluster)
    assert cluster[30:].tolist() == [30, 31, 32]
    torch.manual_seed(0)
    assert torch.equal(ops.graclus(edge_index, num_nodes=33), cluster)
    weight = torch.randn(edge_index.size(1) // 2).repeat(2)  # symmetric: u -> v and v -> u weigh the same
    check_matching(edge_index, ops.graclus(edge_index, weight), weight)


def test_graclus_follows_the_heaviest_edges():
    # K4 with two heavy edges: whatever the visiting order, each node pairs along its heavy edge
    edge_index = torch.tensor([[0, 0, 0, 1, 1, 2], [1, 2, 3, 2, 3, 3]])
    edge_index = torch.cat([edge_index, edge_index.flip(0)], 1)
    weight = torch.tensor([10, 1, 1, 1, 1, 10] * 2)
    for seed in range(5):
        torch.manual_seed(seed)
        assert ops.graclus(edge_index, weight).tolist() == [0, 0, 2, 2]
    # only negative weights: nothing matches
    assert ops.graclus(edge_index, -weight.double()).tolist() == [0, 1, 2, 3]
    assert ops.graclus(torch.empty(2, 0, dtype=torch.long), num_nodes=2).tolist() == [0, 1]


def test_grid_cluster_matches_formula():
    g = torch.Generator().manual_seed(5)
    pos = torch.rand(50, 3, generator=g, dtype=torch.float64) * 3
    size = [0.5, 0.7, 1.0]
    out = ops.grid_cluster(pos, size)
    start, end = pos.amin(0).tolist(), pos.amax(0).tolist()
    cells = [math.trunc((end[d] - start[d]) / size[d]) + 1 for d in range(3)]
    for i in range(50):
        c = [math.trunc((float(pos[i, d]) - start[d]) / size[d]) for d in range(3)]
        assert int(out[i]) == c[0] + cells[0] * (c[1] + cells[1] * c[2])
    assert torch.equal(
        ops.grid_cluster(pos, torch.tensor(size), start=0.0, end=3.0),
        reference_geometry.grid_cluster_reference(
            pos,
            torch.tensor(size, dtype=torch.float64),
            torch.zeros(3, dtype=torch.float64),
            torch.full((3,), 3.0, dtype=torch.float64),
        ),
    )
    # batch: points of different examples never share a voxel
    batch = torch.tensor([0] * 25 + [1] * 25)
    same = pos.clone()
    same[25:] = pos[:25]
    out = ops.grid_cluster(same, 1.0, batch=batch)
    assert not set(out[:25].tolist()) & set(out[25:].tolist())
    assert torch.equal(out[:25] - out[:25].min(), out[25:] - out[25:].min())


def test_bad_inputs_name_the_argument():
    x = torch.randn(10, 3)
    with pytest.raises(ValueError, match="'k'"):
        ops.knn(x, x, 0)
    with pytest.raises(TypeError, match="'k'"):
        ops.knn(x, x, 2.5)
    with pytest.raises(ValueError, match="'x'"):
        ops.knn(torch.randn(2, 3, 4), x, 2)
    with pytest.raises(TypeError, match="'y'"):
        ops.knn(x, x.long(), 2)
    with pytest.raises(ValueError, match="'x' and 'y'"):
        ops.knn(x, torch.randn(4, 2), 2)
    with pytest.raises(ValueError, match="'batch_x'"):
        ops.knn(x, x, 2, batch_x=torch.tensor([1, 0] * 5))
    with pytest.raises(ValueError, match="'batch_y'"):
        ops.knn(x, x, 2, batch_y=torch.zeros(9, dtype=torch.long))
    with pytest.raises(ValueError, match="'batch_size'"):
        ops.knn(x, x, 2, batch_x=torch.tensor([0] * 5 + [3] * 5), batch_size=2)
    bad = x.clone()
    bad[0, 0] = math.inf
    with pytest.raises(ValueError, match="'x'"):
        ops.knn(bad, x, 2)
    with pytest.raises(ValueError, match="'r'"):
        ops.radius(x, x, -1.0)
    with pytest.raises(ValueError, match="'max_num_neighbors'"):
        ops.radius(x, x, 1.0, max_num_neighbors=-1)
    with pytest.raises(ValueError, match="'batch_y'"):
        ops.nearest(x, x[:5], torch.tensor([0] * 5 + [1] * 5), torch.zeros(5, dtype=torch.long))
    for ratio in (0.0, 1.5):
        with pytest.raises(ValueError, match="'ratio'"):
            ops.fps(x, ratio=ratio)
    with pytest.raises(ValueError, match="'batch'"):
        ops.fps(x, torch.tensor([0, 0, 1, 1, 0, 1, 1, 1, 1, 1]))
    edge_index = torch.tensor([[0, 1], [1, 2]])
    with pytest.raises(ValueError, match="'edge_index'"):
        ops.graclus(edge_index, num_nodes=2)
    with pytest.raises(ValueError, match="'weight'"):
        ops.graclus(edge_index, torch.ones(3))
    with pytest.raises(ValueError, match="'size'"):
        ops.grid_cluster(x, 0.0)
    with pytest.raises(ValueError, match="'size'"):
        ops.grid_cluster(x, [1.0, 2.0])
    with pytest.raises(ValueError, match="'end'"):
        ops.grid_cluster(x, 1.0, start=1.0, end=0.0)
    with pytest.raises(ValueError, match="'size' is too small"):
        ops.grid_cluster(x * 1e6, 1e-6)


def test_empty_inputs():
    empty = torch.empty(0, 3)
    x = torch.randn(5, 3)
    assert ops.knn(empty, x, 2).shape == (2, 0)
    assert ops.knn(x, empty, 2).shape == (2, 0)
    assert ops.radius(empty, x, 1.0).shape == (2, 0)
    assert ops.fps(empty).shape == (0,)
    assert ops.grid_cluster(empty, 1.0).shape == (0,)
    assert ops.graclus(torch.empty(2, 0, dtype=torch.long)).shape == (0,)


def test_without_validation_results_are_unchanged():
    x, y, batch_x, batch_y = batched_points(30, 3)
    expected = ops.knn(x, y, 3, batch_x, batch_y)
    set_validation(False)
    try:
        assert torch.equal(ops.knn(x, y, 3, batch_x, batch_y), expected)
    finally:
        set_validation(True)
