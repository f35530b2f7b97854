r"""``act(x W^T + b)`` with a memory-lean first and second derivative (package-private).

Training on forces backpropagates twice: ``F = -dE/dpos`` is taken with ``create_graph=True``
and the loss on ``F`` is backpropagated into the weights. Through ``y = act(x W^T + b)`` plain
autograd keeps, until the second pass, ``x``, the pre-activation ``z``, the incoming gradient
``g_y`` and ``g_z = g_y * act'(z)``: four ``[E, H]`` tensors per layer. Here the forward keeps
``x`` and ``z`` (and the parameters), the first backward is itself a function that keeps ``g_y``
(and the same ``x`` and ``z``), and the second backward recomputes ``g_z`` from them: three
``[E, H]`` tensors per layer stay alive, the rest is transient.

The second backward is written in closed form. With ``g_z = g act'(z)`` the first backward
returns ``g_x = g_z W``, ``g_W = g_z^T x`` and ``g_b = sum_e g_z``; given their incoming gradients
``(a_x, a_W, a_b)`` and ``u = a_x W^T + x a_W^T + a_b``:

.. math::
    \bar g = u\, \mathrm{act}'(z), \qquad \bar z = u\, g\, \mathrm{act}''(z), \qquad
    \bar x = g_z a_W + \bar z W, \qquad \bar W = g_z^T a_x + \bar z^T x, \qquad
    \bar b = \textstyle\sum_e \bar z

(:math:`\bar z` is handed back to the forward's node, which chains it through
:math:`z = x W^T + b` together with the gradient arriving through ``act(z)``: one pair of
matmuls for both). SiLU and activations
that define ``_derivative`` and ``_second_derivative`` (SchNet's shifted softplus) use these
formulas; any other elementwise ``act`` gets its derivatives from autograd. Derivatives of the
third order and beyond are differentiable torch expressions (correct, not lean).

The first backward computes the weight gradients only when autograd will use them: forces
(``torch.autograd.grad(E, pos, create_graph=True)``) need ``g_x`` alone, and computing ``g_W``
there would cost one more ``[H, E] x [E, H]`` product per layer for nothing.

The values and gradients of every order are those of ``act(F.linear(x, W, b))``.

:func:`dense_act_dense` does the same for a two-layer block ``lin2(act(lin1(x)))`` (SchNet's filter
network): the forward keeps ``x`` and the first pre-activation ``z`` only (not ``act(z)``, which
plain autograd keeps for ``lin2``'s weight gradient, nor the output), the first backward keeps the
incoming gradient, and ``act(z)`` is recomputed where a derivative needs it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from gnn.core import ops

__all__ = ["dense_act", "dense_act_dense"]


def _is_silu(act: Callable) -> bool:
    return act is F.silu or getattr(act, "__name__", "") == "swish" or type(act) is torch.nn.SiLU


def _silu_second(z: Tensor) -> Tensor:
    r""":math:`\mathrm{silu}''(z) = \sigma(1 - \sigma)(2 + z(1 - 2\sigma))` (differentiable)."""
    s = torch.sigmoid(z)
    return s * (1.0 - s) * (2.0 + z * (1.0 - 2.0 * s))


def _act_grad(act: Callable, z: Tensor, g: Tensor, create_graph: bool = False) -> Tensor:
    """``g * act'(z)``: closed form for SiLU (one fused aten kernel) and for activations that
    know their derivative, else by autograd on the elementwise ``act`` (differentiable in ``z``
    and ``g`` with ``create_graph``)."""
    if _is_silu(act):
        if torch.is_grad_enabled():  # aten's fused silu_backward has no derivative of its own
            s = torch.sigmoid(z)
            return g * s * (1.0 + z * (1.0 - s))
        return torch.ops.aten.silu_backward(g, z)
    derivative = getattr(act, "_derivative", None)  # an activation that knows its derivative
    if derivative is not None:
        return g * derivative(z)
    with torch.enable_grad():
        zz = z if create_graph else z.detach().requires_grad_()
        (g_z,) = torch.autograd.grad(act(zz), zz, g, create_graph=create_graph)
    return g_z


def _second_order(act: Callable, z: Tensor, g: Tensor, u: Tensor) -> tuple[Tensor, Tensor, Tensor] | None:
    """``(g act'(z), u act'(z), u g act''(z))`` in closed form, or ``None`` when ``act`` has none.
    Outside a gradient graph SiLU's go through one fused op (:func:`gnn.core.ops.silu_second_order`)."""
    if _is_silu(act):
        if torch.is_grad_enabled():
            return _act_grad(act, z, g), _act_grad(act, z, u), u * g * _silu_second(z)
        owned = u.is_contiguous() and u.shape == z.shape  # a fresh temporary of the caller's
        return ops.silu_second_order(z, g, u if owned else u.expand(z.shape), overwrite_u=owned)
    first = getattr(act, "_derivative", None)
    second = getattr(act, "_second_derivative", None)
    if first is None or second is None:
        return None
    d1 = first(z)
    return g * d1, u * d1, u * g * second(z)


