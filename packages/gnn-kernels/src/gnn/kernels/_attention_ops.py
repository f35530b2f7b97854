"""Fake implementations and autograd of the fused per-feature attention ops.

``gnn_kernels::dot_attention_forward`` (TransformerConv) and
``gnn_kernels::gatv2_attention_forward`` (GATv2Conv) compute ``(out [M, H, C],
alpha [E, H])`` in one pass per CSR row; their backward kernels return every
input gradient at once (one row pass, one pass over the transposed pattern,
no atomics). Imported by :func:`gnn.kernels._library.load` once the compiled
library is loaded.
"""

from __future__ import annotations

import torch

from ._common import first_order

ops = torch.ops.gnn_kernels


def _edge_grad_rows(edge, col) -> int:
    return 0 if edge is None else col.shape[0]


@torch.library.register_fake("gnn_kernels::dot_attention_forward")
def _(rowptr, col, query, key, value, edge, scale, t_rowptr, t_col, t_perm):
    heads, channels = query.shape[1], query.shape[2]
    return query.new_empty(rowptr.shape[0] - 1, heads, channels), query.new_empty(col.shape[0], heads)


@torch.library.register_fake("gnn_kernels::dot_attention_backward")
def _(rowptr, col, query, key, value, edge, scale, out, alpha, grad_out, grad_alpha, t_rowptr, t_col, t_perm):
    heads, channels = query.shape[1], query.shape[2]
    return (
        query.new_empty(query.shape),
        key.new_empty(key.shape),
        value.new_empty(value.shape),
        query.new_empty(_edge_grad_rows(edge, col), heads, channels),
    )


@torch.library.register_fake("gnn_kernels::gatv2_attention_forward")
def _(rowptr, col, x_src, x_dst, att, edge, negative_slope, t_rowptr, t_col, t_perm):
    heads, channels = x_src.shape[1], x_src.shape[2]
    return x_src.new_empty(rowptr.shape[0] - 1, heads, channels), x_src.new_empty(col.shape[0], heads)


@torch.library.register_fake("gnn_kernels::gatv2_attention_backward")
def _(
    rowptr,
    col,
    x_src,
    x_dst,
    att,
    edge,
    negative_slope,
    out,
    alpha,
    grad_out,
    grad_alpha,
    t_rowptr,
    t_col,
    t_perm,
):
    heads, channels = x_src.shape[1], x_src.shape[2]
    return (
        x_src.new_empty(x_src.shape),
        x_dst.new_empty(x_dst.shape),
        att.new_empty(att.shape),
        x_src.new_empty(_edge_grad_rows(edge, col), heads, channels),
    )


# -- autograd: inputs are (rowptr, col, a, b, c, edge, scalar, t_rowptr, t_col, t_perm) ---------
def _setup(ctx, inputs, output):
    rowptr, col, a, b, c, edge, scalar, t_rowptr, t_col, t_perm = inputs
    out, alpha = output
    ctx.save_for_backward(rowptr, col, a, b, c, edge, out, alpha, t_rowptr, t_col, t_perm)
    ctx.scalar = scalar


def _grads(ctx, backward_op, grad_out, grad_alpha):
    rowptr, col, a, b, c, edge, out, alpha, t_rowptr, t_col, t_perm = ctx.saved_tensors
    if t_rowptr is None:
        raise RuntimeError(f"{backward_op} needs the transposed pattern (t_rowptr, t_col, t_perm)")
    grad_out = torch.zeros_like(out) if grad_out is None else grad_out.contiguous()
    grad_alpha = None if grad_alpha is None else grad_alpha.contiguous()
    g_a, g_b, g_c, g_edge = getattr(ops, backward_op)(
        rowptr, col, a, b, c, edge, ctx.scalar, out, alpha, grad_out, grad_alpha, t_rowptr, t_col, t_perm
    )
    need = ctx.needs_input_grad
    return (
        None,
        None,
        g_a if need[2] else None,
        g_b if need[3] else None,
        g_c if need[4] else None,
        g_edge if edge is not None and need[5] else None,
        None,
        None,
        None,
        None,
    )


@first_order("dot_attention_forward")
def _dot_backward(ctx, grad_out, grad_alpha):
    return _grads(ctx, "dot_attention_backward", grad_out, grad_alpha)


@first_order("gatv2_attention_forward")
def _gatv2_backward(ctx, grad_out, grad_alpha):
    return _grads(ctx, "gatv2_attention_backward", grad_out, grad_alpha)


torch.library.register_autograd("gnn_kernels::dot_attention_forward", _dot_backward, setup_context=_setup)
torch.library.register_autograd("gnn_kernels::gatv2_attention_forward", _gatv2_backward, setup_context=_setup)
