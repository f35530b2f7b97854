r"""The querying transformer of BLIP-2 (Li et al., 2023): :class:`QFormer`."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from ._inputs import check_sequence

#: the default kernel/activation (one shared instance, as a signature default)
DEFAULT_ACTIVATION = torch.nn.ReLU()


class QFormer(torch.nn.Module):
    r"""A layer-normalized transformer encoder followed by a linear projection.

    .. math::
        x' = \mathrm{Encoder}_L\big(\mathrm{LN}(x)\big)\, W^\top + b

    where :math:`\mathrm{Encoder}_L` is ``num_layers`` post-norm
    :class:`torch.nn.TransformerEncoderLayer` blocks (``num_heads`` heads,
    feed-forward size ``hidden_dim``, ``dropout``, ``activation``,
    batch-first). ``encoder_layer`` is the template the stacked layers were
    copied from (kept, as in PyG, so checkpoints load with ``strict=True``).

    Args:
        input_dim: input (model) size.
        hidden_dim: feed-forward size of each encoder layer.
        output_dim: output size.
        num_heads: attention heads per layer (``input_dim`` must be divisible by it).
        num_layers: number of encoder layers.
        dropout: dropout probability inside the encoder layers.
        activation: activation of the feed-forward blocks.

    Shapes:
        ``x`` ``[B, N, input_dim]`` -> ``[B, N, output_dim]``.

    Example:
        >>> qformer = QFormer(16, 32, 8, num_heads=2, num_layers=2)
        >>> qformer(torch.randn(2, 10, 16)).shape
        torch.Size([2, 10, 8])
    """

    def __init__(
        self,
        input_dim: int,
        hidden_dim: int,
        output_dim: int,
        num_heads: int,
        num_layers: int,
        dropout: float = 0.0,
        activation: Callable = DEFAULT_ACTIVATION,
    ) -> None:
        super().__init__()
        if not isinstance(num_heads, int) or num_heads < 1 or input_dim % num_heads != 0:
            raise ValueError(
                f"'num_heads' must be a positive divisor of input_dim ({input_dim}), got {num_heads!r}"
            )
        if not isinstance(num_layers, int) or num_layers < 1:
            raise ValueError(f"'num_layers' must be a positive int, got {num_layers!r}")
        self.input_dim = input_dim
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.layer_norm = torch.nn.LayerNorm(input_dim)
        self.encoder_layer = torch.nn.TransformerEncoderLayer(
            d_model=input_dim,
            nhead=num_heads,
            dim_feedforward=hidden_dim,
            dropout=dropout,
            activation=activation,
            batch_first=True,
        )
        self.encoder = torch.nn.TransformerEncoder(self.encoder_layer, num_layers=num_layers)
        self.project = torch.nn.Linear(input_dim, output_dim)

    def forward(self, x: Tensor) -> Tensor:
        """Apply the module (see the class docstring for shapes)."""
        x, _ = check_sequence(x, self.input_dim)
        return self.project(self.encoder(self.layer_norm(x)))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(num_heads={self.num_heads}, num_layers={self.num_layers})"
