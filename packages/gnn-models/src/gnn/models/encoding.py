r"""Sinusoidal encodings of scalars: :class:`PositionalEncoding` (Vaswani et al., 2017; its one
implementation lives in :mod:`gnn.core.nn.encoding`, which gnn-aggr shares) and
:class:`TemporalEncoding` (Cong et al., 2023, GraphMixer)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from gnn.core import validation as v
from gnn.core.nn.encoding import PositionalEncoding

__all__ = ["PositionalEncoding", "TemporalEncoding"]


class TemporalEncoding(torch.nn.Module):
    r"""Cosines of a scalar (a time) at fixed frequencies:
    :math:`\mathrm{TE}(t) = \cos(t\,\boldsymbol{\omega})` with
    :math:`\omega_k = \sqrt{D}^{\,-\sqrt{D}\,k / (D - 1)}`, :math:`k = 0, \ldots, D - 1`.

    Shapes:
        ``x`` any shape with ``N`` entries -> ``[N, out_channels]``.

    Example:
        >>> TemporalEncoding(8)(torch.arange(3.0)).shape
        torch.Size([3, 8])
    """

    def __init__(self, out_channels: int, device: torch.device | None = None) -> None:
        super().__init__()
        self.out_channels = out_channels
        root = math.sqrt(out_channels)
        weight = 1.0 / root ** torch.linspace(0, root, out_channels, device=device).view(1, -1)
        self.register_buffer("weight", weight)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Nothing to reset (no parameters)."""

    def forward(self, x: Tensor) -> Tensor:
        """Encode every entry of ``x``."""
        v.check_tensor("x", x)
        return torch.cos(x.reshape(-1, 1) @ self.weight)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.out_channels})"
