r"""PointTransformerConv: the Point Transformer layer (Zhao et al., 2021)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from gnn.core import Linear, MessagePassing, ops
from gnn.core.aggr.basic import fused_reduction
from gnn.core.graph import read_graph
from gnn.core.nn.inits import reset

from ._point import (
    check_points,
    check_rows,
    graph_input,
    linear_parts,
    messages_unobserved,
    node_pair,
    replace_self_loops,
)
from ._utils import check_in_channels


class PointTransformerConv(MessagePassing):
    r"""The Point Transformer layer from "Point Transformer".

    .. math::
        \mathbf{x}^{\prime}_i = \sum_{j \in \mathcal{N}(i) \cup \{ i \}} \alpha_{i,j}
        \odot \left(\mathbf{W}_3 \mathbf{x}_j + \delta_{i,j} \right),
        \qquad
        \alpha_{i,j} = \operatorname{softmax}_j \left( \gamma_{\mathbf{\Theta}}
        (\mathbf{W}_1 \mathbf{x}_i - \mathbf{W}_2 \mathbf{x}_j + \delta_{i,j}) \right),
        \qquad
        \delta_{i,j} = h_{\mathbf{\Theta}}(\mathbf{p}_i - \mathbf{p}_j)

    with the softmax taken per channel over the incoming edges of :math:`i`,
    :math:`h` = ``pos_nn`` (default: a linear layer ``D -> out_channels``),
    :math:`\gamma` = ``attn_nn`` (default: the identity), :math:`\mathbf{W}_1` = ``lin_dst``,
    :math:`\mathbf{W}_2` = ``lin_src`` and :math:`\mathbf{W}_3` = ``lin``.

    Self loops are replaced as in :class:`~gnn.conv.PointNetConv`. With the default
    ``attn_nn`` and a linear ``pos_nn`` the score is :math:`\mathbf{s}_i - \mathbf{t}_j`
    (:math:`\mathbf{s}_i = \mathbf{W}_1\mathbf{x}_i + W\mathbf{p}_i + b`,
    :math:`\mathbf{t}_j = \mathbf{W}_2\mathbf{x}_j + W\mathbf{p}_j`) and the value
    :math:`\mathbf{r}_j + W\mathbf{p}_i + b` (:math:`\mathbf{r}_j = \mathbf{W}_3\mathbf{x}_j -
    W\mathbf{p}_j`): unless hooks or explain mode watch, the layer then computes the
    attention from these per-node terms: the softmax of sender-only scores is two sums of one
    ``ops.spmm`` (one shift for all rows, checked to keep every row's weights accurate; else
    ``ops.node_score_attention`` with one head per channel), with no per-edge tensor.

    Args:
        in_channels: input size, ``-1`` for lazy, or ``(F_src, F_dst)``.
        out_channels: output size.
        pos_nn: :math:`h`, maps ``[E, D]`` relative positions to ``[E, out_channels]``.
        attn_nn: :math:`\gamma`, maps ``[E, out_channels]`` to ``[E, out_channels]``.
        add_self_loops: replace the self loops by one loop per node.
        **kwargs: :class:`~gnn.core.MessagePassing` arguments (``aggr`` defaults to ``"add"``).

    Shapes:
        ``x`` ``[N, F_in]`` or ``(x_src, x_dst)``; ``pos`` ``[N, D]`` or ``(pos_src, pos_dst)``
        (``D = 3`` for the default ``pos_nn``); ``edge_index`` ``[2, E]`` or sparse ``adj_t``
        -> ``[N_dst, out_channels]``.

    Example:
        >>> conv = PointTransformerConv(16, 32)
        >>> x, pos = torch.randn(10, 16), torch.randn(10, 3)
        >>> conv(x, pos, torch.randint(0, 10, (2, 40))).shape
        torch.Size([10, 32])
    """

    def __init__(
        self,
        in_channels: int | tuple[int, int],
        out_channels: int,
        pos_nn: Callable[..., Tensor] | None = None,
        attn_nn: Callable[..., Tensor] | None = None,
        add_self_loops: bool = True,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("aggr", "add")
        super().__init__(**kwargs)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.add_self_loops = add_self_loops
        sizes = (in_channels, in_channels) if isinstance(in_channels, int) else tuple(in_channels)
        self.pos_nn = pos_nn if pos_nn is not None else Linear(3, out_channels)
        self.attn_nn = attn_nn
        self.lin = Linear(sizes[0], out_channels, bias=False)
        self.lin_src = Linear(sizes[0], out_channels, bias=False)
        self.lin_dst = Linear(sizes[1], out_channels, bias=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Reset ``pos_nn``, ``attn_nn`` and the three linear maps."""
        super().reset_parameters()
        reset(self.pos_nn)
        if self.attn_nn is not None:
            reset(self.attn_nn)
        self.lin.reset_parameters()
        self.lin_src.reset_parameters()
        self.lin_dst.reset_parameters()

    def forward(
        self,
        x: Tensor | tuple[Tensor, Tensor],
        pos: Tensor | tuple[Tensor, Tensor],
        edge_index: Any,
    ) -> Tensor:
        """Attend over the neighbours (and the node itself) with per-channel attention."""
        check_in_channels(x, self.in_channels)
        x_src, x_dst = node_pair(x, "x")
        assert x_src is not None and x_dst is not None
        pos_pair = check_points("pos", pos)
        pair = not isinstance(x, Tensor)
        for k, part in enumerate((x_src, x_dst)):
            check_rows(f"x[{k}]" if pair else "x", part, pos_pair[k].size(0), "point of 'pos'")
        graph_input(edge_index)

        value = self.lin(x_src)
        alpha_src = self.lin_src(x_src)
        alpha_dst = self.lin_dst(x_dst)
        x_pair: tuple[Any, Any] = (value, x_dst)
        alpha = (alpha_src, alpha_dst)
        size = None
        looped = None
        if self.add_self_loops:
            sizes = (pos_pair[0].size(0), pos_pair[1].size(0))
            looped = replace_self_loops(self, edge_index, sizes, min(sizes))
            edge_index, size = looped.edge_index, looped.sizes
            x_pair, pos_pair, alpha = looped.pad(x_pair), looped.pad(pos_pair), looped.pad(alpha)

        out = self._per_node(x_pair[0], pos_pair, alpha, edge_index, size)
        if out is None:
            out = self.propagate(edge_index, x=x_pair, pos=pos_pair, alpha=alpha, size=size)
        return looped.trim(out) if looped is not None else out

    def message(
        self,
        x_j: Tensor,
        pos_i: Tensor,
        pos_j: Tensor,
        alpha_i: Tensor,
        alpha_j: Tensor,
        index: Tensor,
        ptr: Tensor | None,
        size_i: int | None,
    ) -> Tensor:
        delta = self.pos_nn(pos_i - pos_j)
        alpha = alpha_i - alpha_j + delta
        if self.attn_nn is not None:
            alpha = self.attn_nn(alpha)
        if ptr is not None:
            alpha = ops.softmax(alpha, ptr=ptr, dim=0)
        else:
            alpha = ops.softmax(alpha, index, num_nodes=size_i, dim=0)
        return alpha * (x_j + delta)

    def _per_node(
        self, value: Tensor, pos_pair: tuple[Tensor, Tensor], alpha: tuple, edge_index: Any, size: Any
    ) -> Tensor | None:
        """The attention from per-node terms (see the class docstring), or ``None`` (``propagate``)."""
        if (
            self.attn_nn is not None
            or self.flow != "source_to_target"
            or fused_reduction(self.aggr_module) != "sum"
            or not messages_unobserved(self, PointTransformerConv)
        ):
            return None
        parts = linear_parts(self.pos_nn)
        pos_src, pos_dst = pos_pair
        if parts is None or parts[0].size(1) != pos_src.size(1) or value.dim() != 2:
            return None
        weight, bias = parts
        if not (value.dtype == pos_src.dtype == weight.dtype):
            return None
        alpha_src, alpha_dst = alpha
        graph = read_graph(edge_index, size, self.flow)
        graph.set_nodes(value.size(0), alpha_dst.size(0), "pos")
        csr = graph.csr()
        if csr.num_rows != alpha_dst.size(0):
            raise ValueError(f"sparse adjacency has {csr.num_rows} rows, expected {alpha_dst.size(0)}")
        pos_src_w = pos_src @ weight.t()
        pos_dst_w = torch.nn.functional.linear(pos_dst, weight, bias)  # W p_i + b
        value = value - pos_src_w  # r_j
        score = -(alpha_src + pos_src_w)  # -t_j: the part of the score that varies within a row
        has_edges = (csr.degree() > 0).to(value.dtype).view(-1, 1)
        out = _shifted_softmax_sum(csr, score, value)
        if out is None:
            heads = value.size(1)
            out, _ = ops.node_score_attention(
                csr,
                value.unsqueeze(-1),  # one channel per head
                score,
                alpha_dst + pos_dst_w,  # s_i
                None,
                1.0,  # a leaky ReLU of slope 1 is the identity
                return_alpha=False,
            )
            out = out.view(-1, heads)
        else:
            # s_i cancels in the softmax: lin_dst stays in the graph with its exact, zero gradient
            out = out + 0.0 * alpha_dst.sum(dim=1, keepdim=True)
        return out + has_edges * pos_dst_w

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels})"


