r"""Linear-time softmax-kernel attention of Performers (Choromanski et al., 2021): :class:`PerformerAttention`."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from ._inputs import check_heads, check_sequence, zero_padded

#: added to the random features so that every key keeps a positive weight
FEATURE_EPS = 1e-3

#: the default kernel/activation (one shared instance, as a signature default)
DEFAULT_ACTIVATION = torch.nn.ReLU()


def orthogonal_features(num_rows: int, num_cols: int, *, dtype: torch.dtype | None = None) -> Tensor:
    """A ``[num_rows, num_cols]`` matrix of random unit rows, orthogonal within each block of ``num_cols`` rows.

    Each block is the orthogonal factor of the QR decomposition of a Gaussian
    ``[num_cols, num_cols]`` matrix (orthogonal random features); the last
    block is cut to fit.
    """
    blocks = []
    for _ in range(math.ceil(num_rows / num_cols)):
        q, _ = torch.linalg.qr(torch.randn(num_cols, num_cols))
        blocks.append(q.t())
    return torch.cat(blocks)[:num_rows].to(dtype or torch.get_default_dtype())


class PerformerProjection(torch.nn.Module):
    r"""FAVOR+ attention with a generalized kernel, in :math:`O(N)`.

    With random features :math:`\phi(u) = f(P u) + \varepsilon` (``P`` the
    ``[M, D]`` buffer ``projection_matrix``, ``f`` the kernel,
    :math:`\varepsilon = 10^{-3}`):

    .. math::
        \mathrm{out}_i = \frac{\phi(q_i)^\top \sum_j \phi(k_j) v_j^\top}{\phi(q_i)^\top \sum_j \phi(k_j)}

    Shapes: ``q, k, v`` ``[B, H, N, D]`` -> ``[B, H, N, D]``.
    """

    def __init__(self, num_cols: int, kernel: Callable[[Tensor], Tensor] = DEFAULT_ACTIVATION) -> None:
        super().__init__()
        self.num_rows = int(num_cols * math.log(num_cols))
        self.num_cols = num_cols
        self.kernel = kernel
        self.register_buffer("projection_matrix", orthogonal_features(self.num_rows, num_cols))

    def redraw(self) -> None:
        """Draw a new projection matrix (in place, keeping device and dtype)."""
        with torch.no_grad():
            fresh = orthogonal_features(self.num_rows, self.num_cols)
            self.projection_matrix.copy_(fresh)

    def features(self, u: Tensor) -> Tensor:
        r""":math:`\phi(u) = f(u P^\top) + \varepsilon`: ``[..., D]`` -> ``[..., M]``."""
        return self.kernel(u @ self.projection_matrix.t().to(u.dtype)) + FEATURE_EPS

    def forward(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        q_f, k_f = self.features(q), self.features(k)  # [B, H, N, M]
        context = k_f.transpose(-1, -2) @ v  # [B, H, M, D]
        numerator = q_f @ context
        denominator = q_f @ k_f.sum(dim=-2).unsqueeze(-1)  # [B, H, N, 1]
        return numerator / denominator


class PerformerAttention(torch.nn.Module):
    r"""Performer attention over padded node sets (linear in the number of nodes).

    Per head, :math:`q = x W_q^\top`, :math:`k = x W_k^\top`,
    :math:`v = x W_v^\top` (``head_channels`` each) and

    .. math::
        \mathrm{att}_i = \frac{\phi(q_i)^\top \sum_j \phi(k_j) v_j^\top}{\phi(q_i)^\top \sum_j \phi(k_j)},
        \qquad \phi(u) = f(P u) + 10^{-3}

    with ``P`` a ``[M, head_channels]`` matrix of orthogonal random features,
    :math:`M = \lfloor d \ln d \rfloor` (``d = head_channels``), ``f`` the
    ``kernel``; the heads are concatenated, projected back to ``channels``
    by ``attn_out`` and passed through dropout. A ``mask`` zeroes the
    values of padded nodes; as in PyG 2.8 their keys still count in the
    denominator, and padded rows get an output too.

    Args:
        channels: input and output size.
        heads: number of heads.
        head_channels: size of each head.
        kernel: the kernel :math:`f` of the random features.
        qkv_bias: learn biases in the query, key and value maps.
        attn_out_bias: learn a bias in the output map.
        dropout: dropout probability of the output.

    Shapes:
        ``x`` ``[B, N, channels]``, ``mask`` ``[B, N]`` (bool, True = real
        node) -> ``[B, N, channels]``.

    Example:
        >>> attn = PerformerAttention(channels=16, heads=4, head_channels=8)
        >>> attn(torch.randn(2, 10, 16)).shape
        torch.Size([2, 10, 16])
    """

    def __init__(
        self,
        channels: int,
        heads: int,
        head_channels: int = 64,
        kernel: Callable = DEFAULT_ACTIVATION,
        qkv_bias: bool = False,
        attn_out_bias: bool = True,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        check_heads(heads, head_channels)
        if head_channels < 2:
            raise ValueError(
                "'head_channels' must be at least 2 (the layer draws int(d * ln(d)) random features), "
                f"got {head_channels}"
            )
        self.channels = channels
        self.heads = heads
        self.head_channels = head_channels
        self.kernel = kernel
        self.fast_attn = PerformerProjection(head_channels, kernel)
        inner = heads * head_channels
        self.q = torch.nn.Linear(channels, inner, bias=qkv_bias)
        self.k = torch.nn.Linear(channels, inner, bias=qkv_bias)
        self.v = torch.nn.Linear(channels, inner, bias=qkv_bias)
        self.attn_out = torch.nn.Linear(inner, channels, bias=attn_out_bias)
        self.dropout = torch.nn.Dropout(dropout)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """Apply the attention (see the class docstring for shapes)."""
        x, mask = check_sequence(x, self.channels, mask)
        batch, num_nodes, _ = x.shape

        def split(t: Tensor) -> Tensor:  # [B, N, H * D] -> [B, H, N, D]
            return t.view(batch, num_nodes, self.heads, self.head_channels).transpose(1, 2)

        value = zero_padded(self.v(x), mask)
        out = self.fast_attn(split(self.q(x)), split(self.k(x)), split(value))
        out = out.transpose(1, 2).reshape(batch, num_nodes, self.heads * self.head_channels)
        return self.dropout(self.attn_out(out))

    @torch.no_grad()
    def redraw_projection_matrix(self) -> None:
        """Draw new random features (Performers redraw them every few training steps)."""
        self.fast_attn.redraw()

    def _reset_parameters(self) -> None:
        for lin in (self.q, self.k, self.v, self.attn_out):
            lin.reset_parameters()
        self.redraw_projection_matrix()

    def reset_parameters(self) -> None:
        """Re-initialize the linear maps and draw new random features."""
        self._reset_parameters()

    def __repr__(self) -> str:
        # PyG 2.8's format, missing comma included
        return f"{type(self).__name__}(heads={self.heads}, head_channels={self.head_channels} kernel={self.kernel})"
