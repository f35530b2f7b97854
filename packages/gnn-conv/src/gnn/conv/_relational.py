"""Shared steps of the relational layers (RGCN, FastRGCN, RGAT, CuGraphRGCN), not public API.

The relational layers send one message per edge through a weight matrix chosen by the
edge's relation. gnn runs them without a Python loop over relations by *expanding* the
graph: a node ``n`` seen through relation ``r`` becomes the node ``n * R + r`` of a graph
with ``R`` times as many nodes (:func:`relation_edges`). One ``propagate`` over the expanded
graph then aggregates every relation at once:

* receivers ``i * R + r``: the per-relation aggregate of node ``i`` (RGCN's
  :math:`\\frac{1}{|\\mathcal{N}_r(i)|}\\sum_{j \\in \\mathcal{N}_r(i)}` is the ``mean`` of
  that group), a ``[N * R, F]`` result that one matrix product with the stacked weights
  turns into :math:`\\sum_r h_{i,r} W_r`;
* senders ``j * R + r``: a row of a table of per-relation transforms ``x_j W_r``
  (``[N * R, F_out]``, computed by one matrix product), as the featureless RGCN and RGAT
  use it.

The expanded ``edge_index`` is kept in the per-graph cache (:func:`gnn.core.cache.memo`)
for the ``edge_index`` and ``edge_type`` tensors it came from.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from gnn.core import ops
from gnn.core import validation as v
from gnn.core.cache import memo
from gnn.core.graph import Graph


def check_relations(name: str, value: Any, *, optional: bool = False) -> None:
    """A positive ``int`` count (``num_relations``, ``num_bases``, ``num_blocks``)."""
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"'{name}' must be a positive int{' or None' if optional else ''}, got {value!r}")


def read_edge_type(graph: Graph, edge_type: Any, num_relations: int) -> Tensor:
    """The ``[E]`` relation of every edge of ``graph``, checked against ``num_relations``.

    A sparse adjacency carries the relations as its values (as PyG's ``SparseTensor``
    input does; a given ``edge_type`` is then ignored, as PyG ignores it); an ``edge_index``
    needs ``edge_type``. The range check runs once per ``edge_type`` tensor.
    """
    if graph.is_sparse:
        edge_type = graph.value
        if edge_type is None or edge_type.is_floating_point() or edge_type.dim() != 1:
            raise TypeError(
                "a sparse adjacency given to a relational layer must hold the integer relation of each "
                f"edge as its values ('edge_type'), got {v.describe(edge_type)}"
            )
    elif edge_type is None:
        raise ValueError("'edge_type' is required (the relation of each edge) for an 'edge_index' input")
    v.check_tensor("edge_type", edge_type)
    v.check_index_dtype("edge_type", edge_type)
    v.check_per_entry("edge_type", edge_type, graph.num_edges, "edge")
    v.check_index_range("edge_type", edge_type, num_relations, "relations ('num_relations')")
    return edge_type


def relation_edges(
    graph: Graph, edge_type: Tensor, num_relations: int, *, senders: bool, receivers: bool
) -> Tensor:
    """``graph``'s ``edge_index`` with nodes split by relation: ``[2, E]`` int64.

    With ``senders``, sender ``j`` of an edge of relation ``r`` becomes ``j * R + r``; with
    ``receivers``, receiver ``i`` becomes ``i * R + r``. The rows keep the graph's flow
    (``graph.j`` holds the senders). Cached per (``edge_index``, ``edge_type``).
    """
    edge_index, i, j = graph.edge_index, graph.i, graph.j

    def compute() -> Tensor:
        rel = edge_type.long()
        rows: list[Tensor] = [edge_index[0].long(), edge_index[1].long()]
        if senders:
            rows[j] = rows[j] * num_relations + rel
        if receivers:
            rows[i] = rows[i] * num_relations + rel
        return torch.stack(rows)

    key = ("relation_edges", num_relations, j, senders, receivers)
    return memo(edge_index, key, compute, edge_type)


def mean_weights(
    graph: Graph, edge_type: Tensor, num_relations: int, num_dst: Any, dtype: torch.dtype
) -> Tensor:
    """``[E]`` weights :math:`d_i / |\\mathcal{N}_r(i)|` of the edges ``j -> i`` of relation ``r``
    (:math:`d_i` the in-degree of ``i``): a mean over all incoming edges of ``i`` of the weighted
    messages is then the sum over relations of the per-relation means. Cached per graph."""
    edge_index = graph.edge_index

    def compute() -> Tensor:
        receiver = graph.index.long()
        group = receiver * num_relations + edge_type.long()
        ones = torch.ones(group.numel(), dtype=dtype, device=group.device)
        per_relation = ops.scatter(ones, group, 0, num_dst * num_relations, "sum")
        degree = ops.scatter(ones, receiver, 0, num_dst, "sum")
        return degree.index_select(0, receiver) / per_relation.index_select(0, group)

    key = ("relation_mean_weights", num_relations, graph.i, num_dst, dtype)
    return memo(edge_index, key, compute, edge_type)


def edge_rows(
    index: Tensor, edge_type: Tensor, num_relations: int, num_dst: Any, mean: bool, dtype: torch.dtype
) -> tuple[ops.CSR, Tensor | None]:
    """``(csr, weight)`` that sum per-edge rows at their receivers: ``csr`` has one row per
    receiver and one column per edge (``ops.spmm(csr, messages, weight)`` adds the messages of each
    receiver), ``weight`` is :math:`1 / |\\mathcal{N}_r(i)|` for ``mean`` (else ``None``). Cached per
    receiver ``index`` tensor (a graph's is the same object every call)."""

    def compute() -> tuple[ops.CSR, Tensor | None]:
        receiver = index.long()
        edges = torch.arange(receiver.numel(), device=receiver.device)
        csr = ops.from_coo(receiver, edges, num_dst, receiver.numel())
        if not mean:
            return csr, None
        group = receiver * num_relations + edge_type.long()
        ones = torch.ones(group.numel(), dtype=dtype, device=group.device)
        per_relation = ops.scatter(ones, group, 0, num_dst * num_relations, "sum")
        return csr, per_relation.index_select(0, group).reciprocal()

    return memo(index, ("relation_edge_rows", num_relations, num_dst, mean, dtype), compute, edge_type)


def expanded_size(graph: Graph, num_src: Any, num_dst: Any) -> tuple[Any, Any]:
    """``size`` argument of ``propagate`` (``edge_index`` row order) for the given node counts."""
    size = [None, None]
    size[graph.j], size[graph.i] = num_src, num_dst
    return size[0], size[1]


def combined_weight(weight: Tensor, comp: Tensor | None, num_relations: int) -> Tensor:
    """``[R, F_in, F_out]`` relation weights: ``weight`` itself, or the basis decomposition
    :math:`W_r = \\sum_b a_{rb} V_b` with ``comp`` ``[R, B]`` and ``weight`` ``[B, F_in, F_out]``."""
    if comp is None:
        return weight
    bases = weight.size(0)
    return (comp @ weight.reshape(bases, -1)).view(num_relations, weight.size(1), weight.size(2))


def relation_table(
    x: Tensor, weight: Tensor, comp: Tensor | None, num_relations: int, blocks: bool
) -> Tensor:
    """``[N * R, F_out]`` table of ``x_n W_r`` (row ``n * R + r``) for float ``x`` ``[N, F_in]``,
    or of the embedding rows ``W_r[x_n]`` for an integer ``x`` ``[N]``.

    ``blocks``: ``weight`` is ``[R, B, F_in / B, F_out / B]`` (block-diagonal ``W_r``).
    """
    if not x.is_floating_point():
        w = combined_weight(weight, comp, num_relations)  # [R, F_in, F_out]: rows are embeddings
        return w.index_select(1, x.long()).transpose(0, 1).reshape(-1, w.size(-1))
    if blocks:
        nb, bi = weight.size(1), weight.size(2)
        table = torch.einsum("nbk,rbko->nrbo", x.reshape(x.size(0), nb, bi), weight)
        return table.reshape(x.size(0) * num_relations, -1)
    w = combined_weight(weight, comp, num_relations)
    wide = w.transpose(0, 1).reshape(w.size(1), num_relations * w.size(2))
    return (x @ wide).view(x.size(0) * num_relations, w.size(2))


def transform_aggregates(
    h: Tensor,
    weight: Tensor,
    comp: Tensor | None,
    num_relations: int,
    blocks: bool,
    base: Tensor | None = None,
) -> Tensor:
    """``base`` + :math:`\\sum_r h_{i,r} W_r` for per-relation aggregates ``h`` ``[N * R, F_in]`` (row
    ``i * R + r``): one matrix product with the stacked weights (accumulated onto ``base``, e.g.
    the root term, in the same call), ``[N, F_out]``."""
    in_channels = weight.size(1) * weight.size(2) if blocks else weight.size(-2)
    if h.dim() != 2 or h.size(-1) != in_channels:
        raise ValueError(
            f"the aggregation must keep the {in_channels} input features per relation, got "
            f"aggregates of shape {list(h.shape)}"
        )
    if blocks:
        nb, bi = weight.size(1), weight.size(2)
        out = torch.einsum("nrbk,rbko->nbo", h.reshape(-1, num_relations, nb, bi), weight)
        out = out.reshape(out.size(0), nb * weight.size(3))
        return out if base is None else out + base
    w = combined_weight(weight, comp, num_relations)
    flat_h = h.reshape(-1, num_relations * w.size(1))
    flat_w = w.reshape(num_relations * w.size(1), w.size(2))
    return flat_h @ flat_w if base is None else torch.addmm(base, flat_h, flat_w)