#: how far (in natural-log units) the largest score of a row may lie below the largest score of all
#: rows for :func:`_shifted_softmax_sum`: its weights stay far from the denormal range
_SHIFT_LIMIT = {torch.float32: 60.0, torch.float64: 600.0}


def _shifted_softmax_sum(csr: Any, score: Tensor, value: Tensor) -> Tensor | None:
    r"""``out_i = sum_j softmax_j(score_j) value_j`` per channel over the entries ``j`` of row ``i``,
    when every score depends on the sender only.

    One shift :math:`M` (the largest score of each channel, over all senders, so that no weight
    exceeds 1) serves all rows, since a softmax does
    not change when a row's scores move together: with :math:`e_j = \exp(\text{score}_j - M)`,
    :math:`out_i = \sum_j e_j v_j / \sum_j e_j`, two sums in one ``ops.spmm`` and no per-edge
    tensor. ``None`` (use the per-row attention op) under ``torch.compile``, for other dtypes, or
    when some row's scores all lie so far below :math:`M` that :math:`e_j` would lose precision.
    """
    limit = _SHIFT_LIMIT.get(score.dtype)
    if limit is None or torch.compiler.is_compiling() or score.size(0) == 0:
        return None
    detached = score.detach()
    shift = detached.amax(dim=0)
    row_max = ops.spmm(csr, detached, None, "max")  # rows without entries give 0
    has_edges = (csr.degree() > 0).view(-1, 1)
    lowest = torch.where(has_edges, row_max - shift, torch.zeros_like(row_max))
    if row_max.numel() and float(lowest.amin()) < -limit:
        return None
    weight = (score - shift).exp()
    sums = ops.spmm(csr, torch.cat([weight * value, weight], dim=1), None, "sum")
    numerator, denominator = sums.split(value.size(1), dim=1)
    return numerator / denominator.clamp(min=torch.finfo(score.dtype).tiny)
