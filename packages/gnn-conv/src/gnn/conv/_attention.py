r"""Shared machinery of the attention layers (GAT, GATv2, Transformer, AGNN, SuperGAT, FA, ...).

The attention layers split their work into three steps, kept apart here so
that a fused kernel can later replace them as a whole:

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

The other helpers deal with the graph around that: sparse ``adj_t``
inputs are read as ``edge_index`` up front (:func:`read_graph`), self
loops are replaced as PyG's attention layers do (:func:`replace_self_loops`),
and ``return_attention_weights`` results are given in the form of the input
(:func:`attention_result`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from gnn.core import Linear, ops
from gnn.core import validation as v
from gnn.core.utils import is_sparse
from gnn.core.utils.cache import TensorCache
from gnn.core.utils.sparse import from_sparse

from ._utils import check_edge_attr  # re-exported: the attention layers call att.check_edge_attr

__all__ = [
    "Graph",
    "SelfLoops",
    "additive_scores",
    "attention_result",
    "by_row",
    "check_nodes",
    "check_edge_attr",
    "edge_softmax",
    "heads_output",
    "node_scores",
    "node_scores_pair",
    "normalize_scores",
    "read_graph",
    "replace_self_loops",
    "weighted_message",
]


# -- the graph -------------------------------------------------------------------------------
@dataclass(eq=False)
class Graph:
    """An ``edge_index`` as the attention layers use it.

    Attributes:
        edge_index: ``[2, E]`` (for a sparse input: its entries in CSR order,
            senders in row 0).
        value: the sparse input's values (``None`` for ``edge_index`` inputs).
        adj: the sparse input as given (``None`` for ``edge_index`` inputs).
        size: ``(N_src, N_dst)`` of a sparse input, else ``None``.
    """

    edge_index: Tensor
    value: Tensor | None = None
    adj: Any = None
    size: tuple[int, int] | None = None

    @property
    def is_sparse(self) -> bool:
        return self.adj is not None


def read_graph(edge_index: Any, flow: str = "source_to_target") -> Graph:
    """Read ``edge_index`` (``[2, E]`` or a sparse ``adj_t``) into a :class:`Graph`.

    Raises ``TypeError``/``ValueError`` naming ``edge_index`` when it is
    neither a ``[2, E]`` integer tensor nor a sparse adjacency (or a sparse
    adjacency with ``flow="target_to_source"``, which would be ambiguous).
    """
    if is_sparse(edge_index):
        if flow != "source_to_target":
            raise ValueError(
                "flow='target_to_source' is not supported for sparse 'edge_index' inputs; "
                "pass the transposed adjacency instead"
            )
        sp = from_sparse(edge_index)
        return Graph(sp.edge_index(), sp.value, edge_index, sp.size)
    if not isinstance(edge_index, Tensor):
        raise TypeError(
            "'edge_index' must be a [2, E] integer tensor, a torch.sparse adjacency or a "
            f"torch_sparse.SparseTensor, got {v.describe(edge_index)}"
        )
    v.check_edge_index(edge_index)
    return Graph(edge_index)


_checked_cache = TensorCache(8)


def check_nodes(edge_index: Tensor, num_src: int, num_dst: int, flow: str = "source_to_target") -> None:
    """Check that ``edge_index`` indexes ``num_src`` senders and ``num_dst`` receivers.

    With ``flow="target_to_source"`` the receivers are ``edge_index[0]``. A
    static graph is checked once: the passed check is remembered for the
    same (unmodified) tensor and sizes.
    """
    if flow != "source_to_target":
        num_src, num_dst = num_dst, num_src

    def check() -> bool:
        v.check_index_range("edge_index[0]", edge_index[0], num_src)
        v.check_index_range("edge_index[1]", edge_index[1], num_dst)
        return True

    _checked_cache.get((edge_index,), ("nodes", num_src, num_dst, v.validation_enabled()), check)


def check_graph_size(graph: Graph, num_src: int, num_dst: int) -> None:
    """A sparse adjacency's ``[N_dst, N_src]`` shape must match the node features' counts."""
    if graph.size is not None and tuple(graph.size) != (num_src, num_dst):
        raise ValueError(
            f"'edge_index' is a [{graph.size[1]}, {graph.size[0]}] adjacency but 'x' has "
            f"{num_src} source and {num_dst} target nodes"
        )


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
            the data (no graph break under ``torch.compile``).
    """

    edge_index: Tensor
    edge_attr: Tensor | None
    dropped: Tensor

    def kept(self, alpha: Tensor) -> tuple[Tensor, Tensor]:
        """``(edge_index, alpha)`` without the dropped loops: PyG's self-looped graph."""
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


