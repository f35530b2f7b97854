r"""Attention blocks of the Set Transformer, shared by :class:`GraphMultisetTransformer` and
:class:`SetTransformerAggregation` (parameter layout of PyG 2.8's ``aggr.utils``).

All blocks work on dense, padded batches ``[B, N, C]`` with a boolean mask
``[B, N]`` (``True`` = real element), as produced by ``to_dense_batch``.

* MAB: :math:`\mathbf{h} = \mathrm{LN}_1(\mathbf{x} + \mathrm{Multihead}(\mathbf{x}, \mathbf{y},
  \mathbf{y}))`, :math:`\mathrm{MAB}(\mathbf{x}, \mathbf{y}) = \mathrm{LN}_2(\mathbf{h} +
  \mathrm{ReLU}(\mathbf{W}\mathbf{h} + \mathbf{b}))` (layer norms optional).
* SAB: :math:`\mathrm{MAB}(\mathbf{x}, \mathbf{x})`.
* ISAB: :math:`\mathrm{MAB}(\mathbf{x}, \mathrm{MAB}(\mathbf{I}, \mathbf{x}))` with learnable
  inducing points :math:`\mathbf{I}`.
* PMA: :math:`\mathrm{MAB}(\mathbf{S}, \mathrm{ReLU}(\mathbf{W}\mathbf{x} + \mathbf{b}))` with
  learnable seed points :math:`\mathbf{S}`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "ensure_slot",
    "InducedSetAttentionBlock",
    "MultiheadAttentionBlock",
    "PoolingByMultiheadAttention",
    "SetAttentionBlock",
]


def ensure_slot(dense: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """Give a dense batch without any element one masked-out slot, so that every group
    is treated like an empty group of a non-empty batch (attention needs one key)."""
    if dense.size(1) > 0:
        return dense, mask
    return dense.new_zeros(dense.size(0), 1, dense.size(2)), mask.new_zeros(mask.size(0), 1)


def _check(channels: int, heads: int, dropout: float) -> None:
    if not isinstance(channels, int) or channels <= 0:
        raise ValueError(f"'channels' must be a positive int, got {channels!r}")
    if not isinstance(heads, int) or heads <= 0:
        raise ValueError(f"'heads' must be a positive int, got {heads!r}")
    if channels % heads != 0:
        raise ValueError(f"'channels' ({channels}) must be divisible by 'heads' ({heads})")
    if not 0.0 <= dropout <= 1.0:
        raise ValueError(f"'dropout' must lie in [0, 1], got {dropout!r}")


def _check_count(name: str, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"'{name}' must be a positive int, got {value!r}")


class MultiheadAttentionBlock(torch.nn.Module):
    r"""Multihead attention block (MAB) of the Set Transformer.

    .. math::
        \mathbf{h} = \mathrm{LN}_1(\mathbf{x} + \mathrm{Multihead}(\mathbf{x}, \mathbf{y}, \mathbf{y})
        \odot \mathbf{m}_x), \qquad
        \mathrm{MAB}(\mathbf{x}, \mathbf{y}) = \mathrm{LN}_2(\mathbf{h} + \mathrm{ReLU}(\mathbf{W}\mathbf{h}
        + \mathbf{b}))

    Keys masked out by ``y_mask`` receive no attention; query rows masked out
    by ``x_mask`` receive no attention output (they keep ``x``).

    Shapes: ``x: [B, N_x, C]``, ``y: [B, N_y, C]``, masks ``[B, N_x]`` /
    ``[B, N_y]`` (``True`` = real) -> ``[B, N_x, C]``.

    Example:
        >>> mab = MultiheadAttentionBlock(8, heads=2)
        >>> mab(torch.randn(3, 4, 8), torch.randn(3, 5, 8)).shape
        torch.Size([3, 4, 8])
    """

    def __init__(
        self,
        channels: int,
        heads: int = 1,
        layer_norm: bool = True,
        dropout: float = 0.0,
        device: torch.device | None = None,
    ) -> None:
        super().__init__()
        _check(channels, heads, dropout)
        self.channels = channels
        self.heads = heads
        self.dropout = dropout
        self.attn = torch.nn.MultiheadAttention(
            channels, heads, batch_first=True, dropout=dropout, device=device
        )
        self.lin = torch.nn.Linear(channels, channels, device=device)
        self.layer_norm1 = torch.nn.LayerNorm(channels, device=device) if layer_norm else None
        self.layer_norm2 = torch.nn.LayerNorm(channels, device=device) if layer_norm else None

    def reset_parameters(self) -> None:
        self.attn._reset_parameters()
        self.lin.reset_parameters()
        for norm in (self.layer_norm1, self.layer_norm2):
            if norm is not None:
                norm.reset_parameters()

    def forward(
        self, x: Tensor, y: Tensor, x_mask: Tensor | None = None, y_mask: Tensor | None = None
    ) -> Tensor:
        key_padding_mask = None if y_mask is None else ~y_mask
        attended = self.attn(x, y, y, key_padding_mask=key_padding_mask, need_weights=False)[0]
        if x_mask is not None:
            attended = attended * x_mask.unsqueeze(-1).to(attended.dtype)
        h = x + attended
        if self.layer_norm1 is not None:
            h = self.layer_norm1(h)
        out = h + F.relu(self.lin(h))
        if self.layer_norm2 is not None:
            out = self.layer_norm2(out)
        return out

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}({self.channels}, heads={self.heads}, "
            f"layer_norm={self.layer_norm1 is not None}, dropout={self.dropout})"
        )


class SetAttentionBlock(torch.nn.Module):
    r"""Set attention block (SAB): :math:`\mathrm{SAB}(\mathbf{x}) = \mathrm{MAB}(\mathbf{x}, \mathbf{x})`.

    Shapes: ``x: [B, N, C]``, ``mask: [B, N]`` -> ``[B, N, C]``.

    Example:
        >>> SetAttentionBlock(8)(torch.randn(2, 5, 8)).shape
        torch.Size([2, 5, 8])
    """

    def __init__(self, channels: int, heads: int = 1, layer_norm: bool = True, dropout: float = 0.0) -> None:
        super().__init__()
        self.mab = MultiheadAttentionBlock(channels, heads, layer_norm, dropout)

    def reset_parameters(self) -> None:
        self.mab.reset_parameters()

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        return self.mab(x, x, mask, mask)

    def __repr__(self) -> str:
        mab = self.mab
        return (
            f"{self.__class__.__name__}({mab.channels}, heads={mab.heads}, "
            f"layer_norm={mab.layer_norm1 is not None}, dropout={mab.dropout})"
        )


class InducedSetAttentionBlock(torch.nn.Module):
    r"""Induced set attention block (ISAB).

    .. math::
        \mathbf{h} = \mathrm{MAB}_1(\mathbf{I}, \mathbf{x}), \qquad
        \mathrm{ISAB}(\mathbf{x}) = \mathrm{MAB}_2(\mathbf{x}, \mathbf{h})

    with ``num_induced_points`` learnable vectors :math:`\mathbf{I}` (``ind``,
    ``[1, M, C]``). Costs :math:`O(NM)` instead of :math:`O(N^2)`.

    Shapes: ``x: [B, N, C]``, ``mask: [B, N]`` -> ``[B, N, C]``.

    Example:
        >>> InducedSetAttentionBlock(8, num_induced_points=3)(torch.randn(2, 5, 8)).shape
        torch.Size([2, 5, 8])
    """

    def __init__(
        self,
        channels: int,
        num_induced_points: int,
        heads: int = 1,
        layer_norm: bool = True,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        _check_count("num_induced_points", num_induced_points)
        self.ind = torch.nn.Parameter(torch.empty(1, num_induced_points, channels))
        self.mab1 = MultiheadAttentionBlock(channels, heads, layer_norm, dropout)
        self.mab2 = MultiheadAttentionBlock(channels, heads, layer_norm, dropout)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        torch.nn.init.xavier_uniform_(self.ind)
        self.mab1.reset_parameters()
        self.mab2.reset_parameters()

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        h = self.mab1(self.ind.expand(x.size(0), -1, -1), x, y_mask=mask)
        return self.mab2(x, h, x_mask=mask)

    def __repr__(self) -> str:
        mab = self.mab1
        return (
            f"{self.__class__.__name__}({mab.channels}, num_induced_points={self.ind.size(1)}, "
            f"heads={mab.heads}, layer_norm={mab.layer_norm1 is not None}, dropout={mab.dropout})"
        )


class PoolingByMultiheadAttention(torch.nn.Module):
    r"""Pooling by multihead attention (PMA).

    .. math::
        \mathrm{PMA}(\mathbf{x}) = \mathrm{MAB}(\mathbf{S}, \mathrm{ReLU}(\mathbf{W}\mathbf{x} + \mathbf{b}))

    with ``num_seed_points`` learnable seed vectors :math:`\mathbf{S}` (``seed``,
    ``[1, K, C]``).

    Shapes: ``x: [B, N, C]``, ``mask: [B, N]`` -> ``[B, K, C]``.

    Example:
        >>> PoolingByMultiheadAttention(8, num_seed_points=2)(torch.randn(3, 5, 8)).shape
        torch.Size([3, 2, 8])
    """

    def __init__(
        self,
        channels: int,
        num_seed_points: int = 1,
        heads: int = 1,
        layer_norm: bool = True,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        _check_count("num_seed_points", num_seed_points)
        self.seed = torch.nn.Parameter(torch.empty(1, num_seed_points, channels))
        self.lin = torch.nn.Linear(channels, channels)
        self.mab = MultiheadAttentionBlock(channels, heads, layer_norm, dropout)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        torch.nn.init.xavier_uniform_(self.seed)
        self.lin.reset_parameters()
        self.mab.reset_parameters()

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        seed = self.seed.expand(x.size(0), -1, -1)
        return self.mab(seed, F.relu(self.lin(x)), y_mask=mask)

    def __repr__(self) -> str:
        mab = self.mab
        return (
            f"{self.__class__.__name__}({mab.channels}, num_seed_points={self.seed.size(1)}, "
            f"heads={mab.heads}, layer_norm={mab.layer_norm1 is not None}, dropout={mab.dropout})"
        )
