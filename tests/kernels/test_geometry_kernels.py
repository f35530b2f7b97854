"""The raw geometric ``gnn_kernels`` ops against loop references (gnn-kernels alone: torch only)."""

from __future__ import annotations

import math

import pytest
import torch

import gnn.kernels

pytestmark = pytest.mark.skipif(
    not gnn.kernels.load(), reason=f"kernels not built: {gnn.kernels.load_error()}"
)
if gnn.kernels.load():
    from gnn.kernels import geometry

    geometry.register_fakes()  # idempotent (the library loader calls it as well)
K = torch.ops.gnn_kernels if gnn.kernels.load() else None


def offsets(sizes: list[int]) -> torch.Tensor:
    return torch.tensor([0] + sizes).cumsum(0)


def examples(ptr: torch.Tensor) -> list[range]:
    return [range(int(a), int(b)) for a, b in zip(ptr[:-1], ptr[1:])]


def sq(a: torch.Tensor, b: torch.Tensor) -> float:
    """Squared distance, the squares added in order (in the points' dtype)."""
    t = a - b
    acc = t[0] * t[0]
    for d in range(1, t.numel()):
        acc = acc + t[d] * t[d]
    return float(acc)


def loop_knn(x, y, ptr_x, ptr_y, k, cosine=False):
    """[M, k] neighbours by (distance, index), -1 padded."""
    out = torch.full((y.size(0), k), -1, dtype=torch.long)
    for xs, ys in zip(examples(ptr_x), examples(ptr_y)):
        for i in ys:
            if cosine:
                dist = [1 - float(x[j] @ y[i]) / max(float(x[j].norm() * y[i].norm()), 1e-12) for j in xs]
            else:
                dist = [sq(x[j], y[i]) for j in xs]
            best = sorted(zip(dist, xs))[:k]
            out[i, : len(best)] = torch.tensor([j for _, j in best], dtype=torch.long)
    return out


def loop_radius(x, y, ptr_x, ptr_y, r, cap):
    pairs = []
    for xs, ys in zip(examples(ptr_x), examples(ptr_y)):
        for i in ys:
            inside = [j for j in xs if sq(x[j], y[i]) < r * r][:cap]
            pairs += [(i, j) for j in inside]
    return torch.tensor(pairs, dtype=torch.long).reshape(-1, 2).T


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("dim", [1, 3, 12])  # 12 > the kd-tree's dimensions: brute-force path
def test_knn_matches_loop(dtype, dim):
    g = torch.Generator().manual_seed(dim)
    ptr_x, ptr_y = offsets([40, 0, 3, 60]), offsets([10, 5, 7, 12])
    x = torch.randn(int(ptr_x[-1]), dim, generator=g, dtype=dtype)
    y = torch.randn(int(ptr_y[-1]), dim, generator=g, dtype=dtype)
    out = K.knn(x, y, ptr_x, ptr_y, 5, False)
    assert out.shape == (2, 34 * 5)
    assert torch.equal(out[0], torch.arange(34).repeat_interleave(5))
    expected = loop_knn(x, y, ptr_x, ptr_y, 5)
    assert torch.equal(out[1].view(34, 5), expected)  # example 1 has no x: all -1; example 2 has 3


def test_knn_cosine_matches_loop():
    g = torch.Generator().manual_seed(3)
    ptr_x, ptr_y = offsets([30, 20]), offsets([6, 4])
    x = torch.randn(50, 4, generator=g, dtype=torch.float64)
    x[7] = 0  # a zero vector has similarity 0 with everything
    y = torch.randn(10, 4, generator=g, dtype=torch.float64)
    out = K.knn(x, y, ptr_x, ptr_y, 4, True)
    assert torch.equal(out[1].view(10, 4), loop_knn(x, y, ptr_x, ptr_y, 4, cosine=True))


def test_knn_ties_go_to_the_smaller_index():
    # lattice points: many equal distances, the kd-tree must still return the smallest indices
    grid = torch.stack(torch.meshgrid(torch.arange(6.0), torch.arange(6.0), indexing="ij"), -1).reshape(-1, 2)
    x = grid[torch.randperm(36, generator=torch.Generator().manual_seed(0))].contiguous()
    ptr = offsets([36])
    out = K.knn(x, x, ptr, ptr, 7, False)
    assert torch.equal(out[1].view(36, 7), loop_knn(x, x, ptr, ptr, 7))


