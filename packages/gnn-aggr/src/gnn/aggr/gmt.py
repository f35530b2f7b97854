r"""The Graph Multiset Transformer ("Accurate Learning of Graph Representations with Graph
Multiset Pooling")."""

from __future__ import annotations

import torch
from torch import Tensor

from gnn.core import Aggregation

from ._attention_blocks import PoolingByMultiheadAttention, SetAttentionBlock, ensure_slot
from .rnn import _check_max_num_elements

__all__ = ["GraphMultisetTransformer"]


class GraphMultisetTransformer(Aggregation):
    r"""Attention-based pooling of each group into ``k`` elements, self-attention among them,
    and a final attention-based pooling into one vector:

    .. math::
        \mathrm{GMT}(\mathbf{X}_g) = \mathrm{PMA}_1\big(\mathrm{SAB}^{(L)} \circ \dots \circ
        \mathrm{SAB}^{(1)}(\mathrm{PMA}_k(\mathbf{X}_g))\big)

    (see :mod:`gnn.aggr._attention_blocks`). Padding of the dense batch is
    masked out of the first pooling. Needs ``index`` sorted in ascending
    order (an unsorted ``index`` raises ``ValueError``).

    Args:
        channels: size of each element (and of the output).
        k: number of representative elements after the first pooling.
        num_encoder_blocks: number of set attention blocks between the poolings.
        heads: attention heads (must divide ``channels``).
        layer_norm: apply layer normalization in every attention block.
        dropout: dropout probability of the attention weights.

    Shapes: ``x: [E, channels]``, ``index: [E]`` (sorted) -> ``[dim_size, channels]``.

    Example:
        >>> aggr = GraphMultisetTransformer(16, k=4, heads=2)
        >>> aggr(torch.randn(6, 16), torch.tensor([0, 0, 1, 1, 1, 2])).shape
        torch.Size([3, 16])
    """

    def __init__(
        self,
        channels: int,
        k: int,
        num_encoder_blocks: int = 1,
        heads: int = 1,
        layer_norm: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if not isinstance(k, int) or isinstance(k, bool) or k <= 0:
            raise ValueError(f"'k' must be a positive int, got {k!r}")
        if not isinstance(num_encoder_blocks, int) or num_encoder_blocks < 0:
            raise ValueError(f"'num_encoder_blocks' must be a non-negative int, got {num_encoder_blocks!r}")
        self.channels = channels
        self.k = k
        self.heads = heads
        self.layer_norm = layer_norm
        self.dropout = dropout

        self.pma1 = PoolingByMultiheadAttention(channels, k, heads, layer_norm, dropout)
        self.encoders = torch.nn.ModuleList(
            SetAttentionBlock(channels, heads, layer_norm, dropout) for _ in range(num_encoder_blocks)
        )
        self.pma2 = PoolingByMultiheadAttention(channels, 1, heads, layer_norm, dropout)

    def reset_parameters(self) -> None:
        self.pma1.reset_parameters()
        for encoder in self.encoders:
            encoder.reset_parameters()
        self.pma2.reset_parameters()

    def forward(
        self,
        x: Tensor,
        index: Tensor | None = None,
        ptr: Tensor | None = None,
        dim_size: int | None = None,
        dim: int = -2,
        max_num_elements: int | None = None,
    ) -> Tensor:
        """``x: [E, channels]`` -> ``[dim_size, channels]``."""
        _check_max_num_elements(max_num_elements)
        dense, mask = self.to_dense_batch(x, index, ptr, dim_size, dim, max_num_elements=max_num_elements)
        dense, mask = ensure_slot(dense, mask)
        out = self.pma1(dense, mask)
        for encoder in self.encoders:
            out = encoder(out)
        return self.pma2(out).squeeze(1)

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}({self.channels}, k={self.k}, heads={self.heads}, "
            f"layer_norm={self.layer_norm}, dropout={self.dropout})"
        )
