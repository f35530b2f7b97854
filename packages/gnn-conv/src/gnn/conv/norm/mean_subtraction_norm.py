r"""Mean subtraction (Yang et al., 2020), :class:`MeanSubtractionNorm`."""

from __future__ import annotations

import torch
from torch import Tensor

from ._common import check_features
from ._segment import graph_affine, graphs_of


def _centre(sums: Tensor, squares: Tensor, counts: Tensor) -> tuple[None, None]:
    """``y = x - mean``: no factor, no offset."""
    return None, None


class MeanSubtractionNorm(torch.nn.Module):
    r"""Subtracts from each node the mean of its graph.

    .. math::
        \mathbf{x}'_i = \mathbf{x}_i - \frac{1}{|\mathcal{V}|} \sum_{j \in \mathcal{V}} \mathbf{x}_j

    with :math:`\mathcal{V}` the nodes of the graph of node :math:`i`.

    Shapes:
        ``x`` ``[N, C]``, ``batch`` ``[N]`` -> ``[N, C]``.

    Example:
        >>> norm = MeanSubtractionNorm()
        >>> norm(torch.tensor([[1.0], [3.0], [5.0]]), torch.tensor([0, 0, 1])).view(-1)
        tensor([-1.,  1.,  0.])
    """

    def forward(self, x: Tensor, batch: Tensor | None = None, dim_size: int | None = None) -> Tensor:
        """Center ``x`` graph by graph.

        Args:
            x: ``[N, C]`` node features.
            batch: ``[N]`` graph of each node, or ``None`` for a single graph.
            dim_size: the number of graphs ``B`` (default ``batch.max() + 1``).
        """
        check_features(x, None)
        graphs = graphs_of(x, batch, dim_size, size_name="dim_size")
        return graph_affine(x, graphs, _centre)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}()"
