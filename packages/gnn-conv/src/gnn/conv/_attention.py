r"""Shared steps of the attention layers (GAT, GATv2, Transformer, AGNN, SuperGAT, FA, ...).

The attention layers split their work into three steps:

1. **scores**: one score per edge and head, built from node-level terms
   (``[N, H]`` tensors of :func:`node_scores`, gathered per edge by
   ``MessagePassing.edge_updater``) or from the gathered features
   themselves (GATv2, :func:`additive_scores`);
2. **softmax**: normalized over the incoming edges of each target node,
   :math:`\alpha_{ij} = \exp(e_{ij}) / \sum_{k \in \mathcal{N}(i)} \exp(e_{ik})`
   (:func:`edge_softmax`, through :func:`gnn.core.ops.softmax`), followed
   by attention dropout (:func:`normalize_scores`);
3. **aggregate**: :math:`\mathbf{x}'_i = \sum_j \alpha_{ij} \mathbf{x}_j`, the
   layers' ``message`` (:func:`weighted_message`) followed by the
   ``MessagePassing`` sum.

GAT, GATv2 and Transformer declare these steps as a fused plan
(:mod:`gnn.core.plans`), so that ``MessagePassing`` may run all three in one
kernel; the helpers here are their general path. The other helpers deal with
the graph around that: self loops are replaced as PyG's attention layers do
(:func:`replace_self_loops`), and ``return_attention_weights`` results are given
in the form of the input (:func:`attention_result`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from gnn.core import Linear, ops
from gnn.core import validation as v
from gnn.core.cache import memo
from gnn.core.graph import Graph

from ._utils import check_edge_attr  # re-exported: the attention layers call att.check_edge_attr

__all__ = [
    "SelfLoops",
    "additive_scores",
    "attention_result",
    "by_row",
    "check_edge_attr",
    "edge_softmax",
    "heads_output",
    "node_scores",
    "node_scores_pair",
    "normalize_scores",
    "replace_self_loops",
    "weighted_message",
]


# -- the graph -------------------------------------------------------------------------------
def edge_features(
    graph: Graph, edge_attr: Any, lin_edge: torch.nn.Module | None, *, strict: bool = True
) -> Tensor | None:
    """The checked ``edge_attr`` of an attention layer, ``[E, D]`` (a 1-D input becomes ``[E, 1]``).

    Taken from a sparse adjacency's values when not given and the layer uses
    edge features (``lin_edge``). With ``strict``, an ``edge_attr`` given to a
    layer built without ``edge_dim`` is an error (GATConv ignores it instead,
    as PyG's does).
    """
    if strict and edge_attr is not None and lin_edge is None:
        raise ValueError("'edge_attr' was given but the layer was built without 'edge_dim'")
    if edge_attr is None and graph.is_sparse and lin_edge is not None:
        edge_attr = graph.value
    edge_attr = check_edge_attr(edge_attr, graph.edge_index.size(1))
    if edge_attr is not None and edge_attr.dim() == 1:
        edge_attr = edge_attr.view(-1, 1)
    return edge_attr


def by_row(src: Any, dst: Any, flow: str) -> tuple[Any, Any]:
    """``(src, dst)`` ordered by the ``edge_index`` row that indexes each side.

    ``MessagePassing`` reads a pair ``(a, b)`` as "``a`` is indexed by
    ``edge_index[0]``, ``b`` by ``edge_index[1]``"; with
    ``flow="target_to_source"`` the senders are ``edge_index[1]``, so the
    pair is swapped.
    """
    return (src, dst) if flow == "source_to_target" else (dst, src)


@dataclass(eq=False)
class SelfLoops:
    """An ``edge_index`` whose self loops were replaced by one loop per node.

    Attributes:
        edge_index: ``[2, E + N]``: the ``E`` given edges, then the loops of
            nodes ``0 .. N-1``.
        edge_attr: the matching ``[E + N, ...]`` attributes (or ``None``).
        dropped: ``[E + N]`` bool, true for the self loops that were given;
            they stay in place but must get zero attention (``mask`` of
            :func:`normalize_scores`), which keeps every shape independent of
            the data (no graph break under ``torch.compile``). ``None`` when the
            loops were removed (``exact``).
    """

    edge_index: Tensor
    edge_attr: Tensor | None
    dropped: Tensor | None

    def kept(self, alpha: Tensor) -> tuple[Tensor, Tensor]:
        """``(edge_index, alpha)`` without the dropped loops: PyG's self-looped graph."""
        if self.dropped is None:
            return self.edge_index, alpha
        keep = ~self.dropped
        return self.edge_index[:, keep], alpha[keep]


def _loop_attr(
    edge_attr: Tensor, dst: Tensor, is_loop: Tensor, num_nodes: int, num_dst: int, fill_value: Any
) -> Tensor:
    """``[num_nodes, ...]`` attributes of the new loops (given loops excluded from reductions)."""
    shape = (num_nodes,) + tuple(edge_attr.shape[1:])
    if fill_value is None:
        return edge_attr.new_ones(shape)
    if isinstance(fill_value, (int, float)):
        return edge_attr.new_full(shape, float(fill_value))
    if isinstance(fill_value, Tensor):
        fill = fill_value.to(device=edge_attr.device, dtype=edge_attr.dtype)
        return fill.expand(shape).clone()
    if not isinstance(fill_value, str):
        raise TypeError(
            f"'fill_value' must be a number, a tensor or a reduction name, got {v.describe(fill_value)}"
        )
    reduce = "sum" if fill_value == "add" else fill_value
    if reduce not in ("sum", "mean", "min", "max", "mul"):
        raise ValueError(
            f"'fill_value' must be one of 'add', 'sum', 'mean', 'min', 'max', 'mul', got {fill_value!r}"
        )
    size = max(num_nodes, num_dst)
    loop = is_loop.view((-1,) + (1,) * (edge_attr.dim() - 1))
    if reduce in ("sum", "mean"):
        out = ops.scatter(edge_attr.masked_fill(loop, 0.0), dst, 0, size, "sum")
        if reduce == "mean":
            count = ops.scatter((~is_loop).to(edge_attr.dtype), dst, 0, size, "sum").clamp(min=1)
            out = out / count.view((-1,) + (1,) * (edge_attr.dim() - 1))
    elif reduce == "mul":
        out = ops.scatter(edge_attr.masked_fill(loop, 1.0), dst, 0, size, "mul")
    else:
        neutral = float("-inf") if reduce == "max" else float("inf")
        out = ops.scatter(edge_attr.masked_fill(loop, neutral), dst, 0, size, reduce)
        out = out.masked_fill(out == neutral, 0.0)  # nodes with no other incoming edge
    return out[:num_nodes]


def replace_self_loops(
    edge_index: Tensor,
    edge_attr: Tensor | None,
    num_nodes: int,
    fill_value: float | Tensor | str | None = "mean",
    num_dst: int | None = None,
    *,
    exact: bool = False,
) -> SelfLoops:
    """Replace the self loops by one loop ``(i, i)`` per node ``i < num_nodes``, as PyG's attention layers do.

    By default the given loops are not removed (that would make the number of edges
    depend on the data) but flagged in :attr:`SelfLoops.dropped`; with ``exact``
    they are removed, which gives PyG's edge set (for hooks and explain mode, see
    ``MessagePassing.exact_edges``). The new loops' ``edge_attr`` is ``fill_value``:
    a number, a tensor, or a reduction (``"mean"``, ``"add"``, ``"max"`` ...) of
    each node's incoming attributes, the given loops excluded. ``num_dst`` is the
    number of target nodes (default ``num_nodes``).
    """
    num_dst = num_nodes if num_dst is None else num_dst

    def looped() -> tuple[Tensor, Tensor]:
        is_loop = edge_index[0] == edge_index[1]
        loop = torch.arange(num_nodes, device=edge_index.device, dtype=edge_index.dtype)
        new_index = torch.cat([edge_index, loop.unsqueeze(0).expand(2, -1)], dim=1)
        v.vouch_in_range(new_index, max(num_nodes, num_dst), max(num_nodes, num_dst))
        return new_index, torch.cat([is_loop, is_loop.new_zeros(num_nodes)])

    # a static graph gets the same looped edge_index back, whose CSR is then cached too
    new_index, dropped = memo(edge_index, ("self_loops", num_nodes), looped)
    new_attr = None
    if edge_attr is not None:
        is_loop = dropped[: edge_index.size(1)]
        fill = _loop_attr(edge_attr, edge_index[1], is_loop, num_nodes, num_dst, fill_value)
        new_attr = torch.cat([edge_attr, fill], dim=0)
    if exact:
        keep = ~dropped
        return SelfLoops(new_index[:, keep], None if new_attr is None else new_attr[keep], None)
    return SelfLoops(new_index, new_attr, dropped)


def apply_self_loops(
    module: torch.nn.Module, edge_index: Tensor, edge_attr: Tensor | None, num_nodes: int, total_nodes: int
) -> tuple[Tensor, Tensor | None, SelfLoops | None]:
    """:func:`replace_self_loops` as the module's ``add_self_loops``/``fill_value``/``lin_edge`` ask.

    Returns ``(edge_index, edge_attr, loops)``; ``loops`` is ``None`` (and the
    graph unchanged) when the module adds no self-loops.
    """
    if not module.add_self_loops:
        return edge_index, edge_attr, None
    uses_attr = getattr(module, "lin_edge", None) is not None
    loops = replace_self_loops(
        edge_index,
        edge_attr if uses_attr else None,
        num_nodes,
        module.fill_value,
        total_nodes,
        exact=module.exact_edges,
    )
    return loops.edge_index, loops.edge_attr, loops


# -- step 1: scores --------------------------------------------------------------------------
def node_scores(x: Tensor, att: Tensor) -> Tensor:
    """``[N, H]`` per-node attention terms ``<x[n, h], att[h]>`` of ``x`` ``[N, H, C]``, ``att`` ``[1, H, C]``.

    Computed as one matrix product ``x.view(N, H * C) @ A`` with ``A`` the
    ``[H * C, H]`` block-diagonal matrix of ``att`` (no ``[N, H, C]``
    temporary, forward or backward).
    """
    if x.dim() != 3 or att.numel() != x.size(1) * x.size(2):
        return (x * att).sum(dim=-1)
    return _heads_product(x, att)


def node_scores_pair(x: Tensor, att_a: Tensor, att_b: Tensor) -> tuple[Tensor, Tensor]:
    """``(node_scores(x, att_a), node_scores(x, att_b))`` with one read of ``x`` (one matrix product)."""
    if x.dim() != 3 or att_a.numel() != x.size(1) * x.size(2) or att_b.numel() != att_a.numel():
        return node_scores(x, att_a), node_scores(x, att_b)
    a, b = _heads_product(x, att_a, att_b).split(x.size(1), dim=1)  # backward: one cat, no zero-fill
    return a, b


def _heads_product(x: Tensor, *atts: Tensor) -> Tensor:
    """``x`` ``[N, H, C]`` times the block-diagonal ``[H * C, H]`` matrices of ``atts``, side by side."""
    n, heads, channels = x.shape
    dtype = x.dtype
    for a in atts:
        dtype = torch.promote_types(dtype, a.dtype)
    if heads == 1:  # one head: the attention vectors are the columns (no block structure to build)
        cols = [a.to(dtype).reshape(channels, 1) for a in atts]
        weight = cols[0] if len(cols) == 1 else torch.cat(cols, dim=1)
        return x.to(dtype).reshape(n, channels) @ weight
    eye = torch.eye(heads, dtype=dtype, device=x.device).view(heads, 1, heads)
    blocks = [(a.to(dtype).reshape(heads, channels, 1) * eye).reshape(heads * channels, heads) for a in atts]
    weight = blocks[0] if len(blocks) == 1 else torch.cat(blocks, dim=1)
    return x.to(dtype).reshape(n, heads * channels) @ weight


def additive_scores(features: Tensor, att: Tensor, negative_slope: float) -> Tensor:
    """GATv2's ``[E, H]`` scores ``<att[h], leaky_relu(features[e, h])>`` of ``features`` ``[E, H, C]``.

    The product with ``att`` is contracted directly (no second ``[E, H, C]``
    tensor besides the activation).
    """
    act = F.leaky_relu(features, negative_slope)
    return torch.einsum("ehc,hc->eh", act, att.reshape(att.shape[-2:]))


# -- step 2: softmax -------------------------------------------------------------------------
def edge_softmax(scores: Tensor, index: Tensor, num_nodes: int, ptr: Tensor | None = None) -> Tensor:
    """Softmax of ``scores`` ``[E, ...]`` over the edges sharing a target ``index[e]``."""
    if ptr is not None:
        return ops.softmax(scores, ptr=ptr, dim=0)
    return ops.softmax(scores, index, num_nodes=num_nodes, dim=0)


def normalize_scores(
    scores: Tensor,
    index: Tensor,
    num_nodes: int,
    *,
    negative_slope: float | None = None,
    dropout: float = 0.0,
    training: bool = False,
    ptr: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    """``dropout(softmax(leaky_relu(scores)))`` per target node.

    ``negative_slope=None`` skips the activation; edges flagged in the bool
    ``mask`` ``[E]`` get zero attention (score :math:`-\\infty`).
    """
    if negative_slope is not None:
        scores = F.leaky_relu(scores, negative_slope)
    if mask is not None:
        scores = scores.masked_fill(mask.view((-1,) + (1,) * (scores.dim() - 1)), float("-inf"))
    alpha = edge_softmax(scores, index, num_nodes, ptr)
    return F.dropout(alpha, p=dropout, training=training)


# -- step 3: aggregate -----------------------------------------------------------------------
def weighted_message(x_j: Tensor, alpha: Tensor) -> Tensor:
    """``alpha[e, h] * x_j[e, h, :]`` for ``x_j`` ``[E, H, C]`` (or ``[E, C]`` with ``alpha`` ``[E]``)."""
    return x_j * alpha.unsqueeze(-1)


def heads_output(out: Tensor, concat: bool) -> Tensor:
    """``[N, H, C]`` -> ``[N, H * C]`` (``concat``) or the mean over heads ``[N, C]``."""
    if concat:
        return out.reshape(out.size(0), out.size(1) * out.size(2))
    return out.mean(dim=1)


def init_output(
    module: torch.nn.Module, dst_channels: int, total_out: int, residual: bool, bias: bool
) -> None:
    """Give ``module`` its output parameters: ``res`` (a Glorot ``Linear`` from the targets'
    ``dst_channels`` when ``residual``, else ``None``) and ``bias`` (``[total_out]`` or ``None``)."""
    if residual:
        module.res = Linear(dst_channels, total_out, bias=False, weight_initializer="glorot")
    else:
        module.res = None
    if bias:
        module.bias = torch.nn.Parameter(torch.empty(total_out))
    else:
        module.register_parameter("bias", None)


def finish_output(module: torch.nn.Module, out: Tensor, x_dst: Tensor | None) -> Tensor:
    """Heads merged (:func:`heads_output`), then the residual ``res(x_dst)`` and ``bias`` added."""
    out = heads_output(out, module.concat)
    if module.res is not None and x_dst is not None:  # (x_src, None): no residual, as in PyG
        out = out + module.res(x_dst)
    if module.bias is not None:
        out = out + module.bias
    return out


# -- return_attention_weights ----------------------------------------------------------------
def attention_result(graph: Graph, edge_index: Tensor, alpha: Tensor, size: tuple[int, int]) -> Any:
    """The attention weights in the form PyG returns them for the given input.

    * ``edge_index`` input: ``(edge_index, alpha)``;
    * torch.sparse input: ``(adj, alpha)`` with ``adj`` the adjacency
      ``[N_dst, N_src, *alpha.shape[1:]]`` holding ``alpha`` as values, in the
      input's layout (COO coalesced: duplicate edges add up);
    * ``torch_sparse.SparseTensor`` input: a ``SparseTensor`` holding ``alpha``.

    ``size`` is ``(N_src, N_dst)``.
    """
    if not graph.is_sparse:
        return edge_index, alpha
    n_src, n_dst = size
    src, dst = edge_index[0], edge_index[1]
    adj = graph.adj_t
    if not isinstance(adj, Tensor):  # torch_sparse.SparseTensor
        return type(adj)(row=dst, col=src, value=alpha, sparse_sizes=(n_dst, n_src))
    shape = (n_dst, n_src) + tuple(alpha.shape[1:])
    if adj.layout == torch.sparse_coo:
        return torch.sparse_coo_tensor(torch.stack([dst, src]), alpha, shape).coalesce(), alpha
    if adj.layout == torch.sparse_csr:
        major, minor, n_major, n_minor = dst, src, n_dst, n_src
        make = torch.sparse_csr_tensor
    else:
        major, minor, n_major, n_minor = src, dst, n_src, n_dst
        make = torch.sparse_csc_tensor
    perm = torch.argsort(major.long() * max(n_minor, 1) + minor.long(), stable=True)
    compressed = ops.from_coo(major[perm], minor[perm], n_major, n_minor, is_sorted=True)
    return make(compressed.rowptr, compressed.col, alpha[perm], shape), alpha


def attention_weights(
    graph: Graph, edge_index: Tensor, alpha: Tensor, loops: SelfLoops | None, size: tuple[int, int]
) -> Any:
    """:func:`attention_result` over the edges the caller sees (replaced self-loops left out)."""
    if loops is not None:
        edge_index, alpha = loops.kept(alpha)
    return attention_result(graph, edge_index, alpha, size)
