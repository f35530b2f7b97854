"""gnn.core.nn.act.activate: a ReLU runs in place only on a fresh tensor nobody can observe, with
the gradients of the out-of-place ReLU."""

from __future__ import annotations

import torch

from gnn.core import MLP
from gnn.core.nn.act import activate, no_forward_hooks


def fresh(requires_grad: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    w = torch.randn(4, 3, requires_grad=requires_grad)
    return w, torch.nn.functional.linear(torch.randn(5, 3), w)


def test_in_place_on_fresh_tensors_with_the_same_gradients():
    w, h = fresh()
    w2 = w.detach().clone().requires_grad_()
    x = torch.randn(5, 3)
    a = torch.nn.functional.linear(x, w)
    b = torch.nn.functional.linear(x, w2)
    out = activate(torch.nn.ReLU(), a, fresh=True)
    assert out is a
    torch.testing.assert_close(out, torch.relu(b))
    ga = torch.autograd.grad(out.square().sum(), [w])[0]
    gb = torch.autograd.grad(torch.relu(b).square().sum(), [w2])[0]
    torch.testing.assert_close(ga, gb)


def test_out_of_place_whenever_something_could_tell():
    relu = torch.nn.ReLU()
    _, h = fresh()
    assert activate(relu, h, fresh=False) is not h
    assert activate(torch.nn.LeakyReLU(), h, fresh=True) is not h  # only an exact ReLU
    assert activate(relu, h[:, :2], fresh=True)._base is None  # a view is never overwritten
    leaf = torch.randn(3, requires_grad=True)
    assert activate(relu, leaf, fresh=True) is not leaf
    handle = relu.register_forward_hook(lambda *args: None)
    assert activate(relu, h, fresh=True) is not h  # the act's hook must run
    handle.remove()
    handle = torch.nn.modules.module.register_module_forward_hook(lambda *args: None)
    try:
        assert not no_forward_hooks(relu)
        assert activate(relu, h, fresh=True) is not h
    finally:
        handle.remove()


def test_mlp_output_and_gradients_unchanged():
    torch.manual_seed(0)
    x = torch.randn(8, 4)
    for norm in (None, "batch_norm", "layer_norm"):
        a = MLP([4, 6, 6, 3], norm=norm)
        b = MLP([4, 6, 6, 3], norm=norm)
        b.load_state_dict(a.state_dict())
        b.act = torch.nn.LeakyReLU(0.0)  # the same function, never in place
        out_a, out_b = a(x), b(x)
        torch.testing.assert_close(out_a, out_b)
        ga = torch.autograd.grad(out_a.square().sum(), list(a.parameters()))
        gb = torch.autograd.grad(out_b.square().sum(), list(b.parameters()))
        torch.testing.assert_close(ga, gb)


def test_mlp_hook_on_a_linear_keeps_its_output():
    mlp = MLP([4, 6, 3], norm=None)
    kept = []
    mlp.lins[0].register_forward_hook(lambda module, inputs, output: kept.append(output.clone()) or None)
    seen = []
    mlp.lins[0].register_forward_hook(lambda module, inputs, output: seen.append(output))
    mlp(torch.randn(5, 4))
    torch.testing.assert_close(seen[0], kept[0])  # not overwritten by the ReLU
