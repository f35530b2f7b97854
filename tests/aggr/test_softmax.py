"""SoftmaxAggregation against a per-group loop."""

from __future__ import annotations

import pytest
import torch

from gnn.aggr import SoftmaxAggregation

INDEX = torch.tensor([3, 0, 0, 2, 2, 3, 0, 3, 3, 6])  # unsorted; groups 1, 4, 5, 7 empty
DIM_SIZE = 8


def loop(x: torch.Tensor, index: torch.Tensor, dim_size: int, t) -> torch.Tensor:
    """sum_i softmax_i(t * x) * x_i, one group and one channel at a time."""
    out = torch.zeros(dim_size, x.size(1), dtype=x.dtype)
    t = torch.as_tensor(t, dtype=x.dtype).expand(x.size(1))
    for g in range(dim_size):
        rows = [i for i in range(index.numel()) if int(index[i]) == g]
        for f in range(x.size(1)):
            vals = [x[i, f] for i in rows]
            weights = [torch.exp(t[f] * v) for v in vals]
            total = sum(weights)
            out[g, f] = sum(w / total * v for w, v in zip(weights, vals)) if rows else 0.0
    return out


def data(dtype=torch.float64):
    g = torch.Generator().manual_seed(1)
    return torch.randn(INDEX.numel(), 4, generator=g, dtype=dtype)


def ptr_layout(x, index, dim_size):
    perm = torch.argsort(index, stable=True)
    counts = torch.bincount(index, minlength=dim_size)
    return x[perm], torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)])


@pytest.mark.parametrize("t", [0.1, 1.0, 3.0, -2.0])
def test_temperature_against_loop(t):
    x = data()
    expected = loop(x, INDEX, DIM_SIZE, t)
    aggr = SoftmaxAggregation(t=t)
    torch.testing.assert_close(aggr(x, INDEX, dim_size=DIM_SIZE), expected)
    xs, ptr = ptr_layout(x, INDEX, DIM_SIZE)
    torch.testing.assert_close(aggr(xs, ptr=ptr), expected)
    x3 = torch.stack([x, -x], dim=0)
    out3 = aggr(x3, INDEX, dim_size=DIM_SIZE, dim=1)
    torch.testing.assert_close(out3[1], loop(-x, INDEX, DIM_SIZE, t))


def test_learnable_per_channel_temperature_and_its_gradient():
    x = data()
    aggr = SoftmaxAggregation(t=0.5, learn=True, channels=4).double()
    assert torch.equal(aggr.t.detach(), torch.full((4,), 0.5, dtype=torch.float64))
    with torch.no_grad():
        aggr.t.copy_(torch.tensor([0.5, 1.0, 2.0, -1.0]))
    out = aggr(x, INDEX, dim_size=DIM_SIZE)
    t_ref = aggr.t.detach().clone().requires_grad_()
    expected = loop(x, INDEX, DIM_SIZE, t_ref)
    torch.testing.assert_close(out, expected)
    weight = torch.randn(out.shape, dtype=out.dtype)
    (out * weight).sum().backward()
    (expected * weight).sum().backward()
    torch.testing.assert_close(aggr.t.grad, t_ref.grad)
    aggr.reset_parameters()
    assert torch.equal(aggr.t.detach(), torch.full((4,), 0.5, dtype=torch.float64))
    assert list(aggr.state_dict()) == ["t"]
    assert repr(aggr) == "SoftmaxAggregation(learn=True)"
    # one learnable temperature shared by all channels
    shared = SoftmaxAggregation(t=0.7, learn=True).double()
    torch.testing.assert_close(shared(x, INDEX, dim_size=DIM_SIZE), loop(x, INDEX, DIM_SIZE, 0.7))


def test_gradcheck_x_and_t():
    x = data().requires_grad_()
    t = torch.tensor([0.5, 1.0, 2.0, -1.0], dtype=torch.float64, requires_grad=True)
    aggr = SoftmaxAggregation(learn=True, channels=4).double()

    def fn(x_, t_):
        return torch.func.functional_call(aggr, {"t": t_}, (x_, INDEX), {"dim_size": DIM_SIZE})

    torch.autograd.gradcheck(fn, (x, t))


def test_semi_grad_detaches_the_weights():
    x = data()
    semi = SoftmaxAggregation(t=2.0, semi_grad=True)
    torch.testing.assert_close(semi(x, INDEX, dim_size=DIM_SIZE), loop(x, INDEX, DIM_SIZE, 2.0))
    xg = x.clone().requires_grad_()
    semi(xg, INDEX, dim_size=DIM_SIZE).sum().backward()
    # with constant weights, d out / d x_i is the softmax weight of x_i
    alpha = torch.zeros_like(x)
    for g in INDEX.unique():
        rows = INDEX == g
        alpha[rows] = torch.softmax(2.0 * x[rows], dim=0)
    torch.testing.assert_close(xg.grad, alpha)


def test_bad_arguments():
    with pytest.raises(ValueError, match="'semi_grad'"):
        SoftmaxAggregation(learn=True, semi_grad=True)
    with pytest.raises(ValueError, match="'channels'"):
        SoftmaxAggregation(channels=3)
    with pytest.raises(ValueError, match="'x' has 4 channels"):
        SoftmaxAggregation(learn=True, channels=3)(data(), INDEX)
    with pytest.raises(ValueError, match="'ptr' must"):
        SoftmaxAggregation()(data(), ptr=torch.tensor([0, 5, 3, 10]))
    with pytest.raises(ValueError, match="'index' has 9 entries"):
        SoftmaxAggregation()(data(), INDEX[:9])


def test_matches_pyg():
    pyg_aggr = pytest.importorskip("torch_geometric.nn.aggr")
    x = data(torch.float32)
    for kwargs in ({}, {"t": 0.3}, {"t": 2.0, "semi_grad": True}, {"t": 0.5, "learn": True, "channels": 4}):
        theirs = pyg_aggr.SoftmaxAggregation(**kwargs)
        ours = SoftmaxAggregation(**kwargs)
        if "learn" in kwargs:
            with torch.no_grad():
                theirs.t.copy_(torch.tensor([0.5, 1.0, 2.0, -1.0]))
        ours.load_state_dict(theirs.state_dict(), strict=True)
        assert repr(ours) == repr(theirs)
        torch.testing.assert_close(ours(x, INDEX, dim_size=DIM_SIZE), theirs(x, INDEX, dim_size=DIM_SIZE))
