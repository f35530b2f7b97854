"""gnn.core.ops.multi_reduce / multi_spmm on gnn-kernels' native backend against the pure-torch
reference: every subset of the reductions, gradients (elements and gather modes), gradcheck,
torch.compile and the fallbacks."""

from __future__ import annotations

import itertools

import pytest
import torch

from gnn.core import ops, testing, utils
from gnn.core.ops import Reduction, backends

pytest.importorskip("gnn.kernels")
pytestmark = pytest.mark.skipif("native" not in backends.available(), reason="gnn-kernels not usable")

import gnn.kernels.backend as native_backend  # noqa: E402

NAMES = ("sum", "mean", "min", "max", "var", "std", "softmax")
SUBSETS = [list(c) for r in range(1, len(NAMES) + 1) for c in itertools.combinations(NAMES, r)]


def both(fn):
    with ops.backend("native"):
        a = fn()
    with ops.backend("torch"):
        b = fn()
    return a, b


@pytest.fixture
def any_size(monkeypatch):
    """The native backend takes calls of every size (it declines small ones by default)."""
    monkeypatch.setattr(native_backend, "_MIN_WORK_DEFAULT", 0)


def data(
    dtype=torch.float64, index_dtype=torch.int64, elements=400, features=5, groups=60, seed=0, warm=True
):
    """x, an unsorted index and the number of groups. ``warm``: the index is sorted already (as at
    its second use), so that the kernel reads x through the permutation from the first call."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(elements, features, generator=g, dtype=dtype)
    index = torch.randint(0, groups - 12, (elements,), generator=g)
    index[:3] = groups - 11  # three elements
    index[5] = groups - 12  # one element; the last 10 groups are empty
    index = index.to(index_dtype)
    if warm:
        ops.sorted_groups(index, groups)
    return x, index, groups


def reductions_of(names, t=0.7):
    return [Reduction("softmax", t=t) if n == "softmax" else n for n in names]


@pytest.mark.parametrize("names", SUBSETS, ids=["-".join(s) for s in SUBSETS])
def test_every_subset_matches_reference(names, any_size):
    x, index, groups = data()
    reds = reductions_of(names)
    a, b = both(lambda: ops.multi_reduce(x, reds, index, dim_size=groups))
    torch.testing.assert_close(a, b)
    srt = index.sort().values
    a, b = both(lambda: ops.multi_reduce(x, reds, srt, dim_size=groups))
    torch.testing.assert_close(a, b)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("index_dtype", [torch.int32, torch.int64])
@pytest.mark.parametrize("order", ["unsorted", "sorted", "ptr"])
def test_values_and_gradients_match_reference(dtype, index_dtype, order, any_size):
    x, index, groups = data(dtype, index_dtype)
    x = x.t().contiguous().t()  # non-contiguous
    kwargs = {"index": index, "dim_size": groups}
    if order != "unsorted":
        perm = torch.argsort(index, stable=True)
        x, index = x[perm], index[perm]
        kwargs = {"index": index, "dim_size": groups}
        if order == "ptr":
            kwargs = {"ptr": ops.ptr_from_sorted_index(index, groups)}
    t = torch.linspace(0.2, 1.5, 5, dtype=dtype, requires_grad=True)
    reds = [
        "sum", "mean", "min", "max", "var", "std", Reduction("softmax", t=t),
        Reduction("std", semi_grad=True), Reduction("var", semi_grad=True),
        Reduction("softmax", t=2.0, semi_grad=True), Reduction("softmax", t=-0.5),
    ]  # fmt: skip
    w = torch.randn(groups, len(reds), 5, dtype=dtype)
    results = []
    for backend in ("native", "torch"):
        xg = x.detach().clone().requires_grad_()
        with ops.backend(backend):
            out = ops.multi_reduce(xg, reds, **kwargs)
            results.append((out, *torch.autograd.grad((out * w).sum(), [xg, t])))
    tol = {"atol": 1e-4, "rtol": 1e-4} if dtype == torch.float32 else {}
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, **tol)


def test_gather_mode_matches_reference_with_gradients(any_size):
    x, edge_index = testing.random_graph(50, 400, 6, seed=4, dtype=torch.float64)
    edge_index[1] = edge_index[1] % 40  # receivers 40.. get nothing
    csr = utils.to_csr(edge_index, (50, 50), cache=False)
    t = torch.full((6,), 0.8, dtype=torch.float64, requires_grad=True)
    reds = [
        "sum",
        "mean",
        "min",
        "max",
        "var",
        "std",
        Reduction("softmax", t=t),
        Reduction("std", semi_grad=True),
    ]
    results = []
    for backend in ("native", "torch"):
        xg = x.clone().requires_grad_()
        with ops.backend(backend):
            out = ops.multi_spmm(csr, xg, reds)
            w = torch.randn(out.shape, generator=torch.Generator().manual_seed(1), dtype=out.dtype)
            results.append((out, *torch.autograd.grad((out * w).sum(), [xg, t])))
    for a, b in zip(*results):
        torch.testing.assert_close(a, b)


def test_gradcheck_on_the_kernel(any_size):
    x, index, groups = data(elements=24, features=2, groups=16)
    x = (x + torch.linspace(0, 1, 48, dtype=torch.float64).view(24, 2)).requires_grad_()
    t = torch.tensor([0.5, -1.0], dtype=torch.float64, requires_grad=True)
    csr = utils.to_csr(torch.stack([index % 7, index]), (24, groups), cache=False)

    def segment(x, t):
        reds = ["sum", "mean", "min", "max", "var", "std", Reduction("softmax", t=t)]
        return ops.multi_reduce(x, reds, index, dim_size=groups)

    def gather(x, t):
        return ops.multi_spmm(csr, x, ["mean", "max", "std", Reduction("softmax", t=t)])

    with ops.backend("native"):
        assert torch.autograd.gradcheck(segment, (x, t))
        assert torch.autograd.gradcheck(gather, (x, t))


def test_native_runs_and_small_calls_fall_back():
    x, index, groups = data(dtype=torch.float32, elements=3000, features=16, groups=300)
    with ops.backend("native"):  # (also under GNN_KERNELS=torch)
        name, _ = backends.select("segment_multi", **ops._dispatch.context(x, work=x.numel()))
        assert name == "native"
        name, _ = backends.select("segment_multi", **ops._dispatch.context(x[:10], work=10 * 16))
        assert name == "torch"
    a, b = both(lambda: ops.multi_reduce(x, ["mean", "max", "std"], index, dim_size=groups))
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_torch_compile_without_graph_breaks_on_the_kernel():
    x, edge_index = testing.random_graph(400, 4000, 16, seed=5)
    csr = utils.to_csr(edge_index, (400, 400), cache=False)
    t = torch.full((16,), 0.5, requires_grad=True)
    x = x.requires_grad_()

    def fn(x, t):
        return ops.multi_spmm(csr, x, ["mean", "max", "std", Reduction("softmax", t=t)])

    compiled = torch.compile(fn, fullgraph=True, backend="aot_eager")
    with ops.backend("native"):
        out = compiled(x, t)
        want = fn(x, t)
        torch.testing.assert_close(out, want)
        got = torch.autograd.grad(out.sum(), [x, t])
        ref = torch.autograd.grad(fn(x, t).sum(), [x, t])
    for a, b in zip(got, ref):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


def test_an_unsorted_index_is_sorted_at_its_second_use(any_size, monkeypatch):
    x, index, groups = data(warm=False)
    sorts = []
    real = ops.multi._sort_groups

    def counting(*args):
        sorts.append(1)
        return real(*args)

    monkeypatch.setattr(ops.multi, "_sort_groups", counting)
    kernel = []
    real_kernel = native_backend.NativeBackend.segment_multi
    monkeypatch.setattr(
        native_backend.NativeBackend,
        "segment_multi",
        lambda self, *args: kernel.append(1) or real_kernel(self, *args),
    )
    reds = ["mean", "max", "std"]
    with ops.backend("native"):
        first = ops.multi_reduce(x, reds, index, dim_size=groups)  # reductions one by one, no sort
        assert not sorts and not kernel
        second = ops.multi_reduce(x, reds, index, dim_size=groups)  # sorted now: one kernel pass
        third = ops.multi_reduce(x, reds, index, dim_size=groups)
    assert len(sorts) == 1 and len(kernel) == 2
    torch.testing.assert_close(first, second)
    torch.testing.assert_close(second, third)
    srt = index.sort().values  # a sorted index needs no sort: the kernel runs at once
    with ops.backend("native"):
        ops.multi_reduce(x, reds, srt, dim_size=groups)
    assert len(sorts) == 1 and len(kernel) == 3
