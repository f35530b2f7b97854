r"""GeneralConv: the general GNN layer of the GNN design space (You et al., 2020)."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from gnn.core import Linear, MessagePassing
from gnn.core.graph import read_graph
from gnn.core.nn.inits import glorot

from . import _attention as att
from ._utils import check_edge_attr, check_flat_nodes, check_in_channels

ATTENTION_TYPES = ("additive", "dot_product")


class GeneralConv(MessagePassing):
    r"""A general GNN layer adapted from "Design Space for Graph Neural Networks".

    .. math::
        \mathbf{x}^{\prime}_i = \mathbf{W}_{s} \mathbf{x}_i + \frac{1}{H}\sum_{h=1}^{H}
        \bigoplus_{j \in \mathcal{N}(i)} \alpha^{h}_{i,j} \, \mathbf{m}^{h}_{j,i},
        \qquad
        \mathbf{m}_{j,i} = \mathbf{W}_{m} \mathbf{x}_j \,(+\, \mathbf{W}_{m,i} \mathbf{x}_i)
        \,(+\, \mathbf{W}_{e} \mathbf{e}_{j,i})

    with :math:`\bigoplus` the ``aggr`` reduction, the
    :math:`\mathbf{W}_{m,i}` term only when ``directed_msg=False``, and
    :math:`\mathbf{W}_s` the identity when the sizes agree and
    ``skip_linear=False``. Without ``attention`` :math:`\alpha = 1`; with it
    :math:`\alpha^h_{i,j} = \operatorname{softmax}_j(\operatorname{LeakyReLU}_{0.2}(s^h_{i,j}))`
    where :math:`s = \mathbf{a}^{h\top}\mathbf{m}^h_{j,i}` (``"additive"``) or
    :math:`s = \mathbf{m}^{h\top}_{i,j}\mathbf{m}^h_{j,i} / \sqrt{C}`
    (``"dot_product"``, :math:`\mathbf{m}_{i,j}` the message with the roles
    of ``i`` and ``j`` swapped). ``l2_normalize`` scales every output row to
    unit length.

    Args:
        in_channels: input size, ``-1`` for lazy, or ``(F_src, F_dst)``.
        out_channels: output size ``C`` (``None``: ``in_channels``).
        in_edge_channels: edge feature size (``None``: no edge features).
        aggr: aggregation of the messages.
        skip_linear: always use a linear skip connection.
        directed_msg: messages depend on the sender only.
        heads: number of message heads ``H`` (averaged).
        attention: weight the messages by attention.
        attention_type: ``"additive"`` or ``"dot_product"``.
        l2_normalize: L2-normalize the output rows.
        bias: learn biases in the linear maps.
        **kwargs: :class:`~gnn.core.MessagePassing` arguments.

    Shapes:
        ``x`` ``[N, F]`` or ``([N_src, F_src], [N_dst, F_dst])``,
        ``edge_attr`` ``[E, in_edge_channels]``; output ``[N_dst, C]``.

    Example:
        >>> conv = GeneralConv(16, 32, heads=2, attention=True)
        >>> conv(torch.randn(10, 16), torch.randint(0, 10, (2, 40))).shape
        torch.Size([10, 32])
    """

    negative_slope = 0.2

    def __init__(
        self,
        in_channels: int | tuple[int, int],
        out_channels: int | None,
        in_edge_channels: int | None = None,
        aggr: str = "add",
        skip_linear: bool = False,
        directed_msg: bool = True,
        heads: int = 1,
        attention: bool = False,
        attention_type: str = "additive",
        l2_normalize: bool = False,
        bias: bool = True,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("aggr", aggr)
        super().__init__(node_dim=0, **kwargs)
        if attention and attention_type not in ATTENTION_TYPES:
            raise ValueError(f"'attention_type' must be one of {ATTENTION_TYPES}, got {attention_type!r}")
        src_in, dst_in = (in_channels, in_channels) if isinstance(in_channels, int) else in_channels
        if out_channels is None:
            out_channels = dst_in
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.in_edge_channels = in_edge_channels
        self.skip_linear = skip_linear
        self.directed_msg = directed_msg
        self.heads = heads
        self.attention = attention
        self.attention_type = attention_type
        self.normalize_l2 = l2_normalize

        hc = heads * out_channels
        self.lin_msg = Linear(src_in, hc, bias=bias)
        if not directed_msg:
            self.lin_msg_i: Linear | None = Linear(src_in, hc, bias=bias)
        else:
            self.lin_msg_i = None
        if skip_linear or dst_in != out_channels:
            self.lin_self: torch.nn.Module = Linear(dst_in, out_channels, bias=bias)
        else:
            self.lin_self = torch.nn.Identity()
        if in_edge_channels is not None:
            self.lin_edge: Linear | None = Linear(in_edge_channels, hc, bias=bias)
        else:
            self.lin_edge = None
        if attention and attention_type == "additive":
            self.att_msg: torch.nn.Parameter | None = torch.nn.Parameter(torch.empty(1, heads, out_channels))
        else:
            self.register_parameter("att_msg", None)
        if attention and attention_type == "dot_product":
            self.register_buffer("scaler", torch.tensor(math.sqrt(out_channels), dtype=torch.float))
        else:
            self.scaler = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Reset the linear maps; Glorot attention vector."""
        super().reset_parameters()
        for lin in (self.lin_msg, self.lin_msg_i, self.lin_edge):
            if lin is not None:
                lin.reset_parameters()
        if isinstance(self.lin_self, Linear):
            self.lin_self.reset_parameters()
        glorot(self.att_msg)

    def forward(
        self,
        x: Tensor | tuple[Tensor, Tensor | None],
        edge_index: Any,
        edge_attr: Tensor | None = None,
        size: tuple[int, int] | None = None,
    ) -> Tensor:
        """Aggregate (attended) messages, average the heads and add the skip connection."""
        check_in_channels(x, self.in_channels)
        check_flat_nodes(self, x)
        x_src, x_self = (x, x) if isinstance(x, Tensor) else x
        if x_src is None or x_self is None:
            raise ValueError("'x' must be a tensor or a pair of tensors (x_src, x_dst), got None in it")
        graph = read_graph(edge_index, None, self.flow)
        if self.lin_edge is None:
            edge_attr = None
        else:
            if edge_attr is None:
                edge_attr = graph.value
            edge_attr = check_edge_attr(edge_attr, graph.edge_index.size(1))
            if edge_attr is not None and edge_attr.dim() == 1:
                edge_attr = edge_attr.view(-1, 1)
        if size is None:
            size = att.by_row(x_src.size(0), x_self.size(0), self.flow)
        pair = att.by_row(x_src, x_self, self.flow)
        out = self.propagate(graph.edge_index, x=pair, edge_attr=edge_attr, size=size)
        out = out.mean(dim=1)
        out = out + self.lin_self(x_self)
        if self.normalize_l2:
            out = F.normalize(out, p=2.0, dim=-1)
        return out

    def _basic_message(self, x_i: Tensor, x_j: Tensor, edge_attr: Tensor | None) -> Tensor:
        """``[E, H, C]`` messages ``W_m x_j (+ W_mi x_i) (+ W_e e)``."""
        out = self.lin_msg(x_j)
        if self.lin_msg_i is not None:
            out = out + self.lin_msg_i(x_i)
        if edge_attr is not None and self.lin_edge is not None:
            out = out + self.lin_edge(edge_attr)
        return out.view(-1, self.heads, self.out_channels)

    def message(
        self, x_i: Tensor, x_j: Tensor, edge_index_i: Tensor, size_i: int | None, edge_attr: Tensor | None
    ) -> Tensor:
        """Messages ``[E, H, C]``, weighted by the per-target softmax attention when enabled."""
        msg = self._basic_message(x_i, x_j, edge_attr)
        if not self.attention:
            return msg
        if self.attention_type == "dot_product":
            reverse = self._basic_message(x_j, x_i, edge_attr)
            scores = torch.einsum("ehc,ehc->eh", reverse, msg) / self.scaler
        else:
            scores = att.node_scores(msg, self.att_msg)
        alpha = att.normalize_scores(
            scores, edge_index_i, size_i if size_i is not None else 0, negative_slope=self.negative_slope
        )
        return att.weighted_message(msg, alpha)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels})"
