"""Helpers for custom autograd functions that skip work a backward pass discards.

Training on forces runs ``autograd.grad(E, pos, create_graph=True)`` first: the graph reaches every
weight, so a custom function's ``ctx.needs_input_grad`` says that the weights need gradients,
although this pass throws them away (only the second pass, into the weights, keeps them). Plain
autograd prunes such branches; :func:`grad_needed` lets a custom backward do the same.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["grad_needed"]


def grad_needed(t: Tensor | None, declared: bool = True) -> bool:
    """Whether the backward pass now running will use a gradient for ``t``.

    Args:
        t: an input of the custom function (as saved for its backward), or ``None``.
        declared: the function's ``ctx.needs_input_grad`` entry for ``t``.

    Returns:
        ``False`` when ``declared`` is false, ``t`` is ``None``, or the autograd engine will not
        execute the node that receives ``t``'s gradient; ``True`` otherwise, and whenever the
        engine cannot tell (outside a backward pass).

    Example (inside ``backward``)::

        x, w = ctx.saved_tensors
        need_w = grad_needed(w, ctx.needs_input_grad[1])
    """
    if not declared or t is None:
        return False
    try:
        node = torch.autograd.graph.get_gradient_edge(t).node
        return bool(torch._C._will_engine_execute_node(node))
    except (AttributeError, RuntimeError):  # an engine without the query, or not in a backward
        return True
