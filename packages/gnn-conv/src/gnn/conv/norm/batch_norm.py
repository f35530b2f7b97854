r"""Batch normalization over nodes (Ioffe & Szegedy, 2015), :class:`BatchNorm`."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from gnn.core import validation as v


class BatchNorm(torch.nn.Module):
    r"""Batch normalization over all nodes of the mini-batch, per channel.

    .. math::
        \mathbf{x}'_i = \frac{\mathbf{x}_i - \mathrm{E}[\mathbf{x}]}
        {\sqrt{\mathrm{Var}[\mathbf{x}] + \epsilon}} \odot \boldsymbol{\gamma} + \boldsymbol{\beta}

    The statistics and parameters live in the wrapped :class:`torch.nn.BatchNorm1d`
    (``self.module``, hence the ``module.*`` state_dict keys), which does the work.

    Args:
        in_channels: size of each input sample.
        eps: added to the variance for numerical stability.
        momentum: weight of the current batch in the running averages (``None``: the
            cumulative average).
        affine: learn the per-channel :math:`\gamma` and :math:`\beta`.
        track_running_stats: keep running averages and use them in evaluation mode (else
            batch statistics are used in both modes).
        allow_single_element: a batch of at most one node is normalized with the running
            statistics, as in evaluation mode (instead of failing in training). Requires
            ``track_running_stats``.
        device: device of the parameters and buffers.

    Shapes:
        ``x`` ``[N, in_channels]`` (or ``[N, in_channels, L]``) -> same shape.

    Example:
        >>> norm = BatchNorm(16)
        >>> norm(torch.randn(5, 16)).shape
        torch.Size([5, 16])
    """

    def __init__(
        self,
        in_channels: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        allow_single_element: bool = False,
        device: torch.device | None = None,
    ):
        super().__init__()
        if allow_single_element and not track_running_stats:
            raise ValueError(
                "'allow_single_element' requires 'track_running_stats=True' (a single element is "
                "normalized with the running statistics)"
            )
        self.module = torch.nn.BatchNorm1d(
            in_channels,
            eps=eps,
            momentum=momentum,
            affine=affine,
            track_running_stats=track_running_stats,
            device=device,
        )
        self.in_channels = in_channels
        self.allow_single_element = allow_single_element

    def reset_running_stats(self) -> None:
        """Resets the running mean to 0, the running variance to 1 and the batch count to 0."""
        self.module.reset_running_stats()

    def reset_parameters(self) -> None:
        r"""Resets the running statistics, :math:`\gamma` to one and :math:`\beta` to zero."""
        self.module.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        """Normalize ``x`` over its rows.

        Args:
            x: ``[N, in_channels]`` (or ``[N, in_channels, L]``) features.
        """
        v.check_tensor("x", x)
        if x.dim() not in (2, 3) or x.size(1) != self.in_channels:
            raise ValueError(
                f"'x' must have shape [N, {self.in_channels}] or [N, {self.in_channels}, L] (in_channels), "
                f"got {v.describe(x)}"
            )
        if self.allow_single_element and x.size(0) <= 1:
            m = self.module
            return F.batch_norm(x, m.running_mean, m.running_var, m.weight, m.bias, False, 0.0, m.eps)
        return self.module(x)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.module.extra_repr()})"
