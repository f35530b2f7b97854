"""The basic reductions of gnn-core against a per-group loop."""

from __future__ import annotations

import pytest
import torch

from gnn.core import MaxAggregation, MeanAggregation, MinAggregation, MulAggregation, SumAggregation

CASES = [
    (SumAggregation, lambda t: t.sum(0), 0.0),
    (MeanAggregation, lambda t: t.mean(0), 0.0),
    (MaxAggregation, lambda t: t.max(0).values, 0.0),
    (MinAggregation, lambda t: t.min(0).values, 0.0),
    (MulAggregation, lambda t: t.prod(0), 1.0),
]


@pytest.mark.parametrize("cls, reduce, empty", CASES)
def test_against_loop_index_and_ptr(cls, reduce, empty):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(15, 4, generator=g)
    index = torch.tensor([0, 0, 1, 1, 1, 1, 3, 3, 3, 3, 3, 5, 5, 5, 5])
    expected = torch.full((7, 4), empty)
    for grp in range(7):
        if (index == grp).any():
            expected[grp] = reduce(x[index == grp])
    aggr = cls()
    torch.testing.assert_close(aggr(x, index, dim_size=7), expected)
    ptr = torch.tensor([0, 2, 6, 6, 11, 11, 15, 15])
    torch.testing.assert_close(aggr(x, ptr=ptr), expected)
    torch.testing.assert_close(aggr(x), reduce(x).unsqueeze(0))
    assert repr(aggr) == f"{cls.__name__}()"


def test_other_dim():
    x = torch.randn(2, 6, 3)
    index = torch.tensor([0, 1, 0, 1, 2, 2])
    out = MeanAggregation()(x, index, dim=1)
    torch.testing.assert_close(out[:, 2], x[:, 4:].mean(1))


def test_bad_input():
    x = torch.randn(5, 2)
    with pytest.raises(ValueError, match="'index' has 6 entries"):
        SumAggregation()(x, torch.zeros(6, dtype=torch.long))
    with pytest.raises(ValueError, match="dim_size"):
        SumAggregation()(x, torch.tensor([0, 1, 2, 3, 4]), dim_size=3)
    with pytest.raises(ValueError, match="'index' must be 1-D"):
        SumAggregation()(x, torch.zeros(5, 1, dtype=torch.long))
    with pytest.raises(TypeError, match="'index' must be an integer"):
        SumAggregation()(x, torch.zeros(5))
    with pytest.raises(ValueError, match="'dim'"):
        SumAggregation()(x, torch.zeros(5, dtype=torch.long), dim=3)
    with pytest.raises(ValueError, match="'ptr' must be monotonically"):
        SumAggregation()(x, ptr=torch.tensor([0, 4, 2, 5]))
    with pytest.raises(ValueError, match="'dim_size' .* must equal"):
        SumAggregation()(x, ptr=torch.tensor([0, 2, 5]), dim_size=4)


def test_matches_pyg():
    pyg_aggr = pytest.importorskip("torch_geometric.nn.aggr")
    x = torch.randn(20, 3)
    index = torch.randint(0, 6, (20,))
    for ours, name in [
        (SumAggregation, "SumAggregation"),
        (MeanAggregation, "MeanAggregation"),
        (MaxAggregation, "MaxAggregation"),
        (MinAggregation, "MinAggregation"),
        (MulAggregation, "MulAggregation"),
    ]:
        theirs = getattr(pyg_aggr, name)()
        torch.testing.assert_close(ours()(x, index, dim_size=8), theirs(x, index, dim_size=8))


@pytest.mark.parametrize("cls", [SumAggregation, MeanAggregation, MaxAggregation])
def test_sorted_batch_vector_like_global_pooling(cls):
    # a sorted batch vector (graphs 2 and 6 empty) takes the backend's group-parallel path:
    # equal to a per-graph loop, and exactly equal to the same rows given in shuffled order
    g = torch.Generator().manual_seed(3)
    sizes = [3, 5, 0, 1, 7, 2, 0, 4]
    batch = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))
    x = torch.randn(batch.numel(), 70, dtype=torch.float64, generator=g)
    reduce = {SumAggregation: "sum", MeanAggregation: "mean", MaxAggregation: "amax"}[cls]
    expected = torch.stack(
        [getattr(x[batch == k], reduce)(0) if sizes[k] else torch.zeros(70, dtype=x.dtype) for k in range(8)]
    )
    out = cls()(x, batch, dim_size=8)
    torch.testing.assert_close(out, expected)
    shuffle = torch.randperm(batch.numel(), generator=g)
    torch.testing.assert_close(cls()(x[shuffle], batch[shuffle], dim_size=8), out, atol=1e-12, rtol=0)
    x_small = x[:, :3].clone().requires_grad_()
    torch.autograd.gradcheck(lambda t: cls()(t, batch, dim_size=8), (x_small,))
