r"""The GPS graph transformer layer (Rampášek et al., 2022): :class:`GPSConv`."""

from __future__ import annotations

import inspect
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from gnn.core import validation as v
from gnn.core.nn.mlp import resolve_activation

from ._padded import PaddedLayout, bucketed_layout, pad, single_layout, unpad
from .attention.performer import PerformerAttention

ATTN_TYPES = ("multihead", "performer")


def _resolve_norm(norm: Any, channels: int, norm_kwargs: dict[str, Any]) -> torch.nn.Module | None:
    if norm is None:
        return None
    from gnn.core.registry import norms

    try:
        return norms.resolve(norm, channels, **norm_kwargs)
    except ValueError as error:
        raise ValueError(f"'norm' {norm!r} is not a known normalization: {error}") from None


def _takes_batch(norm: torch.nn.Module | None) -> bool:
    if norm is None:
        return False
    try:
        return "batch" in inspect.signature(norm.forward).parameters
    except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
        return False


class GPSConv(torch.nn.Module):
    r"""The GPS layer: a local message-passing layer and global attention, summed, then an MLP.

    .. math::
        h_L &= \mathrm{norm}_1\big(x + \mathrm{dropout}(\mathrm{conv}(x, \mathcal{E}))\big) \\
        h_G &= \mathrm{norm}_2\big(x + \mathrm{dropout}(\mathrm{attn}(x))\big) \\
        h &= h_L + h_G, \qquad x' = \mathrm{norm}_3\big(h + \mathrm{MLP}(h)\big)

    where :math:`\mathrm{attn}` attends among the nodes of each graph of the
    batch, and :math:`\mathrm{MLP} = \mathrm{Linear}(C, 2C) \to \sigma \to
    \mathrm{dropout} \to \mathrm{Linear}(2C, C) \to \mathrm{dropout}`.

    ``attn_type="multihead"``: softmax attention with the parameters of a
    :class:`torch.nn.MultiheadAttention` (``attn``, so PyG checkpoints load),
    :math:`\mathrm{softmax}(q k^\top / \sqrt{d}) v` per head and graph. It is
    computed without a padded ``[B, N_max, N_max]`` batch: graphs are
    grouped by size into buckets, each graph padded to at most 1.25 times
    its node count (not to the largest graph of the batch), and each bucket
    runs its input projection and
    :func:`torch.nn.functional.scaled_dot_product_attention` (whose fused
    kernels never hold the score matrix); the output projection runs on the
    node rows alone. ``attn_kwargs`` are those of
    :class:`~torch.nn.MultiheadAttention` (``dropout`` drops attention
    weights while training; with ``add_bias_kv``, ``add_zero_attn`` or other
    key/value sizes the module itself runs on a padded batch).

    ``attn_type="performer"``: :class:`~gnn.conv.attention.PerformerAttention`
    (``attn_kwargs`` are its arguments) on the graphs padded to the largest
    one, as in PyG (its result depends on that padding).

    ``batch`` may be in any order (nodes of a graph need not be contiguous);
    PyG 2.8 requires it sorted.

    Under ``torch.compile`` the attention runs on one padded ``[B, N_max]``
    layout built without host-side branches; ``B`` and ``N_max`` are read
    from ``batch``, so a compile without graph breaks needs
    ``torch._dynamo.config.capture_scalar_outputs = True`` (without ``batch``
    nothing is read and no setting is needed).

    Args:
        channels: input and output size.
        conv: the local message-passing layer, called as
            ``conv(x, edge_index, **kwargs)``; ``None`` for attention only.
        heads: attention heads.
        dropout: dropout probability after the local layer, the attention
            and in the MLP.
        act: activation of the MLP (a name such as ``"relu"``, a module or a callable).
        act_kwargs: arguments of the activation.
        norm: normalization after each block: a name looked up in
            :data:`gnn.core.registry.norms` (``"batch_norm"``,
            ``"layer_norm"``, ``"graph_norm"``, ...), a module (shared by the
            three places, as in PyG), a class, or ``None``. A norm whose
            ``forward`` takes ``batch`` receives it.
        norm_kwargs: arguments of the normalization.
        attn_type: ``"multihead"`` or ``"performer"``.
        attn_kwargs: arguments of the attention module.

    Shapes:
        ``x`` ``[N, channels]``, ``edge_index`` ``[2, E]`` (or a sparse
        ``adj_t``), ``batch`` ``[N]`` -> ``[N, channels]``.

    Example:
        >>> from gnn.conv import GINConv
        >>> mlp = torch.nn.Sequential(torch.nn.Linear(16, 16), torch.nn.ReLU(), torch.nn.Linear(16, 16))
        >>> conv = GPSConv(16, GINConv(mlp), heads=4, norm=None)
        >>> x, edge_index = torch.randn(6, 16), torch.tensor([[0, 1, 3, 4], [1, 2, 4, 5]])
        >>> conv(x, edge_index, batch=torch.tensor([0, 0, 0, 1, 1, 1])).shape
        torch.Size([6, 16])
    """

    def __init__(
        self,
        channels: int,
        conv: torch.nn.Module | None,
        heads: int = 1,
        dropout: float = 0.0,
        act: str = "relu",
        act_kwargs: dict[str, Any] | None = None,
        norm: str | None = "batch_norm",
        norm_kwargs: dict[str, Any] | None = None,
        attn_type: str = "multihead",
        attn_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(channels, int) or isinstance(channels, bool) or channels < 1:
            raise ValueError(f"'channels' must be a positive int, got {channels!r}")
        if not isinstance(heads, int) or isinstance(heads, bool) or heads < 1:
            raise ValueError(f"'heads' must be a positive int, got {heads!r}")
        if attn_type not in ATTN_TYPES:
            raise ValueError(f"'attn_type' must be one of {ATTN_TYPES}, got {attn_type!r}")
        if attn_type == "multihead" and channels % heads != 0:
            raise ValueError(f"'channels' ({channels}) must be divisible by 'heads' ({heads}) for multihead")
        self.channels = channels
        self.conv = conv
        self.heads = heads
        self.dropout = dropout
        self.attn_type = attn_type

        attn_kwargs = attn_kwargs or {}
        if attn_type == "multihead":
            self.attn: torch.nn.Module = torch.nn.MultiheadAttention(
                channels, heads, batch_first=True, **attn_kwargs
            )
        else:
            self.attn = PerformerAttention(channels=channels, heads=heads, **attn_kwargs)

        self.mlp = torch.nn.Sequential(
            torch.nn.Linear(channels, channels * 2),
            resolve_activation(act, act_kwargs),
            torch.nn.Dropout(dropout),
            torch.nn.Linear(channels * 2, channels),
            torch.nn.Dropout(dropout),
        )

        norm_kwargs = norm_kwargs or {}
        self.norm1 = _resolve_norm(norm, channels, norm_kwargs)
        self.norm2 = _resolve_norm(norm, channels, norm_kwargs)
        self.norm3 = _resolve_norm(norm, channels, norm_kwargs)
        self.norm_with_batch = _takes_batch(self.norm1)

    def reset_parameters(self) -> None:
        """Reset the local layer, the attention, the MLP and the norms."""
        if self.conv is not None and hasattr(self.conv, "reset_parameters"):
            self.conv.reset_parameters()
        self.attn._reset_parameters()
        for module in [*self.mlp, self.norm1, self.norm2, self.norm3]:
            if module is not None and hasattr(module, "reset_parameters"):
                module.reset_parameters()

    # -- forward -------------------------------------------------------------------------------
    def forward(self, x: Tensor, edge_index: Any, batch: Tensor | None = None, **kwargs: Any) -> Tensor:
        """Apply the layer (see the class docstring for shapes); ``kwargs`` go to ``conv``."""
        self._check_inputs(x, batch)
        parts = []
        if self.conv is not None:
            h = self.conv(x, edge_index, **kwargs)
            h = self._dropout(h)
            parts.append(self._norm(self.norm1, h + x, batch))

        h = self._global_attention(x, batch)
        h = self._dropout(h)
        parts.append(self._norm(self.norm2, h + x, batch))

        out = parts[0] if len(parts) == 1 else parts[0] + parts[1]
        out = out + self.mlp(out)
        return self._norm(self.norm3, out, batch)

    def _dropout(self, h: Tensor) -> Tensor:
        if self.training and self.dropout > 0:
            return F.dropout(h, p=self.dropout, training=True)
        return h

    def _norm(self, norm: torch.nn.Module | None, h: Tensor, batch: Tensor | None) -> Tensor:
        if norm is None:
            return h
        return norm(h, batch=batch) if self.norm_with_batch else norm(h)

    def _check_inputs(self, x: Any, batch: Any) -> None:
        v.check_tensor("x", x)
        if x.dim() != 2 or x.size(-1) != self.channels:
            raise ValueError(f"'x' must have shape [N, {self.channels}] (channels), got {v.describe(x)}")
        if batch is not None:
            v.check_tensor("batch", batch)
            v.check_index_dtype("batch", batch)
            if batch.dim() != 1 or batch.numel() != x.size(0):
                raise ValueError(
                    f"'batch' must be a 1-D tensor with one entry per node ({x.size(0)}), got {v.describe(batch)}"
                )
            if v.validation_enabled() and batch.numel() > 0 and int(batch.min()) < 0:
                raise v.IndexRangeError(f"'batch' contains a negative graph index ({int(batch.min())})")

    def _layout(self, batch: Tensor, bucketed: bool) -> PaddedLayout:
        batch = batch.long()
        batch_size = int(batch.max()) + 1
        if torch.compiler.is_compiling():
            return single_layout(batch, batch_size, compiling=True)
        return bucketed_layout(batch, batch_size) if bucketed else single_layout(batch, batch_size)

    def _global_attention(self, x: Tensor, batch: Tensor | None) -> Tensor:
        """``[N, C]`` -> ``[N, C]``: attention among the nodes of each graph."""
        if x.size(0) == 0:
            return torch.zeros_like(x)
        if self.attn_type == "performer":
            return self._performer(x, batch)
        attn = self.attn
        same_dims = attn.kdim == attn.vdim == attn.embed_dim
        fused = same_dims and attn.bias_k is None and not attn.add_zero_attn
        if not fused:
            return self._padded_module(x, batch)
        dropout = attn.dropout if self.training else 0.0
        if batch is None:  # one graph: no padding at all
            out = self._sdpa(x.unsqueeze(0), None, dropout).squeeze(0)
        else:
            layout = self._layout(batch, bucketed=True)
            blocks = layout.split(pad(x, layout))
            out = unpad(
                layout.merge([self._sdpa(b, m, dropout) for b, m in zip(blocks, layout.masks)]), layout
            )
        return F.linear(out, attn.out_proj.weight, attn.out_proj.bias)

    def _sdpa(self, x: Tensor, mask: Tensor | None, dropout: float) -> Tensor:
        """``[b, n, C]`` padded graphs -> ``[b, n, C]`` multi-head attention before the output map.

        The packed input projection gives ``[b, n, 3C]`` (queries, keys, values;
        heads contiguous within each), viewed as ``[b, heads, n, C / heads]``
        without a copy. ``mask`` is the ``[b, 1, 1, n]`` key mask (broadcast
        over heads and queries in eager mode; expanded while compiling, where
        the broadcast would need a guard on the data-dependent ``n``).
        """
        attn = self.attn
        b, n, _ = x.shape
        qkv = F.linear(x, attn.in_proj_weight, attn.in_proj_bias)
        q, k, val = (
            qkv.view(b, n, 3, self.heads, self.channels // self.heads).permute(2, 0, 3, 1, 4).unbind(0)
        )
        if mask is not None and torch.compiler.is_compiling():
            mask = mask.expand(b, 1, n, n)
        out = F.scaled_dot_product_attention(q, k, val, attn_mask=mask, dropout_p=dropout)
        return out.transpose(1, 2).reshape(b, n, self.channels)

    def _padded_module(self, x: Tensor, batch: Tensor | None) -> Tensor:
        """The attention module itself on a padded ``[B, N_max, C]`` batch (general MHA configurations)."""
        if batch is None:
            return self.attn(x.unsqueeze(0), x.unsqueeze(0), x.unsqueeze(0), need_weights=False)[0].squeeze(0)
        layout = self._layout(batch, bucketed=False)
        (dense,) = layout.split(pad(x, layout))
        mask = layout.masks[0]
        key_padding = None if mask is None else ~mask.view(dense.shape[:2])
        out = self.attn(dense, dense, dense, key_padding_mask=key_padding, need_weights=False)[0]
        return unpad(layout.merge([out]), layout)

    def _performer(self, x: Tensor, batch: Tensor | None) -> Tensor:
        if batch is None:
            return self.attn(x.unsqueeze(0)).squeeze(0)
        layout = self._layout(batch, bucketed=False)
        (dense,) = layout.split(pad(x, layout))
        mask = layout.masks[0]
        mask = None if mask is None else mask.view(dense.shape[:2])
        return unpad(layout.merge([self.attn(dense, mask=mask)]), layout)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.channels}, conv={self.conv}, heads={self.heads}, "
            f"attn_type={self.attn_type})"
        )
