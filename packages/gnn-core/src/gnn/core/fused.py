"""Runs a fused plan (:mod:`gnn.core.plans`) with one op of :mod:`gnn.core.ops`.

:class:`~gnn.core.MessagePassing` decides *whether* a plan runs; the functions
here only run it. Each returns ``None`` when the call's inputs fall outside what
the fused op computes (e.g. a 2-D edge weight, an aggregation other than a basic
reduction), and the general path runs instead. Inputs arrive as propagate /
edge_updater keyword arguments; pairs ``(a, b)`` are read by ``edge_index`` row, as
``MessagePassing`` lifts them (``pair[graph.j]`` for the senders).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from . import ops
from . import validation as v
from .aggr.base import Aggregation
from .aggr.basic import fused_reduction
from .cache import memo
from .graph import Graph, to_csr
from .ops import reduce as _reduce
from .plans import (
    AdditiveAttention,
    AttentionWeights,
    ChannelWeightedSum,
    DotAttention,
    EdgeScaled,
    NodeScoreAttention,
    WeightedSum,
)

__all__ = [
    "weighted_sum",
    "channel_weighted_sum",
    "node_score_attention",
    "additive_attention",
    "dot_attention",
]


def _side(value: Any, side: int) -> Any:
    """One side of a pair argument, or the argument itself."""
    return value[side] if isinstance(value, (tuple, list)) else value


def _rows(graph: Graph, csr: ops.CSR) -> None:
    """A sparse input's rows must match the receivers' count."""
    size_i = graph.size_i
    if csr.num_rows != size_i:
        raise ValueError(f"sparse adjacency has {csr.num_rows} rows, expected {size_i}")


# -- x_j / weight * x_j ----------------------------------------------------------------------------
def weighted_sum(
    plan: WeightedSum, aggr: Any, graph: Graph, kwargs: dict[str, Any], node_dim: int, root: Any
) -> tuple[Tensor, bool] | None:
    """``reduce_j w_ji x_j`` through :func:`gnn.core.ops.spmm`, with ``c * r`` fused in when
    ``root = (r, c)`` is given and the reduction is a sum or mean; an aggregation made of
    one-pass reductions (``MultiAggregation``, ``DegreeScalerAggregation``, var, std, softmax:
    :meth:`~gnn.core.Aggregation.one_pass_reductions`) of the plain ``x_j`` message runs
    through :func:`gnn.core.ops.multi_spmm`.

    Returns ``(out, root_added)`` or ``None``.
    """
    reduce = fused_reduction(aggr)
    if reduce is None:
        return _one_pass(plan, aggr, graph, kwargs, node_dim)
    x_src = _side(kwargs.get(plan.source), graph.j)
    if not isinstance(x_src, Tensor) or node_dim % x_src.dim() != 0:
        return None
    weight = None  # an ``x_j`` message ignores sparse values, as the general path does
    if plan.weight is not None:
        weight = kwargs.get(plan.weight)
        if weight is None and graph.sparse is not None:
            weight = graph.sparse.value
        if weight is not None:
            if not isinstance(weight, Tensor):
                return None
            if weight.dim() != 1:  # the message is weight.view(-1, 1) * x_j: one weight per edge
                if weight.dim() == 2 and weight.size(1) == 1:
                    weight = weight.view(-1)
                elif weight.dim() == 2 and x_src.dim() == 3 and weight.size(1) == x_src.size(1):
                    return None  # one weight per edge and head: the layer's own message does it
                else:
                    raise ValueError(
                        f"'{plan.weight}' must hold one weight per edge ([E]), got {v.describe(weight)}"
                    )
    csr = graph.csr()
    if graph.sparse is not None:
        _rows(graph, csr)
    if weight is not None and weight.numel() != csr.nnz:
        raise ValueError(f"'{plan.weight}' has {weight.numel()} entries but 'edge_index' has {csr.nnz} edges")
    if root is not None and reduce in ("sum", "mean") and not torch.compiler.is_compiling():
        r, c = root
        plain = isinstance(c, (int, float)) or (
            isinstance(c, Tensor) and not c.requires_grad and c.numel() == 1
        )
        if plain and isinstance(r, Tensor) and r.shape == (csr.num_rows,) + tuple(x_src.shape[1:]):
            return _reduce.run_spmm(csr, x_src, weight, reduce, r, float(c)), True
    return _reduce.run_spmm(csr, x_src, weight, reduce, None, 1.0), False


def _one_pass(
    plan: WeightedSum, aggr: Any, graph: Graph, kwargs: dict[str, Any], node_dim: int
) -> tuple[Tensor, bool] | None:
    """All reductions of ``aggr`` over the messages ``x_j`` in one :func:`gnn.core.ops.multi_spmm`
    pass (no ``[E, F]`` message tensor), then the aggregation's own finish."""
    if not isinstance(aggr, Aggregation):
        return None
    if plan.weight is not None and (kwargs.get(plan.weight) is not None or graph.sparse is not None):
        return None  # weighted messages (a sparse input's values weigh them) take the general path
    reductions = aggr.one_pass_reductions()
    if reductions is None:
        return None
    x_src = _side(kwargs.get(plan.source), graph.j)
    if not isinstance(x_src, Tensor) or x_src.dim() < 2 or node_dim % x_src.dim() != 0:
        return None
    csr = graph.csr()
    if graph.sparse is not None:
        _rows(graph, csr)
    out = ops.multi_spmm(csr, x_src, reductions)
    return aggr.one_pass_finish(out, csr.degree, 0), False


