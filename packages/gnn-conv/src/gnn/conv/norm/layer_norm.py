r"""Layer normalization over graphs or nodes (Ba et al., 2016), :class:`LayerNorm`."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import Parameter

from gnn.core import validation as v
from gnn.core.nn.inits import ones, zeros

from ._common import check_features
from ._segment import graph_affine, graphs_of

_MODES = ("graph", "node")


def _graph_layer_norm_stats(
    sums: Tensor,
    squares: Tensor,
    counts: Tensor,
    weight: Tensor | None,
    bias: Tensor | None,
    eps: float,
    eps_outside: bool,
) -> tuple[Tensor, Tensor]:
    r"""Per graph, over all its nodes and channels: mean :math:`m` and biased variance
    :math:`\sigma^2 = (\sum_c M_c + n \sum_c (\mu_c - m)^2) / (n C)` (the per-channel centred
    sums of squares :math:`M_c` plus the spread of the channel means :math:`\mu_c`).
    ``y = (x - mu) R + Q`` with ``R = gamma / sqrt(var + eps)`` (``gamma / (std + eps)``
    when ``eps_outside``) and ``Q = beta + (mu - m) R``."""
    n = counts.clamp(min=1)
    channel_mean = sums / n
    mean = channel_mean.mean(dim=1, keepdim=True)
    spread = channel_mean - mean
    var = (squares.sum(dim=1, keepdim=True) + n * (spread * spread).sum(dim=1, keepdim=True)) / (
        n * sums.size(1)
    )
    scale = 1.0 / (var.sqrt() + eps) if eps_outside else torch.rsqrt(var + eps)
    if weight is not None:
        scale = scale * weight
    shift = spread * scale
    if bias is not None:
        shift = shift + bias
    return scale, shift


class LayerNorm(torch.nn.Module):
    r"""Layer normalization of each graph (``mode="graph"``) or each node (``mode="node"``).

    .. math::
        \mathbf{x}'_i = \frac{\mathbf{x}_i - \mathrm{E}[\mathbf{x}]}
        {\sqrt{\mathrm{Var}[\mathbf{x}] + \epsilon}} \odot \boldsymbol{\gamma} + \boldsymbol{\beta}

    With ``mode="graph"`` the mean and the (biased) variance are taken over all nodes and
    all channels of the graph of node :math:`i`; without ``batch`` (one graph) the
    denominator is :math:`\sqrt{\mathrm{Var}} + \epsilon`, as in PyG. With ``mode="node"``
    each node is normalized over its channels (:func:`torch.nn.functional.layer_norm`).
    The graph statistics take two fused passes over ``x`` and the backward pass two more;
    see :mod:`gnn.conv.norm._segment`.

    Args:
        in_channels: size of each input sample.
        eps: added for numerical stability.
        affine: learn the per-channel :math:`\gamma` and :math:`\beta`.
        mode: ``"graph"`` or ``"node"``.
        device: device of the parameters.

    Shapes:
        ``x`` ``[N, in_channels]`` (``[*, in_channels]`` with ``mode="node"``), ``batch``
        ``[N]`` -> same shape as ``x``.

    Example:
        >>> norm = LayerNorm(16)
        >>> x, batch = torch.randn(5, 16), torch.tensor([0, 0, 0, 1, 1])
        >>> norm(x, batch).shape
        torch.Size([5, 16])
    """

    def __init__(
        self,
        in_channels: int,
        eps: float = 1e-5,
        affine: bool = True,
        mode: str = "graph",
        device: torch.device | None = None,
    ):
        super().__init__()
        if mode not in _MODES:
            raise ValueError(f"'mode' must be one of {_MODES}, got {v.describe(mode)}")
        self.in_channels = in_channels
        self.eps = eps
        self.affine = affine
        self.mode = mode
        if affine:
            self.weight = Parameter(torch.empty(in_channels, device=device))
            self.bias = Parameter(torch.empty(in_channels, device=device))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        r"""Resets :math:`\gamma` to one and :math:`\beta` to zero."""
        ones(self.weight)
        zeros(self.bias)

    def forward(self, x: Tensor, batch: Tensor | None = None, batch_size: int | None = None) -> Tensor:
        """Normalize ``x``.

        Args:
            x: ``[N, in_channels]`` node features.
            batch: ``[N]`` graph of each node (any order; sorted is fastest), or ``None``
                for a single graph. Ignored with ``mode="node"``.
            batch_size: the number of graphs ``B`` (default ``batch.max() + 1``).
        """
        if self.mode == "node":
            v.check_tensor("x", x)
            if x.dim() == 0 or x.size(-1) != self.in_channels:
                raise ValueError(
                    f"'x' must have {self.in_channels} features (in_channels) in its last dimension, "
                    f"got {v.describe(x)}"
                )
            return F.layer_norm(x, (self.in_channels,), self.weight, self.bias, self.eps)
        check_features(x, self.in_channels)
        graphs = graphs_of(x, batch, batch_size)
        eps, eps_outside = self.eps, batch is None
        return graph_affine(
            x,
            graphs,
            lambda s, m, n, w, b: _graph_layer_norm_stats(s, m, n, w, b, eps, eps_outside),
            self.weight,
            self.bias,
        )

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.in_channels}, affine={self.affine}, mode={self.mode})"