def brute_force(x, y, ptr_x, ptr_y, k, r):
    """knn [M, k] (-1 padded) and radius pairs (all within r) by exhaustive exact distances."""
    cols = torch.full((y.size(0), k), -1, dtype=torch.long)
    pairs = []
    for xs, ys in zip(examples(ptr_x), examples(ptr_y)):
        for q0 in range(ys.start, ys.stop, 500):
            q = torch.arange(q0, min(q0 + 500, ys.stop))
            diff = y[q].unsqueeze(1) - x[xs.start : xs.stop].unsqueeze(0)
            dist = diff[..., 0] * diff[..., 0]
            for d in range(1, diff.size(-1)):  # squares added in order
                dist = dist + diff[..., d] * diff[..., d]
            order = dist.sort(dim=1, stable=True).indices[:, :k]
            cols[q, : order.size(1)] = order + xs.start
            qi, pi = (dist < r * r).nonzero(as_tuple=True)
            pairs.append(torch.stack([q[qi], pi + xs.start]))
    return cols, torch.cat(pairs, 1)


@pytest.mark.parametrize("dim", [3, 5])
def test_big_examples_answer_queries_in_spatial_order(dim):
    # examples with >= 2048 queries are answered along a Morton curve; results keep the query order
    g = torch.Generator().manual_seed(9)
    ptr_x, ptr_y = offsets([3000, 50]), offsets([2500, 100])
    x = torch.rand(3050, dim, generator=g)
    y = torch.rand(2600, dim, generator=g) * 1.2 - 0.1  # some queries outside the points' box
    r = 0.08 * dim
    cols, pairs = brute_force(x, y, ptr_x, ptr_y, 8, r)
    assert torch.equal(K.knn(x, y, ptr_x, ptr_y, 8, False)[1].view(-1, 8), cols)
    assert torch.equal(K.radius(x, y, ptr_x, ptr_y, r, 10**6), pairs)


@pytest.mark.parametrize("dim", [2, 3, 10])
def test_radius_matches_loop(dim):
    g = torch.Generator().manual_seed(dim)
    ptr_x, ptr_y = offsets([50, 0, 40]), offsets([8, 3, 9])
    x = torch.rand(90, dim, generator=g)
    y = torch.rand(20, dim, generator=g)
    r = 0.25 * math.sqrt(dim)
    for cap in (0, 3, 1000):
        out = K.radius(x, y, ptr_x, ptr_y, r, cap)
        assert torch.equal(out, loop_radius(x, y, ptr_x, ptr_y, r, cap))


def test_radius_is_strict_and_keeps_the_smallest_indices():
    x = torch.tensor([[0.0], [1.0], [-1.0], [0.5], [2.0]])
    y = torch.tensor([[0.0]])
    ptr_x, ptr_y = offsets([5]), offsets([1])
    # distance exactly r = 1 is excluded
    assert K.radius(x, y, ptr_x, ptr_y, 1.0, 32).tolist() == [[0, 0], [0, 3]]
    assert K.radius(x, y, ptr_x, ptr_y, 1.5, 2).tolist() == [[0, 0], [0, 1]]


def loop_fps(src, ptr, num, start):
    out = []
    for b, xs in enumerate(examples(ptr)):
        if num[b] == 0:
            continue
        pts = src[list(xs)]
        picks = [int(start[b])]
        dist = [math.inf] * len(xs)
        for _ in range(1, int(num[b])):
            for j in range(len(xs)):
                if j not in picks:
                    dist[j] = min(dist[j], sq(pts[j], pts[picks[-1]]))
            cand = [(dist[j], -j) for j in range(len(xs)) if j not in picks]
            picks.append(-max(cand)[1])
        out += [xs[0] + p for p in picks]
    return torch.tensor(out, dtype=torch.long)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fps_matches_loop(dtype):
    g = torch.Generator().manual_seed(5)
    ptr = offsets([20, 0, 1, 15])
    src = torch.randn(36, 3, generator=g, dtype=dtype)
    num = torch.tensor([10, 0, 1, 15])
    start = torch.tensor([4, 0, 0, 14])
    out = K.fps(src, ptr, num, start)
    assert torch.equal(out, loop_fps(src, ptr, num, start))


