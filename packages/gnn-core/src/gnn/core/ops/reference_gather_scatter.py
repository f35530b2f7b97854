r"""Pure-torch reference of :func:`gnn.core.ops.gather_mul_scatter` (assumes validated inputs).

Forward, with ``a_e = x[gather_e]`` and ``S`` the sum over ``scatter_index`` (``S_g`` over
``gather_index``):

.. math::
    \mathbf{o} = S(\mathbf{a}_e \odot \mathbf{w}_e\, c_e)

First backward (:class:`_GmsGrad`), with ``g`` the ``[dim_size, F]`` incoming gradient and
``g_e = g[scatter_e]``:

.. math::
    \bar{\mathbf{x}} = S_g(\mathbf{g}_e \odot \mathbf{w}_e\, c_e), \quad
    \bar{\mathbf{w}}_e = \mathbf{g}_e \odot \mathbf{a}_e\, c_e, \quad
    \bar{c}_e = \langle \mathbf{g}_e, \mathbf{a}_e \odot \mathbf{w}_e \rangle

Second backward (:meth:`_GmsGrad.backward`), with incoming ``(X, W, C)`` for
``(x-bar, w-bar, c-bar)`` and ``u_e = X[gather_e]``:

.. math::
    \partial \mathbf{g} = S\big(c_e(\mathbf{u}_e \odot \mathbf{w}_e + \mathbf{W}_e \odot \mathbf{a}_e)
        + C_e\, \mathbf{a}_e \odot \mathbf{w}_e\big), \quad
    \partial \mathbf{x} = S_g\big(\mathbf{g}_e \odot (c_e \mathbf{W}_e + C_e \mathbf{w}_e)\big),

.. math::
    \partial \mathbf{w}_e = \mathbf{g}_e \odot (c_e \mathbf{u}_e + C_e \mathbf{a}_e), \quad
    \partial c_e = \langle \mathbf{g}_e, \mathbf{u}_e \odot \mathbf{w}_e + \mathbf{W}_e \odot \mathbf{a}_e
        \rangle

(``c = 1`` and no ``C`` terms without a scale). The forward keeps ``x``, ``w`` and ``c``; the first
backward adds only ``g`` (node-sized); every ``[E, F]`` product above is transient. The sums are
``index_add_`` into zeros (a compiled backend may use the offsets ``ptr`` of a sorted scatter index).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ._engine import grads_wanted

__all__ = ["gather_mul_scatter"]


def _scatter(src: Tensor, index: Tensor, size: int) -> Tensor:
    """``out[i] = sum_{e: index_e = i} src[e]`` (``[size, F]``; deterministic on CPU)."""
    return src.new_zeros((size,) + tuple(src.shape[1:])).index_add_(0, index, src)


def _sum(src: Tensor, index: Tensor, ptr: Tensor | None, size: int) -> Tensor:
    """The sum over a scatter index; the pure-torch sum does not need the offsets ``ptr`` of a
    sorted index (a compiled backend may run a segment reduction with them)."""
    return _scatter(src, index, size)


def _times(t: Tensor, c: Tensor | None) -> Tensor:
    """``t * c[:, None]`` (``t`` unchanged without ``c``)."""
    return t if c is None else t * c.view(-1, 1)


class _Gms(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w, c, gidx, sidx, ptr, size):  # type: ignore[override]
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(x, w, c, gidx, sidx, ptr)
        ctx.size = size
        msg = x.index_select(0, gidx).mul_(w)
        if c is not None:
            msg.mul_(c.view(-1, 1))
        return _sum(msg, sidx, ptr, size)

    @staticmethod
    def backward(ctx, g):  # type: ignore[override]
        if g is None:
            return (None,) * 7
        x, w, c, gidx, sidx, ptr = ctx.saved_tensors
        # gradients this pass discards (e.g. the weights' while forces are taken) are not computed
        needs = grads_wanted(ctx, x, w, c)
        if not any(needs):
            return (None,) * 7
        gx, gw, gc = _GmsGrad.apply(g, x, w, c, gidx, sidx, ptr, needs)
        return gx, gw, gc, None, None, None, None


class _GmsGrad(torch.autograd.Function):
    """``(g, x, w, c) -> (x-bar, w-bar, c-bar)`` of :class:`_Gms` (``None`` where not needed)."""

    @staticmethod
    def forward(ctx, g, x, w, c, gidx, sidx, ptr, needs):  # type: ignore[override]
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(g, x, w, c, gidx, sidx, ptr)  # x, w, c are the forward's: only g is new
        g_e = g.index_select(0, sidx)
        gx = gw = gc = None
        if needs[0]:
            t = g_e * w
            gx = _scatter(t if c is None else t.mul_(c.view(-1, 1)), gidx, x.size(0))
        if needs[1] or needs[2]:
            ga = x.index_select(0, gidx).mul_(g_e)
            if needs[2]:
                gc = (ga * w).sum(1)
            if needs[1]:
                gw = ga if c is None else ga.mul_(c.view(-1, 1))
        return gx, gw, gc

    @staticmethod
    def backward(ctx, bx, bw, bc):  # type: ignore[override]
        # out of place throughout: with create_graph (a third derivative) autograd records these ops
        g, x, w, c, gidx, sidx, ptr = ctx.saved_tensors
        need_g, need_x, need_w, need_c = ctx.needs_input_grad[:4]
        if c is None:
            bc = None
        cc = c.view(-1, 1) if c is not None else None
        bcc = bc.view(-1, 1) if bc is not None else None
        u = bx.index_select(0, gidx) if bx is not None else None
        a = x.index_select(0, gidx) if (bw is not None or bc is not None) else None
        g_e = g.index_select(0, sidx) if (need_x or need_w or need_c) else None
        grad_g = grad_x = grad_w = grad_c = None
        # p = u * w + W * a: the part of d/dg that c scales, and the gradient of c
        p = None
        if (need_g or need_c) and (u is not None or bw is not None):
            if u is not None:
                p = u * w if bw is None else torch.addcmul(u * w, bw, a)
            else:
                p = bw * a
        if need_c and c is not None and p is not None:
            grad_c = (p * g_e).sum(1)
        if need_g:
            inner = p if (p is None or cc is None) else p * cc
            if bcc is not None:
                inner = a * (w * bcc) if inner is None else torch.addcmul(inner, a, w * bcc)
            if inner is not None:
                grad_g = _sum(inner, sidx, ptr, g.size(0))
        if need_x:
            inner = _times(bw, c) if bw is not None else None
            if bcc is not None:
                inner = w * bcc if inner is None else torch.addcmul(inner, w, bcc)
            if inner is not None:
                grad_x = _scatter(inner * g_e, gidx, x.size(0))
        if need_w:
            inner = _times(u, c) if u is not None else None
            if bcc is not None:
                inner = a * bcc if inner is None else torch.addcmul(inner, a, bcc)
            if inner is not None:
                grad_w = inner * g_e
        return grad_g, grad_x, grad_w, grad_c, None, None, None, None


def gather_mul_scatter(
    x: Tensor,
    weight: Tensor,
    scale: Tensor | None,
    gather_index: Tensor,
    scatter_index: Tensor,
    ptr: Tensor | None,
    dim_size: int,
) -> Tensor:
    """See :func:`gnn.core.ops.gather_mul_scatter` (argument order of the backends)."""
    needs_grad = torch.is_grad_enabled() and (
        x.requires_grad or weight.requires_grad or (scale is not None and scale.requires_grad)
    )
    if not needs_grad:
        msg = x.index_select(0, gather_index).mul_(weight)
        if scale is not None:
            msg.mul_(scale.view(-1, 1))
        return _sum(msg, scatter_index, ptr, dim_size)
    return _Gms.apply(x, weight, scale, gather_index, scatter_index, ptr, dim_size)
