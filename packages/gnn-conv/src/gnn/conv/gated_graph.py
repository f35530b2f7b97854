r"""GatedGraphConv: the gated graph convolution (Li et al., 2016)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from gnn.core import MessagePassing
from gnn.core import validation as v
from gnn.core.nn.inits import uniform

from ._utils import check_edge_attr


class GatedGraphConv(MessagePassing):
    r"""The gated graph convolution operator from "Gated Graph Sequence Neural Networks".

    .. math::
        \mathbf{h}_i^{(0)} = \mathbf{x}_i \, \Vert \, \mathbf{0}, \qquad
        \mathbf{m}_i^{(l+1)} = \sum_{j \in \mathcal{N}(i)} e_{j,i} \cdot
        \mathbf{\Theta}^{(l)} \mathbf{h}_j^{(l)}, \qquad
        \mathbf{h}_i^{(l+1)} = \textrm{GRU}\left(\mathbf{m}_i^{(l+1)}, \mathbf{h}_i^{(l)}\right)

    for ``l = 0 .. num_layers - 1``; the input is zero-padded to
    ``out_channels`` features and :math:`e_{j,i}` is the edge weight (1 by
    default). The message is ``edge_weight * x_j``, so propagation takes the
    fused ``ops.spmm`` path (no ``[E, F]`` tensor).

    Args:
        out_channels: hidden/output size (input sizes up to it are accepted).
        num_layers: number of propagation steps.
        aggr: aggregation (default ``"add"``).
        bias: learn GRU biases.
        **kwargs: :class:`~gnn.core.MessagePassing` arguments.

    Shapes:
        ``x`` ``[N, F <= out_channels]``, ``edge_weight`` ``[E]``; output
        ``[N, out_channels]``.

    Example:
        >>> conv = GatedGraphConv(32, num_layers=3)
        >>> conv(torch.randn(10, 16), torch.randint(0, 10, (2, 40))).shape
        torch.Size([10, 32])
    """

    fused_message = "edge_weight * x_j"

    def __init__(
        self, out_channels: int, num_layers: int, aggr: str = "add", bias: bool = True, **kwargs: Any
    ):
        super().__init__(aggr=aggr, **kwargs)
        self.out_channels = out_channels
        self.num_layers = num_layers
        self.weight = torch.nn.Parameter(torch.empty(num_layers, out_channels, out_channels))
        self.rnn = torch.nn.GRUCell(out_channels, out_channels, bias=bias)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Uniform weights in ``[-1/sqrt(C), 1/sqrt(C)]``; reset the GRU cell."""
        super().reset_parameters()
        uniform(self.out_channels, self.weight)
        self.rnn.reset_parameters()

    def forward(self, x: Tensor, edge_index: Any, edge_weight: Tensor | None = None) -> Tensor:
        """Run ``num_layers`` propagation + GRU steps."""
        v.check_tensor("x", x)
        if x.dim() != 2:
            raise ValueError(f"'x' must be a [N, F] tensor, got {v.describe(x)}")
        if x.size(-1) > self.out_channels:
            raise ValueError(
                f"'x' must have at most out_channels={self.out_channels} features, got {v.describe(x)}"
            )
        check_edge_attr(edge_weight, edge_index, "edge_weight")
        if x.size(-1) < self.out_channels:
            x = F.pad(x, (0, self.out_channels - x.size(-1)))
        for i in range(self.num_layers):
            m = x @ self.weight[i]
            m = self.propagate(edge_index, x=m, edge_weight=edge_weight)
            x = self.rnn(m, x)
        return x

    def message(self, x_j: Tensor, edge_weight: Tensor | None) -> Tensor:
        """``edge_weight * x_j`` (``x_j`` without weights)."""
        return x_j if edge_weight is None else edge_weight.view(-1, 1) * x_j

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.out_channels}, num_layers={self.num_layers})"
