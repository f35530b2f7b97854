import copy
import inspect

import pytest
import torch
from torch.nn.parameter import is_lazy

from gnn.core import Linear

INITIALIZERS = [(w, b) for w in (None, "glorot", "uniform", "kaiming_uniform") for b in (None, "zeros")]


def test_default_init_and_forward_match_torch_linear():
    torch.manual_seed(0)
    ref = torch.nn.Linear(16, 32)
    torch.manual_seed(0)
    lin = Linear(16, 32)
    assert torch.equal(lin.weight, ref.weight)
    assert torch.equal(lin.bias, ref.bias)
    x = torch.randn(2, 5, 16)
    assert torch.allclose(lin(x), x @ ref.weight.t() + ref.bias, atol=1e-6)
    assert repr(lin) == "Linear(16, 32, bias=True)"
    assert repr(Linear(4, 2, bias=False)) == "Linear(4, 2, bias=False)"


@pytest.mark.parametrize("weight_init,bias_init", INITIALIZERS)
def test_initializers(weight_init, bias_init):
    torch.manual_seed(1)
    lin = Linear(9, 4, weight_initializer=weight_init, bias_initializer=bias_init)
    bound = {None: 1 / 3, "uniform": 1 / 3, "kaiming_uniform": 1 / 3, "glorot": (6 / 13) ** 0.5}[weight_init]
    assert lin.weight.abs().max() <= bound
    assert lin.weight.abs().max() > 0.5 * bound
    if bias_init == "zeros":
        assert bool((lin.bias == 0).all())
    else:
        assert lin.bias.abs().max() <= 1 / 3 and lin.bias.abs().max() > 0
    weight, bias = lin.weight.clone(), lin.bias.clone()
    lin.reset_parameters()
    assert not torch.equal(lin.weight, weight)
    assert bias_init == "zeros" or not torch.equal(lin.bias, bias)


@pytest.mark.parametrize("weight_init,bias_init", INITIALIZERS)
def test_same_draws_as_pyg(weight_init, bias_init):
    pyg = pytest.importorskip("torch_geometric")
    torch.manual_seed(2)
    theirs = pyg.nn.Linear(6, 5, weight_initializer=weight_init, bias_initializer=bias_init)
    torch.manual_seed(2)
    ours = Linear(6, 5, weight_initializer=weight_init, bias_initializer=bias_init)
    assert torch.equal(ours.weight, theirs.weight)
    assert torch.equal(ours.bias, theirs.bias)


def test_lazy_materializes_on_first_forward():
    lin = Linear(-1, 3)
    assert is_lazy(lin.weight)
    assert repr(lin) == "Linear(-1, 3, bias=True)"
    x = torch.randn(4, 7)
    torch.manual_seed(3)
    out = lin(x)
    assert lin.in_channels == 7 and lin.weight.shape == (3, 7)
    assert repr(lin) == "Linear(7, 3, bias=True)"
    assert torch.allclose(out, x @ lin.weight.t() + lin.bias, atol=1e-6)
    torch.manual_seed(3)
    ref = torch.nn.Linear(7, 3)  # materialization draws exactly like a fresh layer
    assert torch.equal(lin.weight, ref.weight) and torch.equal(lin.bias, ref.bias)
    out.sum().backward()
    assert lin.weight.grad.shape == (3, 7)


def test_lazy_follows_dtype_and_copies():
    lin = Linear(-1, 3, bias=False).double()
    assert lin(torch.randn(2, 4, dtype=torch.float64)).dtype == torch.float64

    lazy = Linear(-1, 3)
    clone = copy.deepcopy(lazy)
    shallow = copy.copy(lazy)
    clone(torch.randn(2, 5))
    assert clone.in_channels == 5 and is_lazy(lazy.weight) and is_lazy(shallow.weight)
    lazy(torch.randn(2, 6))
    assert lazy.weight.shape == (3, 6) and clone.weight.shape == (3, 5)

    clone2 = copy.deepcopy(lazy)
    assert torch.equal(clone2.weight, lazy.weight) and clone2.weight is not lazy.weight


