"""ops.gather_mul_scatter (weighted gather-sum with a memory-lean double backward) against a loop
reference, its first and second derivatives (gradcheck / gradgradcheck in float64), edge cases and
bad input; the ChannelWeightedSum plan and EdgeScaled products through MessagePassing (fused and
general paths agree, hooks see the product)."""

from __future__ import annotations

import pytest
import torch

from gnn.core import MessagePassing, ops, plans, testing
from gnn.core.ops.reference_gather_scatter import _GmsGrad

D = torch.float64


def _inputs(n=6, e=11, f=3, size=5, seed=0, sort=False):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, f, dtype=D, generator=g).requires_grad_()
    w = torch.randn(e, f, dtype=D, generator=g).requires_grad_()
    c = torch.rand(e, dtype=D, generator=g).add_(0.5).requires_grad_()
    gidx = torch.randint(0, n, (e,), generator=g)
    sidx = torch.randint(0, size, (e,), generator=g)
    if sort:
        sidx = sidx.sort().values
    return x, w, c, gidx, sidx


def _loop(x, w, c, gidx, sidx, size):
    out = torch.zeros(size, x.size(1), dtype=x.dtype)
    for e in range(gidx.numel()):
        scale = 1.0 if c is None else float(c[e].detach())
        out[sidx[e]] += x[gidx[e]].detach() * w[e].detach() * scale
    return out


@pytest.mark.parametrize("sort", [False, True])
@pytest.mark.parametrize("scaled", [False, True])
def test_values_and_derivatives_of_both_orders(sort, scaled):
    x, w, c, gidx, sidx = _inputs(sort=sort)
    ptr = ops.ptr_from_sorted_index(sidx, 5) if sort else None

    def fn(x, w, c=None):
        return ops.gather_mul_scatter(x, w, gidx, sidx, 5, scale=c, ptr=ptr)

    args = (x, w, c) if scaled else (x, w)
    testing.assert_close(fn(*args), _loop(x, w, c if scaled else None, gidx, sidx, 5), atol=1e-12, rtol=1e-12)
    assert torch.autograd.gradcheck(fn, args)
    assert torch.autograd.gradgradcheck(fn, args)


def test_first_backward_function_gradchecks_alone():
    x, w, c, gidx, sidx = _inputs()
    g = torch.randn(5, 3, dtype=D, requires_grad=True)
    for needs in ((True, True, True), (False, True, True), (True, False, False)):

        def first(g, x, w, c, needs=needs):
            return tuple(t for t in _GmsGrad.apply(g, x, w, c, gidx, sidx, None, needs) if t is not None)

        assert torch.autograd.gradcheck(first, (g, x, w, c))


def test_second_derivatives_match_plain_autograd_with_partial_inputs():
    x, w, c, gidx, sidx = _inputs(seed=3)
    xs = x.detach().requires_grad_()  # x alone differentiable; w, c constant
    ours = ops.gather_mul_scatter(xs, w.detach(), gidx, sidx, 5, scale=c.detach())
    plain = torch.zeros(5, 3, dtype=D).index_add(0, sidx, xs[gidx] * w.detach() * c.detach().view(-1, 1))
    got = torch.autograd.grad(
        (torch.autograd.grad((ours**3).sum(), xs, create_graph=True)[0] ** 2).sum(), xs
    )[0]
    want = torch.autograd.grad(
        (torch.autograd.grad((plain**3).sum(), xs, create_graph=True)[0] ** 2).sum(), xs
    )[0]
    testing.assert_close(got, want, atol=1e-10, rtol=1e-10)


