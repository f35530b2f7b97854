r"""Graph size normalization (Dwivedi et al., 2020), :class:`GraphSizeNorm`."""

from __future__ import annotations

import torch
from torch import Tensor

from ._common import check_features
from ._segment import graphs_of


class GraphSizeNorm(torch.nn.Module):
    r"""Divides each node's features by the square root of its graph's size.

    .. math::
        \mathbf{x}'_i = \frac{\mathbf{x}_i}{\sqrt{|\mathcal{V}|}}

    with :math:`\mathcal{V}` the nodes of the graph of node :math:`i`.

    Shapes:
        ``x`` ``[N, C]``, ``batch`` ``[N]`` -> ``[N, C]``.

    Example:
        >>> norm = GraphSizeNorm()
        >>> norm(torch.ones(5, 1), torch.tensor([0, 0, 0, 0, 1])).view(-1)
        tensor([0.5000, 0.5000, 0.5000, 0.5000, 1.0000])
    """

    def __init__(self):
        super().__init__()

    def forward(self, x: Tensor, batch: Tensor | None = None, batch_size: int | None = None) -> Tensor:
        """Scale ``x`` by ``1 / sqrt(size of the node's graph)``.

        Args:
            x: ``[N, C]`` node features.
            batch: ``[N]`` graph of each node, or ``None`` for a single graph.
            batch_size: the number of graphs ``B`` (default ``batch.max() + 1``).
        """
        check_features(x, None)
        graphs = graphs_of(x, batch, batch_size)
        inv_sqrt = torch.rsqrt(graphs.counts.clamp(min=1)).to(x.dtype)
        return x * graphs.take(inv_sqrt)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}()"
