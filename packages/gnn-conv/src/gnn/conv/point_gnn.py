r"""PointGNNConv: the Point-GNN operator (Shi and Rajkumar, 2020)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from gnn.core import MessagePassing
from gnn.core import validation as v
from gnn.core.nn.inits import reset

from ._point import check_points, check_rows, graph_input


class PointGNNConv(MessagePassing):
    r"""The Point-GNN operator from "Point-GNN: Graph Neural Network for 3D Object Detection in a
    Point Cloud".

    .. math::
        \Delta \mathbf{p}_i = h_{\mathbf{\Theta}}(\mathbf{x}_i), \qquad
        \mathbf{e}_{j,i} = f_{\mathbf{\Theta}}(\mathbf{p}_j - \mathbf{p}_i + \Delta \mathbf{p}_i
        \,\Vert\, \mathbf{x}_j), \qquad
        \mathbf{x}^{\prime}_i = g_{\mathbf{\Theta}}\Big(\max_{j \in \mathcal{N}(i)}
        \mathbf{e}_{j,i}\Big) + \mathbf{x}_i

    The offset :math:`\Delta \mathbf{p}_i` aligns the neighbourhood of each node; nodes
    without neighbours aggregate 0. The graph is usually a radius graph of the points.

    Args:
        mlp_h: :math:`h`, maps ``[E, F]`` node features to ``[E, D]`` position offsets.
        mlp_f: :math:`f`, maps ``[E, D + F]`` to ``[E, F_e]`` edge features.
        mlp_g: :math:`g`, maps the ``[N, F_e]`` aggregation back to ``[N, F]``.
        **kwargs: :class:`~gnn.core.MessagePassing` arguments (``aggr`` defaults to ``"max"``).

    Shapes:
        ``x`` ``[N, F]``, ``pos`` ``[N, D]`` (``D = 3`` in the paper), ``edge_index`` ``[2, E]``
        or sparse ``adj_t`` -> ``[N, F]``.

    Example:
        >>> L = torch.nn.Linear
        >>> conv = PointGNNConv(L(16, 3), L(3 + 16, 32), L(32, 16))
        >>> x, pos = torch.randn(10, 16), torch.randn(10, 3)
        >>> conv(x, pos, torch.randint(0, 10, (2, 40))).shape
        torch.Size([10, 16])
    """

    def __init__(
        self, mlp_h: torch.nn.Module, mlp_f: torch.nn.Module, mlp_g: torch.nn.Module, **kwargs: Any
    ) -> None:
        kwargs.setdefault("aggr", "max")
        super().__init__(**kwargs)
        self.mlp_h = mlp_h
        self.mlp_f = mlp_f
        self.mlp_g = mlp_g
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Reset the three networks."""
        super().reset_parameters()
        reset(self.mlp_h)
        reset(self.mlp_f)
        reset(self.mlp_g)

    def forward(self, x: Tensor, pos: Tensor, edge_index: Any) -> Tensor:
        """``x + mlp_g(max_j mlp_f([pos_j - pos_i + mlp_h(x_i), x_j]))``."""
        v.check_tensor("x", x)
        if x.dim() != 2:
            raise ValueError(f"'x' must have shape [N, F], got {v.describe(x)}")
        if not isinstance(pos, Tensor):
            raise TypeError(f"'pos' must be a [N, D] tensor, got {v.describe(pos)}")
        pos, _ = check_points("pos", pos)
        check_rows("pos", pos, x.size(0), "node of 'x'")
        graph_input(edge_index)
        out = self.propagate(edge_index, x=x, pos=pos)
        return x + self.mlp_g(out)

    def message(self, pos_j: Tensor, pos_i: Tensor, x_i: Tensor, x_j: Tensor) -> Tensor:
        offset = self.mlp_h(x_i)
        return self.mlp_f(torch.cat([pos_j - pos_i + offset, x_j], dim=-1))

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(\n  mlp_h={self.mlp_h},\n  mlp_f={self.mlp_f},\n  mlp_g={self.mlp_g},\n)"
        )