_loops_cache = TensorCache(8)


def replace_self_loops(
    edge_index: Tensor,
    edge_attr: Tensor | None,
    num_nodes: int,
    fill_value: float | Tensor | str | None = "mean",
    num_dst: int | None = None,
) -> SelfLoops:
    """Replace the self loops by one loop ``(i, i)`` per node ``i < num_nodes``, as PyG's attention layers do.

    The given loops are not removed (that would make the number of edges
    depend on the data) but flagged in :attr:`SelfLoops.dropped`. The new
    loops' ``edge_attr`` is ``fill_value``: a number, a tensor, or a
    reduction (``"mean"``, ``"add"``, ``"max"`` ...) of each node's incoming
    attributes, the given loops excluded. ``num_dst`` is the number of
    target nodes (default ``num_nodes``).
    """
    num_dst = num_nodes if num_dst is None else num_dst

    def looped() -> tuple[Tensor, Tensor]:
        is_loop = edge_index[0] == edge_index[1]
        loop = torch.arange(num_nodes, device=edge_index.device, dtype=edge_index.dtype)
        new_index = torch.cat([edge_index, loop.unsqueeze(0).expand(2, -1)], dim=1)
        return new_index, torch.cat([is_loop, is_loop.new_zeros(num_nodes)])

    # a static graph gets the same looped edge_index back, which then hits the CSR cache
    new_index, dropped = _loops_cache.get((edge_index,), ("loops", num_nodes), looped)
    new_attr = None
    if edge_attr is not None:
        is_loop = dropped[: edge_index.size(1)]
        fill = _loop_attr(edge_attr, edge_index[1], is_loop, num_nodes, num_dst, fill_value)
        new_attr = torch.cat([edge_attr, fill], dim=0)
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
        edge_index, edge_attr if uses_attr else None, num_nodes, module.fill_value, total_nodes
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


# -- steps 1-3 fused ---------------------------------------------------------------------------
def can_fuse(module: torch.nn.Module, dropout: float) -> bool:
    """Whether a node-level-score layer may use :func:`gnn.core.ops.node_score_attention`.

    Not with active attention dropout (the kernel is dropout-free), explain
    mode, or message/aggregate hooks (which must see per-edge messages).
    """
    if module.training and dropout > 0:
        return False
    if getattr(module, "_explain", None):
        return False
    hooks = (
        "_message_forward_pre_hooks",
        "_message_forward_hooks",
        "_aggregate_forward_pre_hooks",
        "_aggregate_forward_hooks",
        "_edge_update_forward_pre_hooks",
        "_edge_update_forward_hooks",
    )
    return not any(getattr(module, name, None) for name in hooks)


def fused_attention(
    edge_index: Tensor,
    size: tuple[int, int],
    flow: str,
    x_src: Tensor,
    alpha_src: Tensor,
    alpha_dst: Tensor | None,
    alpha_edge: Tensor | None,
    mask: Tensor | None,
    negative_slope: float,
    need_alpha: bool = True,
) -> tuple[Tensor, Tensor | None]:
    """Steps 1-3 in one :func:`gnn.core.ops.node_score_attention` call (no ``[E, H, C]`` tensor).

    Args:
        edge_index: ``[2, E]`` (loops already replaced).
        size: ``(N_src, N_dst)`` in ``edge_index`` row order (``by_row``).
        x_src: ``[N_src, H, C]`` sender features.
        alpha_src / alpha_dst: ``[N, H]`` node terms (``alpha_dst`` may be ``None``).
        alpha_edge: optional ``[E, H]`` edge terms.
        mask: optional bool ``[E]``: edges that get zero attention.
        need_alpha: whether the caller uses the attention weights; ``False``
            returns ``None`` for them (they are not put back in edge order).

    Returns:
        ``(out [N_dst, H, C], alpha [E, H] or None)``.
    """
    from gnn.core.utils import to_csr

    csr = to_csr(edge_index, size, flow)
    if alpha_dst is None:
        alpha_dst = alpha_src.new_zeros(csr.num_rows, alpha_src.size(1))
    return ops.node_score_attention(
        csr, x_src, alpha_src, alpha_dst, alpha_edge, negative_slope, mask=mask, return_alpha=need_alpha
    )


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
    if module.res is not None:
        if x_dst is None:
            raise ValueError("'x' must provide target node features when residual=True")
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
    adj = graph.adj
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


