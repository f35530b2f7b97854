r"""Type-wise linear layers: :class:`HeteroLinear` (a type vector) and
:class:`HeteroDictLinear` (a dictionary of inputs).

For type :math:`\kappa`:
:math:`\mathbf{x}'_\kappa = \mathbf{x}_\kappa \mathbf{W}_\kappa^\top + \mathbf{b}_\kappa`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.nn.parameter import Parameter, UninitializedParameter

from .. import ops
from .. import validation as v
from .linear import (
    LazyWeightMixin,
    Linear,
    check_channels,
    check_initializers,
    init_bias,
    init_weight,
    is_lazy,
)

__all__ = ["HeteroDictLinear", "HeteroLinear"]

_LINEAR_KWARGS = ("bias", "weight_initializer", "bias_initializer")


def _check_linear_kwargs(owner: str, kwargs: dict[str, Any]) -> None:
    unknown = sorted(set(kwargs) - set(_LINEAR_KWARGS))
    if unknown:
        raise TypeError(
            f"{owner} got unexpected keyword argument(s) {unknown}; "
            f"the arguments of Linear it accepts are {list(_LINEAR_KWARGS)}"
        )
    check_initializers(kwargs.get("weight_initializer"), kwargs.get("bias_initializer"))


class HeteroLinear(LazyWeightMixin, torch.nn.Module):
    r"""Separate linear maps per type, selected by a type vector.

    .. math::
        \mathbf{x}'_i = \mathbf{x}_i \mathbf{W}_{t_i} + \mathbf{b}_{t_i}

    computed as one grouped matmul (:func:`gnn.core.ops.segment_matmul`) over
    the rows sorted by type (unless ``is_sorted``), then put back in order.

    Args:
        in_channels: size of each input sample, or ``-1`` to infer it lazily.
        out_channels: size of each output sample.
        num_types: number of types ``T``.
        is_sorted: ``type_vec`` is already sorted (skips the sort; checked
            when validation is on).
        **kwargs: ``bias``, ``weight_initializer``, ``bias_initializer`` as
            in :class:`~gnn.core.Linear`.

    Shapes:
        ``x [*, in_channels]``, ``type_vec [*]`` (values in ``[0, T)``) ->
        ``[*, out_channels]``. Parameters: ``weight [T, in_channels, out_channels]``,
        ``bias [T, out_channels]``.

    Example:
        >>> lin = HeteroLinear(16, 32, num_types=3)
        >>> lin(torch.randn(10, 16), torch.randint(3, (10,))).shape
        torch.Size([10, 32])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        num_types: int,
        is_sorted: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        check_channels(in_channels, out_channels)
        if not isinstance(num_types, int) or isinstance(num_types, bool) or num_types < 1:
            raise ValueError(f"'num_types' must be a positive int, got {num_types!r}")
        _check_linear_kwargs("HeteroLinear", kwargs)
        self.in_channels = in_channels if in_channels > 0 else -1
        self.out_channels = out_channels
        self.num_types = num_types
        self.is_sorted = is_sorted
        self.kwargs = kwargs

        if self.in_channels > 0:
            self.weight: Parameter = Parameter(torch.empty(num_types, in_channels, out_channels))
        else:
            self.weight = UninitializedParameter()
        if kwargs.get("bias", True):
            self.bias: Parameter | None = Parameter(torch.zeros(num_types, out_channels))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def weight_shape(self, in_channels: int) -> tuple[int, ...]:
        return (self.num_types, in_channels, self.out_channels)

    def _materialize(self, in_channels: int) -> None:
        with torch.no_grad():
            self.weight.materialize(self.weight_shape(in_channels))
        self.in_channels = in_channels
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-draw all types' weights and biases (no-op while lazy)."""
        if is_lazy(self.weight):
            return
        init_weight(self.weight, self.kwargs.get("weight_initializer"), self.in_channels)
        init_bias(self.bias, self.kwargs.get("bias_initializer"), self.in_channels)

    def forward(self, x: Tensor, type_vec: Tensor) -> Tensor:
        """``x [*, in_channels]``, ``type_vec [*]`` -> ``[*, out_channels]``."""
        v.check_tensor("x", x)
        v.check_tensor("type_vec", type_vec)
        v.check_index_dtype("type_vec", type_vec)
        if x.dim() == 0:
            raise ValueError(f"'x' must have a feature dimension, got {v.describe(x)}")
        if type_vec.shape != x.shape[:-1]:
            raise ValueError(
                f"'type_vec' must have shape {list(x.shape[:-1])} (one type per row of 'x'), "
                f"got {v.describe(type_vec)}"
            )
        if is_lazy(self.weight):
            self._materialize(x.size(-1))
        elif x.size(-1) != self.weight.size(1):
            raise ValueError(
                f"'x' must have {self.weight.size(1)} features in its last dimension "
                f"(in_channels), got {v.describe(x)}"
            )
        v.check_index_range("type_vec", type_vec, self.num_types, "types ('num_types')")

        lead = x.shape[:-1]
        flat_x = x.reshape(-1, x.size(-1))
        types = type_vec.reshape(-1).long()
        if self.is_sorted:
            if v.validation_enabled() and types.numel() > 1 and bool((types[1:] < types[:-1]).any()):
                raise ValueError("'type_vec' must be sorted when is_sorted=True")
            perm = None
        else:
            types, perm = torch.sort(types, stable=True)
            flat_x = flat_x.index_select(0, perm)

        ptr = ops.ptr_from_sorted_index(types, self.num_types)
        out = ops.segment_matmul(flat_x, ptr, self.weight)
        if self.bias is not None:
            out = out + self.bias.index_select(0, types)
        if perm is not None:
            out = out.new_empty(out.shape).index_copy(0, perm, out)
        return out.reshape(*lead, self.out_channels)

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}({self.in_channels}, {self.out_channels}, "
            f"num_types={self.num_types}, bias={self.kwargs.get('bias', True)})"
        )


