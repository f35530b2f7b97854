r"""The simple global attention of SGFormer (Wu et al., 2023): :class:`SGFormerAttention`."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ._inputs import check_heads, check_sequence, zero_padded


class SGFormerAttention(torch.nn.Module):
    r"""SGFormer's linear-time global attention over padded node sets.

    Per head, :math:`\tilde{q}_i = q_i / \lVert q_i \rVert_2`,
    :math:`\tilde{k}_j = k_j / \lVert k_j \rVert_2` (``q, k, v`` linear maps of
    ``x``, ``head_channels`` each) and, with ``N`` the padded number of nodes,

    .. math::
        \mathrm{att}_i = \frac{\tilde{q}_i^\top \big(\sum_j \tilde{k}_j v_j^\top\big) + N v_i}
                              {\tilde{q}_i^\top \sum_j \tilde{k}_j + N}

    averaged over the heads. A ``mask`` zeroes the values of padded nodes
    (their normalized keys still count in the denominator, as in PyG 2.8).
    Unlike PyG 2.8, float64 inputs work.

    Args:
        channels: input size (a multiple of ``heads``).
        heads: number of heads.
        head_channels: size of each head (and of the output).
        qkv_bias: learn biases in the query, key and value maps.

    Shapes:
        ``x`` ``[B, N, channels]``, ``mask`` ``[B, N]`` (bool, True = real
        node) -> ``[B, N, head_channels]``.

    Example:
        >>> attn = SGFormerAttention(channels=16, heads=2, head_channels=8)
        >>> attn(torch.randn(2, 10, 16)).shape
        torch.Size([2, 10, 8])
    """

    def __init__(
        self, channels: int, heads: int = 1, head_channels: int = 64, qkv_bias: bool = False
    ) -> None:
        super().__init__()
        check_heads(heads, head_channels)
        if channels % heads != 0:
            raise ValueError(f"'channels' ({channels}) must be divisible by 'heads' ({heads})")
        self.channels = channels
        self.heads = heads
        self.head_channels = head_channels
        inner = heads * head_channels
        self.q = torch.nn.Linear(channels, inner, bias=qkv_bias)
        self.k = torch.nn.Linear(channels, inner, bias=qkv_bias)
        self.v = torch.nn.Linear(channels, inner, bias=qkv_bias)

    def reset_parameters(self) -> None:
        """Re-initialize the query, key and value maps."""
        for lin in (self.q, self.k, self.v):
            lin.reset_parameters()

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """Apply the attention (see the class docstring for shapes)."""
        x, mask = check_sequence(x, self.channels, mask)
        batch, num_nodes, _ = x.shape
        shape = (batch, num_nodes, self.heads, self.head_channels)
        q = F.normalize(self.q(x).view(shape), p=2.0, dim=-1)
        k = F.normalize(self.k(x).view(shape), p=2.0, dim=-1)
        v = zero_padded(self.v(x).view(shape), mask)
        context = torch.einsum("bnhm,bnhd->bhmd", k, v)
        numerator = torch.einsum("bnhm,bhmd->bnhd", q, context) + num_nodes * v
        denominator = torch.einsum("bnhm,bhm->bnh", q, k.sum(dim=1)).unsqueeze(-1) + num_nodes
        return (numerator / denominator).mean(dim=2)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(heads={self.heads}, head_channels={self.head_channels})"
