"""The pure-torch ops against loop references, plus backend selection."""

from __future__ import annotations

import pytest
import torch

from gnn.core import ops
from gnn.core.ops import backends
from gnn.core.utils import to_csr

LOOP = {
    "sum": lambda t: t.sum(0),
    "mean": lambda t: t.mean(0),
    "max": lambda t: t.max(0).values,
    "min": lambda t: t.min(0).values,
    "mul": lambda t: t.prod(0),
}


def loop_scatter(src, index, n, reduce):
    out = torch.full((n,) + src.shape[1:], 1.0 if reduce == "mul" else 0.0, dtype=src.dtype)
    for g in range(n):
        rows = src[index == g]
        if len(rows):
            out[g] = LOOP[reduce](rows)
    return out


@pytest.mark.parametrize("reduce", list(LOOP))
@pytest.mark.parametrize("index_dtype", [torch.int64, torch.int32])
def test_scatter_and_segment_match_loop(reduce, index_dtype):
    g = torch.Generator().manual_seed(0)
    src = torch.randn(20, 3, dtype=torch.float64, generator=g)
    index = torch.randint(0, 6, (20,), generator=g).sort().values.to(index_dtype)
    expected = loop_scatter(src, index.long(), 8, reduce)  # groups 6, 7 empty
    torch.testing.assert_close(ops.scatter(src, index, 0, 8, reduce), expected)
    ptr = torch.cat([torch.zeros(1, dtype=torch.long), torch.bincount(index.long(), minlength=8).cumsum(0)])
    torch.testing.assert_close(ops.segment(src, ptr, 0, reduce), expected)


def test_scatter_other_dim_and_noncontiguous():
    src = torch.randn(10, 3).t()  # [3, 10], non-contiguous
    assert not src.is_contiguous()
    index = torch.tensor([0, 1, 1, 2, 0, 0, 3, 3, 3, 1])
    out = ops.scatter(src, index, dim=1, dim_size=5, reduce="sum")
    expected = loop_scatter(src.t().contiguous(), index, 5, "sum").t()
    torch.testing.assert_close(out, expected)


@pytest.mark.parametrize("reduce", ["sum", "mean", "max", "min"])
def test_spmm_matches_gather_scatter(reduce):
    g = torch.Generator().manual_seed(1)
    edge_index = torch.randint(0, 7, (2, 30), generator=g)
    x = torch.randn(7, 4, dtype=torch.float64, generator=g)
    w = torch.rand(30, dtype=torch.float64, generator=g)
    csr = to_csr(edge_index, (7, 7), cache=False)
    for weight in (None, w):
        msgs = x[edge_index[0]] * (1 if weight is None else weight.view(-1, 1))
        expected = loop_scatter(msgs, edge_index[1], 7, reduce)
        torch.testing.assert_close(ops.spmm(csr, x, weight, reduce), expected)


def test_spmm_gradcheck_x_and_weight():
    g = torch.Generator().manual_seed(2)
    edge_index = torch.randint(0, 5, (2, 14), generator=g)
    csr = to_csr(edge_index, (5, 5), cache=False)
    x = torch.randn(5, 3, dtype=torch.float64, requires_grad=True, generator=g)
    w = torch.rand(14, dtype=torch.float64, generator=g)
    for reduce in ("sum", "mean"):
        torch.autograd.gradcheck(lambda x: ops.spmm(csr, x, w, reduce), (x,))
    w.requires_grad_(True)
    torch.autograd.gradcheck(lambda x, w: ops.spmm(csr, x, w, "sum"), (x, w))


@pytest.mark.parametrize("reduce", ["sum", "mean", "max"])
def test_spmm_with_self_term_matches_loop_and_gradcheck(reduce):
    # out[i] = reduce_{j -> i} w_ji x_j + s * x_self[i]; isolated rows get the self term only
    g = torch.Generator().manual_seed(5)
    edge_index = torch.randint(0, 6, (2, 25), generator=g)
    edge_index[1, edge_index[1] == 2] = 3  # node 2 receives nothing
    csr = to_csr(edge_index, (6, 8), cache=False)
    x = torch.randn(6, 2, 3, dtype=torch.float64, generator=g, requires_grad=True)
    x_self = torch.randn(8, 2, 3, dtype=torch.float64, generator=g, requires_grad=True)
    w = torch.rand(25, dtype=torch.float64, generator=g)
    for weight in (None, w):
        msgs = x.detach()[edge_index[0]] * (1 if weight is None else weight.view(-1, 1, 1))
        expected = loop_scatter(msgs, edge_index[1], 8, reduce) + 0.75 * x_self.detach()
        out = ops.spmm(csr, x, weight, reduce, x_self=x_self, self_weight=0.75)
        torch.testing.assert_close(out, expected)
    if reduce != "max":
        torch.autograd.gradcheck(
            lambda x, xs: ops.spmm(csr, x, w, reduce, x_self=xs, self_weight=-1.5), (x, x_self)
        )
    with pytest.raises(ValueError, match="x_self"):
        ops.spmm(csr, x, None, reduce, x_self=x_self[:5])
    with pytest.raises(TypeError, match="self_weight"):
        ops.spmm(csr, x, None, reduce, x_self=x_self, self_weight=torch.tensor(1.0))