class HeteroDictLinear(torch.nn.Module):
    r"""One :class:`~gnn.core.Linear` per key of an input dictionary.

    .. math::
        \mathbf{x}'_\kappa = \mathbf{x}_\kappa \mathbf{W}_\kappa^\top + \mathbf{b}_\kappa

    Args:
        in_channels: input size per key (``{key: size}``), or one size for
            all keys of ``types``; ``-1`` means lazy.
        out_channels: output size (shared by all keys).
        types: the keys, required when ``in_channels`` is an int.
        **kwargs: ``bias``, ``weight_initializer``, ``bias_initializer`` as
            in :class:`~gnn.core.Linear`.

    Shapes:
        ``{key: [N_key, in_channels[key]]}`` -> ``{key: [N_key, out_channels]}``
        for the keys that have a layer (others are dropped). Parameters:
        ``lins.<key>.weight [out, in]``, ``lins.<key>.bias [out]``.

    Example:
        >>> lin = HeteroDictLinear({"paper": 16, "author": 8}, 32)
        >>> out = lin({"paper": torch.randn(4, 16), "author": torch.randn(2, 8)})
        >>> out["author"].shape
        torch.Size([2, 32])
    """

    def __init__(
        self,
        in_channels: int | dict[Any, int],
        out_channels: int,
        types: Any | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        if isinstance(in_channels, dict):
            if types is not None and list(types) != list(in_channels):
                raise ValueError(
                    f"'types' {list(types)} do not match the keys of 'in_channels' {list(in_channels)}"
                )
            types = list(in_channels)
            channels = dict(in_channels)
        else:
            if types is None:
                raise ValueError("'types' (the list of keys) is required when 'in_channels' is an int")
            types = list(types)
            channels = {key: in_channels for key in types}
        for key, size in channels.items():
            if not isinstance(key, str):
                raise TypeError(f"the keys of 'types'/'in_channels' must be strings, got {key!r}")
            check_channels(size, out_channels)
        _check_linear_kwargs("HeteroDictLinear", kwargs)

        self.types = types
        self.out_channels = out_channels
        self.kwargs = kwargs
        self.lins = torch.nn.ModuleDict(
            {key: Linear(size, out_channels, **kwargs) for key, size in channels.items()}
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-draw every key's parameters."""
        for lin in self.lins.values():
            lin.reset_parameters()

    def forward(self, x_dict: dict[str, Tensor]) -> dict[str, Tensor]:
        """Apply each key's layer to ``x_dict[key]``; keys without a layer are dropped."""
        if not isinstance(x_dict, dict):
            raise TypeError(f"'x_dict' must be a dict of tensors, got {v.describe(x_dict)}")
        out: dict[str, Tensor] = {}
        for key, x in x_dict.items():
            lin = self.lins[key] if key in self.lins else None
            if lin is None:
                continue
            out[key] = lin(x)
        return out

    @property
    def in_channels(self) -> dict[Any, int]:
        """Input size per key (``-1`` while that key's layer is lazy)."""
        return {key: lin.in_channels for key, lin in self.lins.items()}

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}({self.in_channels}, {self.out_channels}, "
            f"bias={self.kwargs.get('bias', True)})"
        )
