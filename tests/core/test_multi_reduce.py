"""gnn.core.ops.multi_reduce / multi_spmm: every subset of the one-pass reductions against a
per-group loop written here (values and gradients), on the backend that runs by default
(gnn-kernels' kernel when installed and the call is large enough, else the pure-torch
reference), and on the pure-torch reference itself."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from gnn.core import cache, ops, testing, utils
from gnn.core.ops import Reduction

NAMES = ("sum", "mean", "min", "max", "var", "std", "softmax")
SUBSETS = [list(c) for r in range(1, len(NAMES) + 1) for c in itertools.combinations(NAMES, r)]
T = 0.7  # the softmax's inverse temperature in these tests


def loop_reduce(x: torch.Tensor, index: torch.Tensor, groups: int, name: str, t=T) -> torch.Tensor:
    """One reduction of the rows of x [E, F] per group, by a loop over groups (0 for an empty one)."""
    rows = []
    for g in range(groups):
        v = x[index == g]
        if v.shape[0] == 0:
            rows.append(torch.zeros(x.shape[1:], dtype=x.dtype))
            continue
        mean = v.mean(0)
        var = (v * v).mean(0) - mean * mean
        if name == "sum":
            rows.append(v.sum(0))
        elif name == "mean":
            rows.append(mean)
        elif name == "min":
            rows.append(v.min(0).values)
        elif name == "max":
            rows.append(v.max(0).values)
        elif name == "var":
            rows.append(var)
        elif name == "std":
            std = var.clamp(min=1e-5).sqrt()
            rows.append(std.masked_fill(std <= math.sqrt(1e-5), 0.0))
        else:
            score = v * t
            e = (score - score.max(0).values.detach()).exp()
            rows.append((e * v).sum(0) / (e.sum(0) + 1e-16))
    return torch.stack(rows) if rows else x.new_zeros((0,) + tuple(x.shape[1:]))


def groups_data(dtype=torch.float64, index_dtype=torch.int64, elements=40, features=3, groups=9, seed=0):
    """Random rows; groups 7 and 8 empty, group 6 with one element."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(elements, features, generator=g, dtype=dtype)
    index = torch.randint(0, 6, (elements,), generator=g)
    index[3] = 6
    return x, index.to(index_dtype), groups


def check(out: torch.Tensor, x, index, groups, names, tol=None) -> None:
    assert out.shape == (groups, len(names)) + tuple(x.shape[1:])
    for r, name in enumerate(names):
        torch.testing.assert_close(out[:, r], loop_reduce(x, index, groups, name), **(tol or {}))


_X, _INDEX, _GROUPS = groups_data()
_PERM = torch.argsort(_INDEX, stable=True)
_PTR = ops.ptr_from_sorted_index(_INDEX[_PERM], _GROUPS)
_EXPECTED = {n: loop_reduce(_X, _INDEX, _GROUPS, n) for n in NAMES}  # the same in sorted order


@pytest.mark.parametrize("names", SUBSETS, ids=["-".join(s) for s in SUBSETS])
def test_every_subset_against_the_single_reductions(names):
    reductions = [Reduction("softmax", t=T) if n == "softmax" else n for n in names]
    for backend in (None, "torch"):
        with ops.backend(backend) if backend else _nothing():
            by_index = ops.multi_reduce(_X, reductions, _INDEX, dim_size=_GROUPS)
            by_ptr = ops.multi_reduce(_X[_PERM], reductions, ptr=_PTR)
        for out in (by_index, by_ptr):
            assert out.shape == (_GROUPS, len(names), 3)
            for r, name in enumerate(names):
                torch.testing.assert_close(out[:, r], _EXPECTED[name])


class _nothing:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return None


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("index_dtype", [torch.int32, torch.int64])
def test_dtypes_non_contiguous_and_large_calls(dtype, index_dtype):
    # large enough for a compiled backend to take the call (it declines tiny ones)
    x, index, groups = groups_data(dtype, index_dtype, elements=3000, features=16, groups=300)
    x_nc = x.t().contiguous().t()  # non-contiguous, same values
    assert not x_nc.is_contiguous()
    tol = {"atol": 1e-5, "rtol": 1e-4} if dtype == torch.float32 else None
    names = list(NAMES)
    reductions = [*NAMES[:-1], Reduction("softmax", t=T)]
    check(ops.multi_reduce(x_nc, reductions, index, dim_size=groups), x, index, groups, names, tol)


