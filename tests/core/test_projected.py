"""``ops.projected_gather_sum`` (DimeNet++'s triplet interaction) against a per-element loop on
both backends (the pure-torch reference and, when built, the compiled kernels): values, first,
second and third derivatives, weight gradients skipped where the backward pass does not use
them, errors; and ``ops.silu_second_order`` against autograd's derivatives of SiLU."""

from __future__ import annotations

import contextlib

import pytest
import torch

from gnn.core import ops

BACKENDS = ["torch", None]  # None: whatever the selection picks (the kernels when built)


def chosen(backend):
    return ops.backend(backend) if backend else contextlib.nullcontext()


def problem(num_a=6, num_out=5, q=17, c=4, b=3, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    index = torch.randint(0, num_a - 1, (q,), generator=g)  # the last row of `a` is never read
    rows = torch.sort(torch.randint(1, num_out, (q,), generator=g)).values  # output row 0 is empty
    ptr = ops.ptr_from_sorted_index(rows, num_out)
    a = torch.randn(num_a, c, generator=g, dtype=dtype, requires_grad=True)
    s = torch.randn(q, b, generator=g, dtype=dtype, requires_grad=True)
    w = torch.randn(c, b, generator=g, dtype=dtype, requires_grad=True)
    return a, s, w, index, rows, ptr


def loop(a, s, w, index, rows, num_out):
    out = a.new_zeros(num_out, a.size(1))
    for q in range(index.numel()):
        out[rows[q]] = out[rows[q]] + a[index[q]] * (w @ s[q])
    return out


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_matches_loop(backend, dtype):
    a, s, w, index, rows, ptr = problem(dtype=dtype)
    with chosen(backend):
        out = ops.projected_gather_sum(a, s, w, index, ptr)
    torch.testing.assert_close(out, loop(a, s, w, index, rows, 5))
    assert out[0].abs().sum() == 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_first_second_and_third_derivatives(backend):
    a, s, w, index, rows, ptr = problem()
    fn = lambda a, s, w: ops.projected_gather_sum(a, s, w, index, ptr)  # noqa: E731
    with chosen(backend):
        assert torch.autograd.gradcheck(fn, (a, s, w))
        assert torch.autograd.gradgradcheck(fn, (a, s, w))

        def third(f):
            (ga, gs, gw) = torch.autograd.grad(f(a, s, w).sin().sum(), (a, s, w), create_graph=True)
            (h,) = torch.autograd.grad(ga.cos().sum() + gs.square().sum() + gw.sum(), (w,), create_graph=True)
            return torch.autograd.grad(h.square().sum(), (a, s, w))

        ours = third(fn)
    for x, y in zip(ours, third(lambda a, s, w: loop(a, s, w, index, rows, 5)), strict=True):
        torch.testing.assert_close(x, y)


@pytest.mark.parametrize("backend", BACKENDS)
def test_empty(backend):
    a, s, w, _, _, _ = problem()
    with chosen(backend):
        out = ops.projected_gather_sum(
            a, s[:0], w, torch.zeros(0, dtype=torch.long), torch.zeros(4, dtype=torch.long)
        )
        assert out.shape == (3, 4) and out.abs().sum() == 0
        out.sum().backward()
    assert a.grad.abs().sum() == 0 and w.grad.abs().sum() == 0


def test_force_pass_computes_no_weight_gradient(monkeypatch):
    """``autograd.grad`` towards ``a`` only: the backward asks for no ``h^T s`` weight product,
    while ``backward()`` still gives the weight its exact gradient."""
    import gnn.core.ops.projected as projected

    a, s, w, index, rows, ptr = problem()
    asked = []
    original = projected._project

    def spy(g, g_index, a_, a_index, weight, s_, need_first=True):
        asked.append(s_ is not None)
        return original(g, g_index, a_, a_index, weight, s_, need_first)

    monkeypatch.setattr(projected, "_project", spy)
    out = ops.projected_gather_sum(a, s, w, index, ptr)
    (ga,) = torch.autograd.grad(out.sum(), (a, s), create_graph=True)[:1]
    assert asked == [False]  # grad of s wanted, grad of w not: no weight product
    ga.square().sum().backward()
    assert True in asked[1:]
    expected = torch.autograd.grad(
        torch.autograd.grad(loop(a, s, w, index, rows, 5).sum(), a, create_graph=True)[0].square().sum(), w
    )[0]
    torch.testing.assert_close(w.grad, expected)


def test_will_use_grad_follows_the_engine():
    w = torch.randn(3, requires_grad=True)
    x = torch.randn(3, requires_grad=True)
    answers = []

    class Probe(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, w):
            return x * w

        @staticmethod
        def backward(ctx, g):
            answers.append(ops.will_use_grad(w))
            return g, g

    y = Probe.apply(x, w).sum()
    torch.autograd.grad(y, x, retain_graph=True)
    y.backward()
    assert answers == [False, True]
    assert ops.will_use_grad(w)  # outside a backward pass: errs on True
    assert not ops.will_use_grad(torch.randn(2))


def test_errors_name_the_argument():
    a, s, w, index, rows, ptr = problem()
    with pytest.raises(ValueError, match="'weight'"):
        ops.projected_gather_sum(a, s, w.t(), index, ptr)
    with pytest.raises(TypeError, match="'s' and 'weight'"):
        ops.projected_gather_sum(a, s.float(), w, index, ptr)
    with pytest.raises(ValueError, match="'index'"):
        ops.projected_gather_sum(a, s, w, index + 10, ptr)
    with pytest.raises(ValueError, match="'index'"):
        ops.projected_gather_sum(a, s, w, index[:-1], ptr)
    with pytest.raises(ValueError, match="'ptr'"):
        ops.projected_gather_sum(a, s, w, index, ptr[:-1])
    with pytest.raises(TypeError, match="'a'"):
        ops.projected_gather_sum(a.tolist(), s, w, index, ptr)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_silu_second_order_matches_autograd(backend, dtype):
    g0 = torch.Generator().manual_seed(1)
    z = torch.cat(
        [
            torch.randn(300, generator=g0, dtype=dtype) * 4,
            torch.tensor([0.0, -90.0, 90.0, -20.0, 20.0], dtype=dtype),
        ]
    )
    g = torch.randn(z.shape, generator=g0, dtype=dtype)
    u = torch.randn(z.shape, generator=g0, dtype=dtype)
    zz = z.clone().requires_grad_()
    gg = g.clone().requires_grad_()
    (g_z,) = torch.autograd.grad(torch.nn.functional.silu(zz), zz, gg, create_graph=True)
    grad_g, grad_z = torch.autograd.grad(g_z, (gg, zz), u)
    with chosen(backend):
        ours = ops.silu_second_order(z.view(61, 5), g.view(61, 5), u.view(61, 5))
    tol = {"atol": 1e-5, "rtol": 1e-5} if dtype == torch.float32 else {}
    for x, y in zip(ours, (g_z.detach(), grad_g, grad_z), strict=True):
        assert x.shape == (61, 5)
        torch.testing.assert_close(x.reshape(-1), y, **tol)


@pytest.mark.parametrize("backend", BACKENDS)
def test_silu_second_order_can_overwrite_u(backend):
    z, g, u = torch.randn(3, 4), torch.randn(3, 4), torch.randn(3, 4)
    with chosen(backend):
        expected = ops.silu_second_order(z, g, u)
        keep = u.clone()
        ours = ops.silu_second_order(z, g, u, overwrite_u=True)
    assert ours[1].data_ptr() == u.data_ptr()
    for x, y in zip(ours, expected, strict=True):
        torch.testing.assert_close(x, y)
    assert not torch.equal(u, keep)
    with pytest.raises(ValueError, match="'u' must be contiguous"):
        ops.silu_second_order(z, g, torch.randn(4, 3).t(), overwrite_u=True)


def test_silu_second_order_errors():
    z = torch.randn(4)
    with pytest.raises(ValueError, match="'g' and 'u'"):
        ops.silu_second_order(z, torch.randn(5), torch.randn(4))
    with pytest.raises(TypeError, match="'u'"):
        ops.silu_second_order(z, z, torch.ones(4, dtype=torch.long))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("need_first", [True, False])
def test_project_primitive_against_its_formula(backend, need_first):
    """The second primitive: ``h = g[rows] * a[index]``, ``(h @ W, h^T @ s)``; the first result
    left out (``[0, B]``) when it is not needed."""
    from gnn.core.ops.projected import _project

    a, s, w, index, rows, _ = problem(q=40)
    g = torch.randn(5, 4, dtype=torch.float64)
    with torch.no_grad(), chosen(backend):
        first, second = _project(g, rows, a, index, w, s, need_first=need_first)
    h = g[rows] * a.detach()[index]
    torch.testing.assert_close(second, h.t() @ s.detach())
    if need_first:
        torch.testing.assert_close(first, h @ w.detach())
    else:
        assert first.shape == (0, 3)


def test_grads_wanted_narrows_needs_input_grad():
    w, x = torch.randn(3, requires_grad=True), torch.randn(3, requires_grad=True)
    answers = []

    class Probe(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, w, none):
            return x * w

        @staticmethod
        def backward(ctx, g):
            answers.append(ops.grads_wanted(ctx, x, w, None))
            return g, g, None

    y = Probe.apply(x, w, None).sum()
    torch.autograd.grad(y, x, retain_graph=True)
    y.backward()
    assert answers == [(True, False, False), (True, True, False)]
