import inspect
import math

import pytest
import torch

from gnn.core.nn import inits


def _module_with_buffer() -> torch.nn.Module:
    module = torch.nn.Linear(3, 4)
    module.register_buffer("buf", torch.full((2, 2), 7.0))
    return module


def test_glorot_matches_uniform_with_xavier_bound():
    w = torch.empty(16, 32)
    torch.manual_seed(0)
    inits.glorot(w)
    torch.manual_seed(0)
    bound = math.sqrt(6.0 / (16 + 32))
    expected = torch.empty(16, 32).uniform_(-bound, bound)
    assert torch.equal(w, expected)
    assert w.abs().max() <= bound


def test_glorot_uses_last_two_dims_and_modules():
    w = torch.empty(3, 5, 7)
    torch.manual_seed(1)
    inits.glorot(w)
    torch.manual_seed(1)
    bound = math.sqrt(6.0 / 12)
    assert torch.equal(w, torch.empty(3, 5, 7).uniform_(-bound, bound))

    module = torch.nn.Linear(4, 6, bias=False)
    module.register_buffer("buf", torch.zeros(2, 3))
    torch.manual_seed(2)
    inits.glorot(module)
    torch.manual_seed(2)
    w_ref = torch.empty(6, 4).uniform_(-math.sqrt(0.6), math.sqrt(0.6))
    b_ref = torch.empty(2, 3).uniform_(-math.sqrt(6 / 5), math.sqrt(6 / 5))
    assert torch.equal(module.weight, w_ref)
    assert torch.equal(module.buf, b_ref)
    assert module.weight.grad_fn is None and module.weight.requires_grad


def test_glorot_rejects_vectors():
    with pytest.raises(ValueError, match="value"):
        inits.glorot(torch.empty(5))


def test_glorot_orthogonal_variance_and_orthogonality():
    w = torch.empty(5, 7, dtype=torch.float64)
    torch.manual_seed(0)
    inits.glorot_orthogonal(w, 2.0)
    assert math.isclose(w.var().item(), 2.0 / 12, rel_tol=1e-9)
    gram = w @ w.t()  # rows stay orthogonal: a multiple of the identity
    diag = gram.diagonal()
    assert torch.allclose(gram, torch.diag(diag), atol=1e-12)
    assert torch.allclose(diag, diag[0].expand(5))


def test_uniform_and_kaiming_bounds():
    w = torch.empty(8, 3)
    torch.manual_seed(3)
    inits.uniform(9, w)
    torch.manual_seed(3)
    assert torch.equal(w, torch.empty(8, 3).uniform_(-1 / 3, 1 / 3))

    torch.manual_seed(4)
    inits.kaiming_uniform(w, fan=3, a=math.sqrt(5))
    torch.manual_seed(4)
    ref = torch.empty(8, 3)
    torch.nn.init.kaiming_uniform_(ref, a=math.sqrt(5))  # fan_in = 3
    assert torch.equal(w, ref)


def test_constant_zeros_ones_normal_reach_params_and_buffers():
    module = _module_with_buffer()
    inits.zeros(module)
    assert all(bool((t == 0).all()) for t in [module.weight, module.bias, module.buf])
    inits.ones(module)
    assert all(bool((t == 1).all()) for t in [module.weight, module.bias, module.buf])
    inits.constant(module, 3.5)
    assert all(bool((t == 3.5).all()) for t in [module.weight, module.bias, module.buf])

    t = torch.empty(1000, dtype=torch.float64)
    torch.manual_seed(5)
    inits.normal(t, 2.0, 0.5)
    torch.manual_seed(5)
    assert torch.equal(t, torch.empty(1000, dtype=torch.float64).normal_(2.0, 0.5))


def test_none_and_lazy_are_left_alone():
    for fn in (inits.glorot, inits.zeros, inits.ones):
        fn(None)
    inits.uniform(3, None)
    inits.kaiming_uniform(None, 3, 1.0)
    inits.constant(None, 1.0)
    inits.normal(None, 0.0, 1.0)
    inits.glorot_orthogonal(None, 1.0)
    lazy = torch.nn.LazyLinear(3)
    inits.zeros(lazy)  # uninitialized parameters are skipped
    assert torch.nn.parameter.is_lazy(lazy.weight)


def test_reset_prefers_reset_parameters_then_recurses():
    class WithReset(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(2, 2)
            self.calls = 0

        def reset_parameters(self):
            self.calls += 1

    class Plain(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = torch.nn.Sequential(torch.nn.Linear(2, 2), WithReset())

    model = Plain()
    with_reset = model.inner[1]
    kept = with_reset.lin.weight.clone()
    old = model.inner[0].weight.clone()
    inits.reset(model)
    assert with_reset.calls == 1
    assert torch.equal(with_reset.lin.weight, kept)  # its own reset_parameters decides
    assert not torch.equal(model.inner[0].weight, old)  # reached through two plain containers
    inits.reset(None)
    inits.reset(torch.nn.ReLU())


def test_signatures_match_pyg():
    pyg_inits = pytest.importorskip("torch_geometric.nn.inits")
    for name in inits.__all__:
        ours = list(inspect.signature(getattr(inits, name)).parameters)
        theirs = list(inspect.signature(getattr(pyg_inits, name)).parameters)
        assert ours == theirs, name


def test_same_draws_as_pyg():
    pyg_inits = pytest.importorskip("torch_geometric.nn.inits")
    cases = [
        ("glorot", ()),
        ("uniform", None),
        ("kaiming_uniform", None),
        ("normal", (0.5, 2.0)),
        ("glorot_orthogonal", (1.5,)),
    ]
    for name, extra in cases:
        a, b = torch.empty(6, 4), torch.empty(6, 4)
        for fn, t in ((getattr(inits, name), a), (getattr(pyg_inits, name), b)):
            torch.manual_seed(11)
            if name == "uniform":
                fn(7, t)
            elif name == "kaiming_uniform":
                fn(t, 7, math.sqrt(5))
            else:
                fn(t, *extra)
        assert torch.allclose(a, b, atol=1e-6), name