# -- x_j * W (a weight per edge and channel) ---------------------------------------------------------
def channel_weighted_sum(
    plan: ChannelWeightedSum, aggr: Any, graph: Graph, kwargs: dict[str, Any], node_dim: int
) -> Tensor | None:
    """``sum_j x_j * W_ji`` (``W`` ``[E, F]``, or an :class:`~gnn.core.plans.EdgeScaled` whose scale
    becomes the op's per-edge scalar) through :func:`gnn.core.ops.gather_mul_scatter`; ``None`` for
    an aggregation other than a sum, a sparse input or inputs of other shapes."""
    if fused_reduction(aggr) != "sum" or graph.sparse is not None:
        return None
    x_src = _side(kwargs.get(plan.source), graph.j)
    weight, scale = kwargs.get(plan.weight), None
    if isinstance(weight, EdgeScaled):
        weight, scale = weight.values, weight.scale
    if not isinstance(x_src, Tensor) or x_src.dim() != 2 or node_dim % 2 != 0:
        return None
    if not isinstance(weight, Tensor) or weight.shape != (graph.num_edges, x_src.size(1)):
        return None  # broadcasting weights ([E, 1], [F]) are the general path's
    if weight.dtype != x_src.dtype:
        return None
    csr = graph.csr()  # cached per graph; only its sortedness is used
    ptr = csr.rowptr if csr.perm is None else None
    edge_index, j = graph.edge_index, graph.j
    senders = memo(edge_index, ("row", j), lambda: edge_index[j])  # one view per graph: checked once
    return ops.gather_mul_scatter(x_src, weight, senders, graph.index, graph.size_i, scale=scale, ptr=ptr)


# -- attention --------------------------------------------------------------------------------------
def _heads(t: Any) -> bool:
    return isinstance(t, Tensor) and t.dim() == 3


def _attention_ok(module: Any, aggr: Any) -> bool:
    dropout = getattr(module, "dropout", 0.0)
    return fused_reduction(aggr) == "sum" and not (module.training and dropout > 0)


def can_defer(plan: Any, module: Any, graph: Graph, inputs: dict[str, Any]) -> bool:
    """Whether ``edge_updater`` may hand the attention of ``plan`` to the next propagate."""
    if not _attention_ok(module, module.aggr_module):
        return False
    if isinstance(plan, NodeScoreAttention):
        scores = inputs.get(plan.scores)
        s_src = _side(scores, graph.j)
        return isinstance(s_src, Tensor) and s_src.dim() == 2
    if isinstance(plan, AdditiveAttention):
        features = inputs.get(plan.features)
        return _heads(_side(features, graph.j)) and _heads(_side(features, graph.i))
    return False


