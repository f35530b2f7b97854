"""Input checks shared by the attention modules (not public API)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from gnn.core import validation as v


def check_sequence(x: Any, channels: int, mask: Any = None) -> tuple[Tensor, Tensor | None]:
    """Check a padded batch ``x`` ``[B, N, channels]`` and its node ``mask`` ``[B, N]`` (bool).

    Raises:
        TypeError: ``x`` is not a floating-point tensor, or ``mask`` is not a boolean tensor.
        ValueError: wrong shapes.
    """
    v.check_tensor("x", x)
    if x.dim() != 3 or x.size(-1) != channels:
        raise ValueError(f"'x' must have shape [B, N, {channels}] (channels), got {v.describe(x)}")
    if not x.is_floating_point():
        raise TypeError(f"'x' must be a floating-point tensor, got {v.describe(x)}")
    if mask is not None:
        v.check_tensor("mask", mask)
        if mask.dtype != torch.bool:
            raise TypeError(f"'mask' must be a boolean tensor (True = real node), got {v.describe(mask)}")
        if tuple(mask.shape) != tuple(x.shape[:2]):
            raise ValueError(f"'mask' must have shape [B, N] = {list(x.shape[:2])}, got {v.describe(mask)}")
    return x, mask


def check_heads(heads: Any, head_channels: Any) -> None:
    """``heads`` and ``head_channels`` are positive ints."""
    if not isinstance(heads, int) or isinstance(heads, bool) or heads < 1:
        raise ValueError(f"'heads' must be a positive int, got {heads!r}")
    if not isinstance(head_channels, int) or isinstance(head_channels, bool) or head_channels < 1:
        raise ValueError(f"'head_channels' must be a positive int, got {head_channels!r}")


def zero_padded(value: Tensor, mask: Tensor | None) -> Tensor:
    """``value`` ``[B, N, ...]`` with the rows of padded nodes (``mask`` False) set to zero."""
    if mask is None:
        return value
    return value.masked_fill(~mask.view(mask.shape + (1,) * (value.dim() - 2)), 0.0)
