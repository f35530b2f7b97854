r"""Patch transformer aggregation ("Simplifying Temporal Heterogeneous Network for
Continuous-Time Link Prediction")."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from gnn.core import Aggregation
from gnn.core.nn.encoding import PositionalEncoding

from ._attention_blocks import MultiheadAttentionBlock

__all__ = ["PatchTransformerAggregation"]

_REDUCTIONS = ("sum", "mean", "min", "max", "var", "std")


class PatchTransformerAggregation(Aggregation):
    r"""Split each group into patches, run a transformer across patches, reduce, project.

    For group :math:`g` (elements in ``index`` order, after a linear map to
    ``hidden_channels``), the sequence is zero-padded to :math:`T \cdot P`
    elements (:math:`P` = ``patch_size``, :math:`T` the number of patches of
    the longest group, or :math:`\lfloor M / P \rfloor` with
    :math:`M` = ``max_num_elements``), and each patch of :math:`P` elements
    is projected to one token:

    .. math::
        \mathbf{z}_{g,t} = \mathbf{W}_p [\mathbf{h}_{g,tP} \Vert \dots \Vert \mathbf{h}_{g,tP+P-1}]
        + \mathbf{b}_p + \mathrm{PE}(t), \qquad
        \mathbf{Z}_g \leftarrow \mathrm{MAB}(\mathbf{Z}_g, \mathbf{Z}_g)

    (``num_transformer_blocks`` times, with layer norms); the tokens are then
    reduced over :math:`t` by every reduction in ``aggr`` (``"sum"``,
    ``"mean"``, ``"min"``, ``"max"``, ``"var"``, ``"std"``; var/std unbiased),
    concatenated and mapped to ``out_channels``. Padding patches take part in
    the attention and the reductions, as in PyG. Not permutation invariant;
    needs ``index`` sorted in ascending order (an unsorted ``index`` raises
    ``ValueError``).

    Args:
        in_channels: size of each element.
        out_channels: size of each output.
        patch_size: number of elements per patch :math:`P`.
        hidden_channels: token size (must be even and divisible by ``heads``).
        num_transformer_blocks: number of attention blocks.
        heads: attention heads.
        dropout: dropout probability of the attention weights.
        aggr: one reduction name or a list of them.
        device: device of the parameters.

    Shapes: ``x: [E, in_channels]``, ``index: [E]`` (sorted) -> ``[dim_size, out_channels]``.

    Example:
        >>> aggr = PatchTransformerAggregation(16, 32, patch_size=2, hidden_channels=8)
        >>> aggr(torch.randn(6, 16), torch.tensor([0, 0, 1, 1, 1, 2])).shape
        torch.Size([3, 32])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        patch_size: int,
        hidden_channels: int,
        num_transformer_blocks: int = 1,
        heads: int = 1,
        dropout: float = 0.0,
        aggr: str | list[str] = "mean",
        device: torch.device | None = None,
    ) -> None:
        super().__init__()
        for name, value in (
            ("in_channels", in_channels),
            ("out_channels", out_channels),
            ("patch_size", patch_size),
            ("hidden_channels", hidden_channels),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"'{name}' must be a positive int, got {value!r}")
        if hidden_channels % 2 != 0:
            raise ValueError(f"'hidden_channels' must be even (positional encoding), got {hidden_channels}")
        if not isinstance(num_transformer_blocks, int) or num_transformer_blocks < 0:
            raise ValueError(
                f"'num_transformer_blocks' must be a non-negative int, got {num_transformer_blocks!r}"
            )
        aggrs = [aggr] if isinstance(aggr, str) else list(aggr)
        if not aggrs or any(a not in _REDUCTIONS for a in aggrs):
            raise ValueError(f"'aggr' must be one or more of {_REDUCTIONS}, got {aggr!r}")

        self.in_channels = in_channels
        self.out_channels = out_channels
        self.patch_size = patch_size
        self.aggrs = aggrs

        self.lin = torch.nn.Linear(in_channels, hidden_channels, device=device)
        self.pad_projector = torch.nn.Linear(patch_size * hidden_channels, hidden_channels, device=device)
        self.pe = PositionalEncoding(hidden_channels, device=device)
        self.blocks = torch.nn.ModuleList(
            MultiheadAttentionBlock(hidden_channels, heads, layer_norm=True, dropout=dropout, device=device)
            for _ in range(num_transformer_blocks)
        )
        self.fc = torch.nn.Linear(hidden_channels * len(aggrs), out_channels, device=device)

    def reset_parameters(self) -> None:
        self.lin.reset_parameters()
        self.pad_projector.reset_parameters()
        for block in self.blocks:
            block.reset_parameters()
        self.fc.reset_parameters()

    def forward(
        self,
        x: Tensor,
        index: Tensor,
        ptr: Tensor | None = None,
        dim_size: int | None = None,
        dim: int = -2,
        max_num_elements: int | None = None,
    ) -> Tensor:
        """``x: [E, in_channels]`` -> ``[dim_size, out_channels]``."""
        if max_num_elements is not None and (
            not isinstance(max_num_elements, int)
            or isinstance(max_num_elements, bool)
            or max_num_elements < self.patch_size
        ):
            raise ValueError(
                f"'max_num_elements' must be None or an int >= patch_size ({self.patch_size}), "
                f"got {max_num_elements!r}"
            )
        self.assert_two_dimensional_input(x, dim)
        h = self.lin(x)
        dense, _ = self.to_dense_batch(h, index, ptr, dim_size, dim, max_num_elements=max_num_elements)
        num_groups, length, channels = dense.shape
        p = self.patch_size
        if max_num_elements is not None:
            num_patches = max_num_elements // p
        else:
            num_patches = max(1, -(-length // p))  # at least one (all-padding) patch
        keep = num_patches * p
        if keep <= length:
            dense = dense[:, :keep]
        else:
            dense = F.pad(dense, (0, 0, 0, keep - length))

        tokens = self.pad_projector(dense.reshape(num_groups, num_patches, p * channels))
        position = torch.arange(num_patches, device=x.device, dtype=tokens.dtype)
        tokens = tokens + self.pe(position).to(tokens.dtype)
        for block in self.blocks:
            tokens = block(tokens, tokens)
        out = torch.cat([self._reduce_tokens(tokens, a) for a in self.aggrs], dim=-1)
        return self.fc(out)

    @staticmethod
    def _reduce_tokens(tokens: Tensor, name: str) -> Tensor:
        if name == "sum":
            return tokens.sum(dim=1)
        if name == "mean":
            return tokens.mean(dim=1)
        if name == "min":
            return tokens.amin(dim=1)
        if name == "max":
            return tokens.amax(dim=1)
        if name == "var":
            return tokens.var(dim=1)
        return tokens.std(dim=1)

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}({self.in_channels}, {self.out_channels}, "
            f"patch_size={self.patch_size})"
        )
