r"""The lazy, PyG-compatible :class:`Linear` layer.

:math:`\mathbf{x}' = \mathbf{x}\mathbf{W}^\top + \mathbf{b}` with
``W: [out_channels, in_channels]``; ``in_channels=-1`` defers creating ``W``
until the first forward call (or until a state dict with a real weight is
loaded).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn.parameter import Parameter, UninitializedParameter, UninitializedTensorMixin

from .. import validation as v
from . import inits

__all__ = ["Linear"]


def is_lazy(value: object) -> bool:
    """Whether ``value`` is a not yet materialized lazy parameter or buffer.

    A plain ``isinstance`` check, which ``torch.compile`` traces without a graph break.
    """
    return isinstance(value, UninitializedTensorMixin)


WEIGHT_INITIALIZERS = (None, "glorot", "uniform", "kaiming_uniform")
BIAS_INITIALIZERS = (None, "zeros")


def check_initializers(weight_initializer: str | None, bias_initializer: str | None) -> None:
    """Raise ``ValueError`` for an initializer name PyG does not know."""
    if weight_initializer not in WEIGHT_INITIALIZERS:
        raise ValueError(
            f"'weight_initializer' must be one of {WEIGHT_INITIALIZERS}, got {weight_initializer!r}"
        )
    if bias_initializer not in BIAS_INITIALIZERS:
        raise ValueError(f"'bias_initializer' must be one of {BIAS_INITIALIZERS}, got {bias_initializer!r}")


def check_channels(in_channels: object, out_channels: object) -> None:
    """``in_channels`` is a positive int or ``-1`` (lazy); ``out_channels`` a non-negative int."""
    if not isinstance(in_channels, int) or isinstance(in_channels, bool) or in_channels < -1:
        raise ValueError(f"'in_channels' must be a positive int or -1 (lazy), got {in_channels!r}")
    if not isinstance(out_channels, int) or isinstance(out_channels, bool) or out_channels < 0:
        raise ValueError(f"'out_channels' must be a non-negative int, got {out_channels!r}")


def init_weight(weight: Tensor, initializer: str | None, fan_in: int) -> None:
    """Fill ``weight`` in place with the named initializer (``None``: like :class:`torch.nn.Linear`)."""
    if initializer == "glorot":
        inits.glorot(weight)
    elif initializer == "uniform":
        inits.uniform(fan_in, weight)
    else:  # "kaiming_uniform" and None: torch.nn.Linear's default, a = sqrt(5)
        inits.kaiming_uniform(weight, fan=fan_in, a=math.sqrt(5))


def init_bias(bias: Tensor | None, initializer: str | None, fan_in: int) -> None:
    """Fill ``bias`` in place: zeros, or ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` like torch."""
    if bias is None:
        return
    if initializer == "zeros":
        inits.zeros(bias)
    else:
        inits.uniform(fan_in, bias)


class LazyWeightMixin:
    """``state_dict`` support for a module whose ``weight`` may still be lazy.

    * Saving keeps an :class:`~torch.nn.parameter.UninitializedParameter` in
      the state dict (torch would fail to detach it).
    * Loading a real weight into a lazy module materializes it first (its
      input size is read from the checkpoint); loading a lazy weight into a
      materialized module makes it lazy again, as PyG does.

    Subclasses implement :meth:`_materialize` and :meth:`_make_lazy` and
    declare which dimension of the weight holds ``in_channels``.
    """

    _in_dim: int = 1
    weight: Any

    def _materialize(self, in_channels: int) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _make_lazy(self) -> None:
        old = self.weight
        self.weight = UninitializedParameter(
            requires_grad=old.requires_grad, device=old.device, dtype=old.dtype
        )
        self.in_channels = -1

    def _save_to_state_dict(self, destination: dict[str, Any], prefix: str, keep_vars: bool) -> None:
        local: OrderedDict[str, Any] = OrderedDict()
        super()._save_to_state_dict(local, prefix, True)  # type: ignore[misc]
        for key, value in local.items():
            if not keep_vars and isinstance(value, Tensor) and not is_lazy(value):
                value = value.detach()
            destination[key] = value

    def _load_from_state_dict(
        self,
        state_dict: dict[str, Any],
        prefix: str,
        local_metadata: dict[str, Any],
        strict: bool,
        missing_keys: list[str],
        unexpected_keys: list[str],
        error_msgs: list[str],
    ) -> None:
        key = prefix + "weight"
        src = state_dict.get(key)
        if isinstance(src, Tensor):
            if is_lazy(src):
                if not is_lazy(self.weight):
                    self._make_lazy()
            elif is_lazy(self.weight):
                expected = self.weight_shape(-1)
                if src.dim() != len(expected):
                    error_msgs.append(
                        f"size mismatch for {key}: copying a param with shape {tuple(src.shape)} from "
                        f"checkpoint into a lazy weight of shape {expected} (-1 = lazy in_channels)."
                    )
                    return
                self._materialize(int(src.size(self._in_dim)))
        super()._load_from_state_dict(  # type: ignore[misc]
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )

    def weight_shape(self, in_channels: int) -> tuple[int, ...]:  # pragma: no cover - abstract
        raise NotImplementedError


class Linear(LazyWeightMixin, torch.nn.Module):
    r"""Applies :math:`\mathbf{x}' = \mathbf{x}\mathbf{W}^\top + \mathbf{b}`, with lazy input size.

    Unlike :class:`torch.nn.Linear`, ``in_channels=-1`` creates the weight on
    the first forward call, and the initializers can be chosen.

    Args:
        in_channels: size of each input sample, or ``-1`` to infer it lazily.
        out_channels: size of each output sample.
        bias: learn an additive bias ``b``.
        weight_initializer: ``"glorot"``, ``"uniform"``, ``"kaiming_uniform"``
            or ``None`` (``torch.nn.Linear``'s default, kaiming uniform with
            ``a = sqrt(5)``).
        bias_initializer: ``"zeros"`` or ``None`` (``torch.nn.Linear``'s
            default, ``U(-1/sqrt(in), 1/sqrt(in))``).

    Shapes:
        input ``[*, in_channels]`` -> output ``[*, out_channels]``.
        Parameters: ``weight [out_channels, in_channels]``, ``bias [out_channels]``.

    Example:
        >>> lin = Linear(-1, 32)
        >>> lin(torch.randn(10, 16)).shape
        torch.Size([10, 32])
        >>> lin
        Linear(16, 32, bias=True)
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        bias: bool = True,
        weight_initializer: str | None = None,
        bias_initializer: str | None = None,
    ) -> None:
        super().__init__()
        check_channels(in_channels, out_channels)
        check_initializers(weight_initializer, bias_initializer)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.weight_initializer = weight_initializer
        self.bias_initializer = bias_initializer

        if in_channels > 0:
            self.weight: Parameter = Parameter(torch.empty(out_channels, in_channels))
        else:
            self.in_channels = -1
            self.weight = UninitializedParameter()
        if bias:
            # a lazy layer's bias is filled for real when the weight materializes
            self.bias: Parameter | None = Parameter(torch.zeros(out_channels))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def weight_shape(self, in_channels: int) -> tuple[int, ...]:
        return (self.out_channels, in_channels)

    def _materialize(self, in_channels: int) -> None:
        with torch.no_grad():
            self.weight.materialize(self.weight_shape(in_channels))
        self.in_channels = in_channels
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-draw weight and bias with the configured initializers (no-op while lazy)."""
        if is_lazy(self.weight):
            return
        init_weight(self.weight, self.weight_initializer, self.in_channels)
        init_bias(self.bias, self.bias_initializer, self.in_channels)

    def _check_input(self, x: Tensor) -> Tensor:
        """Validate ``x`` against ``in_channels`` (a lazy layer materializes its weight from it);
        returns the weight."""
        weight = self.weight
        if is_lazy(weight):
            v.check_tensor("x", x)
            if x.dim() == 0:
                raise ValueError(f"'x' must have a feature dimension, got {v.describe(x)}")
            self._materialize(x.size(-1))
            return self.weight
        if not isinstance(x, Tensor) or x.dim() == 0 or x.size(-1) != weight.size(1):
            v.check_tensor("x", x)
            raise ValueError(
                f"'x' must have {weight.size(1)} features in its last dimension "
                f"(in_channels), got {v.describe(x)}"
            )
        return weight

    def forward(self, x: Tensor) -> Tensor:
        """``[*, in_channels]`` -> ``[*, out_channels]``."""
        return F.linear(x, self._check_input(x), self.bias)

    def add_to(self, acc: Tensor, x: Tensor) -> Tensor:
        r"""``acc + self(x)``, with the sum formed inside the matrix multiply.

        :math:`\mathbf{acc} + \mathbf{x}\mathbf{W}^\top (+ \mathbf{b})` as one
        ``addmm``: no separate addition pass over the output and one output
        buffer fewer, which matters for layers summing two linear maps
        (SAGE's ``lin_l(aggr) + lin_r(x)``). The result equals
        ``acc + self(x)`` up to floating-point rounding. Inputs of another
        shape or dtype take the plain ``acc + self(x)``.

        Shapes:
            ``acc`` ``[N, out_channels]``, ``x`` ``[N, in_channels]`` ->
            ``[N, out_channels]``.

        Example:
            >>> lin = Linear(16, 32)
            >>> acc, x = torch.randn(4, 32), torch.randn(4, 16)
            >>> torch.allclose(lin.add_to(acc, x), acc + lin(x), atol=1e-6)
            True
        """
        weight = self._check_input(x)
        bias = self.bias
        fusable = (
            x.dim() == 2
            and acc.dim() == 2
            and acc.shape == (x.size(0), weight.size(0))
            and acc.dtype == x.dtype == weight.dtype
            and acc.device == x.device
        )
        if not fusable:
            return acc + F.linear(x, weight, bias)
        out = torch.addmm(acc, x, weight.t())
        # in place: addmm's backward does not need its output
        return out if bias is None else out.add_(bias)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.in_channels}, {self.out_channels}, bias={self.bias is not None})"
