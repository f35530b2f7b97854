r"""The dense GraphSAGE operator :class:`DenseSAGEConv` (Hamilton et al., 2017)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from gnn.core.nn.linear import Linear

from ._inputs import apply_mask, dense_inputs


class DenseSAGEConv(torch.nn.Module):
    r"""GraphSAGE (mean aggregation) on dense, batched adjacency matrices.

    .. math::
        X' = \frac{A X}{\max(1, A \mathbf{1})} W_1^\top + X W_2^\top + b

    per graph of the batch (``adj[b, i, j]``: the weight of node ``j`` for node ``i``; the
    division is row-wise by the weighted degree), followed by
    :math:`x'_i \leftarrow x'_i / \lVert x'_i \rVert_2` when ``normalize``.

    Args:
        in_channels: input feature size (``-1``: lazy).
        out_channels: output feature size.
        normalize: L2-normalize each output row.
        bias: learn an additive bias (in ``lin_root``).

    Shapes:
        ``x`` ``[B, N, F]`` (or ``[N, F]``), ``adj`` ``[B, N, N]`` (or
        ``[N, N]``), ``mask`` ``[B, N]`` -> ``[B, N, out_channels]`` (always
        batched). Rows of masked-out nodes are zero.

    Example:
        >>> conv = DenseSAGEConv(16, 32)
        >>> conv(torch.randn(2, 5, 16), torch.ones(2, 5, 5)).shape
        torch.Size([2, 5, 32])
    """

    def __init__(
        self, in_channels: int, out_channels: int, normalize: bool = False, bias: bool = True
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.normalize = normalize
        self.lin_rel = Linear(in_channels, out_channels, bias=False)
        self.lin_root = Linear(in_channels, out_channels, bias=bias)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialize both linear maps."""
        self.lin_rel.reset_parameters()
        self.lin_root.reset_parameters()

    def forward(self, x: Tensor, adj: Tensor, mask: Tensor | None = None) -> Tensor:
        """Apply the layer (see the class docstring for shapes)."""
        x, adj, mask = dense_inputs(x, adj, mask, self.in_channels)
        out = (adj @ x) / adj.sum(-1, keepdim=True).clamp(min=1)
        out = self.lin_rel(out) + self.lin_root(x)
        if self.normalize:
            out = F.normalize(out, p=2.0, dim=-1)
        return apply_mask(out, mask)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels})"
