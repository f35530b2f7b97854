r"""Normalization per node or edge type: :class:`HeteroBatchNorm` and :class:`HeteroLayerNorm`."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import Parameter

from gnn.core import ops
from gnn.core import validation as v

__all__ = ["HeteroBatchNorm", "HeteroLayerNorm"]


def _check_types(name: str, type_vec: Any, x: Tensor, num_types: int) -> Tensor:
    v.check_tensor(name, type_vec)
    v.check_index_dtype(name, type_vec)
    if type_vec.dim() != 1 or type_vec.numel() != x.size(0):
        raise ValueError(
            f"'{name}' must have shape [{x.size(0)}] (one type per row of 'x'), got {v.describe(type_vec)}"
        )
    v.check_index_range(name, type_vec, num_types, "types ('num_types')")
    return type_vec


def _check_x(x: Any, in_channels: int) -> Tensor:
    v.check_tensor("x", x)
    if x.dim() != 2 or x.size(-1) != in_channels:
        raise ValueError(f"'x' must have shape [N, {in_channels}] (in_channels), got {v.describe(x)}")
    return x


class _TypeAffineNorm(torch.nn.Module):
    r"""What the per-type norms share: ``in_channels`` ``F`` and ``num_types`` ``T`` (positive
    ints), ``eps``, and with ``affine`` the per-type scale ``weight`` and shift ``bias``
    (``[T, F]`` each, else both ``None``) applied by :meth:`_scale_shift`."""

    def __init__(
        self, in_channels: int, num_types: int, eps: float, affine: bool, device: torch.device | None
    ) -> None:
        super().__init__()
        if not isinstance(in_channels, int) or isinstance(in_channels, bool) or in_channels < 1:
            raise ValueError(f"'in_channels' must be a positive int, got {in_channels!r}")
        if not isinstance(num_types, int) or isinstance(num_types, bool) or num_types < 1:
            raise ValueError(f"'num_types' must be a positive int, got {num_types!r}")
        self.in_channels = in_channels
        self.num_types = num_types
        self.eps = eps
        self.affine = affine
        if affine:
            self.weight: Parameter | None = Parameter(torch.empty(num_types, in_channels, device=device))
            self.bias: Parameter | None = Parameter(torch.empty(num_types, in_channels, device=device))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def _reset_affine(self) -> None:
        """``weight`` 1, ``bias`` 0."""
        if self.affine:
            torch.nn.init.ones_(self.weight)
            torch.nn.init.zeros_(self.bias)

    def _scale_shift(self, out: Tensor, type_vec: Tensor) -> Tensor:
        """``out * weight[t_i] + bias[t_i]`` row by row (``out`` itself without ``affine``)."""
        if not self.affine:
            return out
        index = type_vec.long()
        return torch.addcmul(self.bias.index_select(0, index), out, self.weight.index_select(0, index))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, num_types={self.num_types})"


class HeteroBatchNorm(_TypeAffineNorm):
    r"""Batch normalization with statistics and affine parameters per type.

    .. math::
        \mathbf{x}'_i = \frac{\mathbf{x}_i - \boldsymbol{\mu}_{t_i}}
        {\sqrt{\max(\boldsymbol{\sigma}^2_{t_i}, \epsilon)}} \odot \boldsymbol{\gamma}_{t_i}
        + \boldsymbol{\beta}_{t_i}

    with :math:`\boldsymbol{\mu}_t`, :math:`\boldsymbol{\sigma}^2_t` the mean and (biased)
    variance of the rows of type :math:`t` in training (one pass,
    :func:`gnn.core.ops.multi_reduce`), and the running estimates in evaluation when
    ``track_running_stats``. As in PyG, the batch statistics are treated as constants
    by autograd, and the running estimates of a type are only updated when the batch holds
    rows of that type (with ``momentum=None``, a cumulative average over
    ``num_batches_tracked`` batches).

    Args:
        in_channels: feature size ``F``.
        num_types: number of types ``T``.
        eps: lower bound of the variance.
        momentum: weight of the new statistics in the running estimates (``None``:
            cumulative average).
        affine: learn ``weight`` (:math:`\gamma`) and ``bias`` (:math:`\beta`), ``[T, F]`` each.
        track_running_stats: keep running estimates ``running_mean`` / ``running_var``
            ``[T, F]`` for evaluation.
        device: where to create the parameters.

    Shapes:
        ``x`` ``[N, F]``, ``type_vec`` ``[N]`` (values in ``[0, T)``) -> ``[N, F]``.

    Example:
        >>> norm = HeteroBatchNorm(16, num_types=3)
        >>> norm(torch.randn(10, 16), torch.randint(0, 3, (10,))).shape
        torch.Size([10, 16])
    """

    def __init__(
        self,
        in_channels: int,
        num_types: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        device: torch.device | None = None,
    ) -> None:
        super().__init__(in_channels, num_types, eps, affine, device)
        self.momentum = momentum
        self.track_running_stats = track_running_stats
        if track_running_stats:
            self.register_buffer("running_mean", torch.empty(num_types, in_channels, device=device))
            self.register_buffer("running_var", torch.empty(num_types, in_channels, device=device))
            self.register_buffer("num_batches_tracked", torch.tensor(0, device=device))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)
        self.reset_parameters()

    def reset_running_stats(self) -> None:
        """Running means 0, running variances 1, no batches tracked."""
        if self.track_running_stats:
            self.running_mean.zero_()
            self.running_var.fill_(1)
            self.num_batches_tracked.zero_()

    def reset_parameters(self) -> None:
        """Reset the running statistics; ``weight`` 1, ``bias`` 0."""
        self.reset_running_stats()
        self._reset_affine()

    def forward(self, x: Tensor, type_vec: Tensor) -> Tensor:
        """Normalize each row with the statistics of its type."""
        x = _check_x(x, self.in_channels)
        type_vec = _check_types("type_vec", type_vec, x, self.num_types)
        if not self.training and self.track_running_stats:
            mean, var = self.running_mean, self.running_var
        else:
            with torch.no_grad():
                stats = ops.multi_reduce(x.detach(), ["mean", "var"], index=type_vec, dim_size=self.num_types)
                mean, var = stats[:, 0], stats[:, 1]
        if self.training and self.track_running_stats:
            if self.momentum is None:
                self.num_batches_tracked.add_(1)
                factor = 1.0 / float(self.num_batches_tracked)
            else:
                factor = self.momentum
            with torch.no_grad():
                seen = torch.bincount(type_vec.long(), minlength=self.num_types).view(-1, 1) > 0
                self.running_mean.copy_(
                    torch.where(seen, torch.lerp(self.running_mean, mean, factor), self.running_mean)
                )
                self.running_var.copy_(
                    torch.where(seen, torch.lerp(self.running_var, var, factor), self.running_var)
                )
        index = type_vec.long()
        out = (x - mean.index_select(0, index)) / var.clamp(self.eps).sqrt().index_select(0, index)
        return self._scale_shift(out, index)


class HeteroLayerNorm(_TypeAffineNorm):
    r"""Layer normalization of each row with affine parameters per type.

    .. math::
        \mathbf{x}'_i = \frac{\mathbf{x}_i - \mathrm{E}[\mathbf{x}_i]}
        {\sqrt{\mathrm{Var}[\mathbf{x}_i] + \epsilon}} \odot \boldsymbol{\gamma}_{t_i}
        + \boldsymbol{\beta}_{t_i}

    with the mean and (biased) variance over the ``F`` features of row :math:`i`.

    Args:
        in_channels: feature size ``F``.
        num_types: number of types ``T``.
        eps: added to the variance.
        affine: learn ``weight`` / ``bias`` ``[T, F]``.
        mode: ``"node"`` (each row is normalized on its own; the only mode).
        device: where to create the parameters.

    Shapes:
        ``x`` ``[N, F]`` with either ``type_vec`` ``[N]`` or ``type_ptr`` ``[T + 1]`` (rows
        sorted by type: type ``t`` holds rows ``type_ptr[t]:type_ptr[t + 1]``) -> ``[N, F]``.

    Example:
        >>> norm = HeteroLayerNorm(16, num_types=2)
        >>> norm(torch.randn(5, 16), type_ptr=[0, 2, 5]).shape
        torch.Size([5, 16])
    """

    def __init__(
        self,
        in_channels: int,
        num_types: int,
        eps: float = 1e-5,
        affine: bool = True,
        mode: str = "node",
        device: torch.device | None = None,
    ) -> None:
        if mode != "node":
            raise ValueError(f"'mode' must be 'node' (the only mode HeteroLayerNorm has), got {mode!r}")
        super().__init__(in_channels, num_types, eps, affine, device)
        self.mode = mode
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """``weight`` 1, ``bias`` 0."""
        self._reset_affine()

    def forward(
        self,
        x: Tensor,
        type_vec: Tensor | None = None,
        type_ptr: Tensor | list[int] | None = None,
    ) -> Tensor:
        """Normalize each row; scale and shift it with its type's parameters."""
        if type_vec is None and type_ptr is None:
            raise ValueError("Either 'type_vec' or 'type_ptr' must be given")
        x = _check_x(x, self.in_channels)
        if type_ptr is not None and type_vec is None:
            if not isinstance(type_ptr, Tensor):
                type_ptr = torch.as_tensor(list(type_ptr), dtype=torch.long, device=x.device)
            v.check_ptr("type_ptr", type_ptr, x.size(0))
            if type_ptr.numel() - 1 > self.num_types:
                raise ValueError(
                    f"'type_ptr' describes {type_ptr.numel() - 1} types, but the layer has num_types="
                    f"{self.num_types}"
                )
            type_vec = ops.ptr_to_index(type_ptr.long(), x.size(0))
        else:
            type_vec = _check_types("type_vec", type_vec, x, self.num_types)
        out = F.layer_norm(x, (self.in_channels,), None, None, self.eps)
        return self._scale_shift(out, type_vec)
