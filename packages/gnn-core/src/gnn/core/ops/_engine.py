"""What the running backward pass will use (package-private; for memory-lean autograd
functions that would otherwise compute gradients nobody reads)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.autograd.graph import get_gradient_edge

__all__ = ["grads_wanted", "will_use_grad"]


def will_use_grad(t: Tensor) -> bool:
    """Whether the running backward pass will use a gradient for ``t`` (a tensor that requires
    grad). ``torch.autograd.grad(E, pos)`` skips the weights, ``loss.backward()`` does not; a
    custom ``backward`` that computes a weight gradient only when this says so saves a matmul
    in every force evaluation. Errs on ``True`` where the engine cannot be asked."""
    will_execute = getattr(torch._C, "_will_engine_execute_node", None)
    if will_execute is None or not t.requires_grad:
        return t.requires_grad
    try:
        return bool(will_execute(get_gradient_edge(t).node))
    except RuntimeError:  # not inside a backward pass of the engine (e.g. a functional transform)
        return True


def grads_wanted(ctx: Any, *inputs: Tensor | None) -> tuple[bool, ...]:
    """For a custom ``autograd.Function``'s ``backward``: which of ``inputs`` (its first inputs, in
    order) need a gradient in the running pass: ``ctx.needs_input_grad`` narrowed by
    :func:`will_use_grad` (``False`` for ``None``)."""
    return tuple(
        bool(need) and t is not None and will_use_grad(t)
        for t, need in zip(inputs, ctx.needs_input_grad, strict=False)
    )
