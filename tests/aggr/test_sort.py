"""SortAggregation against a per-group loop and against PyG."""

from __future__ import annotations

import pytest
import torch

from gnn.aggr.sort import SortAggregation

INDEX = torch.tensor([0, 0, 0, 1, 3, 3, 3, 3, 3])
PTR = torch.tensor([0, 3, 4, 4, 9])


def _x(rows=9, cols=3, dtype=torch.float32, seed=0):
    return torch.randn(rows, cols, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _loop(x, index, k, dim_size, max_len=None):
    """Sort each group by its last channel (descending), keep k rows, pad with zero rows."""
    rows = []
    for g in range(dim_size):
        xg = x[index == g][:max_len]
        xg = xg[torch.argsort(xg[:, -1], descending=True)][:k]
        xg = torch.cat([xg, x.new_zeros(k - xg.size(0), x.size(1))])
        rows.append(xg.reshape(-1))
    return torch.stack(rows)


@pytest.mark.parametrize("k", [1, 2, 4, 7])
def test_against_loop(k):
    x = _x()
    aggr = SortAggregation(k)
    expected = _loop(x, INDEX, k, 4)
    torch.testing.assert_close(aggr(x, INDEX), expected)
    torch.testing.assert_close(aggr(x, ptr=PTR), expected)
    torch.testing.assert_close(aggr(x, INDEX, dim_size=6), _loop(x, INDEX, k, 6))
    torch.testing.assert_close(aggr(x, INDEX, max_num_elements=2), _loop(x, INDEX, k, 4, max_len=2))
    assert repr(aggr) == f"SortAggregation(k={k})"


def test_k_larger_than_group_pads_zero_rows_even_for_negative_features():
    x = -torch.arange(1.0, 7.0).view(3, 2) - 10.0  # all features very negative
    out = SortAggregation(3)(x, torch.tensor([0, 0, 1]))
    expected = torch.tensor([[-11.0, -12.0, -13.0, -14.0, 0.0, 0.0], [-15.0, -16.0, 0.0, 0.0, 0.0, 0.0]])
    torch.testing.assert_close(out, expected)


def test_bad_input():
    for k in (0, -2):
        with pytest.raises(ValueError, match="'k'"):
            SortAggregation(k)
    with pytest.raises(ValueError, match="index"):
        SortAggregation(2)(_x(), torch.tensor([0, 1, 0, 1, 3, 3, 3, 3, 3]))
    with pytest.raises(ValueError, match="max_num_elements"):
        SortAggregation(2)(_x(), INDEX, max_num_elements=-1)


def test_gradient_flows_to_selected_rows():
    x = _x(6, 3, torch.float64).requires_grad_()
    index = torch.tensor([0, 0, 0, 1, 1, 1])
    assert torch.autograd.gradcheck(lambda t: SortAggregation(2)(t, index), (x,))
    SortAggregation(2)(x, index).sum().backward()
    kept = torch.zeros(6)
    for g in range(2):
        rows = torch.nonzero(index == g).flatten()
        kept[rows[torch.argsort(x[rows, -1], descending=True)[:2]]] = 1.0
    torch.testing.assert_close(x.grad, kept.view(-1, 1).expand(6, 3).double())


def test_matches_pyg():
    pyg = pytest.importorskip("torch_geometric")
    x = _x()
    for k in (2, 5):
        theirs = pyg.nn.aggr.SortAggregation(k)
        ours = SortAggregation(k)
        assert repr(ours) == repr(theirs)
        for kwargs in ({}, {"dim_size": 6}, {"max_num_elements": 2}):
            torch.testing.assert_close(ours(x, INDEX, **kwargs), theirs(x, INDEX, **kwargs))
        torch.testing.assert_close(ours(x, ptr=PTR), theirs(x, INDEX))
