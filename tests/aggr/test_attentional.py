"""AttentionalAggregation against a per-group loop."""

from __future__ import annotations

import pytest
import torch

from gnn.aggr import AttentionalAggregation

INDEX = torch.tensor([1, 1, 0, 3, 1, 3, 3, 0])  # groups 2 and 4 empty
DIM_SIZE = 5


def loop(gate_nn, nn, x, index, dim_size):
    """out_g = sum_i softmax_i(gate_nn(x_i)) * nn(x_i) over the elements i of g."""
    out_channels = (nn(x[:1]) if nn is not None else x[:1]).size(-1)
    out = torch.zeros(dim_size, out_channels, dtype=x.dtype)
    for g in range(dim_size):
        rows = [i for i in range(index.numel()) if int(index[i]) == g]
        if not rows:
            continue
        scores = torch.stack([gate_nn(x[i]) for i in rows])  # [n, 1] or [n, C]
        weights = scores.exp() / scores.exp().sum(0, keepdim=True)
        values = torch.stack([nn(x[i]) if nn is not None else x[i] for i in rows])
        out[g] = (weights * values).sum(0)
    return out


def data(dtype=torch.float64):
    return torch.randn(INDEX.numel(), 4, generator=torch.Generator().manual_seed(8), dtype=dtype)


def test_against_loop_scalar_and_feature_gates():
    torch.manual_seed(0)
    x = data()
    perm = torch.argsort(INDEX, stable=True)
    ptr = torch.cat([torch.zeros(1, dtype=torch.long), torch.bincount(INDEX, minlength=DIM_SIZE).cumsum(0)])
    for gate_nn, nn in [
        (torch.nn.Linear(4, 1), torch.nn.Linear(4, 6)),
        (torch.nn.Linear(4, 4), None),
        (
            torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh(), torch.nn.Linear(3, 6)),
            torch.nn.Linear(4, 6),
        ),
    ]:
        aggr = AttentionalAggregation(gate_nn, nn).double()
        expected = loop(aggr.gate_nn, aggr.nn, x, INDEX, DIM_SIZE)
        torch.testing.assert_close(aggr(x, INDEX, dim_size=DIM_SIZE), expected)
        torch.testing.assert_close(aggr(x[perm], ptr=ptr), expected)
        out3 = aggr(torch.stack([x, -x]), INDEX, dim_size=DIM_SIZE, dim=1)
        torch.testing.assert_close(out3[1], loop(aggr.gate_nn, aggr.nn, -x, INDEX, DIM_SIZE))


def test_repr_state_dict_and_reset():
    gate = torch.nn.Linear(4, 1)
    torch.nn.init.constant_(gate.weight, 3.0)
    aggr = AttentionalAggregation(gate, torch.nn.Linear(4, 5))
    assert gate.weight.eq(3.0).all()  # constructing does not re-initialise the given modules
    assert repr(aggr) == (
        "AttentionalAggregation(gate_nn=Linear(in_features=4, out_features=1, bias=True), "
        "nn=Linear(in_features=4, out_features=5, bias=True))"
    )
    assert list(aggr.state_dict()) == ["gate_nn.weight", "gate_nn.bias", "nn.weight", "nn.bias"]
    aggr.reset_parameters()
    assert not gate.weight.eq(3.0).all()


def test_gradcheck_float64():
    torch.manual_seed(1)
    aggr = AttentionalAggregation(torch.nn.Linear(4, 1), torch.nn.Linear(4, 2)).double()
    names = [n for n, _ in aggr.named_parameters()]
    params = [p.detach().clone().requires_grad_() for _, p in aggr.named_parameters()]

    def fn(x_, *values):
        return torch.func.functional_call(aggr, dict(zip(names, values)), (x_, INDEX), {"dim_size": DIM_SIZE})

    torch.autograd.gradcheck(fn, (data().requires_grad_(), *params))


def test_bad_input():
    with pytest.raises(TypeError, match="'gate_nn'"):
        AttentionalAggregation(3)
    aggr = AttentionalAggregation(torch.nn.Linear(4, 1), torch.nn.Linear(4, 6))
    x = data(torch.float32)
    with pytest.raises(ValueError, match="'index' has 3 entries"):
        aggr(x, INDEX[:3])
    bad_gate = AttentionalAggregation(lambda t: t.sum())  # a scalar score, not one per element
    with pytest.raises(ValueError, match="'gate_nn' must map"):
        bad_gate(x, INDEX)


def test_matches_pyg():
    pyg_aggr = pytest.importorskip("torch_geometric.nn.aggr")
    x = data(torch.float32)
    for nn in (torch.nn.Linear(4, 6), None):
        theirs = pyg_aggr.AttentionalAggregation(torch.nn.Linear(4, 1), nn)
        ours = AttentionalAggregation(
            torch.nn.Linear(4, 1), torch.nn.Linear(4, 6) if nn is not None else None
        )
        ours.load_state_dict(theirs.state_dict(), strict=True)
        assert repr(ours) == repr(theirs)
        torch.testing.assert_close(ours(x, INDEX, dim_size=DIM_SIZE), theirs(x, INDEX, dim_size=DIM_SIZE))
