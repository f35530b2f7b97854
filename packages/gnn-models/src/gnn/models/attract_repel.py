r"""Link prediction with attract-repel embeddings (Peysakhovich et al., 2021): :class:`ARLinkPredictor`."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from gnn.core import validation as v

from ._utils import check_edges


class ARLinkPredictor(torch.nn.Module):
    r"""Scores node pairs by the pseudo-Euclidean product of attract-repel embeddings.

    An MLP (``num_layers - 1`` ReLU layers with dropout) encodes each node,
    then two linear maps split the code into an attract part :math:`a_i`
    (``int(out_channels * attract_ratio)`` features) and a repel part
    :math:`r_i` (the rest). A pair scores

    .. math::
        s_{ij} = \sigma\big(\langle a_i, a_j \rangle - \langle r_i, r_j \rangle\big)

    Args:
        in_channels: input feature size.
        hidden_channels: hidden size.
        out_channels: embedding size (default ``hidden_channels``).
        num_layers: encoder depth (``max(num_layers - 1, 1)`` hidden layers).
        dropout: dropout after each hidden layer.
        attract_ratio: share of the embedding in the attract part, in ``[0, 1]``.

    Shapes:
        ``x`` ``[N, in_channels]``, ``edge_index`` ``[2, E]`` (the pairs to
        score) -> ``[E]``.

    Example:
        >>> model = ARLinkPredictor(16, 32)
        >>> model(torch.randn(5, 16), torch.tensor([[0, 1], [2, 3]])).shape
        torch.Size([2])
    """

    def __init__(
        self,
        in_channels: int,
        hidden_channels: int,
        out_channels: int | None = None,
        num_layers: int = 2,
        dropout: float = 0.0,
        attract_ratio: float = 0.5,
    ) -> None:
        super().__init__()
        if out_channels is None:
            out_channels = hidden_channels
        if not 0 <= attract_ratio <= 1:
            raise ValueError(f"'attract_ratio' must lie in [0, 1], got {attract_ratio}")
        self.in_channels = in_channels
        self.hidden_channels = hidden_channels
        self.out_channels = out_channels
        self.num_layers = num_layers
        self.dropout = dropout
        self.attract_ratio = attract_ratio
        self.attract_dim = int(out_channels * attract_ratio)
        self.repel_dim = out_channels - self.attract_dim
        sizes = [in_channels] + [hidden_channels] * max(num_layers - 1, 1)
        self.lins = torch.nn.ModuleList(torch.nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.lin_attract = torch.nn.Linear(hidden_channels, self.attract_dim)
        self.lin_repel = torch.nn.Linear(hidden_channels, self.repel_dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialize every linear map."""
        for lin in (*self.lins, self.lin_attract, self.lin_repel):
            lin.reset_parameters()

    def encode(self, x: Tensor, *args: Any, **kwargs: Any) -> tuple[Tensor, Tensor]:
        """The attract and repel embeddings ``([N, attract_dim], [N, repel_dim])`` of the nodes."""
        if v.validation_enabled():
            v.check_tensor("x", x)
            if x.dim() != 2 or x.size(-1) != self.in_channels:
                raise ValueError(
                    f"'x' must have shape [N, {self.in_channels}] (in_channels), got {v.describe(x)}"
                )
        for lin in self.lins:
            x = F.dropout(F.relu(lin(x)), p=self.dropout, training=self.training)
        return self.lin_attract(x), self.lin_repel(x)

    def decode(self, attract_z: Tensor, repel_z: Tensor, edge_index: Tensor) -> Tensor:
        r"""Raw scores :math:`\langle a_i, a_j \rangle - \langle r_i, r_j \rangle` of the pairs ``[E]``."""
        if v.validation_enabled():
            edge_index = check_edges("edge_index", edge_index, attract_z.size(0))
        src, dst = edge_index[0], edge_index[1]
        attract = (attract_z.index_select(0, src) * attract_z.index_select(0, dst)).sum(dim=1)
        repel = (repel_z.index_select(0, src) * repel_z.index_select(0, dst)).sum(dim=1)
        return attract - repel

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        """Edge probabilities ``[E]`` (see the class docstring)."""
        attract_z, repel_z = self.encode(x)
        return torch.sigmoid(self.decode(attract_z, repel_z, edge_index))

    def calculate_r_fraction(self, attract_z: Tensor, repel_z: Tensor) -> float:
        r"""The share of the squared norm in the repel part, :math:`\|R\|^2 / (\|A\|^2 + \|R\|^2 + 10^{-10})`."""
        attract = attract_z.square().sum()
        repel = repel_z.square().sum()
        return (repel / (attract + repel + 1e-10)).item()