def test_softmax_matches_loop_and_ptr():
    g = torch.Generator().manual_seed(3)
    src = torch.randn(12, 2, dtype=torch.float64, generator=g)
    index = torch.tensor([0, 0, 0, 1, 1, 3, 3, 3, 3, 3, 4, 4])
    out = ops.softmax(src, index, num_nodes=6)
    for grp in range(6):
        rows = index == grp
        if rows.any():
            torch.testing.assert_close(out[rows], torch.softmax(src[rows], 0))
    ptr = torch.tensor([0, 3, 5, 5, 10, 12])
    torch.testing.assert_close(ops.softmax(src, ptr=ptr), out)
    src.requires_grad_(True)
    torch.autograd.gradcheck(lambda s: ops.softmax(s, index, num_nodes=6), (src,))


def test_segment_matmul_matches_loop():
    g = torch.Generator().manual_seed(4)
    inputs = torch.randn(9, 3, generator=g)
    other = torch.randn(3, 3, 2, generator=g)
    ptr = torch.tensor([0, 4, 4, 9])
    out = ops.segment_matmul(inputs, ptr, other)
    expected = torch.cat([inputs[:4] @ other[0], inputs[4:] @ other[2]])
    torch.testing.assert_close(out, expected)
    # rows with extra dimensions, and the errors that name the argument
    stacked = ops.segment_matmul(inputs.view(9, 1, 3).expand(9, 2, 3), ptr, other)
    torch.testing.assert_close(stacked, expected.unsqueeze(1).expand(9, 2, 2))
    with pytest.raises(TypeError, match="'other' must have the dtype"):
        ops.segment_matmul(inputs, ptr, other.double())
    with pytest.raises(ValueError, match="'inputs' must have shape"):
        ops.segment_matmul(torch.randn(9), ptr, other)


def test_bad_inputs_name_the_argument():
    src = torch.randn(5, 2)
    with pytest.raises(ValueError, match="'index' has 4 entries"):
        ops.scatter(src, torch.zeros(4, dtype=torch.long))
    with pytest.raises(TypeError, match="'index' must be an integer"):
        ops.scatter(src, torch.zeros(5))
    with pytest.raises(ValueError, match="'index' contains index 5"):
        ops.scatter(src, torch.tensor([0, 1, 2, 3, 5]), dim_size=5)
    with pytest.raises(ValueError, match="'reduce'"):
        ops.scatter(src, torch.zeros(5, dtype=torch.long), reduce="median")
    with pytest.raises(ValueError, match="'ptr' must be monotonically"):
        ops.segment(src, torch.tensor([0, 3, 2, 5]))
    with pytest.raises(ValueError, match="'ptr' must end"):
        ops.segment(src, torch.tensor([0, 3, 4]))
    with pytest.raises(ValueError, match="'dim'"):
        ops.scatter(src, torch.zeros(5, dtype=torch.long), dim=2)
    csr = to_csr(torch.tensor([[0, 1], [1, 0]]), (2, 2), cache=False)
    with pytest.raises(ValueError, match="'x' has 3 rows"):
        ops.spmm(csr, torch.randn(3, 2))
    with pytest.raises(ValueError, match="'edge_weight' must have shape"):
        ops.spmm(csr, torch.randn(2, 2), torch.ones(3))


class _CountingBackend:
    """A fake compiled backend: supports only float64 sum scatter."""

    def __init__(self):
        self.calls = 0

    def supports(self, op, *, device, dtype, reduce, requires_grad):
        return op == "scatter" and dtype == torch.float64 and reduce == "sum"

    def scatter(self, src, index, dim, dim_size, reduce):
        self.calls += 1
        return ops.reference.scatter(src, index, dim, dim_size, reduce)


def test_backend_selection_by_capability_and_forcing(monkeypatch):
    fake = _CountingBackend()
    monkeypatch.setattr(backends, "_backends", [("fake", fake)])
    monkeypatch.delenv("GNN_KERNELS", raising=False)
    index = torch.tensor([0, 1, 1])
    ops.scatter(torch.ones(3, dtype=torch.float64), index)
    assert fake.calls == 1
    ops.scatter(torch.ones(3), index)  # float32: not supported -> torch
    ops.scatter(torch.ones(3, dtype=torch.float64), index, reduce="max")
    assert fake.calls == 1
    with ops.backend("torch"):
        ops.scatter(torch.ones(3, dtype=torch.float64), index)
    assert fake.calls == 1
    monkeypatch.setenv("GNN_KERNELS", "torch")
    ops.scatter(torch.ones(3, dtype=torch.float64), index)
    assert fake.calls == 1
    assert backends.available() == ["fake", "torch"]
    with pytest.raises(ValueError, match="unknown kernel backend"):
        with ops.backend("nope"):
            pass
