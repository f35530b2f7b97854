r"""ResGatedGraphConv: the residual gated graph convolution (Bresson & Laurent, 2017)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from gnn.core import Linear, MessagePassing
from gnn.core.graph import read_graph
from gnn.core.nn.inits import zeros

from . import _attention as att
from ._utils import add_root_and_bias, check_edge_attr, check_in_channels

#: the default gate (stateless, shared like PyG's default argument)
_SIGMOID = torch.nn.Sigmoid()


class ResGatedGraphConv(MessagePassing):
    r"""The residual gated graph convolutional operator from "Residual Gated Graph ConvNets".

    .. math::
        \mathbf{x}^{\prime}_i = \mathbf{W}_1 \mathbf{x}_i +
        \sum_{j \in \mathcal{N}(i)} \eta_{i,j} \odot \mathbf{W}_2 \mathbf{x}_j + \mathbf{b},
        \qquad
        \eta_{i,j} = \sigma(\mathbf{W}_3 \mathbf{x}_i + \mathbf{W}_4 \mathbf{x}_j)

    (``lin_skip`` = :math:`\mathbf{W}_1`, ``lin_value`` = :math:`\mathbf{W}_2`,
    ``lin_key`` = :math:`\mathbf{W}_3`, ``lin_query`` = :math:`\mathbf{W}_4`,
    :math:`\sigma` = ``act``). With ``edge_dim`` the edge features are
    concatenated to the inputs of :math:`\mathbf{W}_{2,3,4}`.

    Args:
        in_channels: input size, ``-1`` for lazy, or ``(F_src, F_dst)``.
        out_channels: output size.
        act: gate nonlinearity (default sigmoid).
        edge_dim: edge feature size.
        root_weight: add the skip term :math:`\mathbf{W}_1 \mathbf{x}_i`.
        bias: learn the additive bias :math:`\mathbf{b}`.
        **kwargs: :class:`~gnn.core.MessagePassing` arguments.

    Shapes:
        ``x`` ``[N, F]`` or ``([N_src, F_src], [N_dst, F_dst])``,
        ``edge_attr`` ``[E, edge_dim]``; output ``[N_dst, out_channels]``.

    Example:
        >>> conv = ResGatedGraphConv(16, 32)
        >>> conv(torch.randn(10, 16), torch.randint(0, 10, (2, 40))).shape
        torch.Size([10, 32])
    """

    def __init__(
        self,
        in_channels: int | tuple[int, int],
        out_channels: int,
        act: Callable[[Tensor], Tensor] | None = _SIGMOID,
        edge_dim: int | None = None,
        root_weight: bool = True,
        bias: bool = True,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("aggr", "add")
        super().__init__(**kwargs)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.act = act
        self.edge_dim = edge_dim
        self.root_weight = root_weight

        src_in, dst_in = (in_channels, in_channels) if isinstance(in_channels, int) else in_channels
        extra = edge_dim if edge_dim is not None else 0

        def width(n: int) -> int:
            return n + extra if n >= 0 else -1

        self.lin_key = Linear(width(dst_in), out_channels)
        self.lin_query = Linear(width(src_in), out_channels)
        self.lin_value = Linear(width(src_in), out_channels)
        if root_weight:
            self.lin_skip: Linear | None = Linear(dst_in, out_channels, bias=False)
        else:
            self.lin_skip = None
        if bias:
            self.bias: torch.nn.Parameter | None = torch.nn.Parameter(torch.empty(out_channels))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Reset the projections, zero bias."""
        super().reset_parameters()
        for lin in (self.lin_key, self.lin_query, self.lin_value, self.lin_skip):
            if lin is not None:
                lin.reset_parameters()
        zeros(self.bias)

    def forward(
        self, x: Tensor | tuple[Tensor, Tensor], edge_index: Any, edge_attr: Tensor | None = None
    ) -> Tensor:
        """Gated aggregation over the incoming edges of every node."""
        check_in_channels(x, self.in_channels)
        x_src, x_dst = (x, x) if isinstance(x, Tensor) else x
        if x_src is None or x_dst is None:
            raise ValueError("'x' must be a tensor or a pair of tensors (x_src, x_dst), got None in it")
        graph = read_graph(edge_index, None, self.flow)
        if self.edge_dim is None:
            if edge_attr is not None and not graph.is_sparse:
                raise ValueError("'edge_attr' was given but the layer was built without 'edge_dim'")
            k, q, v = self.lin_key(x_dst), self.lin_query(x_src), self.lin_value(x_src)
            edge_attr = None
        else:
            if edge_attr is None:
                edge_attr = graph.value
            if edge_attr is None:
                raise ValueError("'edge_attr' is required when the layer has 'edge_dim'")
            edge_attr = check_edge_attr(edge_attr, graph.edge_index.size(1))
            if edge_attr.dim() == 1:
                edge_attr = edge_attr.view(-1, 1)
            k, q, v = x_dst, x_src, x_src
        size = att.by_row(x_src.size(self.node_dim), x_dst.size(self.node_dim), self.flow)
        # pairs by edge_index row: k belongs to the targets, q and v to the sources
        k, q, v = (
            att.by_row(None, k, self.flow),
            att.by_row(q, None, self.flow),
            att.by_row(v, None, self.flow),
        )
        out = self.propagate(graph.edge_index, k=k, q=q, v=v, edge_attr=edge_attr, size=size)
        return add_root_and_bias(out, self.lin_skip, x_dst, self.bias)

    def message(self, k_i: Tensor, q_j: Tensor, v_j: Tensor, edge_attr: Tensor | None) -> Tensor:
        """``act(k_i + q_j) * v_j`` (edge features concatenated first when ``edge_dim`` is set)."""
        if self.edge_dim is not None and edge_attr is not None:
            k_i = self.lin_key(torch.cat([k_i, edge_attr], dim=-1))
            q_j = self.lin_query(torch.cat([q_j, edge_attr], dim=-1))
            v_j = self.lin_value(torch.cat([v_j, edge_attr], dim=-1))
        gate = k_i + q_j
        if self.act is not None:
            gate = self.act(gate)
        return gate * v_j
