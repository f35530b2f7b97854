r"""Set Transformer aggregation ("Graph Neural Networks with Adaptive Readouts")."""

from __future__ import annotations

import torch
from torch import Tensor

from gnn.core import Aggregation

from ._attention_blocks import PoolingByMultiheadAttention, SetAttentionBlock, ensure_slot
from .rnn import _check_max_num_elements

__all__ = ["SetTransformerAggregation"]


class SetTransformerAggregation(Aggregation):
    r"""Encoder of set attention blocks, pooling by attention into seed points, decoder:

    .. math::
        \mathbf{Z}_g = \mathrm{SAB}_{\mathrm{dec}}^{(D)} \circ \dots \circ
        \mathrm{PMA}_S \circ \mathrm{SAB}_{\mathrm{enc}}^{(L)} \circ \dots \circ
        \mathrm{SAB}_{\mathrm{enc}}^{(1)}(\mathbf{X}_g) \in \mathbb{R}^{S \times C}

    and the output is the concatenation of the ``S`` rows of
    :math:`\mathbf{Z}_g` (``concat=True``) or their mean. Padding of the dense
    batch is masked out of the encoder and the pooling. Needs ``index``
    sorted in ascending order (an unsorted ``index`` raises ``ValueError``).

    Args:
        channels: size of each element.
        num_seed_points: number of seed points ``S`` of the pooling.
        num_encoder_blocks: set attention blocks before the pooling.
        num_decoder_blocks: set attention blocks after the pooling.
        heads: attention heads (must divide ``channels``).
        concat: concatenate the seed outputs (else average them).
        layer_norm: apply layer normalization in every attention block.
        dropout: dropout probability of the attention weights.

    Shapes: ``x: [E, channels]``, ``index: [E]`` (sorted) ->
    ``[dim_size, S * channels]`` (``concat``) or ``[dim_size, channels]``.

    Example:
        >>> aggr = SetTransformerAggregation(16, num_seed_points=2, heads=2)
        >>> aggr(torch.randn(6, 16), torch.tensor([0, 0, 1, 1, 1, 2])).shape
        torch.Size([3, 32])
    """

    def __init__(
        self,
        channels: int,
        num_seed_points: int = 1,
        num_encoder_blocks: int = 1,
        num_decoder_blocks: int = 1,
        heads: int = 1,
        concat: bool = True,
        layer_norm: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        for name, value in (
            ("num_encoder_blocks", num_encoder_blocks),
            ("num_decoder_blocks", num_decoder_blocks),
        ):
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"'{name}' must be a non-negative int, got {value!r}")
        self.channels = channels
        self.num_seed_points = num_seed_points
        self.heads = heads
        self.concat = concat
        self.layer_norm = layer_norm
        self.dropout = dropout

        self.encoders = torch.nn.ModuleList(
            SetAttentionBlock(channels, heads, layer_norm, dropout) for _ in range(num_encoder_blocks)
        )
        self.pma = PoolingByMultiheadAttention(channels, num_seed_points, heads, layer_norm, dropout)
        self.decoders = torch.nn.ModuleList(
            SetAttentionBlock(channels, heads, layer_norm, dropout) for _ in range(num_decoder_blocks)
        )

    def reset_parameters(self) -> None:
        for encoder in self.encoders:
            encoder.reset_parameters()
        self.pma.reset_parameters()
        for decoder in self.decoders:
            decoder.reset_parameters()

    def forward(
        self,
        x: Tensor,
        index: Tensor | None = None,
        ptr: Tensor | None = None,
        dim_size: int | None = None,
        dim: int = -2,
        max_num_elements: int | None = None,
    ) -> Tensor:
        """``x: [E, channels]`` -> ``[dim_size, S * channels]`` or ``[dim_size, channels]``."""
        _check_max_num_elements(max_num_elements)
        out, mask = self.to_dense_batch(x, index, ptr, dim_size, dim, max_num_elements=max_num_elements)
        out, mask = ensure_slot(out, mask)
        for encoder in self.encoders:
            out = encoder(out, mask)
        out = self.pma(out, mask)
        for decoder in self.decoders:
            out = decoder(out)
        return out.flatten(1, 2) if self.concat else out.mean(dim=1)

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}({self.channels}, num_seed_points={self.num_seed_points}, "
            f"heads={self.heads}, layer_norm={self.layer_norm}, dropout={self.dropout})"
        )
