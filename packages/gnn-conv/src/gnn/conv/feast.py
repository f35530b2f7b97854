r"""FeaStConv: the feature-steered convolution (Verma et al., 2018)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from gnn.core import Linear, MessagePassing
from gnn.core.nn.inits import normal

from ._point import graph_input, node_pair, replace_self_loops
from ._utils import check_in_channels


class FeaStConv(MessagePassing):
    r"""The (translation-invariant) feature-steered convolution from "FeaStNet: Feature-Steered
    Graph Convolutions for 3D Shape Analysis".

    .. math::
        \mathbf{x}^{\prime}_i = \frac{1}{|\mathcal{N}(i)|} \sum_{j \in \mathcal{N}(i)}
        \sum_{h=1}^H q_h(\mathbf{x}_i, \mathbf{x}_j) \mathbf{W}_h \mathbf{x}_j + \mathbf{b},
        \qquad
        q_h(\mathbf{x}_i, \mathbf{x}_j) = \operatorname{softmax}_h
        \big(\mathbf{u}_h^{\top} (\mathbf{x}_j - \mathbf{x}_i) + c_h\big)

    with the softmax over the :math:`H` heads of one edge, :math:`\mathbf{W}_h` the blocks of
    ``lin``, :math:`\mathbf{u}_h` the rows of ``u`` and :math:`c_h` = ``c``. The mean (the
    default ``aggr``) runs over the neighbours and, with ``add_self_loops``, the node itself
    (given self loops are replaced, as in :class:`~gnn.conv.PointNetConv`; for a bipartite graph
    the loops are those of the ``min(N_src, N_dst)`` first nodes).

    Args:
        in_channels: input size, or ``-1`` for lazy.
        out_channels: output size.
        heads: number of attention heads :math:`H`.
        add_self_loops: replace the self loops by one loop per node.
        bias: learn an additive bias.
        **kwargs: :class:`~gnn.core.MessagePassing` arguments (``aggr`` defaults to ``"mean"``).

    Shapes:
        ``x`` ``[N, F_in]`` or ``(x_src, x_dst)``; ``edge_index`` ``[2, E]`` or sparse ``adj_t``
        -> ``[N_dst, out_channels]``.

    Example:
        >>> conv = FeaStConv(16, 32, heads=4)
        >>> conv(torch.randn(10, 16), torch.randint(0, 10, (2, 40))).shape
        torch.Size([10, 32])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        heads: int = 1,
        add_self_loops: bool = True,
        bias: bool = True,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("aggr", "mean")
        super().__init__(**kwargs)
        if not isinstance(heads, int) or isinstance(heads, bool) or heads < 1:
            raise ValueError(f"'heads' must be a positive int, got {heads!r}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.heads = heads
        self.add_self_loops = add_self_loops
        self.lin = Linear(in_channels, heads * out_channels, bias=False, weight_initializer="uniform")
        self.u = Linear(in_channels, heads, bias=False, weight_initializer="uniform")
        self.c = torch.nn.Parameter(torch.empty(heads))
        if bias:
            self.bias: torch.nn.Parameter | None = torch.nn.Parameter(torch.empty(out_channels))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Uniform ``lin`` and ``u``; ``c`` and ``bias`` drawn from ``N(0, 0.1^2)``."""
        super().reset_parameters()
        self.lin.reset_parameters()
        self.u.reset_parameters()
        normal(self.c, mean=0.0, std=0.1)
        normal(self.bias, mean=0.0, std=0.1)

    def forward(self, x: Tensor | tuple[Tensor, Tensor], edge_index: Any) -> Tensor:
        """Average the head-weighted transforms of the neighbours (and the node itself)."""
        check_in_channels(x, self.in_channels)
        x_pair = node_pair(x, "x")
        graph_input(edge_index)
        size = None
        looped = None
        if self.add_self_loops:
            sizes = (x_pair[0].size(0), x_pair[1].size(0))  # type: ignore[union-attr]
            looped = replace_self_loops(self, edge_index, sizes, min(sizes))
            edge_index, size = looped.edge_index, looped.sizes
            x_pair = looped.pad(x_pair)
        out = self.propagate(edge_index, x=x_pair, size=size)
        if looped is not None:
            out = looped.trim(out)
        return out if self.bias is None else out + self.bias

    def message(self, x_i: Tensor, x_j: Tensor) -> Tensor:
        q = torch.softmax(self.u(x_j - x_i) + self.c, dim=1)  # [E, H]
        transformed = self.lin(x_j).view(x_j.size(0), self.heads, self.out_channels)  # [E, H, C]
        return (transformed * q.unsqueeze(-1)).sum(dim=1)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels}, heads={self.heads})"
