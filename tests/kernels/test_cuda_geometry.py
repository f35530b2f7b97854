"""The CUDA geometry ops (csrc/cuda/geometry.cu) against the same ops on CPU tensors.

Runs only where a CUDA GPU is present and the library was built with CUDA
(``FORCE_CUDA=1`` or a visible GPU at build time); skipped otherwise. Every output is compared
element for element, ordering included: the CUDA kernels reproduce the CPU
ops exactly (same rounded distances, same tie rules). Error messages are
compared too (the text after the source location).
"""

from __future__ import annotations

import math

import pytest
import torch

import gnn.kernels

pytestmark = [
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
    pytest.mark.skipif(not gnn.kernels.load(), reason=f"kernels not built: {gnn.kernels.load_error()}"),
]
K = torch.ops.gnn_kernels if gnn.kernels.load() else None
DTYPES = [torch.float32, torch.float64]


@pytest.fixture(autouse=True)
def _needs_cuda_kernels():
    # a CPU-only build on a GPU machine (no CUDA toolkit at build time) is a valid install: skip, as
    # test_cuda_parity.py does; a CUDA build missing the geometry kernels is a real failure
    if gnn.kernels.build_info().get("cuda") is None:
        pytest.skip("gnn-kernels built without CUDA (rebuild with FORCE_CUDA=1 to test its CUDA kernels)")
    if not torch._C._dispatch_has_kernel_for_dispatch_key("gnn_kernels::knn", "CUDA"):
        pytest.fail("the CUDA build registers no CUDA kernel for the geometry ops")


def offsets(sizes: list[int]) -> torch.Tensor:
    return torch.tensor([0] + sizes).cumsum(0)


def cuda(args: tuple) -> tuple:
    return tuple(a.cuda() if isinstance(a, torch.Tensor) else a for a in args)


def same_on_both(op, *args) -> torch.Tensor:
    """Run ``op`` on the CPU arguments and on CUDA copies; assert equal outputs, return the CPU one."""
    expected = op(*args)
    got = op(*cuda(args))
    torch.cuda.synchronize()
    assert got.is_cuda
    assert got.dtype == expected.dtype and got.shape == expected.shape
    assert torch.equal(got.cpu(), expected)
    return expected


def points(n: int, dim: int, dtype: torch.dtype, g: torch.Generator, grid: bool) -> torch.Tensor:
    """Random points; on a coarse integer grid when ``grid`` (many equal distances: ties)."""
    p = torch.randn(n, dim, generator=g, dtype=torch.float64)
    return (p * 2).round().to(dtype) if grid else p.to(dtype)


SIZES_X = [40, 0, 3, 70, 1, 0]
SIZES_Y = [10, 5, 7, 12, 0, 3]  # queries of examples 1 and 5 have no points at all


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dim", [2, 3, 12])  # 2, 3: the CPU's kd-tree; 12: its tiled scans
@pytest.mark.parametrize("grid", [False, True])
def test_knn_matches_cpu(dtype, dim, grid):
    g = torch.Generator().manual_seed(dim + 10 * grid)
    x = points(sum(SIZES_X), dim, dtype, g, grid)
    y = points(sum(SIZES_Y), dim, dtype, g, grid)
    ptr_x, ptr_y = offsets(SIZES_X), offsets(SIZES_Y)
    for k in (1, 4, 50, 80):  # 50, 80 > most examples (-1 padding); 80 > 64: the CPU's heap mode
        for cosine in (False, True):
            out = same_on_both(K.knn, x, y, ptr_x, ptr_y, k, cosine)
            assert (out[1] >= 0).sum() > 0