def test_fps_with_duplicate_points_never_picks_twice():
    src = torch.zeros(6, 2)
    out = K.fps(src, offsets([6]), torch.tensor([6]), torch.tensor([2]))
    assert sorted(out.tolist()) == list(range(6))
    assert out[0] == 2


def test_fps_big_example_splits_the_sweep():
    g = torch.Generator().manual_seed(6)
    src = torch.randn(20000, 3, generator=g, dtype=torch.float64)
    out = K.fps(src, offsets([20000]), torch.tensor([12]), torch.tensor([123]))
    assert torch.equal(out, loop_fps_fast(src, 12, 123))


def loop_fps_fast(src, count, start):
    """Single-example fps with torch ops per step (a loop over picks)."""
    picks = [start]
    dist = torch.full((src.size(0),), math.inf, dtype=src.dtype)
    for _ in range(1, count):
        diff = src - src[picks[-1]]
        d2 = diff[:, 0] * diff[:, 0]
        for d in range(1, diff.size(1)):  # squares added in order
            d2 = d2 + diff[:, d] * diff[:, d]
        dist = torch.minimum(dist, d2)
        dist[picks] = -1
        picks.append(int(torch.argmax(dist)))
    return torch.tensor(picks)


def csr(edges: list[tuple[int, int]], n: int):
    edges = sorted(edges, key=lambda e: e[0])
    rowptr = torch.zeros(n + 1, dtype=torch.long)
    for u, _ in edges:
        rowptr[u + 1] += 1
    return rowptr.cumsum(0), torch.tensor([v for _, v in edges], dtype=torch.long).reshape(-1)


def test_graclus_greedy_matching():
    # path 0-1-2-3 (both directions), weights favour (1, 2); visiting 0 first pairs it with 1
    edges = [(0, 1), (1, 0), (1, 2), (2, 1), (2, 3), (3, 2)]
    rowptr, col = csr(edges, 5)  # node 4 is isolated
    w = {(0, 1): 1.0, (1, 0): 1.0, (1, 2): 5.0, (2, 1): 5.0, (2, 3): 1.0, (3, 2): 1.0}
    weight = torch.tensor([w[e] for e in sorted(edges, key=lambda e: e[0])], dtype=torch.float64)
    out = K.graclus(rowptr, col, weight, torch.tensor([0, 1, 2, 3, 4]))
    assert out.tolist() == [0, 0, 2, 2, 4]
    out = K.graclus(rowptr, col, weight, torch.tensor([1, 0, 3, 2, 4]))
    assert out.tolist() == [0, 1, 1, 3, 4]  # 1 takes its heaviest neighbour 2; 0 and 3 stay alone
    # negative weights are never matched, self-loops are ignored
    rowptr, col = csr([(0, 0), (0, 1), (1, 0)], 2)
    out = K.graclus(rowptr, col, torch.tensor([9.0, -1.0, -1.0]), torch.tensor([0, 1]))
    assert out.tolist() == [0, 1]


def test_grid_cluster_matches_formula():
    g = torch.Generator().manual_seed(7)
    pos = torch.rand(100, 3, generator=g, dtype=torch.float64) * torch.tensor(
        [4.0, 2.0, 1.0], dtype=torch.float64
    )
    size = torch.tensor([0.5, 0.3, 0.25], dtype=torch.float64)
    start = torch.tensor([-0.1, 0.0, 0.0], dtype=torch.float64)
    end = torch.tensor([4.0, 2.0, 1.0], dtype=torch.float64)
    out = K.grid_cluster(pos, size, start, end)
    cells = [math.trunc((float(end[d]) - float(start[d])) / float(size[d])) + 1 for d in range(3)]
    for i in range(100):
        c = [math.trunc((float(pos[i, d]) - float(start[d])) / float(size[d])) for d in range(3)]
        assert int(out[i]) == c[0] + c[1] * cells[0] + c[2] * cells[0] * cells[1]


