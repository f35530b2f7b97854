r"""The dense graph convolution :class:`DenseGCNConv` (Kipf & Welling, 2017)."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import Parameter

from gnn.core.nn.inits import zeros
from gnn.core.nn.linear import Linear

from ._inputs import apply_mask, dense_inputs, diagonal


class DenseGCNConv(torch.nn.Module):
    r"""Graph convolution on dense, batched adjacency matrices.

    .. math::
        X' = \hat{D}^{-1/2} \hat{A} \hat{D}^{-1/2} X \Theta + b

    per graph of the batch, with :math:`\hat{A}` the adjacency whose diagonal
    is *set* to 1 (2 when ``improved``) when ``add_loop=True`` (an existing
    self loop's weight is replaced, not added to), and
    :math:`\hat{D}_{ii} = \max(1, \sum_j \hat{A}_{ij})`. ``adj[b, i, j]`` is
    how much node ``j`` contributes to node ``i``.

    The normalized matrix is never formed: the layer computes
    :math:`d \odot (\hat{A} (d \odot Y))` with :math:`d = \hat{D}^{-1/2}` and
    the diagonal correction applied to the vector, so no ``[B, N, N]``
    temporary is allocated besides ``adj`` itself.

    Args:
        in_channels: input feature size (``-1``: lazy).
        out_channels: output feature size.
        improved: self loops get weight 2.
        bias: learn an additive bias.

    Shapes:
        ``x`` ``[B, N, F]`` (or ``[N, F]``), ``adj`` ``[B, N, N]`` (or
        ``[N, N]``), ``mask`` ``[B, N]`` -> ``[B, N, out_channels]`` (always
        batched). Rows of masked-out nodes are zero.

    Example:
        >>> conv = DenseGCNConv(16, 32)
        >>> conv(torch.randn(2, 5, 16), torch.ones(2, 5, 5)).shape
        torch.Size([2, 5, 32])
    """

    def __init__(
        self, in_channels: int, out_channels: int, improved: bool = False, bias: bool = True
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.improved = improved
        self.lin = Linear(in_channels, out_channels, bias=False, weight_initializer="glorot")
        if bias:
            self.bias = Parameter(torch.empty(out_channels))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Glorot weight, zero bias."""
        self.lin.reset_parameters()
        zeros(self.bias)

    def forward(self, x: Tensor, adj: Tensor, mask: Tensor | None = None, add_loop: bool = True) -> Tensor:
        """Apply the layer (see the class docstring for shapes)."""
        x, adj, mask = dense_inputs(x, adj, mask, self.in_channels)
        deg = adj.sum(-1)
        if add_loop:
            loop = 2.0 if self.improved else 1.0
            correction = loop - diagonal(adj)  # [B, N]: the diagonal becomes `loop`
            deg = deg + correction
        scale = deg.clamp(min=1).pow(-0.5).unsqueeze(-1)  # [B, N, 1]

        def propagate(h: Tensor) -> Tensor:
            h = scale * h
            out = adj @ h
            if add_loop:
                out = out + correction.unsqueeze(-1) * h
            return scale * out

        # the cheaper order: transform first when it shrinks the features
        if self.lin.in_channels < 0 or self.out_channels <= x.size(-1):
            out = propagate(self.lin(x))
        else:
            out = self.lin(propagate(x))
        if self.bias is not None:
            out = out + self.bias
        return apply_mask(out, mask)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels})"