def test_knn_zero_vectors_and_empty_inputs():
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(20, 3, generator=g), torch.randn(6, 3, generator=g)
    x[4], y[2] = 0, 0  # cosine: zero vectors have similarity 0
    same_on_both(K.knn, x, y, offsets([20]), offsets([6]), 5, True)
    same_on_both(K.knn, x[:0], y, offsets([0]), offsets([6]), 3, False)  # no points: all -1
    same_on_both(K.knn, x, y[:0], offsets([20]), offsets([0]), 3, False)  # no queries
    same_on_both(K.knn, x, y, offsets([20, 0]), offsets([0, 6]), 2, False)  # queries only in an empty example


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dim", [2, 3, 12])
def test_radius_matches_cpu(dtype, dim):
    g = torch.Generator().manual_seed(dim)
    ptr_x, ptr_y = offsets(SIZES_X), offsets(SIZES_Y)
    for grid in (False, True):  # grid points sit exactly at distance r: the test is strict
        x = points(sum(SIZES_X), dim, dtype, g, grid)
        y = points(sum(SIZES_Y), dim, dtype, g, grid)
        r = 2.0 if grid else 1.5 * math.sqrt(dim)
        for cap in (0, 1, 5, 1000):
            out = same_on_both(K.radius, x, y, ptr_x, ptr_y, r, cap)
            if cap > 0 and not grid:
                assert out.size(1) > 0
    x = torch.randn(30, 3, generator=g, dtype=dtype)
    same_on_both(K.radius, x, x[:0], offsets([30]), offsets([0]), 1.0, 8)
    same_on_both(K.radius, x[:0], x, offsets([0]), offsets([30]), 1.0, 8)
    same_on_both(K.radius, x, x, offsets([30]), offsets([30]), 0.0, 8)  # r = 0: nothing is closer


def test_radius_many_queries_cross_scan_chunks():
    # more than 1024 queries: the prefix sum walks several chunks with a carry
    g = torch.Generator().manual_seed(5)
    x, y = torch.rand(500, 2, generator=g), torch.rand(3000, 2, generator=g)
    out = same_on_both(K.radius, x, y, offsets([200, 300]), offsets([1700, 1300]), 0.08, 7)
    assert out.size(1) > 3000


@pytest.mark.parametrize("dtype", DTYPES)
def test_fps_matches_cpu(dtype):
    g = torch.Generator().manual_seed(0)
    sizes = [50, 0, 7, 300, 1, 20000]  # 20000: the CPU splits its sweep, the GPU block strides
    src = torch.randn(sum(sizes), 3, generator=g, dtype=torch.float64).to(dtype)
    src[60:90] = src[60]  # duplicates: picked points are never picked again, ties go to the lowest index
    num_samples = torch.tensor([10, 0, 7, 300, 1, 40])
    start = torch.tensor([3, 0, 6, 299, 0, 12345])
    out = same_on_both(K.fps, src, offsets(sizes), num_samples, start)
    assert out.numel() == 358
    grid = (src * 2).round()  # many equal distances
    same_on_both(K.fps, grid, offsets(sizes), num_samples, start)
    same_on_both(K.fps, src, offsets(sizes), torch.zeros(6, dtype=torch.long), start)  # nothing to pick


def random_csr(num_nodes: int, num_edges: int, g: torch.Generator, dtype: torch.dtype):
    row = torch.randint(num_nodes, (num_edges,), generator=g)
    col = torch.randint(num_nodes, (num_edges,), generator=g)  # self-loops included
    weight = torch.randint(0, 4, (num_edges,), generator=g).to(dtype)  # ties in weight
    weight[:20] = -1.0  # ineligible edges
    weight[20:25] = math.nan
    order = row.argsort(stable=True)
    rowptr = torch.zeros(num_nodes + 1, dtype=torch.long)
    rowptr[1:] = torch.bincount(row, minlength=num_nodes).cumsum(0)
    return rowptr, col[order], weight[order]


@pytest.mark.parametrize("dtype", DTYPES)
def test_graclus_matches_cpu(dtype):
    g = torch.Generator().manual_seed(2)
    rowptr, col, weight = random_csr(300, 1500, g, dtype)
    for seed in range(3):
        perm = torch.randperm(300, generator=torch.Generator().manual_seed(seed))
        out = same_on_both(K.graclus, rowptr, col, weight, perm)
        assert (out != torch.arange(300)).any()  # some nodes were matched
    empty = torch.zeros(1, dtype=torch.long)
    same_on_both(K.graclus, empty, empty[:0], torch.ones(0, dtype=dtype), empty[:0])


