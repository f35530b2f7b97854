import inspect

import pytest
import torch
from torch.nn.parameter import is_lazy

from gnn.core import HeteroDictLinear, HeteroLinear


def loop_reference(x, type_vec, weight, bias):
    """out[i] = x[i] @ W[t_i] + b[t_i], one type at a time."""
    out = x.new_zeros(x.size(0), weight.size(-1))
    for t in range(weight.size(0)):
        mask = type_vec == t
        out[mask] = x[mask] @ weight[t] + (bias[t] if bias is not None else 0)
    return out


def _signature(cls):
    return [(p.name, p.kind, p.default) for p in inspect.signature(cls).parameters.values()]


@pytest.mark.parametrize("bias", [True, False])
def test_hetero_linear_matches_loop(bias):
    torch.manual_seed(0)
    lin = HeteroLinear(5, 3, num_types=4, bias=bias)
    assert lin.weight.shape == (4, 5, 3)
    assert (lin.bias is None) != bias
    x = torch.randn(20, 5)
    type_vec = torch.tensor([3, 0, 1, 3, 3, 0, 2, 1, 1, 0, 3, 2, 2, 0, 1, 3, 3, 0, 0, 1])
    out = lin(x, type_vec)
    assert torch.allclose(out, loop_reference(x, type_vec, lin.weight, lin.bias), atol=1e-6)
    assert repr(lin) == f"HeteroLinear(5, 3, num_types=4, bias={bias})"


def test_hetero_linear_gradients_match_loop():
    torch.manual_seed(1)
    lin = HeteroLinear(4, 2, num_types=3).double()
    x = torch.randn(9, 4, dtype=torch.float64, requires_grad=True)
    type_vec = torch.tensor([2, 2, 0, 1, 0, 2, 1, 1, 0])
    (lin(x, type_vec) ** 2).sum().backward()
    grads = (x.grad.clone(), lin.weight.grad.clone(), lin.bias.grad.clone())
    x.grad = None
    lin.zero_grad()
    (loop_reference(x, type_vec, lin.weight, lin.bias) ** 2).sum().backward()
    for ours, ref in zip(grads, (x.grad, lin.weight.grad, lin.bias.grad)):
        assert torch.allclose(ours, ref, atol=1e-12)


def test_hetero_linear_sorted_batched_and_empty():
    torch.manual_seed(2)
    lin = HeteroLinear(3, 2, num_types=3, is_sorted=True)
    x = torch.randn(6, 3)
    type_vec = torch.tensor([0, 0, 2, 2, 2, 2])  # type 1 has no rows
    assert torch.allclose(lin(x, type_vec), loop_reference(x, type_vec, lin.weight, lin.bias), atol=1e-6)
    with pytest.raises(ValueError, match="type_vec"):
        lin(x, type_vec.flip(0))

    unsorted = HeteroLinear(3, 2, num_types=3)
    unsorted.load_state_dict(lin.state_dict())
    xb = torch.randn(2, 4, 3)
    tb = torch.randint(3, (2, 4))
    ref = loop_reference(xb.reshape(-1, 3), tb.reshape(-1), lin.weight, lin.bias).reshape(2, 4, 2)
    assert torch.allclose(unsorted(xb, tb), ref, atol=1e-6)
    assert unsorted(torch.randn(0, 3), torch.zeros(0, dtype=torch.long)).shape == (0, 2)


def test_hetero_linear_initializers():
    torch.manual_seed(3)
    lin = HeteroLinear(16, 8, num_types=2, weight_initializer="glorot", bias_initializer="zeros")
    bound = (6 / 24) ** 0.5
    assert lin.weight.abs().max() <= bound and lin.weight.abs().max() > 0.5 * bound
    assert bool((lin.bias == 0).all())
    default = HeteroLinear(16, 8, num_types=2)
    assert default.weight.abs().max() <= 0.25 and default.bias.abs().max() <= 0.25


def test_hetero_linear_lazy():
    lin = HeteroLinear(-1, 3, num_types=2)
    assert is_lazy(lin.weight)
    assert list(lin.state_dict()) == ["weight", "bias"]  # saving works while lazy
    x = torch.randn(5, 6)
    t = torch.tensor([1, 0, 1, 1, 0])
    out = lin(x, t)
    assert lin.weight.shape == (2, 6, 3) and repr(lin) == "HeteroLinear(6, 3, num_types=2, bias=True)"
    assert torch.allclose(out, loop_reference(x, t, lin.weight, lin.bias), atol=1e-6)

    fresh = HeteroLinear(-1, 3, num_types=2)
    fresh.load_state_dict(lin.state_dict())
    assert torch.equal(fresh(x, t), out)


def test_hetero_linear_bad_input():
    lin = HeteroLinear(4, 2, num_types=3)
    x = torch.randn(5, 4)
    with pytest.raises(ValueError, match="type_vec"):
        lin(x, torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="type_vec"):
        lin(x, torch.tensor([0, 1, 2, 3, 0]))
    with pytest.raises(ValueError, match="type_vec"):
        lin(x, torch.tensor([0, 1, -1, 2, 0]))
    with pytest.raises(TypeError, match="type_vec"):
        lin(x, torch.zeros(5))
    with pytest.raises(ValueError, match="'x'"):
        lin(torch.randn(5, 3), torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match="num_types"):
        HeteroLinear(4, 2, num_types=0)
    with pytest.raises(TypeError, match="bais"):
        HeteroLinear(4, 2, num_types=2, bais=False)
    with pytest.raises(ValueError, match="weight_initializer"):
        HeteroLinear(4, 2, num_types=2, weight_initializer="foo")


