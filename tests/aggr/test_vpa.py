"""VariancePreservingAggregation against a per-group loop."""

from __future__ import annotations

import math

import pytest
import torch

from gnn.aggr import VariancePreservingAggregation

INDEX = torch.tensor([2, 0, 2, 2, 0, 5, 2])  # sizes 2, 0, 4, 0, 0, 1 (+ 1 empty past the end)
DIM_SIZE = 7


def loop(x, index, dim_size):
    out = torch.zeros(dim_size, x.size(1), dtype=x.dtype)
    for g in range(dim_size):
        rows = [i for i in range(index.numel()) if int(index[i]) == g]
        if rows:
            out[g] = sum(x[i] for i in rows) / math.sqrt(len(rows))
    return out


def data(dtype=torch.float64):
    return torch.randn(INDEX.numel(), 3, generator=torch.Generator().manual_seed(7), dtype=dtype)


def test_against_loop_index_ptr_and_dim():
    x = data()
    aggr = VariancePreservingAggregation()
    expected = loop(x, INDEX, DIM_SIZE)
    torch.testing.assert_close(aggr(x, INDEX, dim_size=DIM_SIZE), expected)
    perm = torch.argsort(INDEX, stable=True)
    ptr = torch.cat([torch.zeros(1, dtype=torch.long), torch.bincount(INDEX, minlength=DIM_SIZE).cumsum(0)])
    torch.testing.assert_close(aggr(x[perm], ptr=ptr), expected)
    out3 = aggr(torch.stack([x, x + 1]), INDEX, dim_size=DIM_SIZE, dim=1)
    torch.testing.assert_close(out3[1], loop(x + 1, INDEX, DIM_SIZE))
    assert repr(aggr) == "VariancePreservingAggregation()"
    # the variance of a sum of n i.i.d. unit-variance inputs, scaled by 1/sqrt(n), stays 1
    big = torch.randn(40000, 1, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    out = aggr(big, torch.arange(40000) // 16)
    assert out.var().item() == pytest.approx(1.0, abs=0.05)


def test_gradcheck_and_bad_input():
    x = data().requires_grad_()
    torch.autograd.gradcheck(lambda t: VariancePreservingAggregation()(t, INDEX, dim_size=DIM_SIZE), (x,))
    with pytest.raises(ValueError, match="'index' has 2 entries"):
        VariancePreservingAggregation()(data(), INDEX[:2])
    with pytest.raises(ValueError, match="'ptr' must end"):
        VariancePreservingAggregation()(data(), ptr=torch.tensor([0, 2, 5]))


def test_matches_pyg():
    pyg_aggr = pytest.importorskip("torch_geometric.nn.aggr")
    x = data(torch.float32)
    theirs, ours = pyg_aggr.VariancePreservingAggregation(), VariancePreservingAggregation()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    assert repr(ours) == repr(theirs)
    torch.testing.assert_close(ours(x, INDEX, dim_size=DIM_SIZE), theirs(x, INDEX, dim_size=DIM_SIZE))