@pytest.mark.parametrize("dtype", DTYPES)
def test_grid_cluster_matches_cpu(dtype):
    g = torch.Generator().manual_seed(4)
    pos = (torch.randn(500, 3, generator=g, dtype=torch.float64) * 10).to(dtype)
    size = torch.tensor([0.7, 1.3, 2.0], dtype=dtype)
    start, end = pos.amin(0), pos.amax(0)
    same_on_both(K.grid_cluster, pos, size, start, end)
    same_on_both(K.grid_cluster, pos, size, start + 5, end - 5)  # points outside [start, end]
    same_on_both(K.grid_cluster, pos[:0], size, start, end)


def message(exc: BaseException) -> str:
    """The error text after the source location ("function, file:line, ")."""
    first = str(exc).splitlines()[0]
    return first[first.index("gnn_kernels:") :]


def same_error(op, *args, match: str) -> None:
    with pytest.raises(RuntimeError, match=match) as cpu_error:
        op(*args)
    with pytest.raises(RuntimeError, match=match) as cuda_error:
        op(*cuda(args))
    assert message(cuda_error.value) == message(cpu_error.value)


def test_bad_inputs_raise_the_cpu_errors():
    x = torch.randn(10, 3)
    ptr = offsets([10])
    same_error(K.knn, x, x, torch.tensor([0, 11]), ptr, 2, False, match="ptr_x")
    same_error(
        K.knn, x, x, torch.tensor([0, 7, 3, 10]), torch.tensor([0, 3, 6, 10]), 2, False, match="monoton"
    )
    same_error(K.knn, x, x, ptr, torch.tensor([0, 5, 10]), 2, False, match="same number of examples")
    same_error(K.knn, x, x, ptr, ptr, 0, False, match="'k'")
    same_error(K.knn, x, torch.randn(4, 2), ptr, offsets([4]), 2, False, match="dimensions")
    same_error(K.knn, x.long(), x.long(), ptr, ptr, 2, False, match="float32 or float64")
    bad = x.clone()
    bad[3, 1] = math.nan
    same_error(K.knn, bad, x, ptr, ptr, 2, False, match="NaN")
    same_error(K.radius, x, bad, ptr, ptr, 1.0, 4, match="NaN")
    same_error(K.radius, x, x, ptr, ptr, -1.0, 4, match="'r'")
    same_error(K.radius, x, x, ptr, ptr, 1.0, -1, match="max_num_neighbors")
    same_error(K.fps, x, ptr, torch.tensor([11]), torch.tensor([0]), match="num_samples")
    same_error(K.fps, x, ptr, torch.tensor([3]), torch.tensor([10]), match="start")
    same_error(K.fps, bad, ptr, torch.tensor([3]), torch.tensor([1]), match="NaN")
    rowptr, col = torch.tensor([0, 1, 2]), torch.tensor([1, 0])
    same_error(K.graclus, rowptr, col, torch.ones(2), torch.tensor([1, 1]), match="permutation")
    same_error(K.graclus, rowptr, col, torch.ones(2), torch.tensor([0, 2]), match="perm")
    same_error(
        K.graclus, rowptr, torch.tensor([1, 5]), torch.ones(2), torch.tensor([0, 1]), match="out of range"
    )
    same_error(K.graclus, rowptr, col, torch.ones(3), torch.tensor([0, 1]), match="weight")
    same_error(
        K.graclus, torch.tensor([0, 2, 1, 2]), col, torch.ones(2), torch.tensor([0, 1, 2]), match="monoton"
    )
    same_error(K.grid_cluster, x, torch.tensor([1.0, 0.0, 1.0]), x.amin(0), x.amax(0), match="size")
    same_error(K.grid_cluster, x, torch.ones(3), x.amax(0), x.amin(0), match="end >= start")
    same_error(
        K.grid_cluster, x * 1e6, torch.full((3,), 1e-3), x.amin(0) * 1e6, x.amax(0) * 1e6, match="overflows"
    )
    # inputs on different devices are refused, not dereferenced
    with pytest.raises(RuntimeError, match="CUDA"):
        K.knn(x, x.cuda(), ptr.cuda(), ptr.cuda(), 2, False)
    with pytest.raises(RuntimeError, match="CUDA"):
        K.fps(x.cuda(), ptr, torch.tensor([3]).cuda(), torch.tensor([0]).cuda())
    # the device is still usable after the errors
    same_on_both(K.knn, x, x, ptr, ptr, 3, False)