def test_gradients_match_the_loop_reference():
    x, index, groups = groups_data(elements=60, features=4)
    x = x.requires_grad_()
    t = torch.full((4,), T, dtype=torch.float64, requires_grad=True)
    reductions = ["sum", "mean", "min", "max", "var", "std", Reduction("softmax", t=t)]
    w = torch.randn(groups, len(NAMES), 4, dtype=torch.float64)
    for backend in (None, "torch"):
        with ops.backend(backend) if backend else _nothing():
            out = ops.multi_reduce(x, reductions, index, dim_size=groups)
            got = torch.autograd.grad((out * w).sum(), [x, t])
        ref = torch.stack([loop_reduce(x, index, groups, n, t) for n in NAMES], 1)
        want = torch.autograd.grad((ref * w).sum(), [x, t])
        for a, b in zip(got, want):
            torch.testing.assert_close(a, b)


def test_semi_grad_and_ties():
    x = torch.tensor([[1.0], [3.0], [3.0], [2.0], [2.0]], dtype=torch.float64, requires_grad=True)
    index = torch.tensor([0, 0, 0, 1, 1])
    out = ops.multi_reduce(x, ["max", "min"], index, dim_size=2)
    (grad,) = torch.autograd.grad(out.sum(), [x])
    # ties share the gradient, as torch's amax / amin
    assert grad.view(-1).tolist() == [1.0, 0.5, 0.5, 1.0, 1.0]
    out = ops.multi_reduce(x, [Reduction("var", semi_grad=True)], index, dim_size=2)
    (grad,) = torch.autograd.grad(out.sum(), [x])
    mean = torch.tensor([7 / 3, 7 / 3, 7 / 3, 2.0, 2.0], dtype=torch.float64)
    counts = torch.tensor([3.0, 3, 3, 2, 2], dtype=torch.float64)
    torch.testing.assert_close(grad.view(-1), -2 * mean / counts)  # only through the mean
    soft = ops.multi_reduce(x, [Reduction("softmax", t=2.0, semi_grad=True)], index, dim_size=2)
    (grad,) = torch.autograd.grad(soft.sum(), [x])
    w = torch.softmax(2.0 * x.detach()[:3, 0], 0)
    torch.testing.assert_close(grad.view(-1)[:3], w)  # the weights carry no gradient


def test_gradcheck_float64():
    x, index, groups = groups_data(elements=20, features=2, groups=8)
    x = (x + torch.linspace(0, 1, 40, dtype=torch.float64).view(20, 2)).requires_grad_()  # no ties
    t = torch.tensor([0.5, 1.5], dtype=torch.float64, requires_grad=True)

    def fn(x, t):
        reductions = ["sum", "mean", "min", "max", "var", "std", Reduction("softmax", t=t)]
        return ops.multi_reduce(x, reductions, index, dim_size=groups)

    assert torch.autograd.gradcheck(fn, (x, t))


def test_dim_layout_and_broadcast_temperature():
    x, index, groups = groups_data(features=3)
    x3 = torch.stack([x, 2 * x])  # [2, E, 3], elements along dim 1
    t = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64)
    out = ops.multi_reduce(x3, ["mean", Reduction("softmax", t=t)], index, dim=1, dim_size=groups)
    assert out.shape == (2, groups, 2, 3)
    torch.testing.assert_close(out[1, :, 0], loop_reduce(2 * x, index, groups, "mean"))
    torch.testing.assert_close(out[0, :, 1], loop_reduce(x, index, groups, "softmax", t))


def test_multi_spmm_matches_gathered_messages():
    x, edge_index = testing.random_graph(30, 200, 5, seed=3, dtype=torch.float64)
    edge_index[1] = edge_index[1] % 25  # receivers 25.. get nothing
    csr = utils.to_csr(edge_index, (30, 30), cache=False)
    names = list(NAMES)
    reductions = [*NAMES[:-1], Reduction("softmax", t=T)]
    x = x.requires_grad_()
    out = ops.multi_spmm(csr, x, reductions)
    messages = x[edge_index[0]]
    ref = torch.stack([loop_reduce(messages, edge_index[1], 30, n) for n in names], 1)
    torch.testing.assert_close(out, ref)
    w = torch.randn_like(ref)
    torch.testing.assert_close(
        torch.autograd.grad((out * w).sum(), x)[0], torch.autograd.grad((ref * w).sum(), x)[0]
    )


