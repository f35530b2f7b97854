"""QuantileAggregation and MedianAggregation against a per-group loop."""

from __future__ import annotations

import math

import pytest
import torch

from gnn.aggr import MedianAggregation, QuantileAggregation

# unsorted; group sizes 4, 0, 1, 2, 3, 0 (+ 2 empty groups past the largest index)
INDEX = torch.tensor([0, 4, 0, 3, 2, 0, 4, 3, 0, 4])
DIM_SIZE = 8
MODES = ["linear", "lower", "higher", "nearest", "midpoint"]


def loop(x, index, dim_size, q, mode, fill=0.0):
    """Quantile of each group and channel from its sorted values.

    The position is i = q * (n - 1); "nearest" rounds the position counted
    over all elements (groups one after another, group g starting at the
    total size of groups < g), ties to even (Python's round).
    """
    counts = [int((index == g).sum()) for g in range(dim_size)]
    starts = [sum(counts[:g]) for g in range(dim_size)]
    out = torch.full((dim_size, x.size(1)), fill, dtype=x.dtype)
    for g in range(dim_size):
        n = counts[g]
        if n == 0:
            continue
        for f in range(x.size(1)):
            vals = sorted(float(x[i, f]) for i in range(index.numel()) if int(index[i]) == g)
            pos = float(torch.tensor(q, dtype=torch.float32) * (n - 1))  # the q buffer is float32
            lo, hi = math.floor(pos), math.ceil(pos)
            if mode == "linear":
                val = vals[lo] + (pos - lo) * (vals[hi] - vals[lo])
            elif mode == "lower":
                val = vals[lo]
            elif mode == "higher":
                val = vals[hi]
            elif mode == "midpoint":
                val = (vals[lo] + vals[hi]) / 2
            else:
                val = vals[round(starts[g] + pos) - starts[g]]
            out[g, f] = val
    return out


def data(dtype=torch.float64):
    g = torch.Generator().manual_seed(3)
    return torch.randn(INDEX.numel(), 3, generator=g, dtype=dtype)


def ptr_layout(x):
    perm = torch.argsort(INDEX, stable=True)
    ptr = torch.cat([torch.zeros(1, dtype=torch.long), torch.bincount(INDEX, minlength=DIM_SIZE).cumsum(0)])
    return x[perm], ptr


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("q", [0.0, 0.25, 0.5, 0.7, 1.0])
def test_single_quantile_against_loop(mode, q):
    x = data()
    expected = loop(x, INDEX, DIM_SIZE, q, mode, fill=-3.0)
    aggr = QuantileAggregation(q, mode, fill_value=-3.0)
    torch.testing.assert_close(aggr(x, INDEX, dim_size=DIM_SIZE), expected)
    xs, ptr = ptr_layout(x)
    torch.testing.assert_close(aggr(xs, ptr=ptr), expected)


@pytest.mark.parametrize("mode", MODES)
def test_list_of_quantiles_is_concatenated_quantile_major(mode):
    x = data()
    qs = [0.1, 0.5, 0.9]
    expected = torch.cat([loop(x, INDEX, DIM_SIZE, q, mode) for q in qs], dim=-1)
    aggr = QuantileAggregation(qs, mode)
    torch.testing.assert_close(aggr(x, INDEX, dim_size=DIM_SIZE), expected)
    assert aggr.q.shape == (3, 1)
    assert repr(aggr) == "QuantileAggregation(q=[0.1, 0.5, 0.9])"
    # elements along dim 1 of a 3-D input
    out3 = aggr(torch.stack([x, x * 2]), INDEX, dim_size=DIM_SIZE, dim=1)
    assert out3.shape == (2, DIM_SIZE, 9)
    torch.testing.assert_close(out3[1], torch.cat([loop(x * 2, INDEX, DIM_SIZE, q, mode) for q in qs], -1))


def test_nearest_ties_round_to_even_global_position():
    # one group of 2 starting at 0 (pos 0.5 -> 0) and one starting at 2 (pos 2.5 -> 2): both "lower"
    # one group of 2 starting at 1 (pos 1.5 -> 2): "higher"
    x = torch.tensor([[1.0], [2.0], [3.0], [4.0]])
    out = QuantileAggregation(0.5, "nearest")(x, torch.tensor([0, 0, 1, 1]))
    assert out.view(-1).tolist() == [1.0, 3.0]
    out = QuantileAggregation(0.5, "nearest")(x, torch.tensor([0, 1, 1, 2]))
    assert out.view(-1).tolist() == [1.0, 3.0, 4.0]


def test_median_is_the_lower_median():
    x = data()
    expected = loop(x, INDEX, DIM_SIZE, 0.5, "lower", fill=7.0)
    torch.testing.assert_close(MedianAggregation(fill_value=7.0)(x, INDEX, dim_size=DIM_SIZE), expected)
    assert repr(MedianAggregation()) == "MedianAggregation()"
    assert isinstance(MedianAggregation(), QuantileAggregation)
    # empty input: every group is filled
    out = MedianAggregation(fill_value=2.0)(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long), dim_size=3)
    assert torch.equal(out, torch.full((3, 3), 2.0))


def test_gradient_flows_to_the_selected_elements():
    x = data().requires_grad_()
    torch.autograd.gradcheck(lambda t: QuantileAggregation([0.3, 0.6])(t, INDEX, dim_size=DIM_SIZE), (x,))
    QuantileAggregation(0.5, "lower")(x, INDEX, dim_size=DIM_SIZE).sum().backward()
    # each channel of each non-empty group sends gradient 1 to exactly one element
    assert x.grad.sum().item() == pytest.approx(3 * 4)
    assert set(x.grad.unique().tolist()) <= {0.0, 1.0}


def test_bad_arguments():
    for q in (-0.1, 1.5, [0.5, 2.0]):
        with pytest.raises(ValueError, match="'q' must lie in"):
            QuantileAggregation(q)
    with pytest.raises(ValueError, match="'q' must hold"):
        QuantileAggregation([])
    with pytest.raises(ValueError, match="'interpolation'"):
        QuantileAggregation(0.5, "cubic")
    with pytest.raises(ValueError, match="'ptr' must be monotonically"):
        MedianAggregation()(data(), ptr=torch.tensor([0, 4, 2, 10]))
    with pytest.raises(ValueError, match="'index' has 3 entries"):
        MedianAggregation()(data(), INDEX[:3])


def test_matches_pyg():
    pyg_aggr = pytest.importorskip("torch_geometric.nn.aggr")
    x = data(torch.float32)
    for mode in MODES:
        for q in (0.5, [0.2, 0.75]):
            theirs = pyg_aggr.QuantileAggregation(q, mode, fill_value=1.5)
            ours = QuantileAggregation(q, mode, fill_value=1.5)
            ours.load_state_dict(theirs.state_dict(), strict=True)
            assert repr(ours) == repr(theirs)
            torch.testing.assert_close(ours(x, INDEX, dim_size=DIM_SIZE), theirs(x, INDEX, dim_size=DIM_SIZE))
    theirs, ours = pyg_aggr.MedianAggregation(), MedianAggregation()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    torch.testing.assert_close(ours(x, INDEX, dim_size=DIM_SIZE), theirs(x, INDEX, dim_size=DIM_SIZE))