# -- steps 1-3 fused, per-feature scores (GATv2Conv, TransformerConv) ------------------------
def fused_dot_attention(
    edge_index: Tensor,
    size: tuple[int, int],
    flow: str,
    query: Tensor,
    key: Tensor,
    value: Tensor,
    edge: Tensor | None,
    scale: float,
    need_alpha: bool = True,
) -> tuple[Tensor, Tensor | None]:
    """TransformerConv's steps 1-3 in one :func:`gnn.core.ops.dot_attention` call.

    No ``[E, H, C]`` tensor is formed without edge features.

    Args:
        edge_index: ``[2, E]``.
        size: ``(N_src, N_dst)`` in ``edge_index`` row order (``by_row``).
        query: ``[N_dst, H, C]``; key / value: ``[N_src, H, C]``.
        edge: optional ``[E, H, C]`` edge embeddings (added to keys and values).
        scale: factor of the scores.
        need_alpha: whether the caller uses ``alpha`` (else ``None`` comes back).

    Returns:
        ``(out [N_dst, H, C], alpha [E, H])``, ``alpha`` in ``edge_index`` order.
    """
    from gnn.core.utils import to_csr

    csr = to_csr(edge_index, size, flow)
    return ops.dot_attention(csr, query, key, value, edge, scale, return_alpha=need_alpha)


_masked_cache = TensorCache(8)


def _park_masked(edge_index: Tensor, mask: Tensor, flow: str, num_rows: int) -> Tensor:
    """``edge_index`` with the masked edges moved to an extra receiving node ``num_rows``.

    Their attention then lives in a row of its own, away from the real
    targets; the shape stays independent of the data. Cached for a static
    graph, so that the CSR of the result is cached too.
    """
    r = 1 if flow == "source_to_target" else 0

    def build() -> Tensor:
        rows = edge_index[r].masked_fill(mask, num_rows)
        return torch.stack([edge_index[0], rows]) if r == 1 else torch.stack([rows, edge_index[1]])

    return _masked_cache.get((edge_index, mask), ("park", r, num_rows), build)


def fused_gatv2_attention(
    edge_index: Tensor,
    size: tuple[int, int],
    flow: str,
    x_src: Tensor,
    x_dst: Tensor,
    att: Tensor,
    edge: Tensor | None,
    mask: Tensor | None,
    negative_slope: float,
    need_alpha: bool = True,
) -> tuple[Tensor, Tensor | None]:
    """GATv2Conv's steps 1-3 in one :func:`gnn.core.ops.additive_attention` call.

    No ``[E, H, C]`` tensor is formed without edge features.

    Args:
        edge_index: ``[2, E]`` (loops already replaced).
        size: ``(N_src, N_dst)`` in ``edge_index`` row order (``by_row``).
        x_src: ``[N_src, H, C]``; x_dst: ``[N_dst, H, C]``; att: ``[H, C]``.
        edge: optional ``[E, H, C]`` edge embeddings.
        mask: optional bool ``[E]``: edges that get zero attention. When any
            edge is masked (or while compiling, where that cannot be asked),
            they are moved to an extra receiving node whose output is dropped.
        need_alpha: whether the caller uses ``alpha`` (else ``None`` comes back).

    Returns:
        ``(out [N_dst, H, C], alpha [E, H])``, ``alpha`` in ``edge_index`` order.
    """
    from gnn.core.utils import to_csr

    if mask is not None and not torch.compiler.is_compiling() and not bool(mask.any()):
        mask = None
    if mask is None:
        csr = to_csr(edge_index, size, flow)
        return ops.additive_attention(csr, x_src, x_dst, att, edge, negative_slope, return_alpha=need_alpha)
    num_dst = x_dst.size(0)
    parked = _park_masked(edge_index, mask, flow, num_dst)
    grown = (size[0], num_dst + 1) if flow == "source_to_target" else (num_dst + 1, size[1])
    x_dst = torch.cat([x_dst, x_dst.new_zeros((1,) + tuple(x_dst.shape[1:]))])
    csr = to_csr(parked, grown, flow)
    out, alpha = ops.additive_attention(csr, x_src, x_dst, att, edge, negative_slope, return_alpha=need_alpha)
    return out[:num_dst], (alpha.masked_fill(mask.view(-1, 1), 0.0) if alpha is not None else None)
