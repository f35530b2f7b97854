r"""Graph normalization (Cai et al., 2021), :class:`GraphNorm`."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import Parameter

from gnn.core.nn.inits import ones, zeros

from ._common import check_features
from ._segment import graph_affine, graphs_of


def _graph_norm_stats(
    sums: Tensor,
    squares: Tensor,
    counts: Tensor,
    weight: Tensor,
    bias: Tensor,
    mean_scale: Tensor,
    eps: float,
) -> tuple[Tensor, Tensor]:
    """``y = (x - mean) R + Q`` with ``R = gamma / sqrt(var + eps)``,
    ``Q = beta + (1 - alpha) mean R`` and ``var = M / n + ((1 - alpha) mean)^2``, the
    variance about ``alpha * mean``."""
    n = counts.clamp(min=1)
    kept = (sums / n) * (1 - mean_scale)
    scale = weight * torch.rsqrt(squares / n + kept * kept + eps)
    return scale, bias + kept * scale


class GraphNorm(torch.nn.Module):
    r"""Graph normalization over the nodes of each graph.

    .. math::
        \mathbf{x}'_i = \frac{\mathbf{x}_i - \boldsymbol{\alpha} \odot \mathrm{E}[\mathbf{x}]}
        {\sqrt{\mathrm{Var}[\mathbf{x} - \boldsymbol{\alpha} \odot \mathrm{E}[\mathbf{x}]] + \epsilon}}
        \odot \boldsymbol{\gamma} + \boldsymbol{\beta}

    with the expectation and (biased) variance taken per channel over the nodes of the
    graph of node :math:`i`, and :math:`\boldsymbol{\alpha}` (``mean_scale``) learning how
    much of the mean to keep. The statistics are computed in two fused passes over ``x``
    (``E[x]``, then the centred sum of squares, so large means lose no precision) and the
    backward pass needs two more; see :mod:`gnn.conv.norm._segment`.

    Args:
        in_channels: size of each input sample.
        eps: added to the variance for numerical stability.
        device: device of the parameters.

    Shapes:
        ``x`` ``[N, in_channels]``, ``batch`` ``[N]`` (graph of each node, default: one
        graph) -> ``[N, in_channels]``.

    Example:
        >>> norm = GraphNorm(16)
        >>> x, batch = torch.randn(5, 16), torch.tensor([0, 0, 0, 1, 1])
        >>> norm(x, batch).shape
        torch.Size([5, 16])
    """

    def __init__(self, in_channels: int, eps: float = 1e-5, device: torch.device | None = None):
        super().__init__()
        self.in_channels = in_channels
        self.eps = eps
        self.weight = Parameter(torch.empty(in_channels, device=device))
        self.bias = Parameter(torch.empty(in_channels, device=device))
        self.mean_scale = Parameter(torch.empty(in_channels, device=device))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        r"""Resets :math:`\gamma` and :math:`\alpha` to one and :math:`\beta` to zero."""
        ones(self.weight)
        zeros(self.bias)
        ones(self.mean_scale)

    def forward(self, x: Tensor, batch: Tensor | None = None, batch_size: int | None = None) -> Tensor:
        """Normalize ``x`` graph by graph.

        Args:
            x: ``[N, in_channels]`` node features.
            batch: ``[N]`` graph of each node (any order; sorted is fastest), or ``None``
                for a single graph.
            batch_size: the number of graphs ``B`` (default ``batch.max() + 1``).
        """
        check_features(x, self.in_channels)
        graphs = graphs_of(x, batch, batch_size)
        eps = self.eps
        return graph_affine(
            x,
            graphs,
            lambda s, m, n, w, b, a: _graph_norm_stats(s, m, n, w, b, a, eps),
            self.weight,
            self.bias,
            self.mean_scale,
        )

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.in_channels})"
