"""Fake (meta) implementations and autograd formulas of the B-spline ops
(csrc/cpu/spline.cpp, csrc/cuda/spline.cu): ``spline_basis`` (differentiable in ``pseudo``)
and ``spline_weighting`` (differentiable in ``x``, ``weight`` and ``basis``).

Each backward is one call of the op's ``*_backward`` kernel, which computes only the
gradients autograd asks for.
"""

from __future__ import annotations

import torch

from ._common import first_order

ops = torch.ops.gnn_kernels


@torch.library.register_fake("gnn_kernels::spline_basis")
def _(pseudo, kernel_size, is_open_spline, degree):
    combos = (degree + 1) ** pseudo.shape[1]
    return pseudo.new_empty(pseudo.shape[0], combos), pseudo.new_empty(
        pseudo.shape[0], combos, dtype=torch.long
    )


@torch.library.register_fake("gnn_kernels::spline_basis_backward")
def _(grad_basis, pseudo, kernel_size, is_open_spline, degree):
    return pseudo.new_empty(pseudo.shape)


@torch.library.register_fake("gnn_kernels::spline_weighting")
def _(x, weight, basis, weight_index):
    return x.new_empty(x.shape[0], weight.shape[2])


@torch.library.register_fake("gnn_kernels::spline_weighting_backward")
def _(grad_out, x, weight, basis, weight_index, need_x, need_weight, need_basis):
    return (
        x.new_empty(x.shape[0] if need_x else 0, x.shape[1]),
        weight.new_empty(weight.shape[0] if need_weight else 0, weight.shape[1], weight.shape[2]),
        basis.new_empty(basis.shape[0] if need_basis else 0, basis.shape[1]),
    )


def _basis_setup(ctx, inputs, output):
    pseudo, kernel_size, is_open_spline, degree = inputs
    ctx.save_for_backward(pseudo, kernel_size, is_open_spline)
    ctx.degree = degree
    ctx.set_materialize_grads(False)


@first_order("spline_basis")
def _basis_backward(ctx, grad_basis, _grad_index):
    pseudo, kernel_size, is_open_spline = ctx.saved_tensors
    if grad_basis is None or not ctx.needs_input_grad[0]:
        return None, None, None, None
    grad = ops.spline_basis_backward(
        grad_basis.to(pseudo.dtype).contiguous(), pseudo, kernel_size, is_open_spline, ctx.degree
    )
    return grad, None, None, None


torch.library.register_autograd("gnn_kernels::spline_basis", _basis_backward, setup_context=_basis_setup)


def _weighting_setup(ctx, inputs, output):
    x, weight, basis, weight_index = inputs
    ctx.save_for_backward(x, weight, basis, weight_index)
    ctx.set_materialize_grads(False)


@first_order("spline_weighting")
def _weighting_backward(ctx, grad_out):
    x, weight, basis, weight_index = ctx.saved_tensors
    need_x, need_weight, need_basis = ctx.needs_input_grad[:3]
    if grad_out is None or not (need_x or need_weight or need_basis):
        return None, None, None, None
    grad_x, grad_weight, grad_basis = ops.spline_weighting_backward(
        grad_out.contiguous(), x, weight, basis, weight_index, need_x, need_weight, need_basis
    )
    return (
        grad_x if need_x else None,
        grad_weight if need_weight else None,
        grad_basis if need_basis else None,
        None,
    )


torch.library.register_autograd(
    "gnn_kernels::spline_weighting", _weighting_backward, setup_context=_weighting_setup
)