def test_hetero_linear_matches_pyg():
    pyg = pytest.importorskip("torch_geometric")
    assert _signature(HeteroLinear) == _signature(pyg.nn.HeteroLinear)
    for kwargs in ({}, {"bias": False}, {"weight_initializer": "glorot", "bias_initializer": "zeros"}):
        torch.manual_seed(4)
        theirs = pyg.nn.HeteroLinear(6, 5, 3, **kwargs)
        torch.manual_seed(4)
        ours = HeteroLinear(6, 5, 3, **kwargs)
        assert repr(ours) == repr(theirs)
        assert {k: v.shape for k, v in ours.state_dict().items()} == {
            k: v.shape for k, v in theirs.state_dict().items()
        }
        for key, value in theirs.state_dict().items():  # same draws under the same seed
            assert torch.equal(ours.state_dict()[key], value)
        ours.reset_parameters()
        ours.load_state_dict(theirs.state_dict(), strict=True)
        x = torch.randn(12, 6)
        t = torch.randint(3, (12,))
        assert torch.allclose(ours(x, t), theirs(x, t), atol=1e-5)

    lazy = HeteroLinear(-1, 5, 3)
    lazy.load_state_dict(theirs.state_dict(), strict=True)
    assert lazy.in_channels == 6 and torch.allclose(lazy(x, t), theirs(x, t), atol=1e-5)


def test_hetero_dict_linear_matches_per_key_linear():
    torch.manual_seed(5)
    lin = HeteroDictLinear({"paper": 4, "author": 6}, 3)
    assert list(lin.state_dict()) == [
        "lins.paper.weight",
        "lins.paper.bias",
        "lins.author.weight",
        "lins.author.bias",
    ]
    x_dict = {"paper": torch.randn(5, 4), "author": torch.randn(2, 6), "unknown": torch.randn(1, 1)}
    out = lin(x_dict)
    assert set(out) == {"paper", "author"}
    for key in ("paper", "author"):
        w, b = lin.lins[key].weight, lin.lins[key].bias
        assert torch.allclose(out[key], x_dict[key] @ w.t() + b, atol=1e-6)
    assert repr(lin) == "HeteroDictLinear({'paper': 4, 'author': 6}, 3, bias=True)"

    shared = HeteroDictLinear(4, 3, types=["a", "b"], bias=False)
    assert shared.in_channels == {"a": 4, "b": 4} and shared.lins["a"].bias is None
    assert not torch.equal(shared.lins["a"].weight, shared.lins["b"].weight)


def test_hetero_dict_linear_lazy():
    lin = HeteroDictLinear(-1, 3, types=["a", "b"])
    assert repr(lin) == "HeteroDictLinear({'a': -1, 'b': -1}, 3, bias=True)"
    lin({"a": torch.randn(2, 5)})
    assert lin.in_channels == {"a": 5, "b": -1}
    lin({"b": torch.randn(2, 7)})
    assert repr(lin) == "HeteroDictLinear({'a': 5, 'b': 7}, 3, bias=True)"

    again = HeteroDictLinear(-1, 3, types=["a", "b"])
    again.load_state_dict(lin.state_dict())
    assert again.in_channels == {"a": 5, "b": 7}


def test_hetero_dict_linear_bad_input():
    with pytest.raises(ValueError, match="types"):
        HeteroDictLinear(4, 3)
    with pytest.raises(ValueError, match="types"):
        HeteroDictLinear({"a": 4}, 3, types=["b"])
    with pytest.raises(TypeError, match="x_dict"):
        HeteroDictLinear({"a": 4}, 3)([torch.randn(2, 4)])
    with pytest.raises(ValueError, match="'x'"):
        HeteroDictLinear({"a": 4}, 3)({"a": torch.randn(2, 5)})


def test_hetero_dict_linear_matches_pyg():
    pyg = pytest.importorskip("torch_geometric")
    assert _signature(HeteroDictLinear) == _signature(pyg.nn.HeteroDictLinear)
    torch.manual_seed(6)
    theirs = pyg.nn.HeteroDictLinear({"a": 4, "b": 6}, 3, weight_initializer="glorot")
    torch.manual_seed(6)
    ours = HeteroDictLinear({"a": 4, "b": 6}, 3, weight_initializer="glorot")
    assert repr(ours) == repr(theirs)
    for key, value in theirs.state_dict().items():
        assert torch.equal(ours.state_dict()[key], value)
    lazy = HeteroDictLinear(-1, 3, types=["a", "b"])
    lazy.load_state_dict(theirs.state_dict(), strict=True)
    x_dict = {"a": torch.randn(3, 4), "b": torch.randn(5, 6)}
    expected = theirs(x_dict)
    for model in (ours, lazy):
        out = model(x_dict)
        for key in expected:
            assert torch.allclose(out[key], expected[key], atol=1e-6)
