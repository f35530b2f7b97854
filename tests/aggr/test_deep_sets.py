"""DeepSetsAggregation against a per-group loop and against PyG."""

from __future__ import annotations

import pytest
import torch

from gnn.aggr.deep_sets import DeepSetsAggregation
from gnn.core.nn.mlp import MLP

INDEX = torch.tensor([0, 0, 0, 1, 3, 3, 3, 3, 3])
PTR = torch.tensor([0, 3, 4, 4, 9])


def _x(rows=9, cols=4, dtype=torch.float32, seed=0):
    return torch.randn(rows, cols, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _loop(local, glob, x, index, dim_size):
    """phi on each element, sum per group, rho on each group's sum."""
    sums = []
    for g in range(dim_size):
        xg = x[index == g]
        h = local(xg) if local is not None else xg
        sums.append(h.sum(0) if xg.size(0) else x.new_zeros(h.size(-1)))
    out = torch.stack(sums)
    return glob(out) if glob is not None else out


@pytest.mark.parametrize(
    "with_local, with_global", [(True, True), (True, False), (False, True), (False, False)]
)
def test_against_loop(with_local, with_global):
    torch.manual_seed(0)
    local = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.Tanh()) if with_local else None
    glob = torch.nn.Linear(5 if with_local else 4, 3) if with_global else None
    aggr = DeepSetsAggregation(local, glob)
    x = _x()
    expected = _loop(local, glob, x, INDEX, 4)
    torch.testing.assert_close(aggr(x, INDEX), expected)
    torch.testing.assert_close(aggr(x, ptr=PTR), expected)
    torch.testing.assert_close(aggr(x, INDEX, dim_size=6), _loop(local, glob, x, INDEX, 6))
    # a sum: the order of the elements does not matter
    perm = torch.randperm(9, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(aggr(x[perm], INDEX[perm]), expected)
    assert repr(aggr) == f"DeepSetsAggregation(local_nn={local}, global_nn={glob})"


def test_other_dim():
    torch.manual_seed(0)
    aggr = DeepSetsAggregation(torch.nn.Linear(4, 3), None)
    x = torch.randn(2, 9, 4)
    out = aggr(x, INDEX, dim=1)
    for b in range(2):
        torch.testing.assert_close(out[b], _loop(aggr.local_nn, None, x[b], INDEX, 4))


def test_mlp_modules_get_group_assignment():
    torch.manual_seed(0)
    local = MLP([4, 6, 5], norm="layer_norm")
    glob = MLP([5, 4, 2], norm="layer_norm")
    aggr = DeepSetsAggregation(local, glob)
    assert aggr.local_nn is None and aggr.local_mlp is local and aggr.global_mlp is glob
    assert list(aggr.state_dict())[0] == "local_mlp.lins.0.weight"
    x = _x()
    rows = []
    for g in range(4):  # each group alone, as one graph, through both MLPs
        xg = x[INDEX == g]
        total = local(xg, torch.zeros(len(xg), dtype=torch.long), 1).sum(0) if len(xg) else torch.zeros(5)
        rows.append(glob(total.unsqueeze(0), torch.zeros(1, dtype=torch.long), 1))
    expected = torch.cat(rows)
    torch.testing.assert_close(aggr(x, INDEX), expected)
    torch.testing.assert_close(aggr(x, ptr=PTR), expected)
    assert repr(aggr) == f"DeepSetsAggregation(local_nn={local}, global_nn={glob})"


def test_bad_input():
    with pytest.raises(TypeError, match="local_nn"):
        DeepSetsAggregation(local_nn=3)


def test_gradcheck():
    torch.manual_seed(0)
    aggr = DeepSetsAggregation(torch.nn.Linear(3, 4), MLP([4, 5, 2], norm=None)).double()
    x = _x(6, 3, torch.float64).requires_grad_()
    index = torch.tensor([0, 0, 1, 2, 2, 2])
    assert torch.autograd.gradcheck(lambda t: aggr(t, index), (x,))


def test_matches_pyg():
    pyg = pytest.importorskip("torch_geometric")
    torch.manual_seed(0)
    pairs = [
        (
            pyg.nn.aggr.DeepSetsAggregation(torch.nn.Linear(4, 5), torch.nn.Linear(5, 3)),
            lambda: DeepSetsAggregation(torch.nn.Linear(4, 5), torch.nn.Linear(5, 3)),
        ),
        (
            pyg.nn.aggr.DeepSetsAggregation(pyg.nn.MLP([4, 6, 5], norm="layer_norm"), torch.nn.Linear(5, 2)),
            lambda: DeepSetsAggregation(MLP([4, 6, 5], norm="layer_norm"), torch.nn.Linear(5, 2)),
        ),
        (pyg.nn.aggr.DeepSetsAggregation(), DeepSetsAggregation),
    ]
    x = _x()
    for theirs, make in pairs:
        ours = make()
        theirs.eval()
        ours.eval()
        ours.load_state_dict(theirs.state_dict(), strict=True)
        assert list(ours.state_dict()) == list(theirs.state_dict())
        assert repr(ours) == repr(theirs)
        for extra in ({}, {"dim_size": 6}):
            torch.testing.assert_close(ours(x, INDEX, **extra), theirs(x, INDEX, **extra))