def node_score_attention(
    plan: NodeScoreAttention, module: Any, graph: Graph, weights: AttentionWeights, kwargs: dict[str, Any]
) -> Tensor | None:
    """GAT's deferred attention and aggregation in one :func:`gnn.core.ops.node_score_attention`."""
    x_src = _side(kwargs.get(plan.source), graph.j)
    if not _heads(x_src):
        return None
    inputs = weights.inputs
    scores = inputs.get(plan.scores)
    s_src, s_dst = _side(scores, graph.j), _side(scores, graph.i)
    csr = graph.csr()
    if graph.sparse is not None:
        _rows(graph, csr)
    if s_dst is None:
        s_dst = s_src.new_zeros(csr.num_rows, s_src.size(1))
    edge = module.edge_term(inputs.get(plan.edge_attr))
    mask = inputs.get(plan.mask) if plan.mask is not None else None
    out, alpha = ops.node_score_attention(
        csr, x_src, s_src, s_dst, edge, module.negative_slope, mask=mask, return_alpha="csr"
    )
    weights.fill(csr, alpha)
    return out


def _park_masked(graph: Graph, mask: Tensor) -> Tensor:
    """``edge_index`` with the masked edges moved to an extra receiving node ``N_dst``: their
    attention then lives in a row of its own (the shape stays independent of the data)."""
    ei, i = graph.edge_index, graph.i
    rows = ei[i].masked_fill(mask, graph.size_i)
    return torch.stack([ei[0], rows]) if i == 1 else torch.stack([rows, ei[1]])


def additive_attention(
    plan: AdditiveAttention, module: Any, graph: Graph, weights: AttentionWeights, kwargs: dict[str, Any]
) -> Tensor | None:
    """GATv2's deferred attention and aggregation in one :func:`gnn.core.ops.additive_attention`.

    The kernel has no mask argument: masked edges (replaced self loops) are moved to
    an extra receiving node whose output is dropped, when any edge is masked.
    """
    inputs = weights.inputs
    features = inputs.get(plan.features)
    x_src, x_dst = _side(features, graph.j), _side(features, graph.i)
    if _side(kwargs.get(plan.source), graph.j) is not x_src:
        return None  # the messages are not the features the scores were built from
    heads, channels = x_src.size(1), x_src.size(2)
    att = module.att.reshape(heads, channels)
    edge = module.edge_term(inputs.get(plan.edge_attr))
    mask = inputs.get(plan.mask) if plan.mask is not None else None
    if mask is not None and not torch.compiler.is_compiling() and not bool(mask.any()):
        mask = None
    if mask is None:
        csr = graph.csr()
        if graph.sparse is not None:
            _rows(graph, csr)
        out, alpha = ops.additive_attention(
            csr, x_src, x_dst, att, edge, module.negative_slope, return_alpha="csr"
        )
        weights.fill(csr, alpha)
        return out
    num_dst = x_dst.size(0)
    parked = _park_masked(graph, mask)
    size = list(graph.size)
    size[graph.i] = num_dst + 1
    csr = to_csr(parked, (size[0], size[1]), graph.flow)
    x_dst = torch.cat([x_dst, x_dst.new_zeros((1,) + tuple(x_dst.shape[1:]))])
    out, alpha = ops.additive_attention(
        csr, x_src, x_dst, att, edge, module.negative_slope, return_alpha="csr"
    )
    weights.fill(csr, alpha.masked_fill(csr.in_csr_order(mask).view(-1, 1), 0.0))
    return out[:num_dst]


def dot_attention(plan: DotAttention, module: Any, graph: Graph, kwargs: dict[str, Any]) -> Tensor | None:
    """TransformerConv's attention and aggregation in one :func:`gnn.core.ops.dot_attention`;
    the weights go to ``module._alpha`` (an :class:`AttentionWeights`)."""
    if not _attention_ok(module, module.aggr_module):
        return None
    query = _side(kwargs.get(plan.query), graph.i)
    key, value = _side(kwargs.get(plan.key), graph.j), _side(kwargs.get(plan.value), graph.j)
    if not (_heads(query) and _heads(key) and _heads(value)):
        return None
    csr = graph.csr()
    if graph.sparse is not None:
        _rows(graph, csr)
    edge = module.edge_term(kwargs.get(plan.edge_attr))
    scale = 1.0 / math.sqrt(query.size(-1))
    out, alpha = ops.dot_attention(csr, query, key, value, edge, scale, return_alpha="csr")
    weights = AttentionWeights({}, graph)
    weights.fill(csr, alpha)
    module._alpha = weights
    return out
