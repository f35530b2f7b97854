r"""Propagational MLPs (Yang et al., 2023): :class:`PMLP`."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from gnn.core.nn.linear import Linear

__all__ = ["PMLP"]


class PMLP(torch.nn.Module):
    r"""An MLP in training that becomes a GNN in evaluation.

    Layer :math:`l` computes :math:`\mathbf{H}\mathbf{W}_l^\top` and, in evaluation
    mode, propagates it by the mean over each node's neighbours and itself
    (:class:`~gnn.conv.SimpleConv` with ``aggr="mean"``, ``combine_root="self_loop"``)
    before adding the bias; every layer but the last is followed by batch
    normalization (no affine parameters, batch statistics), ReLU and dropout.

    Args:
        in_channels, hidden_channels, out_channels: feature sizes.
        num_layers: number of layers (at least 2).
        dropout: dropout probability.
        norm: apply the batch normalization.
        bias: learn biases.

    Shapes:
        ``x`` ``[N, in_channels]``, ``edge_index`` ``[2, E]`` (required in evaluation)
        -> ``[N, out_channels]``.

    Example:
        >>> model = PMLP(4, 8, 2, num_layers=2).eval()
        >>> model(torch.randn(3, 4), torch.tensor([[0, 1], [1, 2]])).shape
        torch.Size([3, 2])
    """

    def __init__(
        self,
        in_channels: int,
        hidden_channels: int,
        out_channels: int,
        num_layers: int,
        dropout: float = 0.0,
        norm: bool = True,
        bias: bool = True,
    ) -> None:
        super().__init__()
        from gnn.conv import SimpleConv

        if isinstance(num_layers, bool) or not isinstance(num_layers, int) or num_layers < 2:
            raise ValueError(f"'num_layers' must be an int of at least 2, got {num_layers!r}")
        self.in_channels = in_channels
        self.hidden_channels = hidden_channels
        self.out_channels = out_channels
        self.num_layers = num_layers
        self.dropout = dropout
        self.bias = bias
        sizes = [in_channels] + [hidden_channels] * (num_layers - 1) + [out_channels]
        self.lins = torch.nn.ModuleList(Linear(a, b, bias) for a, b in zip(sizes[:-1], sizes[1:]))
        self.norm = None
        if norm:
            self.norm = torch.nn.BatchNorm1d(hidden_channels, affine=False, track_running_stats=False)
        self.conv = SimpleConv(aggr="mean", combine_root="self_loop")
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Xavier-uniform weights (gain 1.414) and zero biases."""
        for lin in self.lins:
            torch.nn.init.xavier_uniform_(lin.weight, gain=1.414)
            if self.bias:
                torch.nn.init.zeros_(lin.bias)

    def forward(self, x: Tensor, edge_index: Tensor | None = None) -> Tensor:
        """Run the model (see the class docstring)."""
        if not self.training and edge_index is None:
            raise ValueError(f"'edge_index' needs to be present during inference in '{type(self).__name__}'")
        last = self.num_layers - 1
        for i, lin in enumerate(self.lins):
            x = x @ lin.weight.t()
            if not self.training:
                x = self.conv(x, edge_index)
            if self.bias:
                x = x + lin.bias
            if i != last:
                if self.norm is not None:
                    x = self.norm(x)
                x = F.dropout(x.relu(), p=self.dropout, training=self.training)
        return x

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels}, num_layers={self.num_layers})"
