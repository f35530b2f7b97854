r""":class:`HGTConv`: the Heterogeneous Graph Transformer operator (Hu et al., 2020)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import Parameter

from gnn.conv._attention import edge_softmax, weighted_message
from gnn.core import HeteroDictLinear, HeteroLinear, MessagePassing, ops, plans
from gnn.core.nn.inits import ones

from ._utils import (
    EdgeType,
    Metadata,
    NodeType,
    TypeParameterDict,
    bipartite_edge_index,
    check_dict,
    edge_index_of,
    read_metadata,
    require,
)

__all__ = ["HGTConv", "block_diagonal"]


def block_diagonal(weight: Tensor, scale: Tensor | None = None) -> Tensor:
    """``[R, H, D, D]`` per-head matrices (optionally times ``scale`` ``[R, H]``) as ``R``
    block-diagonal ``[H * D, H * D]`` matrices: ``x.view(N, H * D) @ out[r]`` applies head
    ``h``'s matrix to the ``h``-th block of ``D`` features."""
    num, heads, dim, _ = weight.shape
    if scale is not None:
        weight = weight * scale.view(num, heads, 1, 1)
    eye = torch.eye(heads, dtype=weight.dtype, device=weight.device)
    return torch.einsum("rhde,hg->rhdge", weight, eye).reshape(num, heads * dim, heads * dim)