def test_edge_cases_empty_int32_noncontiguous_no_grad():
    x, w, c, gidx, sidx = _inputs()
    ref = _loop(x, w, c, gidx, sidx, 5)
    out = ops.gather_mul_scatter(x, w, gidx.int(), sidx.int(), 5, scale=c)
    testing.assert_close(out, ref, atol=1e-12, rtol=1e-12)
    wt = torch.randn(3, 11, dtype=D).t()  # non-contiguous weight
    testing.assert_close(
        ops.gather_mul_scatter(x, wt, gidx, sidx, 5),
        _loop(x, wt, None, gidx, sidx, 5),
        atol=1e-12,
        rtol=1e-12,
    )
    with torch.no_grad():
        testing.assert_close(
            ops.gather_mul_scatter(x, w, gidx, sidx, 5, scale=c), ref, atol=1e-12, rtol=1e-12
        )
    empty = torch.empty(0, dtype=torch.long)
    out = ops.gather_mul_scatter(x, w[:0], empty, empty, 4, scale=c[:0])
    assert out.shape == (4, 3) and not out.any()
    out.sum().backward()
    assert not x.grad.any()
    assert ops.gather_mul_scatter(x[:0], w[:0], empty, empty, 0).shape == (0, 3)


def test_bad_input_names_the_argument():
    x, w, c, gidx, sidx = _inputs()
    cases = [
        ((x.long(), w, gidx, sidx, 5), {}, ValueError, "'x'"),
        ((x, w.float(), gidx, sidx, 5), {}, TypeError, "'weight'"),
        ((x, w[:, :2], gidx, sidx, 5), {}, ValueError, "'weight'"),
        ((x, w, gidx.double(), sidx, 5), {}, TypeError, "'gather_index'"),
        ((x, w, gidx[:3], sidx, 5), {}, ValueError, "'gather_index'"),
        ((x, w, gidx, sidx[:3], 5), {}, ValueError, "'scatter_index'"),
        ((x, w, gidx + 10, sidx, 5), {}, IndexError, "'gather_index'"),
        ((x, w, gidx, sidx, 2), {}, IndexError, "'scatter_index'"),
        ((x, w, gidx, sidx, 5.0), {}, TypeError, "'dim_size'"),
        ((x, w, gidx, sidx, 5), {"scale": c[:3]}, ValueError, "'scale'"),
        ((x, w, gidx, sidx, 5), {"scale": c.float()}, TypeError, "'scale'"),
        ((x, w, gidx, sidx, 5), {"ptr": torch.tensor([0, 11])}, ValueError, "'ptr'"),
        (([1.0], w, gidx, sidx, 5), {}, TypeError, "'x'"),
    ]
    for args, kwargs, error, name in cases:
        with pytest.raises(error, match=name):
            ops.gather_mul_scatter(*args, **kwargs)


# -- the plan ----------------------------------------------------------------------------------------
class _FilterConv(MessagePassing):
    """``sum_j x_j * W_ji`` with ``W = v * c`` handed to propagate as an EdgeScaled product."""

    fused_message = plans.ChannelWeightedSum(weight="W")

    def __init__(self, aggr="add"):
        super().__init__(aggr=aggr)

    def forward(self, x, edge_index, values, scale):
        W = values if scale is None else plans.EdgeScaled(values, scale)
        return self.propagate(edge_index, x=x, W=W)

    def message(self, x_j, W):
        return x_j * W


def _graph(sort):
    x, w, c, gidx, sidx = _inputs(e=14, size=6, sort=sort)
    return x, w, c, torch.stack([gidx, sidx])


@pytest.mark.parametrize("sort", [False, True])
@pytest.mark.parametrize("scaled", [False, True])
def test_plan_fused_and_general_paths_agree_through_double_backward(sort, scaled, monkeypatch):
    calls = []
    real = ops.gather_mul_scatter
    monkeypatch.setattr(ops, "gather_mul_scatter", lambda *a, **k: calls.append(1) or real(*a, **k))
    x, w, c, ei = _graph(sort)
    conv = _FilterConv()

    def run():
        xs = x.detach().requires_grad_()
        ws, cs = w.detach().requires_grad_(), c.detach().requires_grad_()
        out = conv(xs, ei, ws, cs if scaled else None)
        gx = torch.autograd.grad((out**2).sum(), xs, create_graph=True)[0]
        leaves = (xs, ws, cs) if scaled else (xs, ws)
        return [out.detach()] + list(torch.autograd.grad((gx**2).sum() + out.sum(), leaves))

    fused = run()
    assert calls == [1]
    seen = []
    handle = conv.register_message_forward_pre_hook(lambda m, inputs: seen.append(inputs[0]["W"]))
    general = run()
    handle.remove()
    assert calls == [1] and len(seen) == 1
    expected_w = w * c.view(-1, 1) if scaled else w
    testing.assert_close(seen[0], expected_w.detach(), atol=0, rtol=0)
    for a, b in zip(fused, general):
        testing.assert_close(a, b, atol=1e-12, rtol=1e-10)


