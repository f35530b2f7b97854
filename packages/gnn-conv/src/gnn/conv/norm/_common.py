"""Input checks shared by the normalization layers (not public API)."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from gnn.core import validation as v


def check_features(x: Any, channels: int | None, name: str = "x") -> Tensor:
    """``x`` is a floating ``[N, channels]`` tensor (``channels=None``: any width)."""
    v.check_tensor(name, x)
    if not x.is_floating_point():
        raise TypeError(f"'{name}' must be a floating-point tensor, got {v.describe(x)}")
    if x.dim() != 2 or (channels is not None and x.size(1) != channels):
        want = f"[N, {channels}]" if channels is not None else "[N, C]"
        why = " (in_channels)" if channels is not None else ""
        raise ValueError(f"'{name}' must have shape {want}{why}, got {v.describe(x)}")
    return x
