r"""Pair normalization (Zhao & Akoglu, 2020), :class:`PairNorm`."""

from __future__ import annotations

import torch
from torch import Tensor

from ._common import check_features
from ._segment import graph_affine, graphs_of


def _pair_norm_stats(
    sums: Tensor, squares: Tensor, counts: Tensor, scale: float, eps: float
) -> tuple[Tensor, Tensor]:
    r"""``y = (x - mean) R`` with ``R = s / sqrt(eps + (1/n) sum_i ||x_i^c||^2)`` (the centred
    squares summed over the channels)."""
    factor = scale * torch.rsqrt(eps + squares.sum(dim=1, keepdim=True) / counts.clamp(min=1))
    return factor, None


def _centre(sums: Tensor, squares: Tensor, counts: Tensor) -> tuple[None, None]:
    return None, None


class PairNorm(torch.nn.Module):
    r"""Pair normalization: center each graph, then rescale its nodes.

    .. math::
        \mathbf{x}_i^c = \mathbf{x}_i - \frac{1}{n} \sum_{j=1}^n \mathbf{x}_j, \qquad
        \mathbf{x}'_i = s \cdot \frac{\mathbf{x}_i^c}
        {\sqrt{\epsilon + \frac{1}{n} \sum_{j=1}^n \|\mathbf{x}_j^c\|_2^2}}

    over the :math:`n` nodes of the graph of node :math:`i`. With ``scale_individually``
    every node is scaled by its own norm instead:
    :math:`\mathbf{x}'_i = s \cdot \mathbf{x}_i^c / (\epsilon + \|\mathbf{x}_i^c\|_2)`.

    Args:
        scale: the scaling factor :math:`s`.
        scale_individually: scale each node by its own norm.
        eps: added for numerical stability.

    Shapes:
        ``x`` ``[N, C]``, ``batch`` ``[N]`` -> ``[N, C]``.

    Example:
        >>> norm = PairNorm()
        >>> x, batch = torch.randn(5, 16), torch.tensor([0, 0, 0, 1, 1])
        >>> norm(x, batch).shape
        torch.Size([5, 16])
    """

    def __init__(self, scale: float = 1.0, scale_individually: bool = False, eps: float = 1e-5):
        super().__init__()
        self.scale = scale
        self.scale_individually = scale_individually
        self.eps = eps

    def forward(self, x: Tensor, batch: Tensor | None = None, batch_size: int | None = None) -> Tensor:
        """Normalize ``x`` graph by graph.

        Args:
            x: ``[N, C]`` node features.
            batch: ``[N]`` graph of each node (any order; sorted is fastest), or ``None``
                for a single graph.
            batch_size: the number of graphs ``B`` (default ``batch.max() + 1``).
        """
        check_features(x, None)
        graphs = graphs_of(x, batch, batch_size)
        scale, eps = self.scale, self.eps
        if not self.scale_individually:
            return graph_affine(x, graphs, lambda s, m, n: _pair_norm_stats(s, m, n, scale, eps))
        centred = graph_affine(x, graphs, _centre)
        norm = torch.linalg.vector_norm(centred, dim=-1, keepdim=True)
        return centred * (scale / (eps + norm))

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}()"