def test_plan_declines_what_it_does_not_compute():
    x, w, c, ei = _graph(False)
    expected = _loop(x, w, c, ei[0], ei[1], 6)
    # a mean aggregation, a broadcasting [E, 1] weight: the general path
    mean = _FilterConv(aggr="mean")(x, ei, w, c)
    counts = torch.bincount(ei[1], minlength=6).clamp(min=1).view(-1, 1).to(D)
    testing.assert_close(mean, expected / counts, atol=1e-12, rtol=1e-12)
    col = _FilterConv()(x, ei, w[:, :1], None)
    testing.assert_close(col, _loop(x, w[:, :1].expand(-1, 3), None, ei[0], ei[1], 6), atol=1e-12, rtol=1e-12)
    # propagate hooks see the multiplied-out product as well
    conv = _FilterConv()
    got = []
    conv.register_propagate_forward_pre_hook(lambda m, inputs: got.append(inputs[2]["W"]))
    testing.assert_close(conv(x, ei, w, c), expected, atol=1e-12, rtol=1e-12)
    assert isinstance(got[0], torch.Tensor)
    # explain mode: the general path
    conv = _FilterConv()
    conv.explain = True
    conv._edge_mask = torch.ones(ei.size(1), dtype=D)
    conv._apply_sigmoid = False
    testing.assert_close(conv(x, ei, w, c), expected, atol=1e-12, rtol=1e-12)


def test_edge_scaled_validates_and_multiplies():
    v, s = torch.randn(4, 2, 3), torch.rand(4)
    testing.assert_close(plans.EdgeScaled(v, s).tensor(), v * s.view(-1, 1, 1), atol=0, rtol=0)
    assert plans.materialize(plans.EdgeScaled(v, s)).shape == (4, 2, 3)
    with pytest.raises(ValueError, match="'scale'"):
        plans.EdgeScaled(v, s[:3])
    with pytest.raises(TypeError, match="'scale'"):
        plans.EdgeScaled(v, s.double())
    with pytest.raises(TypeError, match="'values'"):
        plans.EdgeScaled([1.0], s)
    kwargs = {"a": 1}
    assert plans.materialize_products(kwargs) is kwargs


def test_backward_skips_gradients_the_pass_discards(monkeypatch):
    from gnn.core.ops import reference_gather_scatter as ref

    seen = []
    real = ref._GmsGrad.apply
    monkeypatch.setattr(ref._GmsGrad, "apply", lambda *a: seen.append(a[-1]) or real(*a))
    x, w, c, gidx, sidx = _inputs()
    out = ops.gather_mul_scatter(x, w, gidx, sidx, 5, scale=c)
    (gx,) = torch.autograd.grad(out.sum(), x, retain_graph=True)  # as forces: x only
    assert seen == [(True, False, False)]
    testing.assert_close(gx, torch.autograd.grad(_plain(x, w, c, gidx, sidx).sum(), x)[0], atol=1e-12, rtol=0)
    out.sum().backward()
    assert seen[-1] == (True, True, True)


def _plain(x, w, c, gidx, sidx):
    return torch.zeros(5, x.size(1), dtype=x.dtype).index_add(0, sidx, x[gidx] * w * c.view(-1, 1))
