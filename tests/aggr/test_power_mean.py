"""PowerMeanAggregation against a per-group loop."""

from __future__ import annotations

import pytest
import torch

from gnn.aggr import PowerMeanAggregation

INDEX = torch.tensor([1, 1, 0, 4, 4, 4, 1, 0, 6])  # groups 2, 3, 5, 7 empty
DIM_SIZE = 8


def loop(x, index, dim_size, p, lo=1e-4, hi=100.0):
    """((1/n) sum clamp(x)^p) clamped, to the power 1/p; an empty group's mean is 0."""
    p = torch.as_tensor(p, dtype=x.dtype).expand(x.size(1))
    out = torch.zeros(dim_size, x.size(1), dtype=x.dtype)
    for g in range(dim_size):
        rows = [i for i in range(index.numel()) if int(index[i]) == g]
        for f in range(x.size(1)):
            vals = [min(max(float(x[i, f]), lo), hi) for i in rows]
            mean = sum(v ** float(p[f]) for v in vals) / len(vals) if vals else 0.0
            mean = min(max(mean, lo), hi)
            out[g, f] = mean ** (1.0 / float(p[f]))
    return out


def data(dtype=torch.float64):
    g = torch.Generator().manual_seed(2)
    x = torch.rand(INDEX.numel(), 3, generator=g, dtype=dtype) * 5 + 0.1
    x[0, 0] = 500.0  # above clamp_max
    x[3, 1] = -1.0  # below clamp_min
    return x


@pytest.mark.parametrize("p", [2.0, 0.5, 3.0, -1.0])
def test_against_loop(p):
    x = data()
    expected = loop(x, INDEX, DIM_SIZE, p)
    aggr = PowerMeanAggregation(p=p)
    torch.testing.assert_close(aggr(x, INDEX, dim_size=DIM_SIZE), expected)
    perm = torch.argsort(INDEX, stable=True)
    ptr = torch.cat([torch.zeros(1, dtype=torch.long), torch.bincount(INDEX, minlength=DIM_SIZE).cumsum(0)])
    torch.testing.assert_close(aggr(x[perm], ptr=ptr), expected)
    out3 = aggr(torch.stack([x, x / 2]), INDEX, dim_size=DIM_SIZE, dim=1)
    torch.testing.assert_close(out3[1], loop(x / 2, INDEX, DIM_SIZE, p))
    # empty groups give clamp_min ** (1 / p)
    torch.testing.assert_close(expected[2], torch.full((3,), 1e-4 ** (1 / p), dtype=x.dtype))


def test_p_one_is_the_plain_mean_and_clamps_are_optional():
    x = data()
    expected = torch.zeros(DIM_SIZE, 3, dtype=x.dtype)
    for g in INDEX.unique():
        expected[g] = x[INDEX == g].mean(0)
    torch.testing.assert_close(PowerMeanAggregation()(x, INDEX, dim_size=DIM_SIZE), expected)
    pos = x.abs() + 0.5
    out = PowerMeanAggregation(p=2.0, clamp_min=None, clamp_max=None)(pos, INDEX, dim_size=DIM_SIZE)
    big = float("inf")
    torch.testing.assert_close(out, loop(pos, INDEX, DIM_SIZE, 2.0, lo=-big, hi=big))
    out = PowerMeanAggregation(p=3.0, clamp_min=0.5, clamp_max=None)(x, INDEX, dim_size=DIM_SIZE)
    torch.testing.assert_close(out, loop(x, INDEX, DIM_SIZE, 3.0, lo=0.5, hi=big))


def test_learnable_per_channel_power_and_gradcheck():
    x = data()
    aggr = PowerMeanAggregation(p=1.5, learn=True, channels=3).double()
    assert torch.equal(aggr.p.detach(), torch.full((3,), 1.5, dtype=torch.float64))
    with torch.no_grad():
        aggr.p.copy_(torch.tensor([1.0, 2.0, 3.0]))
    torch.testing.assert_close(aggr(x, INDEX, dim_size=DIM_SIZE), loop(x, INDEX, DIM_SIZE, [1.0, 2.0, 3.0]))
    assert repr(aggr) == "PowerMeanAggregation(learn=True)"
    assert list(aggr.state_dict()) == ["p"]
    # gradients of x and p, away from the clamps
    inside = (torch.rand(INDEX.numel(), 3, dtype=torch.float64) + 0.5).requires_grad_()
    p = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64, requires_grad=True)
    torch.autograd.gradcheck(
        lambda x_, p_: torch.func.functional_call(aggr, {"p": p_}, (x_, INDEX), {"dim_size": 7})[
            [0, 1, 4, 6]
        ],
        (inside, p),
    )
    aggr.reset_parameters()
    assert torch.equal(aggr.p.detach(), torch.full((3,), 1.5, dtype=torch.float64))


def test_bad_arguments():
    with pytest.raises(ValueError, match="'channels'"):
        PowerMeanAggregation(channels=2)
    with pytest.raises(ValueError, match="'x' has 3 channels"):
        PowerMeanAggregation(p=2.0, learn=True, channels=2)(data(), INDEX)
    with pytest.raises(ValueError, match="'index' must be 1-D"):
        PowerMeanAggregation()(data(), INDEX.view(1, -1))


def test_matches_pyg():
    pyg_aggr = pytest.importorskip("torch_geometric.nn.aggr")
    x = data(torch.float32)
    for kwargs in ({}, {"p": 2.0}, {"p": -0.5, "clamp_min": 0.1}, {"p": 1.0, "learn": True, "channels": 3}):
        theirs = pyg_aggr.PowerMeanAggregation(**kwargs)
        ours = PowerMeanAggregation(**kwargs)
        ours.load_state_dict(theirs.state_dict(), strict=True)
        assert repr(ours) == repr(theirs)
        torch.testing.assert_close(ours(x, INDEX, dim_size=DIM_SIZE), theirs(x, INDEX, dim_size=DIM_SIZE))
