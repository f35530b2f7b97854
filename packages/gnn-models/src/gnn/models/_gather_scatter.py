r"""Gather-multiply-scatter with a memory-lean autograd (package-private; DimeNet's triplets).

.. math::
    \mathrm{out}_e = \sum_{t:\, \mathrm{sidx}_t = e} a_{\mathrm{gidx}_t} \odot s_t

with ``a`` ``[Na, C]`` (per edge), ``s`` ``[T, C]`` (per triplet), ``out`` ``[size, C]``. Plain
autograd would save the gathered ``a[gidx]`` (``[T, C]``) for the backward, and the backward
taken with ``create_graph=True`` (forces) would save more ``[T, C]`` tensors for the double
backward. Here the forward saves only ``a`` and ``s``; its backward is itself a function
(:class:`_GmsGrad`) that saves ``g``, ``a`` and ``s``, and whose own backward (the double
backward) is computed directly, so the ``[T, C]`` intermediates of every order are transient.
The sums go through :func:`gnn.core.ops.segment` (sorted ``sidx`` with its ``ptr``) or
:func:`gnn.core.ops.scatter`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from gnn.core import ops

__all__ = ["gather_mul_scatter"]


def _sum(src: Tensor, index: Tensor, ptr: Tensor | None, size: int) -> Tensor:
    if ptr is not None:
        return ops.segment(src, ptr, reduce="sum")
    return ops.scatter(src, index, dim=0, dim_size=size, reduce="sum")


class _Gms(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a, s, gidx, sidx, sptr, size):  # type: ignore[override]
        ctx.save_for_backward(a, s, gidx, sidx, sptr)
        ctx.size = size
        return _sum(a.index_select(0, gidx) * s, sidx, sptr, size)

    @staticmethod
    def backward(ctx, g):  # type: ignore[override]
        a, s, gidx, sidx, sptr = ctx.saved_tensors
        grad_a, grad_s = _GmsGrad.apply(g, a, s, gidx, sidx, sptr)
        return grad_a, grad_s, None, None, None, None


class _GmsGrad(torch.autograd.Function):
    """``(g, a, s) -> (grad_a, grad_s)`` of :class:`_Gms`:
    ``grad_a[e] = sum_{t: gidx_t = e} g[sidx_t] * s_t``, ``grad_s_t = g[sidx_t] * a[gidx_t]``."""

    @staticmethod
    def forward(ctx, g, a, s, gidx, sidx, sptr):  # type: ignore[override]
        ctx.save_for_backward(g, a, s, gidx, sidx, sptr)
        g_t = g.index_select(0, sidx)
        grad_a = ops.scatter(g_t * s, gidx, dim=0, dim_size=a.size(0), reduce="sum")
        grad_s = g_t * a.index_select(0, gidx)
        return grad_a, grad_s

    @staticmethod
    def backward(ctx, bar_a, bar_s):  # type: ignore[override]
        g, a, s, gidx, sidx, sptr = ctx.saved_tensors
        # with u = bar_a[gidx] (T, C), v = bar_s (T, C), g_t = g[sidx], a_t = a[gidx]:
        #   d/dg = sum_sidx(u * s + v * a_t), d/da = sum_gidx(v * g_t), d/ds = u * g_t
        g_t = g.index_select(0, sidx)
        a_t = a.index_select(0, gidx)
        grad_g = grad_a = grad_s = None
        inner = None
        if bar_a is not None:
            u = bar_a.index_select(0, gidx)
            inner = u * s
            grad_s = u * g_t
        if bar_s is not None:
            inner = bar_s * a_t if inner is None else inner + bar_s * a_t
            grad_a = ops.scatter(bar_s * g_t, gidx, dim=0, dim_size=a.size(0), reduce="sum")
        if inner is not None:
            grad_g = _sum(inner, sidx, sptr, g.size(0))
        return grad_g, grad_a, grad_s, None, None, None


def gather_mul_scatter(
    a: Tensor, s: Tensor, gidx: Tensor, sidx: Tensor, sptr: Tensor | None, size: int
) -> Tensor:
    r"""``out[e] = sum_{t: sidx_t = e} a[gidx_t] * s[t]`` (``sptr``: offsets of a sorted ``sidx``,
    or ``None``); see the module docstring. Shapes: ``a [Na, C]``, ``s [T, C]``, ``gidx``,
    ``sidx`` ``[T]`` -> ``[size, C]``."""
    return _Gms.apply(a, s, gidx, sidx, sptr, size)
