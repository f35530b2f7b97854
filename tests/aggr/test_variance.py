"""VarAggregation and StdAggregation against a per-group loop."""

from __future__ import annotations

import math

import pytest
import torch

from gnn.aggr import StdAggregation, VarAggregation

INDEX = torch.tensor([0, 0, 0, 2, 2, 3, 5, 5, 5, 5, 2, 0])  # unsorted, groups 1 and 4 empty
DIM_SIZE = 8  # larger than the largest index


def loop(x: torch.Tensor, index: torch.Tensor, dim_size: int, fn) -> torch.Tensor:
    out = torch.zeros(dim_size, x.size(1), dtype=x.dtype)
    for g in range(dim_size):
        rows = [i for i in range(index.numel()) if int(index[i]) == g]
        if rows:
            out[g] = fn(torch.stack([x[i] for i in rows]))
    return out


def ref_var(t: torch.Tensor) -> torch.Tensor:
    mean = sum(t) / len(t)
    return sum((r - mean) ** 2 for r in t) / len(t)


def ref_std(t: torch.Tensor) -> torch.Tensor:
    var = ref_var(t)
    out = var.clamp(min=1e-5).sqrt()
    return torch.where(out <= math.sqrt(1e-5), torch.zeros_like(out), out)


def data(dtype=torch.float64):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(INDEX.numel(), 3, generator=g, dtype=dtype)
    x[5] = 4.0  # group 3 has a single element: variance 0
    return x


@pytest.mark.parametrize("cls, ref", [(VarAggregation, ref_var), (StdAggregation, ref_std)])
def test_against_loop_index_ptr_and_dim(cls, ref):
    x = data()
    expected = loop(x, INDEX, DIM_SIZE, ref)
    aggr = cls()
    torch.testing.assert_close(aggr(x, INDEX, dim_size=DIM_SIZE), expected)
    # sorted layout through ptr gives the same numbers
    perm = torch.argsort(INDEX, stable=True)
    counts = torch.bincount(INDEX, minlength=DIM_SIZE)
    ptr = torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)])
    torch.testing.assert_close(aggr(x[perm], ptr=ptr), expected)
    torch.testing.assert_close(aggr(x[perm], INDEX[perm], dim_size=DIM_SIZE), expected)
    # elements along dim 1 of a 3-D tensor
    x3 = torch.stack([x, 2 * x], dim=0)  # [2, E, 3]
    out3 = aggr(x3, INDEX, dim_size=DIM_SIZE, dim=1)
    torch.testing.assert_close(out3[0], expected)
    torch.testing.assert_close(out3[1], loop(2 * x, INDEX, DIM_SIZE, ref))
    # no index: one group
    torch.testing.assert_close(aggr(x), ref(x).unsqueeze(0))


def test_constant_and_empty_groups_give_zero_with_zero_gradient():
    x = data().requires_grad_()
    out = StdAggregation()(x, INDEX, dim_size=DIM_SIZE)
    assert torch.equal(out[[1, 3, 4, 6, 7]], torch.zeros(5, 3, dtype=x.dtype))
    out.sum().backward()
    assert torch.isfinite(x.grad).all()
    assert torch.equal(x.grad[5], torch.zeros(3, dtype=x.dtype))  # the single element of group 3


def test_semi_grad_same_forward_and_mean_only_gradient():
    x = data()
    full, semi = VarAggregation(), VarAggregation(semi_grad=True)
    torch.testing.assert_close(semi(x, INDEX, dim_size=DIM_SIZE), full(x, INDEX, dim_size=DIM_SIZE))
    xg = x.clone().requires_grad_()
    semi(xg, INDEX, dim_size=DIM_SIZE).sum().backward()
    # d/dx_i of (E[x^2] held constant) - mean^2 = -2 * mean / n
    expected = torch.zeros_like(x)
    for i in range(x.size(0)):
        rows = INDEX == INDEX[i]
        expected[i] = -2 * x[rows].mean(0) / int(rows.sum())
    torch.testing.assert_close(xg.grad, expected)
    assert "semi_grad" not in repr(StdAggregation(semi_grad=True))
    assert StdAggregation(semi_grad=True).var_aggr.semi_grad


def test_gradcheck_float64():
    x = data().requires_grad_()
    torch.autograd.gradcheck(lambda t: VarAggregation()(t, INDEX, dim_size=DIM_SIZE), (x,))
    x = (data() * 3).requires_grad_()  # keep every non-empty variance away from the 1e-5 clamp
    torch.autograd.gradcheck(lambda t: StdAggregation()(t[[0, 1, 2, 3, 4]], INDEX[:5]), (x,))


def test_bad_input():
    x = data()
    with pytest.raises(ValueError, match="'index' has 5 entries"):
        VarAggregation()(x, INDEX[:5])
    with pytest.raises(ValueError, match="'index' must be 1-D"):
        StdAggregation()(x, INDEX.view(-1, 1))
    with pytest.raises(TypeError, match="'index' must be an integer"):
        StdAggregation()(x, INDEX.float())
    with pytest.raises(ValueError, match="'ptr' must be monotonically"):
        VarAggregation()(x, ptr=torch.tensor([0, 6, 4, 12]))
    with pytest.raises(ValueError, match="'index' contains index 5"):
        VarAggregation()(x, INDEX, dim_size=5)


@pytest.mark.parametrize("name", ["VarAggregation", "StdAggregation"])
def test_matches_pyg(name):
    pyg_aggr = pytest.importorskip("torch_geometric.nn.aggr")
    import gnn.aggr

    x = data(torch.float32)
    for semi_grad in (False, True):
        theirs = getattr(pyg_aggr, name)(semi_grad=semi_grad)
        ours = getattr(gnn.aggr, name)(semi_grad=semi_grad)
        ours.load_state_dict(theirs.state_dict(), strict=True)
        assert repr(ours) == repr(theirs)
        torch.testing.assert_close(ours(x, INDEX, dim_size=DIM_SIZE), theirs(x, INDEX, dim_size=DIM_SIZE))
