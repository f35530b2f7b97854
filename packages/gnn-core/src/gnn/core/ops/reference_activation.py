"""Pure-torch reference of :func:`gnn.core.ops.silu_second_order`."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["silu_second_order"]


def silu_second_order(z: Tensor, g: Tensor, u: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``(g silu'(z), u silu'(z), u g silu''(z))`` (see :func:`gnn.core.ops.silu_second_order`)."""
    with torch.no_grad():
        s = torch.sigmoid(z)
        d1 = s * (1.0 + z * (1.0 - s))
        d2 = s * (1.0 - s) * (2.0 + z * (1.0 - 2.0 * s))
        return g * d1, u * d1, u * g * d2
