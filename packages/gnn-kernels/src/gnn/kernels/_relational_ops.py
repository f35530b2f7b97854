"""Fake (meta) implementations and autograd formula of ``gnn_kernels::gather_matmul``, the typed
matmul of gathered rows (csrc/cpu/gather_matmul.cpp): ``out[e] = inputs[index[e]] @ other[types[e]]``.

The backward is one call of ``gnn_kernels::gather_matmul_backward``, which takes the same route
as the forward (the per-type table or the grouped products) and computes only the gradients
autograd asks for.
"""

from __future__ import annotations

import torch

from ._common import first_order

ops = torch.ops.gnn_kernels


@torch.library.register_fake("gnn_kernels::gather_matmul")
def _(inputs, types, other, index):
    return inputs.new_empty(types.shape[0], other.shape[2])


@torch.library.register_fake("gnn_kernels::gather_matmul_backward")
def _(inputs, types, other, index, grad, need_inputs, need_other):
    rows = inputs.shape[0] if need_inputs else 0
    num = other.shape[0] if need_other else 0
    return inputs.new_empty(rows, inputs.shape[1]), other.new_empty(num, other.shape[1], other.shape[2])


def _setup(ctx, inputs, output):
    x, types, other, index = inputs
    ctx.save_for_backward(x, types, other, index)


@first_order("gather_matmul")
def _backward(ctx, grad):
    x, types, other, index = ctx.saved_tensors
    need_inputs, need_other = ctx.needs_input_grad[0], ctx.needs_input_grad[2]
    grad_inputs, grad_other = ops.gather_matmul_backward(
        x, types, other, index, grad, need_inputs, need_other
    )
    return (grad_inputs if need_inputs else None), None, (grad_other if need_other else None), None


torch.library.register_autograd("gnn_kernels::gather_matmul", _backward, setup_context=_setup)
