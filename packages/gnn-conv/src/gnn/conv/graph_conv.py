r"""The graph operator of Morris et al. (2019), :class:`GraphConv`."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from gnn.core.message_passing import MessagePassing
from gnn.core.nn.linear import Linear
from gnn.core.utils.sparse import is_sparse

from ._utils import check_in_channels, pair


class GraphConv(MessagePassing):
    r"""Weisfeiler-Leman GNN layer: :math:`x_i' = W_1 x_i + W_2 \bigoplus_{j \in \mathcal{N}(i)} e_{j,i} x_j`.

    The aggregation (default sum) runs on the fused ``ops.spmm`` path.

    Args:
        in_channels: input size or ``(F_src, F_dst)`` (``-1``: lazy).
        out_channels: output size.
        aggr: ``"add"``, ``"mean"``, ``"max"`` ...
        bias: learn a bias (in ``lin_rel``).
        **kwargs: :class:`~gnn.core.MessagePassing` arguments.

    Shapes:
        ``x`` ``[N, F]`` or a pair, ``edge_weight`` ``[E]`` -> ``[N_dst, out_channels]``.

    Example:
        >>> conv = GraphConv(16, 32)
        >>> conv(torch.randn(4, 16), torch.tensor([[0, 1], [1, 2]])).shape
        torch.Size([4, 32])
    """

    fused_message = "edge_weight * x_j"

    def __init__(
        self,
        in_channels: int | tuple[int, int],
        out_channels: int,
        aggr: str = "add",
        bias: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(aggr=aggr, **kwargs)
        self.in_channels = in_channels
        self.out_channels = out_channels
        channels = (in_channels, in_channels) if isinstance(in_channels, int) else tuple(in_channels)
        self.lin_rel = Linear(channels[0], out_channels, bias=bias)
        self.lin_root = Linear(channels[1], out_channels, bias=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialize both linear maps."""
        super().reset_parameters()
        self.lin_rel.reset_parameters()
        self.lin_root.reset_parameters()

    def forward(
        self,
        x: Tensor | tuple[Tensor, Tensor | None],
        edge_index: Any,
        edge_weight: Tensor | None = None,
        size: tuple[int, int] | None = None,
    ) -> Tensor:
        """Apply the layer (see the class docstring for shapes)."""
        check_in_channels(x, self.in_channels)
        x_src, x_dst = pair(x)
        if is_sparse(edge_index):
            edge_weight = None  # the adjacency's values are the weights
        out = self.propagate(edge_index, x=(x_src, x_dst), edge_weight=edge_weight, size=size)
        out = self.lin_rel(out)
        if x_dst is not None:
            out = self.lin_root.add_to(out, x_dst)
        return out

    def message(self, x_j: Tensor, edge_weight: Tensor | None) -> Tensor:
        """``edge_weight * x_j`` (or ``x_j`` without weights)."""
        return x_j if edge_weight is None else edge_weight.view(-1, 1) * x_j
