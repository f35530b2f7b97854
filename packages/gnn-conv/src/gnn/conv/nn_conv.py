"""NNConv: the edge-conditioned convolution (Gilmer et al., 2017; Simonovsky & Komodakis, 2017)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor
from torch.nn import Parameter

from gnn.core import Linear, MessagePassing
from gnn.core import validation as v
from gnn.core.nn.inits import reset, zeros
from gnn.core.utils import is_sparse

from ._utils import add_root_and_bias, check_edge_attr, check_flat_nodes, check_in_channels


class NNConv(MessagePassing):
    r"""The continuous kernel-based (edge-conditioned) convolution.

    .. math::
        \mathbf{x}^{\prime}_i = \mathbf{\Theta} \mathbf{x}_i +
        \bigoplus_{j \in \mathcal{N}(i)} \mathbf{x}_j \cdot
        h_{\mathbf{\Theta}}(\mathbf{e}_{i,j}) + \mathbf{b}

    where :math:`h_{\mathbf{\Theta}}` (``nn``) maps each edge's features to a
    ``[in_channels, out_channels]`` matrix (returned flat, ``[E, in * out]``).

    Args:
        in_channels: input feature size, or ``(F_src, F_dst)`` for bipartite
            graphs; ``F_src = -1`` reads it from ``x`` and ``F_dst = -1``
            makes the root weight lazy.
        out_channels: output feature size.
        nn: maps ``edge_attr`` ``[E, D]`` to ``[E, F_src * out_channels]``.
        aggr: aggregation of the messages (``"add"``, ``"mean"``, ``"max"`` ...).
        root_weight: add the transformed root features :math:`\mathbf{\Theta}\mathbf{x}_i`.
        bias: learn the additive bias :math:`\mathbf{b}`.
        **kwargs: passed to :class:`~gnn.core.MessagePassing`.

    Shapes:
        ``x`` ``[N, F_in]`` or ``([N_src, F_src], [N_dst, F_dst])``,
        ``edge_index`` ``[2, E]`` or sparse ``adj_t`` (its values are the edge
        features when ``edge_attr`` is ``None``), ``edge_attr`` ``[E, D]`` ->
        ``[N_dst, out_channels]``.

    Example:
        >>> nn = torch.nn.Sequential(torch.nn.Linear(4, 16 * 32))
        >>> conv = NNConv(16, 32, nn, aggr="mean")
        >>> conv(torch.randn(10, 16), torch.randint(0, 10, (2, 30)), torch.randn(30, 4)).shape
        torch.Size([10, 32])
    """

    def __init__(
        self,
        in_channels: int | tuple[int, int],
        out_channels: int,
        nn: Callable[..., Tensor],
        aggr: str = "add",
        root_weight: bool = True,
        bias: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(aggr=aggr, **kwargs)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.nn = nn
        self.root_weight = root_weight
        src, dst = (in_channels, in_channels) if isinstance(in_channels, int) else tuple(in_channels)
        self.in_channels_l = src
        if root_weight:
            self.lin = Linear(dst, out_channels, bias=False, weight_initializer="uniform")
        if bias:
            self.bias: Parameter | None = Parameter(torch.empty(out_channels))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        reset(self.nn)
        if self.root_weight:
            self.lin.reset_parameters()
        zeros(self.bias)

    def forward(
        self,
        x: Tensor | tuple[Tensor, Tensor | None],
        edge_index: Any,
        edge_attr: Tensor | None = None,
        size: tuple[int, int] | None = None,
    ) -> Tensor:
        """Edge-conditioned messages, aggregated, plus root term and bias."""
        check_in_channels(x, self.in_channels)
        check_flat_nodes(self, x)
        if isinstance(x, Tensor):
            x = (x, x)
        if edge_attr is None and not is_sparse(edge_index):
            raise ValueError("'edge_attr' is required: NNConv computes its weights from edge features")
        check_edge_attr(edge_attr, edge_index)
        if size is None and x[1] is not None:
            # the message reads only x_j: give propagate the target count of a bipartite x
            size = (x[0].size(0), x[1].size(0))
        out = self.propagate(edge_index, x=x, edge_attr=edge_attr, size=size)
        return add_root_and_bias(out, self.lin if self.root_weight else None, x[1], self.bias)

    def message(self, x_j: Tensor, edge_attr: Tensor) -> Tensor:
        weight = self.nn(edge_attr)
        f_in = x_j.size(-1)
        expected = x_j.size(0) * f_in * self.out_channels
        if weight.numel() != expected:
            raise ValueError(
                f"'nn' must map edge_attr to [E, in_channels * out_channels] = "
                f"[{x_j.size(0)}, {f_in * self.out_channels}], got {v.describe(weight)}"
            )
        weight = weight.view(-1, f_in, self.out_channels)
        return torch.bmm(x_j.unsqueeze(1), weight).squeeze(1)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.in_channels}, {self.out_channels}, aggr={self.aggr}, nn={self.nn})"
        )
