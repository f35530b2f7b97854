r"""RECT (Wang et al., 2020), its supervised part: :class:`RECT_L`."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from gnn.core import ops
from gnn.core import validation as v

__all__ = ["RECT_L"]


class RECT_L(torch.nn.Module):  # noqa: N801 (PyG's name)
    r"""RECT-L: a GCN layer trained to predict class-semantic feature vectors.

    :math:`\hat{\mathbf{S}} = \mathbf{W}\,\mathrm{dropout}(\mathrm{GCN}(\mathbf{X}, \mathcal{E})) + \mathbf{b}`
    maps back to the input space; the targets of the labelled nodes are the mean
    features of their class (:meth:`get_semantic_labels`), and :meth:`embed` gives
    the GCN embeddings.

    Args:
        in_channels: input feature size.
        hidden_channels: embedding size.
        normalize: the GCN layer's symmetric normalization.
        dropout: dropout probability.

    Shapes:
        ``x`` ``[N, in_channels]``, ``edge_index`` ``[2, E]``, ``edge_weight`` ``[E]``
        -> ``[N, in_channels]``.

    Example:
        >>> model = RECT_L(4, 8)
        >>> model(torch.randn(3, 4), torch.tensor([[0, 1], [1, 2]])).shape
        torch.Size([3, 4])
    """

    def __init__(
        self, in_channels: int, hidden_channels: int, normalize: bool = True, dropout: float = 0.0
    ) -> None:
        super().__init__()
        from gnn.conv import GCNConv

        self.in_channels = in_channels
        self.hidden_channels = hidden_channels
        self.dropout = dropout
        self.conv = GCNConv(in_channels, hidden_channels, normalize=normalize)
        self.lin = torch.nn.Linear(hidden_channels, in_channels)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialize the GCN layer and the linear map (Xavier-uniform weight)."""
        self.conv.reset_parameters()
        self.lin.reset_parameters()
        torch.nn.init.xavier_uniform_(self.lin.weight.data)

    def forward(self, x: Tensor, edge_index: Any, edge_weight: Tensor | None = None) -> Tensor:
        """The predicted semantic vectors."""
        x = self.conv(x, edge_index, edge_weight)
        x = F.dropout(x, p=self.dropout, training=self.training)
        return self.lin(x)

    def embed(self, x: Tensor, edge_index: Any, edge_weight: Tensor | None = None) -> Tensor:
        """The GCN embeddings, without autograd."""
        with torch.no_grad():
            return self.conv(x, edge_index, edge_weight)

    def get_semantic_labels(self, x: Tensor, y: Tensor, mask: Tensor) -> Tensor:
        """For each node of ``mask``, the mean of ``x`` over the masked nodes of its class."""
        with torch.no_grad():
            v.check_tensor("x", x)
            v.check_tensor("y", y)
            y = y[mask].long()
            mean = ops.scatter(x[mask], y, 0, None, "mean")
            return mean[y]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, {self.hidden_channels})"