class _DenseAct(torch.autograd.Function):
    """``x, w, b -> (act(z), z)`` with ``z = x w^T + b``. The pre-activation is an output so that
    the second backward hands its gradient back to this node: autograd adds it to the one coming
    through ``act(z)`` and :meth:`backward` chains both through ``z = x w^T + b`` with one pair of
    matmuls."""

    @staticmethod
    def forward(ctx, x, w, b, act):  # type: ignore[override]
        z = F.linear(x, w, b)
        ctx.act = act
        ctx.set_materialize_grads(False)
        y = act(z)
        ctx.save_for_backward(x, w, b, z)
        return y, z

    @staticmethod
    def backward(ctx, g, g_z_more):  # type: ignore[override]
        x, w, b, z = ctx.saved_tensors
        needs = ops.grads_wanted(ctx, x, w, b)
        if not torch.is_grad_enabled():  # the last backward: one chain for both parts
            g_z = g_z_more
            if g is not None:
                g_z = _act_grad(ctx.act, z, g) if g_z is None else _act_grad(ctx.act, z, g).add_(g_z)
            return (*_chain_linear(g_z, x, w, needs), None) if g_z is not None else (None, None, None, None)
        grad_x = grad_w = grad_b = None
        if g is not None:
            grad_x, grad_w, grad_b = _DenseActGrad.apply(g, x, w, b, z, ctx.act, tuple(needs))
        if g_z_more is not None:  # from a second backward that builds a graph itself
            more = _chain_linear(g_z_more, x, w, needs)
            grad_x, grad_w, grad_b = (
                m if p is None else (p if m is None else p + m)
                for p, m in zip((grad_x, grad_w, grad_b), more)
            )
        return grad_x, grad_w, grad_b, None


def _chain_linear(g_z: Tensor, x: Tensor, w: Tensor, needs) -> tuple[Tensor | None, ...]:  # noqa: ANN001
    """``(g_z w, g_z^T x, sum g_z)`` (each ``None`` where not needed): the gradients through
    ``z = x w^T + b``."""
    flat = g_z.reshape(-1, g_z.size(-1))
    return (
        g_z @ w if needs[0] else None,
        flat.t() @ x.reshape(-1, x.size(-1)) if needs[1] else None,
        flat.sum(0) if needs[2] else None,
    )


class _DenseActGrad(torch.autograd.Function):
    """``(g, x, w, b, z) -> (g_x, g_w, g_b)`` of :class:`_DenseAct` (``None`` where not needed);
    ``z`` is the forward's pre-activation output, so the gradient of ``z`` this function's
    backward returns joins the forward node's backward."""

    @staticmethod
    def forward(ctx, g, x, w, b, z, act, needs):  # type: ignore[override]
        ctx.save_for_backward(g, x, w, z)  # (x and z are the forward's: no new memory but g)
        ctx.act = act
        ctx.set_materialize_grads(False)
        with torch.no_grad():
            return _chain_linear(_act_grad(act, z, g), x, w, needs)

    @staticmethod
    def backward(ctx, bar_x, bar_w, bar_b):  # type: ignore[override]
        g, x, w, z = ctx.saved_tensors
        if bar_x is None and bar_w is None and bar_b is None:
            return None, None, None, None, None, None, None
        # u = dL/dg_z: every output of the first backward is linear in g_z
        u = None
        if bar_x is not None:
            u = bar_x @ w.t()
        if bar_w is not None:
            term = (x.reshape(-1, x.size(-1)) @ bar_w.t()).view(g.shape)
            u = term if u is None else u + term
        if bar_b is not None:
            u = bar_b.expand(g.shape) if u is None else u + bar_b
        closed = _second_order(ctx.act, z, g, u)
        if closed is not None:
            g_z, grad_g, grad_z = closed
        else:
            grad_g, grad_z = _autograd_act_grad2(ctx.act, z, g, u)
            g_z = _act_grad(ctx.act, z, g, create_graph=torch.is_grad_enabled())
        grad_x = grad_w = None
        if bar_x is not None:
            grad_w = g_z.reshape(-1, g_z.size(-1)).t() @ bar_x.reshape(-1, bar_x.size(-1))
        if bar_w is not None:
            grad_x = (g_z @ bar_w).view(x.shape)
        return grad_g, grad_x, grad_w, None, grad_z, None, None


