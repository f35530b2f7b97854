r"""``act(x W^T + b)`` with a memory-lean first and second derivative (package-private).

Training on forces backpropagates twice: ``F = -dE/dpos`` is taken with ``create_graph=True``
and the loss on ``F`` is backpropagated into the weights. Through ``y = act(x W^T + b)`` plain
autograd keeps, until the second pass, ``x``, the pre-activation ``z``, the incoming gradient
``g_y`` and ``g_z = g_y * act'(z)``: four ``[E, H]`` tensors per layer. Here the forward keeps
``x`` and ``z`` (and the parameters), the first backward is itself a function that keeps ``g_y``
(and the same ``x`` and ``z``), and the second backward differentiates the first one by autograd on
the spot (and through ``z = x W^T + b`` by hand): three ``[E, H]`` tensors per layer stay alive, the
rest is transient.

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

from gnn.core.lean_autograd import grad_needed

__all__ = ["dense_act", "dense_act_dense"]


def _act_grad(act: Callable, z: Tensor, g: Tensor, create_graph: bool = False) -> Tensor:
    """``g * act'(z)``: closed form for SiLU, else by autograd on the elementwise ``act``
    (differentiable in ``z`` and ``g`` with ``create_graph``)."""
    if act is F.silu or getattr(act, "__name__", "") == "swish" or type(act) is torch.nn.SiLU:
        s = torch.sigmoid(z)
        return g * s * (1.0 + z * (1.0 - s))
    derivative = getattr(act, "_derivative", None)  # an activation that knows its derivative
    if derivative is not None:
        return g * derivative(z)
    with torch.enable_grad():
        zz = z if create_graph else z.detach().requires_grad_()
        (g_z,) = torch.autograd.grad(act(zz), zz, g, create_graph=create_graph)
    return g_z


class _DenseAct(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w, b, act):  # type: ignore[override]
        z = F.linear(x, w, b)
        ctx.save_for_backward(x, w, b, z)
        ctx.act = act
        return act(z)

    @staticmethod
    def backward(ctx, g):  # type: ignore[override]
        x, w, b, z = ctx.saved_tensors
        needs = ctx.needs_input_grad[:3]
        outs = _DenseActGrad.apply(g, x, w, b, z, ctx.act, needs)
        return (*outs, None)


class _DenseActGrad(torch.autograd.Function):
    """``(g, x, w, b) -> (g_x, g_w, g_b)`` of :class:`_DenseAct` (``None`` where not needed)."""

    @staticmethod
    def forward(ctx, g, x, w, b, z, act, needs):  # type: ignore[override]
        ctx.save_for_backward(g, x, w, b, z)  # (x and z are the forward's: no new memory but g)
        ctx.act, ctx.needs = act, needs
        with torch.no_grad():
            g_z = _act_grad(act, z, g)
            g_x = g_z @ w if needs[0] else None
            g_w = g_z.reshape(-1, g_z.size(-1)).t() @ x.reshape(-1, x.size(-1)) if needs[1] else None
            g_b = g_z.reshape(-1, g_z.size(-1)).sum(0) if (b is not None and needs[2]) else None
        return g_x, g_w, g_b

    @staticmethod
    def backward(ctx, bar_x, bar_w, bar_b):  # type: ignore[override]
        g, x, w, b, z = ctx.saved_tensors
        g_, x_, w_, z_ = (t.detach().requires_grad_() for t in (g, x, w, z))
        with torch.enable_grad():
            # the first backward as a function of (g, x, w, z); z = x w^T + b is chained below
            g_z = _act_grad(ctx.act, z_, g_, create_graph=True)
            outs, bars = [], []
            if bar_x is not None:
                outs.append(g_z @ w_)
                bars.append(bar_x)
            if bar_w is not None:
                outs.append(g_z.reshape(-1, g_z.size(-1)).t() @ x_.reshape(-1, x_.size(-1)))
                bars.append(bar_w)
            if bar_b is not None and b is not None:
                outs.append(g_z.reshape(-1, g_z.size(-1)).sum(0))
                bars.append(bar_b)
            if not outs:
                return None, None, None, None, None, None, None
            grad_g, grad_x, grad_w, grad_z = torch.autograd.grad(
                outs, (g_, x_, w_, z_), bars, allow_unused=True
            )
        grad_b = None
        if grad_z is not None:  # through z = x w^T + b
            flat = grad_z.reshape(-1, grad_z.size(-1))
            chain_x = grad_z @ w
            chain_w = flat.t() @ x.reshape(-1, x.size(-1))
            grad_x = chain_x if grad_x is None else grad_x + chain_x
            grad_w = chain_w if grad_w is None else grad_w + chain_w
            grad_b = flat.sum(0) if b is not None else None
        return grad_g, grad_x, grad_w, grad_b, None, None, None


def dense_act(x: Tensor, lin: torch.nn.Linear, act: Callable[[Tensor], Tensor]) -> Tensor:
    """``act(lin(x))``; lean autograd (see the module docstring) when ``x`` needs a gradient
    graph, else the plain computation."""
    if not torch.is_grad_enabled() or torch.compiler.is_compiling():
        return act(lin(x))
    return _DenseAct.apply(x, lin.weight, lin.bias, act)


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
        needs = tuple(grad_needed(t, need) for t, need in zip((x, w1, b1, w2, b2), ctx.needs_input_grad))
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
        g_, x_, w1_, w2_, z_ = (t.detach().requires_grad_() for t in (g, x, w1, w2, z))
        present = tuple(bar is not None for bar in bars)
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
