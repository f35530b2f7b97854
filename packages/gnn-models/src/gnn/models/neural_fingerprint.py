r"""Neural fingerprints (Duvenaud et al., 2015): :class:`NeuralFingerprint`."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from gnn.conv import MFConv
from gnn.core import Linear
from gnn.core import validation as v
from gnn.pool import global_add_pool

from ._utils import check_int

__all__ = ["NeuralFingerprint"]


class NeuralFingerprint(torch.nn.Module):
    r"""The differentiable molecular fingerprint of "Convolutional Networks on Graphs for
    Learning Molecular Fingerprints".

    Every layer :math:`l = 1, \dots, L` refines the atom features with a degree-wise
    :class:`~gnn.conv.MFConv` and writes a softmax "bit" distribution of every atom into
    the fingerprint of its molecule:

    .. math::
        \mathbf{h}^{(l)} = \sigma\big(\mathrm{MFConv}_l(\mathbf{h}^{(l-1)}, \mathcal{E})\big),
        \qquad
        \mathbf{f}_g = \sum_{l=1}^{L} \sum_{i \in g}
        \operatorname{softmax}\big(\mathbf{W}_l \mathbf{h}^{(l)}_i\big)

    with :math:`\sigma` the logistic sigmoid and :math:`\mathbf{W}_l` bias-free.

    Args:
        in_channels: atom feature size.
        hidden_channels: hidden atom feature size.
        out_channels: fingerprint length.
        num_layers: number of layers :math:`L`.
        **kwargs: further :class:`~gnn.conv.MFConv` arguments (``max_degree``, ``bias``, ...).

    Shapes:
        ``x`` ``[N, in_channels]``, ``edge_index`` ``[2, E]`` (or a sparse ``adj_t``),
        ``batch`` ``[N]`` (``None``: one molecule) -> ``[B, out_channels]``.

    Example:
        >>> model = NeuralFingerprint(9, 32, 64, num_layers=3)
        >>> x, edge_index = torch.randn(6, 9), torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
        >>> model(x, edge_index, torch.tensor([0, 0, 0, 1, 1, 1])).shape
        torch.Size([2, 64])
    """

    def __init__(
        self, in_channels: int, hidden_channels: int, out_channels: int, num_layers: int, **kwargs: Any
    ) -> None:
        super().__init__()
        check_int("num_layers", num_layers, 1)
        self.in_channels = in_channels
        self.hidden_channels = hidden_channels
        self.out_channels = out_channels
        self.num_layers = num_layers
        self.convs = torch.nn.ModuleList(
            [
                MFConv(in_channels if i == 0 else hidden_channels, hidden_channels, **kwargs)
                for i in range(num_layers)
            ]
        )
        self.lins = torch.nn.ModuleList(
            [Linear(hidden_channels, out_channels, bias=False) for _ in range(num_layers)]
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Reset every convolution and output map."""
        for conv in self.convs:
            conv.reset_parameters()
        for lin in self.lins:
            lin.reset_parameters()

    def forward(
        self,
        x: Tensor,
        edge_index: Any,
        batch: Tensor | None = None,
        batch_size: int | None = None,
    ) -> Tensor:
        """The ``[B, out_channels]`` fingerprints (``[1, out_channels]`` without ``batch``)."""
        x = v.check_tensor("x", x)
        if x.dim() != 2:
            raise ValueError(f"'x' must be [N, in_channels] atom features, got {v.describe(x)}")
        if batch is not None:
            batch = v.check_tensor("batch", batch)
            if batch.dim() != 1 or batch.numel() != x.size(0):
                raise ValueError(
                    f"'batch' must be [N] = [{x.size(0)}] graph indices, got {v.describe(batch)}"
                )
        fingerprint = None
        for conv, lin in zip(self.convs, self.lins):
            x = conv(x, edge_index).sigmoid()
            bits = global_add_pool(lin(x).softmax(dim=-1), batch, batch_size)
            fingerprint = bits if fingerprint is None else fingerprint + bits
        assert fingerprint is not None
        return fingerprint

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels}, num_layers={self.num_layers})"
