r"""The dense graph attention layer :class:`DenseGATConv` (Veličković et al., 2018)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import Parameter

from gnn.core.nn.inits import glorot, zeros
from gnn.core.nn.linear import Linear

from ._inputs import apply_mask, dense_inputs


class DenseGATConv(torch.nn.Module):
    r"""Graph attention on dense, batched adjacency matrices.

    Per graph of the batch and per head :math:`h`, with :math:`z = x W^\top`
    split into heads:

    .. math::
        e_{ij} = \mathrm{LeakyReLU}\big(a_{dst}^\top z_i + a_{src}^\top z_j\big),
        \qquad \alpha_{ij} = \frac{\exp(e_{ij})}{\sum_{k : A_{ik} \neq 0} \exp(e_{ik})},
        \qquad x'_i = \sum_{j : A_{ij} \neq 0} \alpha_{ij} z_j

    over the non-zero entries of ``adj`` (node ``i`` attends to the ``j`` with
    ``adj[b, i, j] != 0``; the weights themselves are not used), with the diagonal made non-zero
    when ``add_loop=True``. Heads are concatenated (``concat=True``) or
    averaged, then the bias is added. ``dropout`` drops attention
    coefficients while training. A node without any incoming edge
    (possible with ``add_loop=False``) aggregates nothing (its output is the
    bias), where PyG 2.8 returns NaN.

    Args:
        in_channels: input feature size (``-1``: lazy).
        out_channels: feature size per head.
        heads: number of attention heads.
        concat: concatenate the heads (else average them).
        negative_slope: slope of the LeakyReLU.
        dropout: dropout probability of the attention coefficients.
        bias: learn an additive bias.

    Shapes:
        ``x`` ``[B, N, F]`` (or ``[N, F]``), ``adj`` ``[B, N, N]`` (or
        ``[N, N]``), ``mask`` ``[B, N]`` -> ``[B, N, heads * out_channels]``
        (``[B, N, out_channels]`` without ``concat``; always batched). Rows of
        masked-out nodes are zero.

    Example:
        >>> conv = DenseGATConv(16, 8, heads=4)
        >>> conv(torch.randn(2, 5, 16), torch.ones(2, 5, 5)).shape
        torch.Size([2, 5, 32])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        heads: int = 1,
        concat: bool = True,
        negative_slope: float = 0.2,
        dropout: float = 0.0,
        bias: bool = True,
    ) -> None:
        super().__init__()
        if not isinstance(heads, int) or heads < 1:
            raise ValueError(f"'heads' must be a positive int, got {heads!r}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.heads = heads
        self.concat = concat
        self.negative_slope = negative_slope
        self.dropout = dropout
        self.lin = Linear(in_channels, heads * out_channels, bias=False, weight_initializer="glorot")
        self.att_src = Parameter(torch.empty(1, 1, heads, out_channels))
        self.att_dst = Parameter(torch.empty(1, 1, heads, out_channels))
        if bias:
            self.bias = Parameter(torch.empty(heads * out_channels if concat else out_channels))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Glorot weights and attention vectors, zero bias."""
        self.lin.reset_parameters()
        glorot(self.att_src)
        glorot(self.att_dst)
        zeros(self.bias)

    def forward(self, x: Tensor, adj: Tensor, mask: Tensor | None = None, add_loop: bool = True) -> Tensor:
        """Apply the layer (see the class docstring for shapes)."""
        x, adj, mask = dense_inputs(x, adj, mask, self.in_channels)
        batch, num_nodes = max(x.size(0), adj.size(0)), x.size(1)
        heads, channels = self.heads, self.out_channels
        z = self.lin(x).view(x.size(0), num_nodes, heads, channels)
        score_src = (z * self.att_src).sum(-1).transpose(1, 2)  # [B, H, N]
        score_dst = (z * self.att_dst).sum(-1).transpose(1, 2)
        scores = F.leaky_relu(score_dst.unsqueeze(-1) + score_src.unsqueeze(-2), self.negative_slope)

        edges = adj != 0  # [B, N_dst, N_src]
        if add_loop:
            eye = torch.eye(num_nodes, dtype=torch.bool, device=adj.device)
            edges = edges | eye
        edges = edges.unsqueeze(1)  # [B, 1, N, N], shared by the heads
        scores = scores.masked_fill(~edges, torch.finfo(scores.dtype).min)
        # a row without edges would be a uniform softmax over non-edges: zeroed
        alpha = torch.softmax(scores, dim=-1).masked_fill(~edges, 0.0)
        alpha = F.dropout(alpha, p=self.dropout, training=self.training)

        out = alpha @ z.transpose(1, 2)  # [B, H, N, C]
        out = out.transpose(1, 2)  # [B, N, H, C]
        if self.concat:
            out = out.reshape(batch, num_nodes, heads * channels)
        else:
            out = out.mean(dim=2)
        if self.bias is not None:
            out = out + self.bias
        return apply_mask(out, mask)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels}, heads={self.heads})"