def _autograd_act_grad2(act: Callable, z: Tensor, g: Tensor, u: Tensor) -> tuple[Tensor, Tensor]:
    """``(d/dg, d/dz)`` of ``<u, g act'(z)>`` by autograd (an activation without closed forms)."""
    create = torch.is_grad_enabled()
    with torch.enable_grad():
        g_ = g if (create and g.requires_grad) else g.detach().requires_grad_()
        z_ = z if (create and z.requires_grad) else z.detach().requires_grad_()
        g_z = _act_grad(act, z_, g_, create_graph=True)
        grad_g, grad_z = torch.autograd.grad(g_z, (g_, z_), u, create_graph=create, allow_unused=True)
    if grad_g is None:
        grad_g = torch.zeros_like(g)
    if grad_z is None:
        grad_z = torch.zeros_like(z)
    return grad_g, grad_z


def dense_act(x: Tensor, lin: torch.nn.Linear, act: Callable[[Tensor], Tensor]) -> Tensor:
    """``act(lin(x))``; lean autograd (see the module docstring) when ``x`` needs a gradient
    graph, else the plain computation."""
    if not torch.is_grad_enabled() or torch.compiler.is_compiling():
        return act(lin(x))
    return _DenseAct.apply(x, lin.weight, lin.bias, act)[0]


class _DenseActDense(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w1, b1, w2, b2, act):  # type: ignore[override]
        z = F.linear(x, w1, b1)
        ctx.save_for_backward(x, w1, b1, w2, b2, z)
        ctx.act = act
        return F.linear(act(z), w2, b2)

    @staticmethod
    def backward(ctx, g):  # type: ignore[override]
        x, w1, b1, w2, b2, z = ctx.saved_tensors
        # gradients this pass discards (the weights' while forces are taken) are not computed
        needs = ops.grads_wanted(ctx, x, w1, b1, w2, b2)
        outs = _DenseActDenseGrad.apply(g, x, w1, b1, w2, b2, z, ctx.act, needs)
        return (*outs, None)


def _two_layer_grads(
    act: Callable,
    g: Tensor,
    x: Tensor,
    w1: Tensor,
    w2: Tensor,
    z: Tensor,
    needs: tuple,
    with_b1: bool,
    with_b2: bool,
    create_graph: bool,
) -> list[Tensor | None]:
    """``(g_x, g_w1, g_b1, g_w2, g_b2)`` of ``y = act(x w1^T + b1) w2^T + b2`` for the incoming
    gradient ``g`` (``None`` where not needed), as a function of ``(g, x, w1, w2, z)``."""
    flat = g.reshape(-1, g.size(-1))
    g_z = None
    if needs[0] or needs[1] or (needs[2] and with_b1):
        g_z = _act_grad(act, z, g @ w2, create_graph=create_graph)
    g_x = g_z @ w1 if needs[0] else None
    g_w1 = g_z.reshape(-1, g_z.size(-1)).t() @ x.reshape(-1, x.size(-1)) if needs[1] else None
    g_b1 = g_z.reshape(-1, g_z.size(-1)).sum(0) if (needs[2] and with_b1) else None
    g_w2 = flat.t() @ act(z).reshape(-1, z.size(-1)) if needs[3] else None
    g_b2 = flat.sum(0) if (needs[4] and with_b2) else None
    return [g_x, g_w1, g_b1, g_w2, g_b2]


