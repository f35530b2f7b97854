"""CGConv: the crystal graph convolution (Xie & Grossman, 2018)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from gnn.core import MessagePassing

from ._utils import check_edge_attr, check_in_channels


class CGConv(MessagePassing):
    r"""The crystal graph convolutional operator.

    .. math::
        \mathbf{x}^{\prime}_i = \mathbf{x}_i + \sum_{j \in \mathcal{N}(i)}
        \sigma\left(\mathbf{z}_{i,j} \mathbf{W}_f + \mathbf{b}_f\right) \odot
        g\left(\mathbf{z}_{i,j} \mathbf{W}_s + \mathbf{b}_s\right)

    with :math:`\mathbf{z}_{i,j} = [\mathbf{x}_i, \mathbf{x}_j, \mathbf{e}_{j,i}]`,
    :math:`\sigma` the sigmoid and :math:`g` the softplus. With
    ``batch_norm=True`` the aggregated sum passes through ``BatchNorm1d``
    before the residual is added.

    Args:
        channels: node feature size, or ``(F_src, F_dst)`` for bipartite graphs.
            The output has ``F_dst`` features.
        dim: edge feature size (``0``: no edge features).
        aggr: aggregation of the gated messages.
        batch_norm: normalize the aggregated messages with ``BatchNorm1d``.
        bias: learn the biases of the two linear maps.
        **kwargs: passed to :class:`~gnn.core.MessagePassing`.

    Shapes:
        ``x`` ``[N, F]`` or ``([N_src, F_src], [N_dst, F_dst])``,
        ``edge_index`` ``[2, E]`` or sparse ``adj_t``, ``edge_attr`` ``[E, dim]``
        -> ``[N_dst, F_dst]``.

    Example:
        >>> conv = CGConv(16, dim=4)
        >>> conv(torch.randn(10, 16), torch.randint(0, 10, (2, 30)), torch.randn(30, 4)).shape
        torch.Size([10, 16])
    """

    def __init__(
        self,
        channels: int | tuple[int, int],
        dim: int = 0,
        aggr: str = "add",
        batch_norm: bool = False,
        bias: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(aggr=aggr, **kwargs)
        self.channels = channels
        self.dim = dim
        self.batch_norm = batch_norm
        src, dst = (channels, channels) if isinstance(channels, int) else tuple(channels)
        self.lin_f = torch.nn.Linear(src + dst + dim, dst, bias=bias)
        self.lin_s = torch.nn.Linear(src + dst + dim, dst, bias=bias)
        self.bn = torch.nn.BatchNorm1d(dst) if batch_norm else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        self.lin_f.reset_parameters()
        self.lin_s.reset_parameters()
        if self.bn is not None:
            self.bn.reset_parameters()

    def forward(
        self,
        x: Tensor | tuple[Tensor, Tensor],
        edge_index: Any,
        edge_attr: Tensor | None = None,
    ) -> Tensor:
        """Gated message passing plus the residual ``x_dst``."""
        check_in_channels(x, self.channels)
        if isinstance(x, Tensor):
            x = (x, x)
        if x[1] is None:
            raise ValueError("'x' must give target features x[1]: CGConv adds them as a residual")
        check_edge_attr(edge_attr, edge_index, features=self.dim, why=f"dim={self.dim}")
        out = self.propagate(edge_index, x=x, edge_attr=edge_attr)
        if self.bn is not None:
            out = self.bn(out)
        return out + x[1]

    def message(self, x_i: Tensor, x_j: Tensor, edge_attr: Tensor | None) -> Tensor:
        # with dim=0 the layer has no edge features (sparse adjacency values are ignored)
        if edge_attr is None or self.dim == 0:
            parts = [x_i, x_j]
        else:
            parts = [x_i, x_j, edge_attr if edge_attr.dim() > 1 else edge_attr.unsqueeze(-1)]
        z = torch.cat(parts, dim=-1)
        return torch.sigmoid(self.lin_f(z)) * F.softplus(self.lin_s(z))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.channels}, dim={self.dim})"
