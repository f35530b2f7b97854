"""EquilibriumAggregation: unrolled energy minimisation against a per-group loop."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from gnn.aggr import EquilibriumAggregation

INDEX = torch.tensor([0, 0, 2, 2, 2, 3])  # group 1 empty (+ one past the end)
DIM_SIZE = 5


def loop(aggr: EquilibriumAggregation, x: torch.Tensor, index: torch.Tensor, dim_size: int) -> torch.Tensor:
    """Gradient descent with momentum on E(y) = sum_g mean_{i in g} F(x_i, y_g) + softplus(lamb) * mean_g |y_g|^2."""
    pot = aggr.potential

    def element_potential(xi, yg):
        z = torch.cat([xi, yg])
        h = z
        for layer, res in zip(pot.layers, pot.res_trans):
            h = layer(h) + res(z)
        return h.sum()

    def energy(y):
        total = F.softplus(aggr.lamb).sum() * sum((y[g] ** 2).sum() for g in range(dim_size)) / dim_size
        for g in range(dim_size):
            rows = [i for i in range(index.numel()) if int(index[i]) == g]
            if rows:
                total = total + sum(element_potential(x[i], y[g]) for i in rows) / len(rows)
        return total

    lr = F.softplus(aggr.optimizer._lr)
    mom = torch.sigmoid(aggr.optimizer._mom)
    y = torch.zeros(dim_size, aggr.output_dim, dtype=x.dtype, requires_grad=True)
    velocity = torch.zeros_like(y)
    for _ in range(aggr.grad_iter):
        (grad,) = torch.autograd.grad(energy(y), y, create_graph=True)
        velocity = mom * velocity - lr * grad
        y = y + velocity
    return y


def data(dtype=torch.float64):
    return torch.randn(INDEX.numel(), 3, generator=torch.Generator().manual_seed(9), dtype=dtype)


def test_output_against_loop_index_and_ptr():
    torch.manual_seed(0)
    aggr = EquilibriumAggregation(3, 2, [6, 5], grad_iter=3).double()
    x = data()
    expected = loop(aggr, x, INDEX, DIM_SIZE)
    out = aggr(x, INDEX, dim_size=DIM_SIZE)
    assert out.shape == (DIM_SIZE, 2)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(aggr(x, ptr=torch.tensor([0, 2, 2, 5, 6, 6])), expected)
    # empty groups stay at their start value 0; without steps, everything does
    assert torch.equal(out[[1, 4]], torch.zeros(2, 2, dtype=torch.float64))
    aggr.grad_iter = 0
    assert torch.equal(aggr(x, INDEX), torch.zeros(4, 2, dtype=torch.float64))


def test_gradient_flows_to_x_and_every_parameter():
    torch.manual_seed(1)
    aggr = EquilibriumAggregation(3, 2, [4]).double()
    x = data().requires_grad_()
    out = aggr(x, INDEX, dim_size=DIM_SIZE)
    expected = loop(aggr, x, INDEX, DIM_SIZE)
    weight = torch.randn(out.shape, dtype=out.dtype)
    names = ["x"] + [n for n, _ in aggr.named_parameters()]
    grads = torch.autograd.grad((out * weight).sum(), [x, *aggr.parameters()], allow_unused=True)
    ref = torch.autograd.grad((expected * weight).sum(), [x, *aggr.parameters()], allow_unused=True)
    # biases that reach the energy only through linear maps shift it by a constant, so they
    # cannot move y: those of the output layer and of the residual map into it
    constant = {"potential.layers.1.bias", "potential.res_trans.0.bias", "potential.res_trans.1.bias"}
    for name, g, r in zip(names, grads, ref):
        if name in constant:
            assert g is None and r is None, name
            continue
        torch.testing.assert_close(g, r, msg=name)
        assert g.abs().sum() > 0, name
    # gradcheck through the unrolled (second-order) steps
    aggr.grad_iter = 2
    torch.autograd.gradcheck(lambda t: aggr(t, INDEX[:4]), (x[:4].detach().requires_grad_(),))


def test_no_grad_gives_the_same_output_and_state_dict_keys():
    torch.manual_seed(2)
    aggr = EquilibriumAggregation(3, 2, [4, 4]).double()
    x = data()
    with torch.no_grad():
        detached = aggr(x, INDEX, dim_size=DIM_SIZE)
    assert not detached.requires_grad
    torch.testing.assert_close(detached, aggr(x, INDEX, dim_size=DIM_SIZE))
    keys = list(aggr.state_dict())
    assert keys[0] == "lamb" and keys[-2:] == ["optimizer._lr", "optimizer._mom"]
    assert "potential.layers.1.1.weight" in keys and "potential.res_trans.2.weight" in keys
    assert repr(aggr) == "EquilibriumAggregation()"
    with torch.no_grad():
        aggr.lamb.fill_(5.0)
    aggr.reset_parameters()
    assert aggr.lamb.item() == pytest.approx(0.1)
    assert aggr.optimizer._lr.item() == pytest.approx(0.1) and aggr.optimizer._mom.item() == pytest.approx(
        0.9
    )


def test_bad_input():
    aggr = EquilibriumAggregation(3, 2, [4])
    with pytest.raises(ValueError, match="2-D 'x'"):
        aggr(data(torch.float32).unsqueeze(0), INDEX, dim=1)
    with pytest.raises(ValueError, match="'index' has 2 entries"):
        aggr(data(torch.float32), INDEX[:2])
    with pytest.raises(ValueError, match="'grad_iter'"):
        EquilibriumAggregation(3, 2, [4], grad_iter=-1)


def test_matches_pyg():
    pyg_aggr = pytest.importorskip("torch_geometric.nn.aggr")
    x = data(torch.float32)
    theirs = pyg_aggr.EquilibriumAggregation(3, 2, [6, 5], grad_iter=4, lamb=0.3)
    ours = EquilibriumAggregation(3, 2, [6, 5], grad_iter=4, lamb=0.3)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    assert repr(ours) == repr(theirs)
    torch.testing.assert_close(ours(x, INDEX, dim_size=DIM_SIZE), theirs(x, INDEX, dim_size=DIM_SIZE))
