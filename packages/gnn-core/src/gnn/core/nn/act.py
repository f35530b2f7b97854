"""Applying an activation to a freshly computed tensor, in place when nothing can tell.

A ReLU after a linear map or a convolution normally allocates a second ``[N, C]``
tensor; on large graphs the fresh memory (page faults included) costs as much as
the ReLU itself. When the input is a fresh result that nothing else holds, the
ReLU can overwrite it: autograd's ``ReluBackward`` reads only the output, so the
gradients are the same. :func:`activate` does so only when the caller vouches that
the tensor is fresh (it came straight out of a module whose output is not saved for
its own backward) and no hook could observe or keep it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor
from torch.nn.modules import module as _module

__all__ = ["activate", "no_forward_hooks"]


def _global_hooks() -> bool:
    return bool(
        getattr(_module, "_global_forward_hooks", None) or getattr(_module, "_global_forward_pre_hooks", None)
    )


def no_forward_hooks(*modules: torch.nn.Module) -> bool:
    """Whether none of ``modules`` (nor the global module hooks) has a forward (pre-)hook."""
    if _global_hooks():
        return False
    return not any(m._forward_hooks or m._forward_pre_hooks for m in modules)


def activate(act: Callable[[Tensor], Tensor], x: Tensor, *, fresh: bool) -> Tensor:
    """``act(x)``; an exact :class:`torch.nn.ReLU` module runs in place when ``fresh``.

    ``fresh`` is the caller's promise that ``x`` is a new tensor nothing else holds
    and that its producer did not save it for backward. ``x`` must also not be a view,
    and the activation module must carry no hooks (they would be skipped).

    Example:
        >>> h = torch.nn.functional.linear(torch.randn(4, 3), torch.randn(5, 3))
        >>> activate(torch.nn.ReLU(), h, fresh=True) is h
        True
    """
    if (
        fresh
        and type(act) is torch.nn.ReLU
        and x._base is None
        and not (x.is_leaf and x.requires_grad)
        and no_forward_hooks(act)
    ):
        return torch.relu_(x)
    return act(x)
