r"""The topology adaptive graph convolution (Du et al., 2017), :class:`TAGConv`."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.nn import Parameter

from gnn.core.message_passing import MessagePassing
from gnn.core.nn.inits import zeros
from gnn.core.nn.linear import Linear
from gnn.core.utils.normalization import gcn_norm

from ._utils import check_in_channels, num_nodes, weighted_message


class TAGConv(MessagePassing):
    r"""Topology adaptive graph convolution: :math:`X' = \sum_{k=0}^{K} (D^{-1/2} A D^{-1/2})^k X \Theta_k + b`.

    No self loops are added. Each hop is a fused ``ops.spmm``.

    Args:
        in_channels: input size (``-1``: lazy).
        out_channels: output size.
        K: number of hops.
        bias: learn a bias.
        normalize: apply the symmetric normalization (otherwise the raw
            ``edge_weight``, or 1, is used).
        **kwargs: :class:`~gnn.core.MessagePassing` arguments.

    Shapes:
        ``x`` ``[N, in_channels]``, ``edge_index`` ``[2, E]`` or sparse
        ``adj_t``, ``edge_weight`` ``[E]`` -> ``[N, out_channels]``.

    Example:
        >>> conv = TAGConv(16, 32, K=2)
        >>> conv(torch.randn(4, 16), torch.tensor([[0, 1], [1, 2]])).shape
        torch.Size([4, 32])
    """

    fused_message = "edge_weight * x_j"

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        K: int = 3,
        bias: bool = True,
        normalize: bool = True,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("aggr", "add")
        super().__init__(**kwargs)
        if not isinstance(K, int) or K < 0:
            raise ValueError(f"'K' must be a non-negative int, got {K!r}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.K = K
        self.normalize = normalize
        self.lins = torch.nn.ModuleList([Linear(in_channels, out_channels, bias=False) for _ in range(K + 1)])
        if bias:
            self.bias = Parameter(torch.empty(out_channels))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialize the per-hop maps, zero the bias."""
        super().reset_parameters()
        for lin in self.lins:
            lin.reset_parameters()
        zeros(self.bias)

    def forward(self, x: Tensor, edge_index: Any, edge_weight: Tensor | None = None) -> Tensor:
        """Apply the layer (see the class docstring for shapes)."""
        check_in_channels(x, self.in_channels)
        if self.normalize:
            edge_index, edge_weight = gcn_norm(
                edge_index, edge_weight, num_nodes(self, x), False, False, self.flow, x.dtype
            )
        out = self.lins[0](x)
        for lin in self.lins[1:]:
            x = self.propagate(edge_index, x=x, edge_weight=edge_weight)
            out = out + lin(x)
        if self.bias is not None:
            out = out + self.bias
        return out

    def message(self, x_j: Tensor, edge_weight: Tensor | None) -> Tensor:
        """``edge_weight * x_j`` (or ``x_j`` without weights)."""
        return weighted_message(x_j, edge_weight)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels}, K={self.K})"
