"""Definitions the kernels' Python modules share (no imports of the others, so none of them
imports in a circle): the reduction codes of ``csrc/reduce.h`` and the row-layout helper."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

# reduction codes of scatter_reduce/segment_reduce (csrc/reduce.h)
REDUCE_SUM, REDUCE_MEAN, REDUCE_MAX, REDUCE_MIN, REDUCE_MUL = range(5)
_REDUCE_CODES = {
    "sum": REDUCE_SUM,
    "add": REDUCE_SUM,
    "mean": REDUCE_MEAN,
    "max": REDUCE_MAX,
    "min": REDUCE_MIN,
    "mul": REDUCE_MUL,
}


def contiguous_rows(t: Tensor) -> Tensor:
    """``t`` with each row contiguous, keeping its row stride (a column block of a wider
    tensor stays a view) and a broadcast along rows (stride 0) broadcast. Only the CPU
    kernels read strided rows."""
    if t.device.type != "cpu":
        return t.contiguous()
    if t.dim() > 1 and t.size(0) > 1 and t.stride(0) == 0:
        return t[:1].contiguous().expand(t.shape)
    inner = t[0] if t.dim() > 1 and t.size(0) > 0 else t
    return t if inner.is_contiguous() else t.contiguous()


class _FirstDerivativeOnly(torch.autograd.Function):
    """The identity on a gradient a kernel's backward computed, whose own derivative raises: a
    backward kernel has no autograd formula, so without this a second derivative through it
    (``create_graph=True``, e.g. force training) would come out silently wrong."""

    @staticmethod
    def forward(ctx: Any, op: str, grad: Tensor, *inputs: Tensor) -> Tensor:
        ctx.op = op
        return grad.clone()

    @staticmethod
    def backward(ctx: Any, *grads: Tensor) -> Any:
        raise RuntimeError(
            f"gnn_kernels::{ctx.op} has no second derivative; differentiate twice (create_graph=True) "
            "on gnn's pure-torch ops: `with gnn.core.ops.backend('torch'):` around the forward "
            "pass, or GNN_KERNELS=torch"
        )


def first_derivative_only(op: str, grads: tuple[Any, ...], *inputs: Any) -> tuple[Any, ...]:
    """``grads`` (a backward's return value) unchanged, unless the backward runs with
    ``create_graph=True``: then each gradient tensor is tied to ``inputs`` (what a second
    derivative would flow into) through :class:`_FirstDerivativeOnly`, which raises a clear error
    when differentiated."""
    if not torch.is_grad_enabled():
        return grads
    deps = [t for t in inputs if isinstance(t, Tensor) and t.requires_grad]
    if not deps:
        return grads
    return tuple(_FirstDerivativeOnly.apply(op, g, *deps) if isinstance(g, Tensor) else g for g in grads)


def first_order(op: str) -> Any:
    """Decorator of a ``register_autograd`` backward whose gradients come from a backward kernel:
    under ``create_graph=True`` they are made to raise when differentiated
    (:func:`first_derivative_only`), tied to the incoming gradients and the saved tensors."""

    def wrap(backward: Any) -> Any:
        def guarded(ctx: Any, *grads: Any) -> Any:
            out = backward(ctx, *grads)
            if not torch.is_grad_enabled():
                return out
            result = out if isinstance(out, tuple) else (out,)
            guarded_out = first_derivative_only(op, result, *grads, *ctx.saved_tensors)
            return guarded_out if isinstance(out, tuple) else guarded_out[0]

        guarded.__name__ = backward.__name__
        guarded.__doc__ = backward.__doc__
        return guarded

    return wrap
