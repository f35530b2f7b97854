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
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["dense_act"]


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
