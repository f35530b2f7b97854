"""Parameter initializers (PyG 2.8's ``torch_geometric.nn.inits``).

Every initializer takes a tensor, a module (applied to all of its parameters
and buffers, recursively) or ``None`` (a no-op), and fills it in place without
recording autograd history. Parameters that are still lazy
(:class:`torch.nn.parameter.UninitializedParameter`) are skipped.

Example:
    >>> w = torch.empty(16, 32)
    >>> glorot(w)                  # U(-a, a), a = sqrt(6 / (16 + 32))
    >>> zeros(torch.nn.Linear(4, 4))  # weight and bias set to 0
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor
from torch.nn.parameter import is_lazy

__all__ = [
    "constant",
    "glorot",
    "glorot_orthogonal",
    "kaiming_uniform",
    "normal",
    "ones",
    "reset",
    "uniform",
    "zeros",
]


def _targets(value: Any) -> Iterator[Tensor]:
    """The tensors an initializer acts on: ``value`` itself, or a module's parameters and buffers."""
    if value is None:
        return
    if isinstance(value, Tensor):
        if not is_lazy(value):
            yield value
        return
    if isinstance(value, torch.nn.Module):
        for tensor in list(value.parameters()) + list(value.buffers()):
            if not is_lazy(tensor):
                yield tensor


def _fill_uniform(value: Any, bound: float) -> None:
    with torch.no_grad():
        for tensor in _targets(value):
            tensor.uniform_(-bound, bound)


def glorot(value: Any) -> None:
    r"""Glorot/Xavier uniform: :math:`\mathcal{U}(-a, a)`, :math:`a = \sqrt{6 / (F_{-2} + F_{-1})}`.

    The fans are the last two dimensions of each tensor (``[out, in]`` or
    ``[types, in, out]``), so every tensor must have at least two dimensions.
    """
    with torch.no_grad():
        for tensor in _targets(value):
            if tensor.dim() < 2:
                raise ValueError(
                    f"glorot needs tensors with at least 2 dimensions for 'value', "
                    f"got shape {list(tensor.shape)}"
                )
            bound = math.sqrt(6.0 / (tensor.size(-2) + tensor.size(-1)))
            tensor.uniform_(-bound, bound)


def glorot_orthogonal(tensor: Any, scale: float) -> None:
    r"""Orthogonal init rescaled to variance :math:`\text{scale} / (F_{-2} + F_{-1})`.

    The tensor is first filled with a (semi-)orthogonal matrix, then
    multiplied by :math:`\sqrt{\text{scale} / ((F_{-2} + F_{-1}) \operatorname{Var}(W))}`.
    """
    with torch.no_grad():
        for t in _targets(tensor):
            torch.nn.init.orthogonal_(t)
            fans = t.size(-2) + t.size(-1)
            t.mul_(math.sqrt(scale / (fans * t.var().item())))


def uniform(size: int, value: Any) -> None:
    r""":math:`\mathcal{U}(-1/\sqrt{\text{size}}, 1/\sqrt{\text{size}})`."""
    _fill_uniform(value, 1.0 / math.sqrt(size))


def kaiming_uniform(value: Any, fan: int, a: float) -> None:
    r"""He/Kaiming uniform for a leaky-ReLU slope ``a``: bound :math:`\sqrt{6 / ((1 + a^2)\,\text{fan})}`.

    With ``a = sqrt(5)`` and ``fan = in_channels`` this is the default
    initialization of :class:`torch.nn.Linear`'s weight.
    """
    _fill_uniform(value, math.sqrt(6.0 / ((1.0 + a * a) * fan)))


def constant(value: Any, fill_value: float) -> None:
    """Set every entry to ``fill_value``."""
    with torch.no_grad():
        for tensor in _targets(value):
            tensor.fill_(fill_value)


def zeros(value: Any) -> None:
    """Set every entry to 0."""
    constant(value, 0.0)


def ones(tensor: Any) -> None:
    """Set every entry to 1."""
    constant(tensor, 1.0)


def normal(value: Any, mean: float, std: float) -> None:
    r"""Draw every entry from :math:`\mathcal{N}(\text{mean}, \text{std}^2)`."""
    with torch.no_grad():
        for tensor in _targets(value):
            tensor.normal_(mean, std)


def reset(value: Any) -> None:
    """Reset a module's parameters.

    Calls ``value.reset_parameters()`` when it exists; otherwise resets each
    child module the same way (recursively). ``None`` and objects without
    children are left alone.

    Example:
        >>> reset(torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.ReLU()))
    """
    if value is None:
        return
    method = getattr(value, "reset_parameters", None)
    if callable(method):
        method()
        return
    children = getattr(value, "children", None)
    if callable(children):
        for child in children():
            reset(child)
