"""Fake (meta) implementation and autograd formula of ``gnn_kernels::multi_reduce``, the
one-pass multi-reduction (csrc/cpu/multi_reduce.cpp).

The backward is one call of ``gnn_kernels::multi_reduce_backward``. It reads the statistics
the forward kept when called with ``stats=True`` (the group means of var/std, the tie counts
of max/min), so it never reads ``x`` group by group: sorted elements get their gradients
group by group, permuted elements and gathered nodes in their own order from their groups'
coefficients (over the transposed pattern in gather mode). No ``[E, F]`` tensor exists in
either direction.
"""

from __future__ import annotations

import torch

from ._common import first_order

ops = torch.ops.gnn_kernels

#: kinds of csrc/multi_reduce.h, plus the semi-gradient bit
MULTI_CODES = {"sum": 0, "mean": 1, "max": 2, "min": 3, "var": 4, "std": 5, "softmax": 6}
SEMI_GRAD = 8


def num_softmax(codes) -> int:
    return sum(1 for c in codes if c & 7 == MULTI_CODES["softmax"])


def aux_rows(codes, stats: bool) -> int:
    """Rows of the op's ``aux`` output (csrc/multi_reduce.h, ``MultiPlan::aux_rows``): a shift and a
    denominator per softmax, and with ``stats`` the group mean (var/std) and a tie count per max/min."""
    kinds = [c & 7 for c in codes]
    rows = 2 * num_softmax(codes)
    if stats:
        rows += int(any(k in (MULTI_CODES["var"], MULTI_CODES["std"]) for k in kinds))
        rows += sum(1 for k in kinds if k in (MULTI_CODES["max"], MULTI_CODES["min"]))
    return rows


@torch.library.register_fake("gnn_kernels::multi_reduce")
def _(rowptr, col, x, codes, temps, t_rowptr, t_col, stats=False):
    groups = rowptr.shape[0] - 1
    return (
        x.new_empty(groups, len(codes), x.shape[1]),
        x.new_empty(groups, aux_rows(codes, stats), x.shape[1]),
    )


@torch.library.register_fake("gnn_kernels::multi_reduce_backward")
def _(rowptr, col, x, codes, temps, out, aux, grad_out, t_rowptr, t_col, need_x, need_temps):
    rows = x.shape[0] if need_x else 0
    learn = need_temps and any(c & 7 == MULTI_CODES["softmax"] and not c & SEMI_GRAD for c in codes)
    return x.new_empty(rows, x.shape[1]), x.new_empty(num_softmax(codes) if learn else 0, x.shape[1])


def _setup(ctx, inputs, output):
    rowptr, col, x, codes, temps, t_rowptr, t_col = inputs[:7]
    out, aux = output
    ctx.save_for_backward(rowptr, col, x, temps, out, aux, t_rowptr, t_col)
    ctx.codes = codes
    ctx.stats = bool(inputs[7]) if len(inputs) > 7 else False
    ctx.set_materialize_grads(False)


@first_order("multi_reduce")
def _backward(ctx, grad_out, _grad_aux):
    rowptr, col, x, temps, out, aux, t_rowptr, t_col = ctx.saved_tensors
    need_x, need_temps = ctx.needs_input_grad[2], temps is not None and ctx.needs_input_grad[4]
    if grad_out is None or not (need_x or need_temps):
        return (None,) * 8
    if not ctx.stats and aux_rows(ctx.codes, True) != aux_rows(ctx.codes, False):
        raise RuntimeError("gnn_kernels::multi_reduce: a gradient needs the forward called with stats=True")
    if need_x and t_rowptr is None and col is not None and col.numel() != x.shape[0]:
        raise RuntimeError("gnn_kernels::multi_reduce: a gradient of gathered rows needs t_rowptr and t_col")
    grad_x, grad_temps = ops.multi_reduce_backward(
        rowptr, col, x, ctx.codes, temps, out, aux, grad_out.contiguous(), t_rowptr, t_col, need_x, need_temps
    )
    if need_temps and grad_temps.shape[0] == 0:  # every softmax is semi-gradient: no gradient
        grad_temps = torch.zeros_like(temps)
    return None, None, grad_x if need_x else None, None, grad_temps if need_temps else None, None, None, None


_LINEAR = (MULTI_CODES["sum"], MULTI_CODES["mean"])


def _linear_backward(rowptr, col, x, codes, grad_out):
    """The gradient of sums and means (linear in ``x``) in differentiable torch ops: each element
    gets its group's incoming gradient (divided by the group size for a mean), added at its row of
    ``x``. Used for ``create_graph=True`` (force training through a sum aggregation)."""
    counts = rowptr[1:] - rowptr[:-1]
    coeff = None
    for j, code in enumerate(codes):
        g = grad_out[:, j]
        if code & 7 == MULTI_CODES["mean"]:
            g = g / counts.clamp(min=1).to(g.dtype).unsqueeze(-1)
        coeff = g if coeff is None else coeff + g
    elements = int(rowptr[-1]) if rowptr.numel() else 0
    group = torch.repeat_interleave(
        torch.arange(counts.numel(), device=x.device), counts, output_size=elements
    )
    rows = col[:elements] if col is not None else torch.arange(elements, device=x.device)
    return x.new_zeros(x.shape).index_add(0, rows, coeff.index_select(0, group))


def _backward_any(ctx, grad_out, grad_aux):
    need_temps = ctx.saved_tensors[3] is not None and ctx.needs_input_grad[4]
    if (
        torch.is_grad_enabled()  # create_graph=True: the gradient itself must be differentiable
        and grad_out is not None
        and ctx.needs_input_grad[2]
        and not need_temps
        and all(code & 7 in _LINEAR for code in ctx.codes)
    ):
        rowptr, col, x = ctx.saved_tensors[:3]
        return None, None, _linear_backward(rowptr, col, x, ctx.codes, grad_out), None, None, None, None, None
    return _backward(ctx, grad_out, grad_aux)


torch.library.register_autograd("gnn_kernels::multi_reduce", _backward_any, setup_context=_setup)
