r"""Gather-multiply-sum with a projected per-element weight: :func:`projected_gather_sum`
(DimeNet++'s triplet interaction).

.. math::
    \mathbf{o}_i = \sum_{q = \mathrm{ptr}_i}^{\mathrm{ptr}_{i+1} - 1}
        \mathbf{a}_{\mathrm{index}_q} \odot (\mathbf{W} \mathbf{s}_q)

with ``a`` ``[Na, C]`` (one row per source, e.g. per edge), ``s`` ``[Q, B]`` (one small basis
row per element, e.g. per triplet, ``B << C``), ``W`` ``[C, B]`` (a ``Linear(B, C)``'s
weight) and the elements sorted by output row (``ptr``). Written with torch ops this forms
``[Q, C]`` tensors (``s W^T``, ``a[index]``, their product) in the forward and more in every
derivative; with ``Q`` in the hundreds of thousands they dominate both time and memory. Here:

* the forward saves ``a``, ``s`` and ``W`` only, and its backward is itself a function
  (differentiable again, for forces) that saves the incoming ``[M, C]`` gradient besides;
  the second derivative is written in closed form, so no ``[Q, C]`` tensor is kept at any
  order; derivatives of order three and beyond differentiate the same formulas written with
  the pure-torch reference (correct, not lean);
* every derivative is a combination of two primitives, each one pass over the elements
  (a compiled backend runs them without ``[Q, C]`` temporaries):
  ``gather_mul_sum`` (the forward's form, also over the transposed grouping: the gradient of
  ``a``) and ``gather_mul_project`` (``h = g[rows] * a[index]``, then ``h W`` and ``h^T s``:
  the gradients of ``s`` and ``W``);
* the gradient of ``W`` is computed only when the backward pass will use it (forces taken
  with ``torch.autograd.grad(E, pos)`` do not).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .. import validation as v
from ..cache import memo
from . import reference_projected
from ._dispatch import context, run
from ._engine import grads_wanted
from .csr import ptr_from_sorted_index, ptr_to_index

__all__ = ["projected_gather_sum"]


def projected_gather_sum(a: Tensor, s: Tensor, weight: Tensor, index: Tensor, ptr: Tensor) -> Tensor:
    r"""``out[i] = sum_{ptr[i] <= q < ptr[i+1]} a[index[q]] * (s[q] @ weight^T)``.

    Args:
        a: ``[Na, C]`` gathered rows.
        s: ``[Q, B]`` per-element coefficients, one row per entry of ``index``.
        weight: ``[C, B]`` projection (a ``torch.nn.Linear(B, C)``'s weight), dtype of ``a``.
        index: ``[Q]`` integer row of ``a`` of each element, in ``[0, Na)``.
        ptr: ``[M + 1]`` offsets of the output rows (elements sorted by output row).

    Returns:
        ``[M, C]``; differentiable to every order in ``a``, ``s`` and ``weight`` (see the
        module docstring for what is kept).

    Example:
        >>> a, s, w = torch.randn(3, 4), torch.randn(5, 2), torch.randn(4, 2)
        >>> index, ptr = torch.tensor([2, 0, 0, 1, 2]), torch.tensor([0, 2, 5])
        >>> out = projected_gather_sum(a, s, w, index, ptr)
        >>> torch.allclose(out[0], a[2] * (w @ s[0]) + a[0] * (w @ s[1]))
        True
    """
    for name, t in (("a", a), ("s", s), ("weight", weight)):
        v.check_tensor(name, t)
        if t.dim() != 2 or not t.is_floating_point():
            raise ValueError(f"'{name}' must be a 2-D floating-point tensor, got {v.describe(t)}")
    if s.dtype != a.dtype or weight.dtype != a.dtype:
        raise TypeError(
            f"'s' and 'weight' must have the dtype of 'a' ({a.dtype}), got {s.dtype}, {weight.dtype}"
        )
    if weight.shape != (a.size(1), s.size(1)):
        raise ValueError(
            f"'weight' must have shape [{a.size(1)}, {s.size(1)}] (channels of 'a', columns of 's'), "
            f"got {v.describe(weight)}"
        )
    v.check_tensor("index", index)
    v.check_index_dtype("index", index)
    v.check_per_entry("index", index, s.size(0), "row of 's'")
    v.check_index_range("index", index, a.size(0), "rows of 'a'")
    v.check_ptr("ptr", ptr, s.size(0))
    groups = _Groups(index.long(), ptr.long(), a.size(0))
    return _ProjectedSum.apply(a, s, weight, groups)


class _Groups:
    """The elements grouped by output row (``index``, ``ptr``) and, computed on first use and
    remembered per index tensor, grouped by row of ``a`` (for the gradient of ``a``)."""

    def __init__(self, index: Tensor, ptr: Tensor, num_a: int) -> None:
        self.index, self.ptr, self.num_a = index, ptr, num_a

    @property
    def rows(self) -> Tensor:
        """``[Q]`` output row of each element."""
        return memo(
            self.ptr,
            ("projected_rows", self.index.numel()),
            lambda: ptr_to_index(self.ptr, self.index.numel()),
        )

    def by_source(self) -> tuple[Tensor, Tensor, Tensor]:
        """``(order, rows[order], ptr_a)``: the elements sorted by ``index`` (stable), their
        output rows and the ``[Na + 1]`` offsets of every row of ``a``."""

        def compute() -> tuple[Tensor, Tensor, Tensor]:
            order = torch.argsort(self.index, stable=True)
            ptr_a = ptr_from_sorted_index(self.index.index_select(0, order), self.num_a)
            return order, self.rows.index_select(0, order), ptr_a

        return memo(self.index, ("projected_by_source", self.num_a), compute, self.ptr)


def _ctx(t: Tensor) -> dict[str, Any]:
    return context(t, None, work=t.numel())


def _sum(a: Tensor, index: Tensor, s: Tensor, weight: Tensor, ptr: Tensor, order: Tensor | None) -> Tensor:
    if torch.is_grad_enabled():  # a derivative of order three or more: differentiable torch ops
        return reference_projected.gather_mul_sum(a, index, s, weight, ptr, order)
    return run(
        "gather_mul_sum", _ctx(a), a.contiguous(), index, s.contiguous(), weight.contiguous(), ptr, order
    )


def _project(
    g: Tensor,
    g_index: Tensor,
    a: Tensor,
    a_index: Tensor,
    weight: Tensor,
    s: Tensor | None,
    need_first: bool = True,
) -> tuple[Tensor, Tensor]:
    if torch.is_grad_enabled():
        return reference_projected.gather_mul_project(g, g_index, a, a_index, weight, s, need_first)
    s = None if s is None else s.contiguous()
    g, a, weight = g.contiguous(), a.contiguous(), weight.contiguous()
    return run("gather_mul_project", _ctx(g), g, g_index, a, a_index, weight, s, need_first)


def _grad_of_a(g: Tensor, s: Tensor, weight: Tensor, groups: _Groups) -> Tensor:
    order, rows_sorted, ptr_a = groups.by_source()
    return _sum(g, rows_sorted, s, weight, ptr_a, order)


class _ProjectedSum(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a, s, weight, groups):  # type: ignore[override]
        ctx.save_for_backward(a, s, weight)
        ctx.groups = groups
        return _sum(a, groups.index, s, weight, groups.ptr, None)

    @staticmethod
    def backward(ctx, g):  # type: ignore[override]
        a, s, weight = ctx.saved_tensors
        needs = grads_wanted(ctx, a, s, weight)
        grad_a, grad_s, grad_w = _ProjectedSumGrad.apply(g, a, s, weight, ctx.groups, needs)
        return grad_a, grad_s, grad_w, None


class _ProjectedSumGrad(torch.autograd.Function):
    """``(g, a, s, weight) -> (grad_a, grad_s, grad_weight)`` of :class:`_ProjectedSum` (``None``
    where not needed)."""

    @staticmethod
    def forward(ctx, g, a, s, weight, groups, needs):  # type: ignore[override]
        ctx.save_for_backward(g, a, s, weight)
        ctx.groups = groups
        g = g.contiguous()
        grad_a = _grad_of_a(g, s, weight, groups) if needs[0] else None
        grad_s = grad_w = None
        if needs[1] or needs[2]:
            first, second = _project(
                g, groups.rows, a, groups.index, weight, s if needs[2] else None, need_first=needs[1]
            )
            grad_s = first if needs[1] else None
            grad_w = second if needs[2] else None
        return grad_a, grad_s, grad_w

    @staticmethod
    def backward(ctx, bar_a, bar_s, bar_w):  # type: ignore[override]
        g, a, s, weight = ctx.saved_tensors
        groups = ctx.groups
        index, ptr, rows = groups.index, groups.ptr, groups.rows
        grad_g = grad_a = grad_s = grad_w = None
        if bar_a is not None:  # bar_a reaches g through the forward's form, s and weight through h
            grad_g = _sum(bar_a, index, s, weight, ptr, None)
            first, second = _project(g, rows, bar_a, index, weight, s)
            grad_s, grad_w = first, second
        # bar_s and bar_w enter as one projection of the concatenated coefficients
        coeffs = [c for c in (bar_s, s if bar_w is not None else None) if c is not None]
        mats = [m for m in (weight if bar_s is not None else None, bar_w) if m is not None]
        if coeffs:
            s2, w2 = torch.cat(coeffs, dim=1), torch.cat(mats, dim=1)
            term = _sum(a, index, s2, w2, ptr, None)
            grad_g = term if grad_g is None else grad_g + term
            grad_a = _grad_of_a(g, s2, w2, groups)
        if bar_s is not None or bar_w is not None:  # through h = g[rows] * a[index]: gs = h W, gw = h^T s
            first, second = _project(
                g, rows, a, index, weight if bar_w is None else bar_w, bar_s, need_first=bar_w is not None
            )
            if bar_w is not None:
                grad_s = first if grad_s is None else grad_s + first
            if bar_s is not None:
                grad_w = second if grad_w is None else grad_w + second
        return grad_g, grad_a, grad_s, grad_w, None, None