class _DenseActDenseGrad(torch.autograd.Function):
    """``(g, x, w1, b1, w2, b2) -> (g_x, g_w1, g_b1, g_w2, g_b2)`` of :class:`_DenseActDense`."""

    @staticmethod
    def forward(ctx, g, x, w1, b1, w2, b2, z, act, needs):  # type: ignore[override]
        ctx.save_for_backward(g, x, w1, b1, w2, b2, z)  # (x and z are the forward's: no new memory but g)
        ctx.act, ctx.needs = act, needs
        ctx.set_materialize_grads(False)  # outputs the second pass does not use get no work there
        with torch.no_grad():
            outs = _two_layer_grads(act, g, x, w1, w2, z, needs, b1 is not None, b2 is not None, False)
        return tuple(outs)

    @staticmethod
    def backward(ctx, *bars):  # type: ignore[override]
        g, x, w1, b1, w2, b2, z = ctx.saved_tensors
        present = tuple(bar is not None for bar in bars)
        if torch.is_grad_enabled():  # a derivative of order three or more: see _third_order_vjp
            return _third_order_vjp(ctx.act, (g, x, w1, b1, w2, b2, z), bars, present)
        g_, x_, w1_, w2_, z_ = (t.detach().requires_grad_() for t in (g, x, w1, w2, z))
        with torch.enable_grad():
            # the first backward as a function of (g, x, w1, w2, z); z = x w1^T + b1 is chained below
            outs = _two_layer_grads(
                ctx.act, g_, x_, w1_, w2_, z_, present, b1 is not None, b2 is not None, True
            )
            pairs = [(out, bar) for out, bar in zip(outs, bars) if out is not None and bar is not None]
            if not pairs:
                return (None,) * 9
            grad_g, grad_x, grad_w1, grad_w2, grad_z = torch.autograd.grad(
                [out for out, _ in pairs],
                (g_, x_, w1_, w2_, z_),
                [bar for _, bar in pairs],
                allow_unused=True,
            )
        grad_b1 = None
        if grad_z is not None:  # through z = x w1^T + b1
            flat = grad_z.reshape(-1, grad_z.size(-1))
            chain_x = grad_z @ w1
            chain_w1 = flat.t() @ x.reshape(-1, x.size(-1))
            grad_x = chain_x if grad_x is None else grad_x + chain_x
            grad_w1 = chain_w1 if grad_w1 is None else grad_w1 + chain_w1
            grad_b1 = flat.sum(0) if b1 is not None else None
        return grad_g, grad_x, grad_w1, grad_b1, grad_w2, None, None, None, None


def _third_order_vjp(act: Callable, saved: tuple, bars: tuple, present: tuple) -> tuple:
    """The second backward of :class:`_DenseActDense` as a graph autograd can differentiate again.

    Partial derivatives of the first backward with respect to ``(g, x, w1, w2, z)`` are taken with
    :func:`torch.func.vjp` (autograd on detached copies would cut them off from the graph, and on the
    saved tensors themselves would also follow ``g``'s own dependence on ``x``)."""
    g, x, w1, b1, w2, b2, _ = saved
    z = F.linear(x, w1, b1)  # the forward's z, recomputed inside the graph (so it depends on x, w1, b1)
    computed: list[bool] = []

    def first_backward(g, x, w1, w2, z):  # noqa: ANN001, ANN202
        outs = _two_layer_grads(act, g, x, w1, w2, z, present, b1 is not None, b2 is not None, True)
        computed[:] = [out is not None for out in outs]
        return tuple(out for out in outs if out is not None)

    outs, vjp = torch.func.vjp(first_backward, g, x, w1, w2, z)
    used = [bar for bar, done in zip(bars, computed, strict=True) if done]
    used = tuple(torch.zeros_like(out) if bar is None else bar for bar, out in zip(used, outs, strict=True))
    grad_g, grad_x, grad_w1, grad_w2, grad_z = vjp(used)
    flat = grad_z.reshape(-1, grad_z.size(-1))  # through z = x w1^T + b1
    grad_x = grad_x + grad_z @ w1
    grad_w1 = grad_w1 + flat.t() @ x.reshape(-1, x.size(-1))
    grad_b1 = flat.sum(0) if b1 is not None else None
    return grad_g, grad_x, grad_w1, grad_b1, grad_w2, None, None, None, None


def dense_act_dense(
    x: Tensor, lin1: torch.nn.Linear, act: Callable[[Tensor], Tensor], lin2: torch.nn.Linear
) -> Tensor:
    r""":math:`\mathbf{y} = \mathrm{act}(\mathbf{x} \mathbf{W}_1^\top + \mathbf{b}_1)\,\mathbf{W}_2^\top
    + \mathbf{b}_2` (``lin2(act(lin1(x)))``); lean autograd (see the module docstring) when a gradient
    graph is built, else the plain computation.

    Shapes: ``x`` ``[E, F_in]`` -> ``[E, F_out]`` (``lin1``: ``F_in -> H``, ``lin2``: ``H -> F_out``).

    Example:
        >>> lin1, lin2 = torch.nn.Linear(50, 16), torch.nn.Linear(16, 16)
        >>> dense_act_dense(torch.randn(7, 50), lin1, torch.nn.Softplus(), lin2).shape
        torch.Size([7, 16])
    """
    if not torch.is_grad_enabled() or torch.compiler.is_compiling():
        return lin2(act(lin1(x)))
    return _DenseActDense.apply(x, lin1.weight, lin1.bias, lin2.weight, lin2.bias, act)
