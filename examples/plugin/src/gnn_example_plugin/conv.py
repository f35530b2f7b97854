"""``HiddenMeanConv``: a linear map of the mean of the neighbours' features."""

from __future__ import annotations

import torch
from torch import Tensor

from gnn.core import MessagePassing


class HiddenMeanConv(MessagePassing):
    r"""Mean of the neighbours' features, then a linear map.

    .. math::
        \mathbf{x}_i' = \mathbf{W} \frac{1}{|\mathcal{N}(i)|} \sum_{j \in \mathcal{N}(i)} \mathbf{x}_j + \mathbf{b}

    Nodes without neighbours get :math:`\mathbf{b}`. The message is ``x_j``,
    so :class:`~gnn.core.MessagePassing` takes its fused path.

    Args:
        in_channels: size of each input feature vector.
        out_channels: size of each output feature vector.
        bias: learn the additive bias :math:`\mathbf{b}`.

    Shapes:
        ``x`` ``[N, in_channels]``, ``edge_index`` ``[2, E]`` -> ``[N, out_channels]``.

    Example:
        >>> conv = HiddenMeanConv(4, 8)
        >>> conv(torch.randn(3, 4), torch.tensor([[0, 1], [1, 2]])).shape
        torch.Size([3, 8])
    """

    def __init__(self, in_channels: int, out_channels: int, bias: bool = True) -> None:
        super().__init__(aggr="mean")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.lin = torch.nn.Linear(in_channels, out_channels, bias=bias)

    def reset_parameters(self) -> None:
        super().reset_parameters()
        self.lin.reset_parameters()

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        return self.lin(self.propagate(edge_index, x=x))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels})"
