r"""The dense Weisfeiler-Leman graph operator :class:`DenseGraphConv` (Morris et al., 2019)."""

from __future__ import annotations

import torch
from torch import Tensor

from gnn.core.nn.linear import Linear

from ._inputs import apply_mask, dense_inputs

AGGRS = ("add", "mean", "max")


class DenseGraphConv(torch.nn.Module):
    r"""GraphConv on dense, batched adjacency matrices.

    .. math::
        X' = \mathrm{aggr}(A, X)\, W_1^\top + b + X W_2^\top

    with, per graph of the batch (``adj[b, i, j]``: how much node ``j`` contributes to node ``i``):

    * ``"add"``: :math:`A X`;
    * ``"mean"``: :math:`A X` divided row-wise by :math:`\max(1, \sum_j A_{ij})`;
    * ``"max"``: :math:`\max_{j : A_{ji} \neq 0} x_j` feature-wise, 0 for a node
      without such ``j``. As in PyG 2.8, the maximum reads the adjacency
      *transposed* and ignores the weights (only whether an entry is
      non-zero counts); for a symmetric adjacency this is the maximum over
      the neighbours. It builds a ``[B, N, N, F]`` temporary.

    Args:
        in_channels: input feature size (``-1``: lazy).
        out_channels: output feature size.
        aggr: ``"add"``, ``"mean"`` or ``"max"``.
        bias: learn an additive bias (in ``lin_rel``).

    Shapes:
        ``x`` ``[B, N, F]`` (or ``[N, F]``), ``adj`` ``[B, N, N]`` (or
        ``[N, N]``), ``mask`` ``[B, N]`` -> ``[B, N, out_channels]`` (always
        batched). Rows of masked-out nodes are zero.

    Example:
        >>> conv = DenseGraphConv(16, 32, aggr="mean")
        >>> conv(torch.randn(2, 5, 16), torch.ones(2, 5, 5)).shape
        torch.Size([2, 5, 32])
    """

    def __init__(self, in_channels: int, out_channels: int, aggr: str = "add", bias: bool = True) -> None:
        super().__init__()
        if aggr not in AGGRS:
            raise ValueError(f"'aggr' must be one of {AGGRS}, got {aggr!r}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.aggr = aggr
        self.lin_rel = Linear(in_channels, out_channels, bias=bias)
        self.lin_root = Linear(in_channels, out_channels, bias=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialize both linear maps."""
        self.lin_rel.reset_parameters()
        self.lin_root.reset_parameters()

    def forward(self, x: Tensor, adj: Tensor, mask: Tensor | None = None) -> Tensor:
        """Apply the layer (see the class docstring for shapes)."""
        x, adj, mask = dense_inputs(x, adj, mask, self.in_channels)
        if self.aggr == "max" and x.size(1) == 0:
            out = x.new_zeros(adj.shape[:2] + x.shape[-1:])
        elif self.aggr == "max":
            # [B, N_dst, N_src, F]: x_j where adj[j, dst] != 0, else -inf
            edges = (adj != 0).transpose(-1, -2).unsqueeze(-1)
            candidates = x.unsqueeze(-3).masked_fill(~edges, float("-inf"))
            out = candidates.amax(dim=-2)
            out = out.masked_fill(~edges.any(dim=-2), 0.0)
        else:
            out = adj @ x
            if self.aggr == "mean":
                out = out / adj.sum(-1, keepdim=True).clamp(min=1)
        out = self.lin_rel(out) + self.lin_root(x)
        return apply_mask(out, mask)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels})"
