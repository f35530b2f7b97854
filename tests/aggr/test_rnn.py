"""LSTMAggregation and GRUAggregation against a per-group loop and against PyG."""

from __future__ import annotations

import pytest
import torch

from gnn.aggr.rnn import GRUAggregation, LSTMAggregation

INDEX = torch.tensor([0, 0, 0, 1, 3, 3, 3, 3, 3])
PTR = torch.tensor([0, 3, 4, 4, 9])


def _x(rows=9, cols=4, dtype=torch.float32, seed=0):
    return torch.randn(rows, cols, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _loop(rnn, x, index, dim_size, max_len=None):
    """Run the recurrent net on each group's zero-padded sequence; take the last output."""
    counts = [int((index == g).sum()) for g in range(dim_size)]
    length = max(counts) if max_len is None else max_len
    rows = []
    for g in range(dim_size):
        seq = x[index == g][:length]
        padded = torch.cat([seq, x.new_zeros(length - seq.size(0), x.size(1))])
        rows.append(rnn(padded.unsqueeze(0))[0][0, -1])
    return torch.stack(rows)


@pytest.mark.parametrize("cls, attr", [(LSTMAggregation, "lstm"), (GRUAggregation, "gru")])
def test_against_loop_index_and_ptr(cls, attr):
    torch.manual_seed(0)
    aggr = cls(4, 6)
    x = _x()
    rnn = getattr(aggr, attr)
    expected = _loop(rnn, x, INDEX, 4)
    torch.testing.assert_close(aggr(x, INDEX), expected)
    torch.testing.assert_close(aggr(x, ptr=PTR), expected)
    torch.testing.assert_close(aggr(x, INDEX, dim_size=6), _loop(rnn, x, INDEX, 6))
    torch.testing.assert_close(aggr(x, INDEX, max_num_elements=2), _loop(rnn, x, INDEX, 4, max_len=2))
    assert repr(aggr) == f"{cls.__name__}(4, 6)"
    assert aggr(x).shape == (1, 6)


@pytest.mark.parametrize("cls, attr", [(LSTMAggregation, "lstm"), (GRUAggregation, "gru")])
def test_rnn_kwargs(cls, attr):
    torch.manual_seed(0)
    aggr = cls(4, 3, num_layers=2, bidirectional=True)
    x = _x()
    out = aggr(x, INDEX)
    assert out.shape == (4, 6)
    torch.testing.assert_close(out, _loop(getattr(aggr, attr), x, INDEX, 4))


@pytest.mark.parametrize("cls", [LSTMAggregation, GRUAggregation])
def test_unsorted_index_and_bad_input(cls):
    aggr = cls(4, 6)
    with pytest.raises(ValueError, match="index"):
        aggr(_x(), torch.tensor([0, 1, 0, 1, 3, 3, 3, 3, 3]))
    with pytest.raises(ValueError, match="max_num_elements"):
        aggr(_x(), INDEX, max_num_elements=0)
    with pytest.raises(ValueError, match="in_channels"):
        cls(0, 6)
    with pytest.raises(ValueError, match="x"):
        aggr(torch.randn(2, 9, 4), INDEX, dim=1)


@pytest.mark.parametrize("cls", [LSTMAggregation, GRUAggregation])
def test_no_elements(cls):
    aggr = cls(4, 6)
    out = aggr(torch.randn(0, 4), torch.zeros(0, dtype=torch.long), dim_size=3)
    torch.testing.assert_close(out, torch.zeros(3, 6))


@pytest.mark.parametrize("cls", [LSTMAggregation, GRUAggregation])
def test_gradcheck(cls):
    aggr = cls(3, 2).double()
    x = _x(6, 3, torch.float64).requires_grad_()
    index = torch.tensor([0, 0, 1, 2, 2, 2])
    assert torch.autograd.gradcheck(lambda t: aggr(t, index), (x,))


@pytest.mark.parametrize("name", ["LSTMAggregation", "GRUAggregation"])
def test_matches_pyg(name):
    pyg = pytest.importorskip("torch_geometric")
    theirs = getattr(pyg.nn.aggr, name)(4, 6, num_layers=2)
    ours = {"LSTMAggregation": LSTMAggregation, "GRUAggregation": GRUAggregation}[name](4, 6, num_layers=2)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert repr(ours) == repr(theirs)
    x = _x()
    for kwargs in ({}, {"dim_size": 6}, {"max_num_elements": 2}):
        torch.testing.assert_close(ours(x, INDEX, **kwargs), theirs(x, INDEX, **kwargs))
    torch.testing.assert_close(ours(x, ptr=PTR), theirs(x, INDEX))