class HGTConv(MessagePassing):
    r"""The Heterogeneous Graph Transformer operator from "Heterogeneous Graph Transformer".

    For a node :math:`i` of type :math:`\tau(i)`, every incoming edge :math:`e = (j \to i)`
    of type :math:`r` and head :math:`h`, with per-type projections
    :math:`[\mathbf{k} \| \mathbf{q} \| \mathbf{v}]_j = \mathbf{W}^{KQV}_{\tau(j)} \mathbf{x}_j`:

    .. math::
        \alpha^h_{e} = \operatorname{softmax}_{e \to i}\Big(
            \frac{\mu^h_r}{\sqrt{D}}\, \big\langle \mathbf{q}^h_i,
            \mathbf{W}^{K,h}_{r} \mathbf{k}^h_j \big\rangle\Big),
        \qquad
        \mathbf{o}_i = \Big\Vert_{h=1}^{H} \sum_{e = (j \to i)} \alpha^h_e\,
            \mathbf{W}^{V,h}_{r} \mathbf{v}^h_j,

    with the softmax over the incoming edges of *all* types, then
    :math:`\mathbf{y}_i = \mathbf{W}^{O}_{\tau(i)} \operatorname{GELU}(\mathbf{o}_i)` and,
    when the sizes match, the gated skip connection
    :math:`\mathbf{x}'_i = \sigma(s_{\tau(i)})\, \mathbf{y}_i + (1 - \sigma(s_{\tau(i)}))\, \mathbf{x}_i`.

    All edge types are handled in one pass: the relation-specific keys and values of the
    sending nodes are one grouped matrix product (:func:`gnn.core.ops.segment_matmul` over
    the weights of ``k_rel`` / ``v_rel``, the prior :math:`\mu` folded into the keys), and the
    attention with its aggregation is one fused op (:class:`gnn.core.plans.DotAttention`)
    over the graph of all edge types stacked together.

    Args:
        in_channels: input size per node type (``{type: size}``), or one size for all
            types; ``-1`` infers it lazily.
        out_channels: output size ``F`` (divisible by ``heads``).
        metadata: ``(node_types, edge_types)``, or a ``HeteroData``.
        heads: number of heads ``H`` (``D = F / H`` channels each).
        **kwargs: :class:`~gnn.core.MessagePassing` arguments.

    Shapes:
        ``x_dict`` ``{type: [N_t, F_t]}``, ``edge_index_dict`` ``{edge type: [2, E_r]}`` (or
        sparse ``adj_t``) -> ``{destination type: [N_t, F]}`` for every node type that is the
        destination of an edge type of ``metadata``. Parameters as in PyG:
        ``kqv_lin.lins.<type>``, ``out_lin.lins.<type>``, ``k_rel.weight`` and ``v_rel.weight``
        ``[H * R, D, D]`` (matrix of head ``h`` and relation ``r`` at ``h * R + r``),
        ``skip.<type>`` ``[1]``, ``p_rel.<src__rel__dst>`` ``[1, H]``.

    Example:
        >>> conv = HGTConv(-1, 64, data.metadata(), heads=2)
        >>> out_dict = conv(data.x_dict, data.edge_index_dict)
    """

    fused_message = plans.DotAttention(query="q", key="k", value="v", edge_attr="edge_attr")

    def __init__(
        self,
        in_channels: int | dict[str, int],
        out_channels: int,
        metadata: Metadata,
        heads: int = 1,
        **kwargs: Any,
    ) -> None:
        super().__init__(aggr="add", node_dim=0, **kwargs)
        if not isinstance(heads, int) or isinstance(heads, bool) or heads < 1:
            raise ValueError(f"'heads' must be a positive int, got {heads!r}")
        if not isinstance(out_channels, int) or isinstance(out_channels, bool) or out_channels < 1:
            raise ValueError(f"'out_channels' must be a positive int, got {out_channels!r}")
        if out_channels % heads != 0:
            raise ValueError(
                f"'out_channels' (got {out_channels}) must be divisible by the number of heads (got {heads})"
            )
        node_types, edge_types = read_metadata(metadata)
        if not isinstance(in_channels, Mapping):
            in_channels = {node_type: in_channels for node_type in node_types}
        self.in_channels = dict(in_channels)
        self.out_channels = out_channels
        self.heads = heads
        self.node_types = node_types
        self.edge_types = edge_types
        self.edge_types_map = {edge_type: i for i, edge_type in enumerate(edge_types)}
        self.dst_node_types = {key[-1] for key in edge_types}

        self.kqv_lin = HeteroDictLinear(self.in_channels, out_channels * 3)
        self.out_lin = HeteroDictLinear(out_channels, out_channels, types=node_types)
        dim = out_channels // heads
        num_types = heads * len(edge_types)
        self.k_rel = HeteroLinear(dim, dim, num_types, bias=False, is_sorted=True)
        self.v_rel = HeteroLinear(dim, dim, num_types, bias=False, is_sorted=True)
        self.skip = TypeParameterDict({node_type: Parameter(torch.empty(1)) for node_type in node_types})
        self.p_rel = TypeParameterDict(
            {"__".join(edge_type): Parameter(torch.empty(1, heads)) for edge_type in edge_types}
        )
        self._alpha: Any = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Reset the projections; the skip gates and relation priors become 1."""
        super().reset_parameters()
        self.kqv_lin.reset_parameters()
        self.out_lin.reset_parameters()
        self.k_rel.reset_parameters()
        self.v_rel.reset_parameters()
        ones(self.skip)
        ones(self.p_rel)

    def forward(
        self, x_dict: dict[NodeType, Tensor], edge_index_dict: dict[EdgeType, Any]
    ) -> dict[NodeType, Tensor | None]:
        """Attend over the incoming edges of all types (see the class docstring)."""
        x_dict = check_dict(x_dict, "x_dict")
        edge_index_dict = check_dict(edge_index_dict, "edge_index_dict")
        F_out, H = self.out_channels, self.heads
        D = F_out // H

        kqv_dict = self.kqv_lin({k: x for k, x in x_dict.items() if k in self.kqv_lin.lins})
        k_dict, q_dict, v_dict = {}, {}, {}
        for key, val in kqv_dict.items():
            # unbind, not three slices: its backward stacks the three gradients into one buffer
            # instead of adding three zero-filled [N, 3F] ones
            k_dict[key], q_dict[key], v_dict[key] = val.view(-1, 3, F_out).unbind(1)

        # the receivers: every node type's queries, one after the other
        dst_offset: dict[NodeType, int] = {}
        num_dst = 0
        for key, q in q_dict.items():
            dst_offset[key] = num_dst
            num_dst = num_dst + q.size(0)
        q = torch.cat(list(q_dict.values()), dim=0) if len(q_dict) > 1 else next(iter(q_dict.values()))

        # the senders: one block of rows per edge type (in metadata order), holding the
        # source type's keys and values transformed by that relation's matrices
        present: list[EdgeType] = []
        for edge_type in edge_index_dict:
            if edge_type not in self.edge_types_map:
                raise ValueError(
                    f"'edge_index_dict' holds edge type {edge_type!r}, which is not among the edge types "
                    f"of the layer's metadata {self.edge_types}"
                )
            require(q_dict, edge_type[-1], "x_dict", f" (the destination of edge type {edge_type!r})")
            require(k_dict, edge_type[0], "x_dict", f" (the source of edge type {edge_type!r})")
            present.append(edge_type)
        if not present:
            raise ValueError("'edge_index_dict' must hold at least one edge type")
        order = sorted(present, key=self.edge_types_map.__getitem__)
        src_offset: dict[EdgeType, int] = {}
        num_src = 0
        for edge_type in order:
            src_offset[edge_type] = num_src
            num_src = num_src + k_dict[edge_type[0]].size(0)
        k_src = torch.cat([k_dict[e[0]] for e in order], dim=0) if len(order) > 1 else k_dict[order[0][0]]
        v_src = torch.cat([v_dict[e[0]] for e in order], dim=0) if len(order) > 1 else v_dict[order[0][0]]
        rel = torch.tensor([self.edge_types_map[e] for e in order], device=q.device)
        counts = torch.tensor([k_dict[e[0]].size(0) for e in order], device=q.device)
        ptr = torch.cat([counts.new_zeros(1), counts.cumsum(0)])
        prior = torch.stack([self.p_rel["__".join(e)].view(H) for e in order])  # [R', H]
        k_weight = self.k_rel.weight.view(H, len(self.edge_types), D, D).transpose(0, 1).index_select(0, rel)
        v_weight = self.v_rel.weight.view(H, len(self.edge_types), D, D).transpose(0, 1).index_select(0, rel)
        k = ops.segment_matmul(k_src.contiguous(), ptr, block_diagonal(k_weight, prior)).view(-1, H, D)
        v = ops.segment_matmul(v_src.contiguous(), ptr, block_diagonal(v_weight)).view(-1, H, D)

        graphs = [edge_index_of(edge_index_dict[e], f"edge_index_dict[{e!r}]") for e in present]
        edge_index = bipartite_edge_index(
            graphs, [src_offset[e] for e in present], [dst_offset[e[-1]] for e in present]
        )
        out = self.propagate(
            edge_index, q=q.reshape(-1, H, D), k=k, v=v, edge_attr=None, size=(num_src, num_dst)
        )
        self._alpha = None
        out = out.reshape(-1, F_out)

        out_dict: dict[NodeType, Tensor | None] = {}
        # split, not slices: the backward concatenates the pieces' gradients (no zero-filled buffer each)
        pieces = out.split([q_dict[t].size(0) for t in dst_offset]) if len(dst_offset) > 1 else [out]
        for node_type, piece in zip(dst_offset, pieces):
            if node_type in self.dst_node_types:
                out_dict[node_type] = F.gelu(piece)
        a_dict = self.out_lin(out_dict)
        for node_type in out_dict:
            res = a_dict[node_type]
            x = x_dict[node_type]
            if res.size(-1) == x.size(-1):
                alpha = self.skip[node_type].sigmoid()
                res = alpha * res + (1 - alpha) * x
            out_dict[node_type] = res
        return out_dict

    def edge_term(self, edge_attr: Tensor | None) -> Tensor | None:
        """No additive edge term: the relation prior is folded into the keys."""
        return None

    def message(
        self, q_i: Tensor, k_j: Tensor, v_j: Tensor, index: Tensor, ptr: Tensor | None, size_i: int | None
    ) -> Tensor:
        """``alpha * v_j`` per head, ``alpha = softmax_i(<q_i, k_j> / sqrt(D))`` (``k_j`` already
        holds the relation's prior); the attention is kept in ``self._alpha``."""
        scores = torch.einsum("ehd,ehd->eh", q_i, k_j) / math.sqrt(q_i.size(-1))
        alpha = edge_softmax(scores, index, size_i if size_i is not None else 0, ptr)
        self._alpha = alpha
        return weighted_message(v_j, alpha)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(-1, {self.out_channels}, heads={self.heads})"
