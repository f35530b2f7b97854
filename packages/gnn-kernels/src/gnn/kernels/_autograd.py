"""Fake (meta) implementations and autograd formulas of the ``gnn_kernels`` ops.

Imported once the compiled library is loaded. The fake implementations give
``torch.compile`` the output shapes; the autograd formulas are written with
the same kernels (transposed patterns are passed in by the caller, so no
sort happens in backward).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ._common import (
    REDUCE_MAX,
    REDUCE_MEAN,
    REDUCE_MIN,
    REDUCE_MUL,
    contiguous_rows,
    first_derivative_only,
    first_order,
)

ops = torch.ops.gnn_kernels
_MINMAX = (REDUCE_MAX, REDUCE_MIN)


# -- fake implementations ----------------------------------------------------------------------
@torch.library.register_fake("gnn_kernels::spmm_sum")
def _(rowptr, col, value, x, mean, t_rowptr, t_col, t_perm, x_self=None, self_weight=1.0):
    return x.new_empty(rowptr.shape[0] - 1, x.shape[1], x.shape[2])


@torch.library.register_fake("gnn_kernels::spmm_minmax")
def _(rowptr, col, value, x, is_max):
    m = rowptr.shape[0] - 1
    return x.new_empty(m, x.shape[1]), x.new_empty(m, x.shape[1], dtype=torch.long)


@torch.library.register_fake("gnn_kernels::sddmm")
def _(rowptr, col, a, b):
    return a.new_empty(col.shape[0], a.shape[1])


@torch.library.register_fake("gnn_kernels::attention_forward")
def _(rowptr, col, a_src, a_dst, a_edge, mask, x, negative_slope, t_rowptr, t_col, t_perm):
    return x.new_empty(rowptr.shape[0] - 1, x.shape[1], x.shape[2]), x.new_empty(col.shape[0], x.shape[1])


@torch.library.register_fake("gnn_kernels::attention_backward")
def _(rowptr, col, t_rowptr, t_col, t_perm, a_src, a_dst, a_edge, x, alpha, grad_out, grad_alpha, slope):
    return (
        x.new_empty(x.shape),
        a_src.new_empty(a_src.shape),
        a_dst.new_empty(a_dst.shape),
        alpha.new_empty(alpha.shape),
    )


@torch.library.register_fake("gnn_kernels::scatter_reduce")
def _(src, index, dim_size, reduce):
    return src.new_empty(dim_size, src.shape[1]), src.new_empty(0, 0, dtype=torch.long)


@torch.library.register_fake("gnn_kernels::segment_reduce")
def _(src, ptr, reduce):
    m = ptr.shape[0] - 1
    arg_rows = m if reduce in _MINMAX else 0
    arg_cols = src.shape[1] if reduce in _MINMAX else 0
    return src.new_empty(m, src.shape[1]), src.new_empty(arg_rows, arg_cols, dtype=torch.long)


# -- autograd -------------------------------------------------------------------------------------
def _degree(rowptr: Tensor, dtype: torch.dtype) -> Tensor:
    return (rowptr[1:] - rowptr[:-1]).clamp(min=1).to(dtype)


def _spmm_sum_setup(ctx, inputs, output):
    rowptr, col, value, x, mean, t_rowptr, t_col, t_perm = inputs[:8]
    # x is needed only for the gradient of the values
    x_saved = x if value is not None and value.requires_grad else None
    ctx.save_for_backward(rowptr, col, value, x_saved, t_rowptr, t_col, t_perm)
    ctx.mean = mean
    ctx.self_weight = inputs[9] if len(inputs) > 9 else 1.0


def _spmm_sum_backward(ctx, grad):
    rowptr, col, value, x, t_rowptr, t_col, t_perm = ctx.saved_tensors
    grad = grad.contiguous()
    # d out / d x_self = self_weight (the self term is added after the mean)
    grad_self = None
    if len(ctx.needs_input_grad) > 8 and ctx.needs_input_grad[8]:
        grad_self = grad * ctx.self_weight if ctx.self_weight != 1.0 else grad
    if ctx.mean:
        grad = grad / _degree(rowptr, grad.dtype).view(-1, 1, 1)
    grad_x = grad_value = None
    if ctx.needs_input_grad[3]:
        if t_rowptr is None:
            raise RuntimeError(
                "gnn_kernels::spmm_sum backward needs the transposed pattern (t_rowptr, t_col, t_perm)"
            )
        t_value = None if value is None else value.index_select(0, t_perm).contiguous()
        grad_x = ops.spmm_sum(t_rowptr, t_col, t_value, grad, False, None, None, None)
    if value is not None and ctx.needs_input_grad[2]:
        per_head = ops.sddmm(rowptr, col, grad, x.contiguous())
        grad_value = per_head.sum(-1) if value.dim() == 1 else per_head
        (grad_value,) = first_derivative_only("sddmm", (grad_value,), grad, x)
    return None, None, grad_value, grad_x, None, None, None, None, grad_self, None


torch.library.register_autograd("gnn_kernels::spmm_sum", _spmm_sum_backward, setup_context=_spmm_sum_setup)


def _spmm_minmax_setup(ctx, inputs, output):
    rowptr, col, value, x, is_max = inputs
    _, arg = output
    ctx.save_for_backward(col, value, x, arg)


def _spmm_minmax_backward(ctx, grad, _grad_arg):
    # dense [M, F] work (no boolean selection of the winners: that forms several [M * F] int64
    # copies); an empty row's (arg -1) gradient is zeroed and routed to entry 0, adding nothing
    col, value, x, arg = ctx.saved_tensors
    feats = x.shape[1]
    edge = arg.clamp(min=0)
    g = grad.masked_fill(arg < 0, 0)
    flat = (col[edge] * feats + torch.arange(feats, device=x.device)).view(-1)
    grad_x = grad_value = None
    if ctx.needs_input_grad[3]:
        contrib = g if value is None else g * value[edge]
        grad_x = torch.zeros_like(x).view(-1).index_add_(0, flat, contrib.reshape(-1)).view_as(x)
    if value is not None and ctx.needs_input_grad[2]:
        winners = x.reshape(-1)[flat].view_as(g)
        grad_value = torch.zeros_like(value).index_add_(0, edge.view(-1), (g * winners).view(-1))
    return None, None, grad_value, grad_x, None


torch.library.register_autograd(
    "gnn_kernels::spmm_minmax", _spmm_minmax_backward, setup_context=_spmm_minmax_setup
)


def _attention_setup(ctx, inputs, output):
    rowptr, col, a_src, a_dst, a_edge, mask, x, negative_slope, t_rowptr, t_col, t_perm = inputs
    _, alpha = output
    ctx.save_for_backward(rowptr, col, a_src, a_dst, a_edge, x, alpha, t_rowptr, t_col, t_perm)
    ctx.negative_slope = negative_slope
    ctx.set_materialize_grads(False)  # an unused alpha gets no [E, H] zero gradient


@first_order("attention_forward")
def _attention_backward(ctx, grad_out, grad_alpha):
    rowptr, col, a_src, a_dst, a_edge, x, alpha, t_rowptr, t_col, t_perm = ctx.saved_tensors
    if t_rowptr is None:
        raise RuntimeError("gnn_kernels::attention_forward backward needs the transposed pattern")
    # alpha is 0 on masked entries, so the backward needs no mask
    if grad_out is None:  # only alpha was used
        grad_out = x.new_zeros(rowptr.shape[0] - 1, x.shape[1], x.shape[2])
    grad_x, grad_a_src, grad_a_dst, grad_score = ops.attention_backward(
        rowptr,
        col,
        t_rowptr,
        t_col,
        t_perm,
        a_src,
        a_dst,
        a_edge,
        x,
        alpha,
        contiguous_rows(grad_out),  # a loss's broadcast gradient is not materialized
        None if grad_alpha is None else grad_alpha.contiguous(),
        ctx.negative_slope,
    )
    need = ctx.needs_input_grad
    return (
        None,
        None,
        grad_a_src if need[2] else None,
        grad_a_dst if need[3] else None,
        grad_score if a_edge is not None and need[4] else None,
        None,
        grad_x if need[6] else None,
        None,
        None,
        None,
        None,
    )


torch.library.register_autograd(
    "gnn_kernels::attention_forward", _attention_backward, setup_context=_attention_setup
)


def _scatter_setup(ctx, inputs, output):
    src, index, dim_size, reduce = inputs
    out, _ = output
    keep = reduce in _MINMAX or reduce == REDUCE_MUL
    ctx.save_for_backward(index, src if keep else None, out if keep else None)
    ctx.reduce, ctx.shape = reduce, src.shape


def _grad_from_arg(grad: Tensor, arg: Tensor, shape) -> Tensor:
    feats = shape[1]
    hit = arg >= 0
    feature = torch.arange(feats, device=grad.device).expand_as(arg)[hit]
    flat = arg[hit] * feats + feature
    return grad.new_zeros(shape).view(-1).index_add_(0, flat, grad[hit]).view(shape)


def _product_grad(grad: Tensor, src: Tensor, out: Tensor, index: Tensor) -> Tensor:
    r"""Gradient of a group product: :math:`\partial out_g / \partial src_e = \prod_{e' \ne e} src_{e'}`.

    With no zero in the group that is ``out / src``; with one zero, the zero
    element gets the product of the others and the rest 0; with two or more,
    everything is 0. ``index`` (``[E]``) gives each row's group.
    """
    is_zero = src == 0
    zeros = torch.zeros_like(out).index_add_(0, index, is_zero.to(out.dtype)).index_select(0, index)
    nonzero_product, _ = ops.scatter_reduce(
        torch.where(is_zero, torch.ones_like(src), src).contiguous(), index, out.shape[0], REDUCE_MUL
    )
    nonzero_product = nonzero_product.index_select(0, index)
    others = torch.where(
        zeros == 0,
        nonzero_product / torch.where(is_zero, torch.ones_like(src), src),
        torch.where(is_zero & (zeros == 1), nonzero_product, torch.zeros_like(src)),
    )
    return grad.index_select(0, index) * others


def _scatter_backward(ctx, grad, _grad_arg):
    index, src, out = ctx.saved_tensors
    if ctx.reduce in _MINMAX:
        # the winners are the elements equal to their group's result; ties share the gradient
        winner = (src == out.index_select(0, index)).to(grad.dtype)
        ties = torch.zeros_like(grad).index_add_(0, index, winner).clamp(min=1)
        return winner * (grad / ties).index_select(0, index), None, None, None
    if ctx.reduce == REDUCE_MUL:
        return _product_grad(grad, src, out, index), None, None, None
    if ctx.reduce == REDUCE_MEAN:  # divide the [dim_size, F] gradient, then gather once: one [E, F] tensor
        count = torch.bincount(index, minlength=grad.shape[0]).clamp(min=1).to(grad.dtype)
        grad = grad / count.unsqueeze(-1)
    return grad.index_select(0, index), None, None, None


torch.library.register_autograd(
    "gnn_kernels::scatter_reduce", _scatter_backward, setup_context=_scatter_setup
)


def _segment_setup(ctx, inputs, output):
    src, ptr, reduce = inputs
    out, arg = output
    is_mul = reduce == REDUCE_MUL
    ctx.save_for_backward(ptr, arg, src if is_mul else None, out if is_mul else None)
    ctx.reduce, ctx.shape = reduce, src.shape


def _segment_backward(ctx, grad, _grad_arg):
    ptr, arg, src, out = ctx.saved_tensors
    if ctx.reduce in _MINMAX:
        return _grad_from_arg(grad, arg, ctx.shape), None, None
    counts = ptr[1:] - ptr[:-1]
    if ctx.reduce == REDUCE_MUL:
        index = torch.repeat_interleave(torch.arange(counts.numel(), device=ptr.device), counts)
        return _product_grad(grad, src, out, index), None, None
    if ctx.reduce == REDUCE_MEAN:
        grad = grad / counts.clamp(min=1).to(grad.dtype).unsqueeze(-1)
    return torch.repeat_interleave(grad, counts, dim=0, output_size=ctx.shape[0]), None, None


torch.library.register_autograd(
    "gnn_kernels::segment_reduce", _segment_backward, setup_context=_segment_setup
)


# -- segment softmax ------------------------------------------------------------------------------
@torch.library.register_fake("gnn_kernels::softmax_forward")
def _(src, index, dim_size):
    return src.new_empty(src.shape)


@torch.library.register_fake("gnn_kernels::softmax_backward")
def _(out, grad, index, dim_size):
    return out.new_empty(out.shape)


def _softmax_setup(ctx, inputs, output):
    _, index, dim_size = inputs
    ctx.save_for_backward(output, index)
    ctx.dim_size = dim_size


@first_order("softmax_forward")
def _softmax_backward(ctx, grad):
    out, index = ctx.saved_tensors
    return ops.softmax_backward(out, grad.contiguous(), index, ctx.dim_size), None, None


torch.library.register_autograd(
    "gnn_kernels::softmax_forward", _softmax_backward, setup_context=_softmax_setup
)


# -- segment_matmul -------------------------------------------------------------------------------
@torch.library.register_fake("gnn_kernels::segment_matmul")
def _(inputs, ptr, other):
    return inputs.new_empty(inputs.shape[0], other.shape[2])


@torch.library.register_fake("gnn_kernels::segment_matmul_backward")
def _(inputs, ptr, other, grad, need_inputs, need_other):
    rows = inputs.shape[0] if need_inputs else 0
    types = other.shape[0] if need_other else 0
    return inputs.new_empty(rows, inputs.shape[1]), other.new_empty(types, other.shape[1], other.shape[2])


def _segment_matmul_setup(ctx, inputs, output):
    ctx.save_for_backward(*inputs)


@first_order("segment_matmul")
def _segment_matmul_backward(ctx, grad):
    inputs, ptr, other = ctx.saved_tensors
    need_inputs, need_other = ctx.needs_input_grad[0], ctx.needs_input_grad[2]
    grad_inputs, grad_other = ops.segment_matmul_backward(inputs, ptr, other, grad, need_inputs, need_other)
    return (grad_inputs if need_inputs else None), None, (grad_other if need_other else None)


torch.library.register_autograd(
    "gnn_kernels::segment_matmul", _segment_matmul_backward, setup_context=_segment_matmul_setup
)
