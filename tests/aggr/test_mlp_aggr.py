"""MLPAggregation against a per-group loop and against PyG."""

from __future__ import annotations

import pytest
import torch

from gnn.aggr.mlp import MLPAggregation

INDEX = torch.tensor([0, 0, 0, 1, 3, 3, 3, 3, 3])
PTR = torch.tensor([0, 3, 4, 4, 9])


def _x(rows=9, cols=4, dtype=torch.float32, seed=0):
    return torch.randn(rows, cols, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _randomize(module, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, value in module.state_dict(keep_vars=True).items():
            if value.is_floating_point():
                noise = torch.randn(value.shape, generator=g, dtype=value.dtype)
                value.copy_(noise.abs() + 0.5 if "running_var" in name else noise)


def _mlp_rows(mlp, rows):
    """The MLP of eval mode on one row at a time, written out."""
    out = []
    for h in rows:
        for i, lin in enumerate(mlp.lins):
            h = lin.weight @ h + lin.bias
            if i < len(mlp.norms):
                bn = mlp.norms[i].module
                h = torch.relu(
                    (h - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps) * bn.weight + bn.bias
                )
        out.append(h)
    return torch.stack(out)


def _loop(aggr, x, index, dim_size):
    """Concatenate the first M elements of each group, zero-padded to M, then the MLP."""
    m = aggr.max_num_elements
    rows = []
    for g in range(dim_size):
        xg = x[index == g][:m]
        rows.append(torch.cat([xg.reshape(-1), x.new_zeros((m - xg.size(0)) * x.size(1))]))
    return _mlp_rows(aggr.mlp, rows)


@pytest.mark.parametrize("max_num_elements", [2, 5, 7])
def test_against_loop(max_num_elements):
    aggr = MLPAggregation(4, 6, max_num_elements, num_layers=2, hidden_channels=5)
    _randomize(aggr)
    aggr.eval()
    x = _x()
    expected = _loop(aggr, x, INDEX, 4)
    torch.testing.assert_close(aggr(x, INDEX), expected)
    torch.testing.assert_close(aggr(x, ptr=PTR), expected)
    torch.testing.assert_close(aggr(x, INDEX, dim_size=6), _loop(aggr, x, INDEX, 6))
    assert repr(aggr) == f"MLPAggregation(4, 6, max_num_elements={max_num_elements})"
    assert repr(aggr.mlp) == f"MLP({4 * max_num_elements}, 5, 6)"


def test_layer_norm_treats_each_group_as_one_sample():
    aggr = MLPAggregation(4, 3, 3, num_layers=2, hidden_channels=5, norm="layer_norm")
    x = _x()
    out = aggr(x, INDEX)
    # one group alone gives the same row: groups do not mix in the normalization
    torch.testing.assert_close(out[3], aggr(x[4:], torch.zeros(5, dtype=torch.long))[0])


def test_bad_input():
    with pytest.raises(ValueError, match="max_num_elements"):
        MLPAggregation(4, 6, 0, num_layers=1)
    with pytest.raises(ValueError, match="num_layers"):
        MLPAggregation(4, 6, 3)
    aggr = MLPAggregation(4, 6, 3, num_layers=1)
    with pytest.raises(ValueError, match="index"):
        aggr(_x(), torch.tensor([0, 1, 0, 1, 3, 3, 3, 3, 3]))


def test_gradcheck():
    aggr = MLPAggregation(3, 2, 3, num_layers=2, hidden_channels=4, norm=None).double()
    x = _x(6, 3, torch.float64).requires_grad_()
    index = torch.tensor([0, 0, 1, 2, 2, 2])
    assert torch.autograd.gradcheck(lambda t: aggr(t, index), (x,))


@pytest.mark.parametrize("training", [False, True])
def test_matches_pyg(training):
    pyg = pytest.importorskip("torch_geometric")
    kwargs = {"num_layers": 3, "hidden_channels": 5, "dropout": 0.2}
    theirs = pyg.nn.aggr.MLPAggregation(4, 6, 4, **kwargs)
    _randomize(theirs)
    ours = MLPAggregation(4, 6, 4, **kwargs)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert repr(ours) == repr(theirs)
    ours.train(training)
    theirs.train(training)
    x = _x()
    for extra in ({}, {"dim_size": 6}):
        torch.manual_seed(1)
        expected = theirs(x, INDEX, **extra)
        torch.manual_seed(1)
        torch.testing.assert_close(ours(x, INDEX, **extra), expected)
    if not training:
        torch.testing.assert_close(ours(x, ptr=PTR), theirs(x, INDEX))
