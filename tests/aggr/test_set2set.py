"""Set2Set against a per-group loop of its attention steps and against PyG."""

from __future__ import annotations

import pytest
import torch

from gnn.aggr.set2set import Set2Set

INDEX = torch.tensor([0, 0, 0, 1, 3, 3, 3, 3, 3])
PTR = torch.tensor([0, 3, 4, 4, 9])


def _x(rows=9, cols=4, dtype=torch.float32, seed=0):
    return torch.randn(rows, cols, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _loop(aggr, x, index, dim_size):
    """Each group on its own: q = LSTM(q*), a = softmax(x q), r = sum a x, q* = [q, r]."""
    c = aggr.in_channels
    layers = aggr.lstm.num_layers
    rows = []
    for g in range(dim_size):
        xg = x[index == g]
        q_star = x.new_zeros(1, 2 * c)
        state = (x.new_zeros(layers, 1, c), x.new_zeros(layers, 1, c))
        for _ in range(aggr.processing_steps):
            q, state = aggr.lstm(q_star.unsqueeze(0), state)
            q = q.view(c)
            scores = xg @ q
            alpha = torch.softmax(scores, dim=0)
            r = (alpha.unsqueeze(-1) * xg).sum(0)
            q_star = torch.cat([q, r]).unsqueeze(0)
        rows.append(q_star[0])
    return torch.stack(rows)


def test_against_loop_index_ptr_and_unsorted():
    torch.manual_seed(0)
    aggr = Set2Set(4, processing_steps=3)
    x = _x()
    expected = _loop(aggr, x, INDEX, 4)
    torch.testing.assert_close(aggr(x, INDEX), expected)
    torch.testing.assert_close(aggr(x, ptr=PTR), expected)
    torch.testing.assert_close(aggr(x, INDEX, dim_size=6), _loop(aggr, x, INDEX, 6))
    # the softmax and the sum are scatter reductions: any element order gives the same result
    perm = torch.randperm(9, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(aggr(x[perm], INDEX[perm]), expected)
    assert repr(aggr) == "Set2Set(4, 8)"
    assert aggr.out_channels == 8


def test_multi_layer_lstm():
    torch.manual_seed(0)
    aggr = Set2Set(4, processing_steps=2, num_layers=2)
    x = _x()
    torch.testing.assert_close(aggr(x, INDEX), _loop(aggr, x, INDEX, 4))


def test_bad_input():
    with pytest.raises(ValueError, match="processing_steps"):
        Set2Set(4, -1)
    with pytest.raises(ValueError, match="in_channels"):
        Set2Set(0, 2)
    with pytest.raises(ValueError, match="x"):
        Set2Set(4, 2)(torch.randn(2, 9, 4), INDEX, dim=1)


def test_gradcheck():
    aggr = Set2Set(3, processing_steps=2).double()
    x = _x(6, 3, torch.float64).requires_grad_()
    index = torch.tensor([0, 0, 1, 2, 2, 2])
    assert torch.autograd.gradcheck(lambda t: aggr(t, index), (x,))


def test_matches_pyg():
    pyg = pytest.importorskip("torch_geometric")
    theirs = pyg.nn.aggr.Set2Set(4, 3)
    ours = Set2Set(4, 3)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert repr(ours) == repr(theirs)
    x = _x()
    torch.testing.assert_close(ours(x, INDEX), theirs(x, INDEX))
    torch.testing.assert_close(ours(x, ptr=PTR), theirs(x, INDEX))
    torch.testing.assert_close(ours(x, INDEX, dim_size=6), theirs(x, INDEX, dim_size=6))
