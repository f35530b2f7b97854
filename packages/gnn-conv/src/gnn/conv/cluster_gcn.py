r"""The Cluster-GCN layer (Chiang et al., 2019), :class:`ClusterGCNConv`."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from gnn.core import ops
from gnn.core import validation as v
from gnn.core.message_passing import MessagePassing
from gnn.core.nn.linear import Linear

from ._utils import check_in_channels, edge_list, weighted_message
from ._utils import num_nodes as count_nodes


class ClusterGCNConv(MessagePassing):
    r"""Cluster-GCN layer with diagonal enhancement.

    .. math::
        X' = \big(\tilde{P} + \lambda\,\mathrm{diag}(\tilde{P})\big) X \Theta_1 + X \Theta_2,
        \qquad \tilde{P} = \tilde{D}^{-1} \tilde{A}

    :math:`\tilde{A}` is the 0/1 adjacency (edge ``j -> i`` in row ``i``,
    duplicates counted) with every existing self loop replaced by one
    self loop per node (when ``add_self_loops``), and :math:`\tilde{D}` its
    in-degree matrix (clamped to at least 1). Every self-loop entry is
    therefore weighted :math:`(1 + \lambda) / \tilde{d}_i`, all other
    entries :math:`1 / \tilde{d}_i`. The existing loops are kept with weight
    0 (no data-dependent shapes) and the propagation is a fused ``ops.spmm``.

    Without ``add_self_loops`` the diagonal is the graph's own loops; this
    follows the formula exactly, whereas PyG 2.8 adds :math:`\lambda /
    \tilde{d}` to the loops in the order they appear in ``edge_index``
    (equal when the graph ends with one loop per node in node order).

    Args:
        in_channels: input size (``-1``: lazy).
        out_channels: output size.
        diag_lambda: diagonal enhancement :math:`\lambda`.
        add_self_loops: replace existing self loops by one per node.
        bias: learn a bias (in ``lin_out``).
        **kwargs: :class:`~gnn.core.MessagePassing` arguments.

    Shapes:
        ``x`` ``[N, in_channels]``, ``edge_index`` ``[2, E]`` or sparse
        ``adj_t`` (values ignored) -> ``[N, out_channels]``.

    Example:
        >>> conv = ClusterGCNConv(16, 32, diag_lambda=0.5)
        >>> conv(torch.randn(3, 16), torch.tensor([[0, 1], [1, 2]])).shape
        torch.Size([3, 32])
    """

    fused_message = "edge_weight * x_j"

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        diag_lambda: float = 0.0,
        add_self_loops: bool = True,
        bias: bool = True,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("aggr", "add")
        super().__init__(**kwargs)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.diag_lambda = diag_lambda
        self.add_self_loops = add_self_loops
        self.lin_out = Linear(in_channels, out_channels, bias=bias, weight_initializer="glorot")
        self.lin_root = Linear(in_channels, out_channels, bias=False, weight_initializer="glorot")
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialize both linear maps (glorot)."""
        super().reset_parameters()
        self.lin_out.reset_parameters()
        self.lin_root.reset_parameters()

    def _weights(self, edge_index: Tensor, num_nodes: int, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
        row, col = edge_index[0], edge_index[1]
        is_loop = row == col
        if self.add_self_loops:
            loop = torch.arange(num_nodes, device=edge_index.device, dtype=edge_index.dtype)
            edge_index = torch.cat([edge_index, torch.stack([loop, loop])], dim=1)
            base = torch.cat([(~is_loop).to(dtype), torch.ones(num_nodes, dtype=dtype, device=row.device)])
            diag = torch.cat([torch.zeros_like(is_loop), torch.ones_like(loop, dtype=torch.bool)])
        else:
            base = torch.ones(row.numel(), dtype=dtype, device=row.device)
            diag = is_loop
        receiver = edge_index[1] if self.flow == "source_to_target" else edge_index[0]
        deg = ops.scatter(base, receiver, 0, num_nodes, "sum")
        deg_inv = 1.0 / deg.clamp(min=1.0)
        weight = base * deg_inv[receiver] * (1.0 + self.diag_lambda * diag.to(dtype))
        return edge_index, weight

    def forward(self, x: Tensor, edge_index: Any) -> Tensor:
        """Apply the layer (see the class docstring for shapes)."""
        check_in_channels(x, self.in_channels)
        edge_index, _ = edge_list(edge_index, None)
        num_nodes = count_nodes(self, x)
        v.check_edge_index_nodes(edge_index, num_nodes)
        edge_index, edge_weight = self._weights(edge_index, num_nodes, x.dtype)
        if self.add_self_loops and self.exact_edges:  # PyG's edge set: the replaced loops removed
            given = edge_index[:, : edge_index.size(1) - num_nodes]
            keep = torch.cat([given[0] != given[1], given.new_ones(num_nodes, dtype=torch.bool)])
            edge_index, edge_weight = edge_index[:, keep], edge_weight[keep]
        out = self.propagate(edge_index, x=x, edge_weight=edge_weight)
        return self.lin_root.add_to(self.lin_out(out), x)

    def message(self, x_j: Tensor, edge_weight: Tensor) -> Tensor:
        """``edge_weight * x_j``."""
        return weighted_message(x_j, edge_weight)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.in_channels}, {self.out_channels}, diag_lambda={self.diag_lambda})"
        )
