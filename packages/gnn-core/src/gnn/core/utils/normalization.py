r"""Symmetric GCN normalization of a graph (:func:`gcn_norm`).

.. math::
    \hat{A} = \hat{D}^{-1/2} (A + \lambda I) \hat{D}^{-1/2}, \qquad
    \hat{D}_{ii} = \sum_j (A + \lambda I)_{ij}

with ``A[i, j]`` the summed weight of the edges ``j -> i`` (duplicates count)
and :math:`\lambda` the self-loop fill value (1, or 2 when ``improved``).
A node that already has a self loop keeps that loop's weight instead of the
fill value (PyG's "remaining self loops" rule; with several loops on one
node, the last one's weight is kept).

Compile-friendly self loops
---------------------------
Dropping the existing self loops (as PyG does) needs a boolean mask whose
number of ``True`` entries is only known at run time, which breaks a
``torch.compile`` graph. For ``edge_index`` inputs :func:`gcn_norm` instead
*keeps* every edge, gives the existing self loops weight 0 and appends one
loop per node carrying the kept loop weight (or the fill value). The result
has ``E + N`` edges whatever the data, and every sum over it (degrees, the
propagated features) is exactly the one PyG computes. Consumers must
therefore aggregate the normalized edges with a sum, which is what GCN-style
normalization is for. Sparse inputs (no compile concern) get the existing
loops removed, and come back in the layout they were given in.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .. import ops
from .. import validation as v
from ..cache import memo
from .edges import maybe_num_nodes
from .sparse import _is_sparse_tensor, from_sparse, is_sparse

__all__ = ["gcn_norm"]

_FLOWS = ("source_to_target", "target_to_source")


def _append_self_loops(
    edge_index: Tensor, edge_weight: Tensor, fill_value: float, num_nodes: int
) -> tuple[Tensor, Tensor, Tensor]:
    """Zero the weight of existing self loops and append one loop per node.

    The appended loop of node ``i`` carries the weight of ``i``'s (last)
    existing self loop, or ``fill_value`` when it has none. Shapes depend
    only on ``E`` and ``num_nodes``, never on the data.

    Returns:
        ``(edge_index [2, E + N], edge_weight [E + N], is_loop [E])``.
    """
    row, col = edge_index[0], edge_index[1]
    is_loop = row == col
    # slot num_nodes is a sink for the non-loop edges
    target = torch.where(is_loop, row, torch.full_like(row, num_nodes)).long()
    loop_weight = edge_weight.new_full((num_nodes + 1,), fill_value)
    loop_weight = loop_weight.scatter(0, target, edge_weight)[:num_nodes]
    loop = torch.arange(num_nodes, device=edge_index.device, dtype=edge_index.dtype)
    new_index = torch.cat([edge_index, torch.stack([loop, loop])], dim=1)
    new_weight = torch.cat([edge_weight.masked_fill(is_loop, 0.0), loop_weight])
    return new_index, new_weight, is_loop


def _normalize(edge_index: Tensor, edge_weight: Tensor, num_nodes: int, flow: str) -> Tensor:
    """``w_e / sqrt(deg[src_e] * deg[dst_e])`` with in-degrees (per ``flow``); 0 where deg is 0."""
    row, col = edge_index[0], edge_index[1]
    idx = col if flow == "source_to_target" else row
    deg = ops.scatter(edge_weight, idx, 0, num_nodes, "sum")
    deg_inv_sqrt = deg.pow(-0.5)
    deg_inv_sqrt = deg_inv_sqrt.masked_fill(deg_inv_sqrt == float("inf"), 0.0)
    return deg_inv_sqrt[row] * edge_weight * deg_inv_sqrt[col]


def _check_weight(
    edge_weight: Any, num_edges: int, dtype: torch.dtype | None, device: torch.device
) -> Tensor:
    if edge_weight is None:
        return torch.ones(num_edges, dtype=dtype or torch.float32, device=device)
    v.check_tensor("edge_weight", edge_weight)
    if edge_weight.dim() != 1 or edge_weight.numel() != num_edges:
        raise ValueError(
            f"'edge_weight' must have shape [{num_edges}] (one weight per edge), got {v.describe(edge_weight)}"
        )
    return edge_weight


def gcn_norm(
    edge_index: Any,
    edge_weight: Tensor | None = None,
    num_nodes: int | None = None,
    improved: bool = False,
    add_self_loops: bool = True,
    flow: str = "source_to_target",
    dtype: torch.dtype | None = None,
    *,
    exact: bool = False,
) -> tuple[Any, Tensor | None]:
    r"""Normalize a graph as GCN does: :math:`\hat{D}^{-1/2} (A + \lambda I) \hat{D}^{-1/2}`.

    Args:
        edge_index: ``[2, E]`` integer tensor, or a sparse ``adj_t``
            (torch.sparse COO/CSR/CSC or ``torch_sparse.SparseTensor``) of
            shape ``[N_dst, N_src]`` whose values are the edge weights.
        edge_weight: optional ``[E]`` weights (default 1); ignored for sparse
            inputs, whose values are used.
        num_nodes: number of nodes (default ``edge_index.max() + 1``).
        improved: self loops get weight 2 instead of 1.
        add_self_loops: add a self loop to every node that has none.
        flow: ``"source_to_target"`` (degrees count incoming edges,
            ``edge_index[1]``) or ``"target_to_source"`` (``edge_index[0]``);
            sparse inputs are always read as ``adj_t`` (rows receive).
        dtype: dtype of the default weights.
        exact: with ``add_self_loops``, drop the given self loops instead of keeping
            them with weight 0: PyG's edge set, ``E - L + N`` edges (a data-dependent
            shape; for hooks and explain mode, see ``MessagePassing.exact_edges``).

    Returns:
        For ``edge_index``: ``(edge_index, edge_weight)``; with
        ``add_self_loops`` these have ``E + N`` entries (existing loops kept
        with weight 0, see the module docstring). For a sparse input:
        ``(adj_t, None)``, ``adj_t`` normalized, in the layout it came in.

    Example:
        >>> ei = torch.tensor([[0, 1], [1, 0]])
        >>> gcn_norm(ei, num_nodes=2)[1]
        tensor([0.5000, 0.5000, 0.5000, 0.5000])
    """
    if flow not in _FLOWS:
        raise ValueError(f"'flow' must be one of {_FLOWS}, got {flow!r}")
    fill_value = 2.0 if improved else 1.0
    if is_sparse(edge_index):
        return _gcn_norm_sparse(edge_index, num_nodes, fill_value, add_self_loops, dtype), None
    v.check_edge_index(edge_index)
    n = maybe_num_nodes(edge_index, num_nodes)
    if num_nodes is not None:
        v.check_edge_index_nodes(edge_index, n)

    def compute() -> tuple[Tensor, Tensor]:
        index, weight = edge_index, _check_weight(edge_weight, edge_index.size(1), dtype, edge_index.device)
        if add_self_loops:
            index, weight, _ = _append_self_loops(index, weight, fill_value, n)
            v.vouch_in_range(index, n, n)
        return index, _normalize(index, weight, n, flow)

    # a static graph is normalized once, and the same output tensor then hits the CSR cache
    index, weight = memo(
        edge_index, ("gcn", n, fill_value, add_self_loops, flow, dtype), compute, edge_weight
    )
    if exact and add_self_loops:
        keep = torch.cat([edge_index[0] != edge_index[1], edge_index.new_ones(n, dtype=torch.bool)])
        index, weight = index[:, keep], weight[keep]
    return index, weight


def _gcn_norm_sparse(
    adj_t: Any, num_nodes: int | None, fill_value: float, add_self_loops: bool, dtype: torch.dtype | None
) -> Any:
    sp = from_sparse(adj_t)
    n_dst, n_src = sp.csr.num_rows, sp.csr.num_cols
    if add_self_loops and n_dst != n_src:
        raise ValueError(
            f"'edge_index' must be a square adjacency to add self loops, got shape [{n_dst}, {n_src}]"
        )
    if num_nodes is not None and int(num_nodes) != n_dst:
        raise ValueError(f"'num_nodes' is {num_nodes} but the sparse adjacency has {n_dst} rows")
    edge_index = sp.edge_index()  # [src; dst] in CSR order
    value = sp.value
    if value is not None and value.dim() != 1:
        raise ValueError(f"the values of a sparse 'edge_index' must be 1-D weights, got {v.describe(value)}")
    weight = _check_weight(value, edge_index.size(1), dtype, edge_index.device)
    if not weight.is_floating_point():
        weight = weight.to(dtype or torch.float32)
    n = n_dst
    if add_self_loops:
        edge_index, weight, is_loop = _append_self_loops(edge_index, weight, fill_value, n)
        keep = torch.cat([~is_loop, is_loop.new_ones(n)])
        edge_index, weight = edge_index[:, keep], weight[keep]
    weight = _normalize(edge_index, weight, n, "source_to_target")
    return _like(adj_t, edge_index, weight, (n_dst, n_src))


def _like(adj_t: Any, edge_index: Tensor, weight: Tensor, shape: tuple[int, int]) -> Any:
    """A sparse ``adj_t`` in the layout of ``adj_t`` holding ``edge_index`` ([src; dst]) and ``weight``."""
    src, dst = edge_index[0], edge_index[1]
    if _is_sparse_tensor(adj_t):
        return type(adj_t)(row=dst, col=src, value=weight, sparse_sizes=shape)
    if adj_t.layout == torch.sparse_coo:
        return torch.sparse_coo_tensor(torch.stack([dst, src]), weight, shape).coalesce()
    if adj_t.layout == torch.sparse_csr:
        major, minor, n_major, n_minor = dst, src, shape[0], shape[1]
    else:  # sparse_csc: compressed columns (senders)
        major, minor, n_major, n_minor = src, dst, shape[1], shape[0]
    perm = torch.argsort(major.long() * max(n_minor, 1) + minor.long())
    csr = ops.from_coo(major[perm], minor[perm], n_major, n_minor, is_sorted=True)
    make = torch.sparse_csr_tensor if adj_t.layout == torch.sparse_csr else torch.sparse_csc_tensor
    return make(csr.rowptr, csr.col, weight[perm], shape)
