r"""PointNetConv: the PointNet set layer (Qi et al., 2017; PointNet++)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from gnn.core import ops
from gnn.core.aggr.basic import fused_reduction
from gnn.core.graph import read_graph

from ._point import (
    LocalGlobalConv,
    check_points,
    check_rows,
    graph_input,
    linear_parts,
    messages_unobserved,
    replace_self_loops,
    source_features,
)


class PointNetConv(LocalGlobalConv):
    r"""The PointNet set layer from "PointNet: Deep Learning on Point Sets for 3D Classification
    and Segmentation" and "PointNet++".

    .. math::
        \mathbf{x}^{\prime}_i = \gamma_{\mathbf{\Theta}} \Big( \max_{j \in \mathcal{N}(i) \cup \{ i \}}
        h_{\mathbf{\Theta}} ( \mathbf{x}_j \,\Vert\, \mathbf{p}_j - \mathbf{p}_i) \Big)

    with :math:`h` = ``local_nn`` and :math:`\gamma` = ``global_nn`` (either may be ``None``:
    the identity), :math:`\mathbf{p}` the point positions and ``max`` the aggregation
    (``aggr`` may name another one).

    With ``add_self_loops`` the given self loops are replaced by one loop per node. Unless
    hooks or explain mode watch, the replaced loops are not removed (that would make shapes
    depend on the data) but sent to a spare receiving row that is dropped from the output.
    Unless hooks or explain mode watch, a first linear layer of ``local_nn`` is applied per node
    (:math:`W [\mathbf{x}_j, \mathbf{p}_j - \mathbf{p}_i] + b = \mathbf{u}_j - W_p \mathbf{p}_i`):
    when ``local_nn`` is ``None`` or that one layer and the aggregation is a basic reduction (sum,
    mean, max, min), the result takes one ``ops.spmm`` and no per-edge tensor; when it is a
    ``torch.nn.Sequential`` starting with a linear layer, only its remaining layers run per edge.

    Args:
        local_nn: :math:`h`, maps ``[E, F_in + D]`` (``[E, D]`` without ``x``) to ``[E, F_out]``.
        global_nn: :math:`\gamma`, maps the ``[N, F_out]`` aggregation to the output.
        add_self_loops: replace the self loops by one loop per node.
        **kwargs: :class:`~gnn.core.MessagePassing` arguments (``aggr`` defaults to ``"max"``).

    Shapes:
        ``x`` ``[N, F_in]``, ``None`` or a pair ``(x_src, x_dst)`` (only the sources' features
        enter the messages); ``pos`` ``[N, D]`` or ``(pos_src, pos_dst)``; ``edge_index``
        ``[2, E]`` or sparse ``adj_t`` -> ``[N_dst, F_out]``.

    Example:
        >>> conv = PointNetConv(torch.nn.Linear(16 + 3, 32))
        >>> x, pos = torch.randn(10, 16), torch.randn(10, 3)
        >>> conv(x, pos, torch.randint(0, 10, (2, 40))).shape
        torch.Size([10, 32])
    """

    def forward(
        self,
        x: Tensor | None | tuple[Tensor | None, Tensor | None],
        pos: Tensor | tuple[Tensor, Tensor],
        edge_index: Any,
    ) -> Tensor:
        """Aggregate ``local_nn([x_j, pos_j - pos_i])`` over the neighbours (and the node itself)."""
        x_pair = source_features(x)
        pos_pair = check_points("pos", pos)
        for k in (0, 1):
            check_rows(
                f"x[{k}]" if isinstance(x, (tuple, list)) else "x", x_pair[k], pos_pair[k].size(0), "point"
            )
        graph_input(edge_index)
        sizes = (pos_pair[0].size(0), pos_pair[1].size(0))
        size = None
        looped = None
        if self.add_self_loops:
            looped = replace_self_loops(self, edge_index, sizes, min(sizes))
            edge_index, size = looped.edge_index, looped.sizes
            x_pair, pos_pair = looped.pad(x_pair), looped.pad(pos_pair)

        out = self._per_node(x_pair, pos_pair, edge_index, size)
        if out is None:
            out = self.propagate(edge_index, x=x_pair, pos=pos_pair, size=size)
        return self.global_output(out, looped)

    def message(self, x_j: Tensor | None, pos_i: Tensor, pos_j: Tensor) -> Tensor:
        return self.local_message(x_j, pos_j - pos_i)

    def _per_node(self, x_pair: tuple, pos_pair: tuple, edge_index: Any, size: Any) -> Tensor | None:
        r"""The aggregation from per-node terms when nothing observes the messages, or ``None``
        (``propagate``). With :math:`W [\mathbf{x}_j, \mathbf{p}_j - \mathbf{p}_i] + b =
        \mathbf{u}_j - W_p \mathbf{p}_i`, :math:`\mathbf{u} = W [\mathbf{x}, \mathbf{p}] + b`:

        * ``local_nn`` ``None`` or one linear layer, basic reduction: one ``ops.spmm``,
          :math:`\mathrm{reduce}_j(\mathbf{u}_j) - c_i W_p \mathbf{p}_i` with :math:`c_i` the degree
          (sum) or 1 (mean, max, min; 0 without neighbours);
        * ``local_nn`` a ``torch.nn.Sequential`` that starts with a linear layer: that layer is
          applied per node, the rest per edge to :math:`\mathbf{u}_j - W_p \mathbf{p}_i`, and the
          layer's aggregation follows (no ``[E, F_in + D]`` input, no per-edge first layer).
        """
        if self.flow != "source_to_target" or not messages_unobserved(self, PointNetConv):
            return None
        x_src, (pos_src, pos_dst) = x_pair[0], pos_pair
        if x_src is not None and x_src.dtype != pos_src.dtype:
            return None
        feats = pos_src if x_src is None else torch.cat([x_src, pos_src], dim=1)
        reduce = fused_reduction(self.aggr_module)
        local, rest = self.local_nn, None
        if type(local) is torch.nn.Sequential and len(local) > 1 and linear_parts(local[0]) is not None:
            local, rest = local[0], list(local)[1:]
        elif reduce is None:
            return None
        w_pos = None
        if local is None:
            u = feats
        else:
            parts = linear_parts(local)
            if parts is None or parts[0].size(1) != feats.size(1):
                return None
            weight, bias = parts
            u = torch.nn.functional.linear(feats, weight, bias)
            w_pos = weight[:, weight.size(1) - pos_dst.size(1) :]
        num_dst = pos_dst.size(0)
        graph = read_graph(edge_index, size, self.flow)
        graph.set_nodes(u.size(0), num_dst, "pos")
        if rest is not None:
            assert w_pos is not None
            src, dst = graph.edge_index[graph.j], graph.index
            # u_j - W_p p_i in one matrix product (no separate subtraction, forward or backward)
            h = torch.addmm(u.index_select(0, src), pos_dst.index_select(0, dst), w_pos.t(), alpha=-1.0)
            for module in rest:
                h = module(h)
            return self.aggregate(h, dst, ptr=graph.ptr(), dim_size=num_dst)
        if w_pos is None:  # no local_nn: the messages are [x_j, p_j - p_i] themselves
            w = torch.cat([pos_dst.new_zeros(num_dst, feats.size(1) - pos_dst.size(1)), pos_dst], 1)
        else:
            w = torch.nn.functional.linear(pos_dst, w_pos)
        csr = graph.csr()
        if csr.num_rows != num_dst:
            raise ValueError(f"sparse adjacency has {csr.num_rows} rows, expected {num_dst}")
        deg = csr.degree().to(u.dtype).view(-1, 1)
        scale = deg if reduce == "sum" else (deg > 0).to(u.dtype)
        return ops.spmm(csr, u, None, reduce) - scale * w
