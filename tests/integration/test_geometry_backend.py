"""gnn.core.ops' geometric ops on gnn-kernels' compiled kernels, against the pure-torch reference."""

from __future__ import annotations

import math

import pytest
import torch

from gnn.core import ops
from gnn.core.ops import backends

kernels = pytest.importorskip("gnn.kernels")
pytestmark = pytest.mark.skipif(not kernels.load(), reason=f"gnn-kernels not usable: {kernels.load_error()}")

GEOMETRY = ("knn", "radius", "nearest", "fps", "graclus", "grid_cluster")
CPU = {"device": torch.device("cpu"), "reduce": None, "requires_grad": False}


def serving(op: str, dtype: torch.dtype) -> str:
    """The backend that runs ``op`` on CPU tensors of ``dtype``."""
    return backends.select(op, dtype=dtype, **CPU)[0]


@pytest.fixture
def native(monkeypatch):
    """The compiled backend, which must serve every geometric op by default (so a run under
    ``GNN_KERNELS=torch`` checks the default selection without the variable)."""
    monkeypatch.delenv("GNN_KERNELS", raising=False)
    assert all(serving(op, torch.float32) == "native" for op in GEOMETRY)
    return "native"


def both(name, fn, seed=0):
    """fn() on the compiled kernels and on pure torch, from the same random state."""
    torch.manual_seed(seed)
    with ops.backend(name):
        assert all(serving(op, torch.float64) == name for op in GEOMETRY)
        a = fn()
    torch.manual_seed(seed)
    with ops.backend("torch"):
        b = fn()
    return a, b


def batched(seed, sizes_x, sizes_y, dim, dtype):
    g = torch.Generator().manual_seed(seed)
    batch_x = torch.arange(len(sizes_x)).repeat_interleave(torch.tensor(sizes_x))
    batch_y = torch.arange(len(sizes_y)).repeat_interleave(torch.tensor(sizes_y))
    x = torch.randn(len(batch_x), dim, generator=g, dtype=dtype)
    y = torch.randn(len(batch_y), dim, generator=g, dtype=dtype)
    return x, y, batch_x, batch_y


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("dim", [2, 3, 16])
def test_knn_radius_nearest_match_reference(native, dtype, dim):
    x, y, batch_x, batch_y = batched(dim, [300, 0, 4, 250], [40, 6, 30, 50], dim, dtype)
    for k in (1, 6):
        a, b = both(native, lambda: ops.knn(x, y, k, batch_x, batch_y))
        assert torch.equal(a, b)
    r = 0.6 * math.sqrt(dim)
    for cap in (5, 64):
        a, b = both(native, lambda: ops.radius(x, y, r, batch_x, batch_y, max_num_neighbors=cap))
        assert torch.equal(a, b)
    keep = batch_y != 1
    a, b = both(native, lambda: ops.nearest(y[keep], x, batch_y[keep], batch_x))
    assert torch.equal(a, b)
    a, b = both(native, lambda: ops.knn(x, y, 6))
    assert torch.equal(a, b)


def test_knn_cosine_matches_reference(native):
    x, y, batch_x, batch_y = batched(7, [300, 260], [40, 30], 5, torch.float64)
    x[5] = 0  # zero vectors have similarity 0 with everything
    a, b = both(native, lambda: ops.knn(x, y, 4, batch_x, batch_y, cosine=True))
    assert torch.equal(a, b)
    x, y = x.float(), y.float()
    a, b = both(native, lambda: ops.knn(x, y, 7, batch_x, batch_y, cosine=True))
    assert torch.equal(a, b)


def test_knn_lattice_ties(native):
    grid = torch.stack(torch.meshgrid(*[torch.arange(5.0)] * 3, indexing="ij"), -1).reshape(-1, 3)
    x = grid[torch.randperm(125, generator=torch.Generator().manual_seed(0))]
    a, b = both(native, lambda: ops.knn(x, x, 10))
    assert torch.equal(a, b)
    a, b = both(native, lambda: ops.radius(x, x, 1.5, max_num_neighbors=7))
    assert torch.equal(a, b)


def farthest_point_property(src, batch, out):
    """Distinct picks, each the first farthest point from the previous picks of its example."""
    assert out.unique().numel() == out.numel()
    pos = 0
    for b in range(int(batch.max()) + 1):
        members = (batch == b).nonzero().flatten()
        count = math.ceil(float(torch.tensor(members.numel(), dtype=torch.float32) * 0.4))
        picks = out[pos : pos + count]
        pos += count
        assert set(picks.tolist()) <= set(members.tolist())
        pts = src[members]
        dist = torch.full((members.numel(),), math.inf, dtype=src.dtype)
        for i in range(1, count):
            diff = pts - src[picks[i - 1]]
            d2 = diff[:, 0] * diff[:, 0]
            for d in range(1, diff.size(1)):  # squares added in order, as both backends do
                d2 = d2 + diff[:, d] * diff[:, d]
            dist = torch.minimum(dist, d2)
            dist[picks[:i] - members.min()] = -1
            assert int(picks[i] - members.min()) == int(torch.argmax(dist))
    assert pos == out.numel()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fps_matches_reference_and_is_farthest_point(native, dtype):
    src, _, batch, _ = batched(3, [50, 0, 1, 37, 64], [1], 3, dtype)
    for random_start in (False, True):
        a, b = both(native, lambda: ops.fps(src, batch, ratio=0.4, random_start=random_start), seed=5)
        assert torch.equal(a, b)
        farthest_point_property(src, batch, a)
        if not random_start:  # first pick per example: its first point
            assert a[0] == 0 and a[20] == 50 and a[21] == 51


def valid_matching(edge_index, cluster):
    members: dict[int, list[int]] = {}
    for node, c in enumerate(cluster.tolist()):
        members.setdefault(c, []).append(node)
    edges = {(int(u), int(v)) for u, v in edge_index.T}
    for c, nodes in members.items():
        assert len(nodes) <= 2 and c == min(nodes)
        if len(nodes) == 2:
            assert (nodes[0], nodes[1]) in edges or (nodes[1], nodes[0]) in edges


def test_graclus_matches_reference_and_is_a_matching(native):
    g = torch.Generator().manual_seed(8)
    edge_index = torch.randint(0, 200, (2, 600), generator=g)
    edge_index = torch.cat([edge_index, edge_index.flip(0)], 1)
    weight = torch.rand(600, generator=g).repeat(2)
    for w in (None, weight, weight.double(), (weight * 10).long()):
        for seed in (0, 1):
            a, b = both(native, lambda: ops.graclus(edge_index, w, num_nodes=210), seed=seed)
            assert torch.equal(a, b)
            valid_matching(edge_index, a)
            assert a[200:].tolist() == list(range(200, 210))


def test_grid_cluster_matches_reference(native):
    for dtype in (torch.float32, torch.float64):
        pos, _, batch, _ = batched(9, [100, 80], [1], 3, dtype)
        for kwargs in ({}, {"start": -3.0, "end": 3.0}, {"batch": batch}):
            a, b = both(native, lambda: ops.grid_cluster(pos, [0.3, 0.5, 0.7], **kwargs))
            assert torch.equal(a, b)