def test_unsorted_index_is_sorted_once_per_tensor():
    x, index, groups = groups_data()
    cache.clear()
    calls = []
    real = ops.multi._sort_groups

    def counting(index, groups):
        calls.append(1)
        return real(index, groups)

    ops.multi._sort_groups, saved = counting, real
    try:
        for _ in range(3):
            ops.sorted_groups(index, groups)
        edge_index = torch.stack([index, index])
        for _ in range(3):  # a row view is a new object each time: its facts live with edge_index
            ops.sorted_groups(edge_index[1], groups)
        index.add_(0)  # an in-place change: sorted again
        ops.sorted_groups(index, groups)
    finally:
        ops.multi._sort_groups = saved
    assert len(calls) == 3
    ptr, perm = ops.sorted_groups(index, groups)
    assert torch.equal(index[perm], index.sort(stable=True).values)
    assert torch.equal(ptr, ops.ptr_from_sorted_index(index.sort().values, groups).long())
    assert ops.sorted_groups(index.sort().values, groups)[1] is None  # sorted already: no permutation


def test_empty_inputs():
    x = torch.zeros(0, 3)
    out = ops.multi_reduce(x, list(NAMES), torch.zeros(0, dtype=torch.long), dim_size=4)
    assert out.shape == (4, 7, 3) and not out.any()
    assert ops.multi_reduce(x, ["max"], torch.zeros(0, dtype=torch.long)).shape == (0, 1, 3)
    csr = utils.to_csr(torch.zeros(2, 0, dtype=torch.long), (5, 5), cache=False)
    assert ops.multi_spmm(csr, torch.randn(5, 2), ["mean", "std"]).abs().sum() == 0


def test_bad_input():
    x, index, groups = groups_data()
    with pytest.raises(ValueError, match="reduce"):
        ops.multi_reduce(x, ["median"], index)
    with pytest.raises(ValueError, match="reduce"):
        ops.multi_reduce(x, [], index)
    with pytest.raises(ValueError, match="'t'"):
        ops.multi_reduce(x, [Reduction("mean", t=1.0)], index)
    with pytest.raises(ValueError, match="semi_grad"):
        ops.multi_reduce(x, [Reduction("max", semi_grad=True)], index)
    with pytest.raises(ValueError, match="'t'"):
        ops.multi_reduce(x, [Reduction("softmax", t=torch.ones(5))], index)
    with pytest.raises(TypeError, match="'t'"):
        ops.multi_reduce(x, [Reduction("softmax", t="hot")], index)
    with pytest.raises(ValueError, match="index"):
        ops.multi_reduce(x, ["sum"], index[:-1])
    with pytest.raises(IndexError, match="index"):
        ops.multi_reduce(x, ["sum"], index, dim_size=3)
    with pytest.raises(ValueError, match="ptr"):
        ops.multi_reduce(x, ["sum"], ptr=torch.tensor([0, 5, 3]))
    with pytest.raises(TypeError, match="index"):
        ops.multi_reduce(x, ["sum"], index.float())
    with pytest.raises(TypeError, match="csr"):
        ops.multi_spmm(index, x, ["sum"])
    csr = utils.to_csr(torch.tensor([[0], [1]]), (3, 3), cache=False)
    with pytest.raises(ValueError, match="'x'"):
        ops.multi_spmm(csr, torch.randn(4, 2), ["sum"])


def test_torch_compile_without_graph_breaks():
    x, index, groups = groups_data(elements=3000, features=16, groups=300, dtype=torch.float32)
    t = torch.full((16,), 0.5, requires_grad=True)

    def fn(x, index, t):
        return ops.multi_reduce(x, ["mean", "max", "std", Reduction("softmax", t=t)], index, dim_size=300)

    compiled = torch.compile(fn, fullgraph=True, backend="aot_eager")  # raises on a graph break
    x = x.requires_grad_()
    out = compiled(x, index, t)
    torch.testing.assert_close(out, fn(x, index, t))
    got = torch.autograd.grad(out.sum(), [x, t])
    want = torch.autograd.grad(fn(x, index, t).sum(), [x, t])
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