def test_bad_inputs_raise_instead_of_crashing():
    x = torch.randn(10, 3)
    ptr = offsets([10])
    with pytest.raises(RuntimeError, match="ptr_x"):
        K.knn(x, x, torch.tensor([0, 11]), ptr, 2, False)
    with pytest.raises(RuntimeError, match="monotonically"):
        K.knn(x, x, torch.tensor([0, 7, 3, 10]), torch.tensor([0, 3, 6, 10]), 2, False)
    with pytest.raises(RuntimeError, match="same number of examples"):
        K.knn(x, x, ptr, torch.tensor([0, 5, 10]), 2, False)
    with pytest.raises(RuntimeError, match="'k'"):
        K.knn(x, x, ptr, ptr, 0, False)
    with pytest.raises(RuntimeError, match="dimensions"):
        K.knn(x, torch.randn(4, 2), ptr, offsets([4]), 2, False)
    with pytest.raises(RuntimeError, match="float32 or float64"):
        K.knn(x.long(), x.long(), ptr, ptr, 2, False)
    bad = x.clone()
    bad[3, 1] = math.nan
    with pytest.raises(RuntimeError, match="NaN"):
        K.knn(bad, x, ptr, ptr, 2, False)
    with pytest.raises(RuntimeError, match="NaN"):
        K.radius(x, bad, ptr, ptr, 1.0, 4)
    with pytest.raises(RuntimeError, match="'r'"):
        K.radius(x, x, ptr, ptr, -1.0, 4)
    with pytest.raises(RuntimeError, match="num_samples"):
        K.fps(x, ptr, torch.tensor([11]), torch.tensor([0]))
    with pytest.raises(RuntimeError, match="start"):
        K.fps(x, ptr, torch.tensor([3]), torch.tensor([10]))
    rowptr, col = csr([(0, 1), (1, 0)], 2)
    with pytest.raises(RuntimeError, match="permutation"):
        K.graclus(rowptr, col, torch.ones(2), torch.tensor([1, 1]))
    with pytest.raises(RuntimeError, match="out of range"):
        K.graclus(rowptr, torch.tensor([1, 5]), torch.ones(2), torch.tensor([0, 1]))
    with pytest.raises(RuntimeError, match="weight"):
        K.graclus(rowptr, col, torch.ones(3), torch.tensor([0, 1]))
    with pytest.raises(RuntimeError, match="size"):
        K.grid_cluster(x, torch.tensor([1.0, 0.0, 1.0]), x.amin(0), x.amax(0))
    with pytest.raises(RuntimeError, match="overflows"):
        K.grid_cluster(x * 1e6, torch.full((3,), 1e-3), x.amin(0) * 1e6, x.amax(0) * 1e6)


def test_fake_implementations_and_schemas():
    x, y = torch.randn(30, 3), torch.randn(8, 3)
    px, py = offsets([12, 18]), offsets([3, 5])
    rowptr, col = csr([(0, 1), (1, 0), (1, 2), (2, 1)], 3)
    cases = [
        (K.knn, (x, y, px, py, 4, False)),
        (K.radius, (x, y, px, py, 0.9, 8)),
        (K.fps, (x, px, torch.tensor([4, 6]), torch.tensor([1, 2]))),
        (K.graclus, (rowptr, col, torch.rand(4), torch.tensor([2, 0, 1]))),
        (K.grid_cluster, (x, torch.full((3,), 0.5), x.amin(0), x.amax(0))),
    ]
    for op, args in cases:
        torch.library.opcheck(op, args, test_utils=("test_schema", "test_faketensor"))


def test_knn_under_torch_compile_without_graph_breaks():
    px, py = offsets([20, 20]), offsets([5, 5])

    def f(x, y):
        return K.knn(x, y, px, py, 3, False)

    x, y = torch.randn(40, 3), torch.randn(10, 3)
    compiled = torch.compile(f, fullgraph=True, backend="aot_eager")
    assert torch.equal(compiled(x, y), f(x, y))
