r"""The global attention of Polynormer (Deng et al., 2024): :class:`PolynormerAttention`."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ._inputs import check_heads, check_sequence, zero_padded

#: added to the attention denominator
DENOMINATOR_EPS = 1e-6


class PolynormerAttention(torch.nn.Module):
    r"""Polynormer's polynomial-expressive linear global attention over padded node sets.

    With :math:`k = \sigma(x W_k^\top)`, :math:`q = k` (``qk_shared``) or
    :math:`\sigma(x W_q^\top)`, :math:`v = x W_v^\top`, :math:`h = x W_h^\top + b_h`
    (``heads * head_channels`` features each; feature ``c`` belongs to head
    ``c mod heads``) and per head

    .. math::
        \mathrm{att}_i = \frac{q_i^\top \sum_j k_j v_j^\top}{q_i^\top \sum_j k_j + 10^{-6}},
        \qquad x'_i = \mathrm{dropout}\Big(\mathrm{ReLU}\big(W_o\,[\mathrm{LN}(\mathrm{att}_i)
        \odot (h_i + \beta)] + b_o\big)\Big)

    A ``mask`` zeroes the values of padded nodes (their keys still count in
    the denominator, as in PyG 2.8).

    Args:
        channels: input size.
        heads: number of heads.
        head_channels: size of each head.
        beta: the constant :math:`\beta` added to the gate :math:`h`.
        qkv_bias: learn biases in the query, key and value maps.
        qk_shared: use the keys as queries (no ``q`` map).
        dropout: dropout probability of the output.

    Shapes:
        ``x`` ``[B, N, channels]``, ``mask`` ``[B, N]`` (bool, True = real
        node) -> ``[B, N, heads * head_channels]``.

    Example:
        >>> attn = PolynormerAttention(channels=16, heads=2, head_channels=8)
        >>> attn(torch.randn(2, 10, 16)).shape
        torch.Size([2, 10, 16])
    """

    def __init__(
        self,
        channels: int,
        heads: int,
        head_channels: int = 64,
        beta: float = 0.9,
        qkv_bias: bool = False,
        qk_shared: bool = True,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        check_heads(heads, head_channels)
        self.channels = channels
        self.heads = heads
        self.head_channels = head_channels
        self.beta = beta
        self.qk_shared = qk_shared
        inner = heads * head_channels
        self.h_lins = torch.nn.Linear(channels, inner)
        if not qk_shared:
            self.q = torch.nn.Linear(channels, inner, bias=qkv_bias)
        self.k = torch.nn.Linear(channels, inner, bias=qkv_bias)
        self.v = torch.nn.Linear(channels, inner, bias=qkv_bias)
        self.lns = torch.nn.LayerNorm(inner)
        self.lin_out = torch.nn.Linear(inner, inner)
        self.dropout = torch.nn.Dropout(dropout)

    def reset_parameters(self) -> None:
        """Re-initialize every map and the layer norm."""
        for module in self.children():
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """Apply the attention (see the class docstring for shapes)."""
        x, mask = check_sequence(x, self.channels, mask)
        batch, num_nodes, _ = x.shape

        def split(t: Tensor) -> Tensor:  # [B, N, D * H] (head fastest) -> [B, H, N, D]
            return t.view(batch, num_nodes, self.head_channels, self.heads).permute(0, 3, 1, 2)

        gate = self.h_lins(x)
        k = split(torch.sigmoid(self.k(x)))
        q = k if self.qk_shared else split(torch.sigmoid(self.q(x)))
        v = split(zero_padded(self.v(x), mask))
        numerator = q @ (k.transpose(-1, -2) @ v)  # [B, H, N, D]
        denominator = q @ k.sum(dim=-2).unsqueeze(-1) + DENOMINATOR_EPS  # [B, H, N, 1]
        att = (
            (numerator / denominator)
            .permute(0, 2, 3, 1)
            .reshape(batch, num_nodes, self.heads * self.head_channels)
        )
        out = self.lns(att) * (gate + self.beta)
        return self.dropout(F.relu(self.lin_out(out)))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(heads={self.heads}, head_channels={self.head_channels})"