def test_lazy_state_dict_roundtrip():
    lazy = Linear(-1, 3)
    state = lazy.state_dict()
    assert list(state) == ["weight", "bias"] and is_lazy(state["weight"])
    other = Linear(5, 3)
    other.load_state_dict(state)  # a lazy checkpoint makes the layer lazy again
    assert is_lazy(other.weight) and other.in_channels == -1
    assert other(torch.randn(2, 4)).shape == (2, 3)

    ready = Linear(4, 3)
    fresh = Linear(-1, 3)
    fresh.load_state_dict(ready.state_dict())
    assert fresh.in_channels == 4 and torch.equal(fresh.weight, ready.weight)
    x = torch.randn(5, 4)
    assert torch.equal(fresh(x), ready(x))

    with pytest.raises(RuntimeError, match="size mismatch"):
        Linear(-1, 3).load_state_dict({"weight": torch.zeros(3), "bias": torch.zeros(3)})
    with pytest.raises(RuntimeError, match="size mismatch"):
        Linear(-1, 2).load_state_dict(ready.state_dict())


@pytest.mark.parametrize("src_in,dst_in", [(4, 4), (4, -1), (-1, 4), (-1, -1)])
def test_loads_pyg_state_dicts(src_in, dst_in):
    pyg = pytest.importorskip("torch_geometric")
    theirs = pyg.nn.Linear(src_in, 3)
    ours = Linear(dst_in, 3)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.randn(6, 4)
    if src_in > 0:
        assert ours.in_channels == 4
        assert torch.allclose(ours(x), theirs(x), atol=1e-6)
    else:
        assert is_lazy(ours.weight)
        assert ours(x).shape == (6, 3) and ours.in_channels == 4
    # and back: PyG loads ours
    back = pyg.nn.Linear(-1, 3)
    back.load_state_dict(ours.state_dict(), strict=True)
    assert torch.allclose(back(x), ours(x), atol=1e-6)


def test_signature_matches_pyg():
    pyg = pytest.importorskip("torch_geometric")
    ours = [(p.name, p.kind, p.default) for p in inspect.signature(Linear).parameters.values()]
    theirs = [(p.name, p.kind, p.default) for p in inspect.signature(pyg.nn.Linear).parameters.values()]
    assert ours == theirs
    assert list(inspect.signature(Linear.forward).parameters) == ["self", "x"]


def test_bad_arguments():
    with pytest.raises(ValueError, match="weight_initializer"):
        Linear(3, 4, weight_initializer="xavier")
    with pytest.raises(ValueError, match="bias_initializer"):
        Linear(3, 4, bias_initializer="ones")
    with pytest.raises(ValueError, match="in_channels"):
        Linear(-3, 4)
    with pytest.raises(ValueError, match="out_channels"):
        Linear(3, -4)
    with pytest.raises(ValueError, match="'x'"):
        Linear(3, 4)(torch.randn(2, 5))
    with pytest.raises(TypeError, match="'x'"):
        Linear(-1, 4)([1.0, 2.0])


@pytest.mark.parametrize("bias", [True, False])
def test_add_to_equals_sum_and_its_gradients(bias):
    torch.manual_seed(0)
    lin = Linear(5, 3, bias=bias).double()
    acc = torch.randn(7, 3, dtype=torch.float64, requires_grad=True)
    x = torch.randn(7, 5, dtype=torch.float64, requires_grad=True)
    grad = torch.randn(7, 3, dtype=torch.float64)
    expected = acc + x @ lin.weight.t() + (lin.bias if bias else 0)
    torch.testing.assert_close(lin.add_to(acc, x), expected)
    params = [acc, x, *lin.parameters()]
    fused = torch.autograd.grad(lin.add_to(acc, x), params, grad)
    plain = torch.autograd.grad(acc + lin(x), params, grad)
    for a, b in zip(fused, plain):
        torch.testing.assert_close(a, b)
    assert torch.autograd.gradcheck(lambda a, b: lin.add_to(a, b), (acc, x))


def test_add_to_leaves_acc_untouched_and_falls_back_on_other_shapes():
    torch.manual_seed(0)
    lin = Linear(4, 2)
    acc = torch.randn(3, 2)
    before = acc.clone()
    lin.add_to(acc, torch.randn(3, 4))
    torch.testing.assert_close(acc, before)
    x3 = torch.randn(2, 3, 4)  # 3-D input and a broadcast accumulator: the plain sum
    torch.testing.assert_close(lin.add_to(torch.ones(2), x3), 1 + lin(x3))


def test_add_to_materializes_a_lazy_layer_and_validates():
    lin = Linear(-1, 2)
    out = lin.add_to(torch.zeros(3, 2), torch.randn(3, 6))
    assert lin.in_channels == 6 and out.shape == (3, 2)
    with pytest.raises(ValueError, match="6 features"):
        lin.add_to(torch.zeros(3, 2), torch.randn(3, 5))
