r"""The coarsened adjacency of a soft cluster assignment: :math:`\mathbf{A}' = \mathbf{S}^\top\mathbf{A}\mathbf{S}`.

:math:`\mathbf{S} \in \mathbb{R}^{N \times K}` assigns nodes to clusters (sparse: entry
:math:`(i, k)` says node :math:`i` belongs to cluster :math:`k` with weight :math:`s_{ik}`),
:math:`\mathbf{A} \in \mathbb{R}^{N \times N}` is the graph. The result keeps every entry
:math:`(k, l)` reached by at least one product :math:`s_{ik} a_{ij} s_{jl}` (the structural
pattern, whatever the values), sorted by :math:`(k, l)`; duplicate entries of
:math:`\mathbf{S}` or :math:`\mathbf{A}` add up. Values are differentiable in
:math:`\mathbf{S}` and :math:`\mathbf{A}`.

Two exact ways compute it:

* ``"rows"``: when every node and cluster belongs to a graph of a batch, no edge or
  assignment crosses two graphs and each graph's clusters are contiguous, a cluster
  :math:`k` is addressed by its position inside its graph. Then
  :math:`\mathbf{W} = \mathbf{A}^\top\mathbf{S}` is an ``[N, K_max]`` dense-row matrix,
  :math:`\mathbf{S}^\top\mathbf{W} = \mathbf{A}'^\top` a ``[K, K_max]`` one (two fused
  sparse-dense products, :func:`gnn.core.ops.spmm`), and each graph's block is transposed in
  a padded ``[G, K_max, K_max]`` tensor: no sort of the entries. Chosen when those dense
  tensors are small (a few times the number of entries).
* ``"sparse"``: general; the two products are joins of the entry lists, merged by
  sorting their ``(row, col)`` keys.
"""

from __future__ import annotations

import torch
from torch import Tensor

from gnn.core import ops
from gnn.core.ops import from_coo, ptr_from_sorted_index
from gnn.core.utils import group_counts

__all__ = ["coarsen_adjacency"]

#: the "rows" method may use up to this many dense entries per sparse input entry (plus a floor)
_ROWS_BUDGET_PER_ENTRY = 32
_ROWS_BUDGET_FLOOR = 1 << 20


def _expand(counts: Tensor, ptr: Tensor) -> tuple[Tensor, Tensor]:
    """For left entries with ``counts[e]`` partners starting at ``ptr[e]``: (left, right) position pairs."""
    left = torch.repeat_interleave(torch.arange(counts.numel(), device=counts.device), counts)
    first = torch.cumsum(counts, 0) - counts
    right = ptr[left] + torch.arange(left.numel(), device=counts.device) - first[left]
    return left, right


def _join(
    left_row: Tensor,
    left_col: Tensor,
    left_val: Tensor | None,
    right_row_sorted: Tensor,
    right_col: Tensor,
    right_val: Tensor | None,
    num_right_rows: int,
    num_out_cols: int,
) -> tuple[Tensor, Tensor, Tensor | None]:
    """``L @ R`` for COO ``L`` (entries ``(left_row, left_col)``) and row-sorted COO ``R``.

    Returns the merged result ``(row, col, value)`` sorted by ``(row, col)``.
    """
    ptr = ptr_from_sorted_index(right_row_sorted, num_right_rows)
    counts = (ptr[1:] - ptr[:-1])[left_col]
    li, ri = _expand(counts, ptr[:-1][left_col])
    key = left_row[li] * num_out_cols + right_col[ri]
    unique, inverse = torch.unique(key, sorted=True, return_inverse=True)
    value = None
    if left_val is not None and right_val is not None:
        value = ops.scatter(left_val[li] * right_val[ri], inverse, 0, unique.numel(), "sum")
    return unique // max(num_out_cols, 1), unique % max(num_out_cols, 1), value


def _sparse(
    s_node: Tensor,
    s_cluster: Tensor,
    s_value: Tensor | None,
    a_row: Tensor,
    a_col: Tensor,
    a_value: Tensor | None,
    num_nodes: int,
    num_clusters: int,
) -> tuple[Tensor, Tensor, Tensor | None]:
    order = torch.argsort(s_node, stable=True)
    s_node_sorted, s_cluster_sorted = s_node[order], s_cluster[order]
    s_value_sorted = None if s_value is None else s_value[order]
    # T = A S: [N, K], rows sorted
    t_row, t_col, t_val = _join(
        a_row, a_col, a_value, s_node_sorted, s_cluster_sorted, s_value_sorted, num_nodes, num_clusters
    )
    # A' = S^T T: [K, K]
    return _join(s_cluster, s_node, s_value, t_row, t_col, t_val, num_nodes, num_clusters)


def _grouped_rows(row: Tensor, col: Tensor, num_rows: int, num_cols: int) -> tuple[ops.CSR, Tensor]:
    """CSR of COO entries, and the entry order it uses; cheap when each row's entries are contiguous.

    Contiguous rows (each row value in one run, runs in any order) are put in order by sorting
    the runs only; otherwise the entries are sorted.
    """
    n = row.numel()
    if n:
        new_run = torch.ones(n, dtype=torch.bool, device=row.device)
        new_run[1:] = row[1:] != row[:-1]
        starts = new_run.nonzero().view(-1)
        run_row = row[starts]
        by_row = torch.sort(run_row)
        if by_row.values.numel() < 2 or bool((by_row.values[1:] > by_row.values[:-1]).all()):
            lengths = torch.diff(starts, append=starts.new_tensor([n]))[by_row.indices]
            first = starts[by_row.indices]
            offset = torch.cumsum(lengths, 0) - lengths
            order = torch.repeat_interleave(first - offset, lengths) + torch.arange(n, device=row.device)
            return from_coo(row[order], col[order], num_rows, num_cols, is_sorted=True), order
    order = torch.sort(row, stable=True).indices
    return from_coo(row[order], col[order], num_rows, num_cols, is_sorted=True), order


def _rows_layout(
    s_node: Tensor,
    s_cluster: Tensor,
    a_row: Tensor,
    a_col: Tensor,
    node_graph: Tensor,
    cluster_graph: Tensor,
    budget: int,
) -> tuple[Tensor, Tensor, Tensor, int] | None:
    """Each cluster's first sibling and block, each node's first cluster, and ``K_max``; ``None`` if
    the "rows" method does not apply (crossing entries, split graphs, or too large)."""
    k = cluster_graph.numel()
    if k == 0:
        return None
    if k > 1 and bool((cluster_graph[1:] < cluster_graph[:-1]).any()):
        return None  # each graph's clusters must be contiguous (and graphs in increasing order)
    if bool((node_graph[a_row] != node_graph[a_col]).any()) or bool(
        (node_graph[s_node] != cluster_graph[s_cluster]).any()
    ):
        return None
    pos = torch.arange(k, device=cluster_graph.device)
    new_run = torch.ones(k, dtype=torch.bool, device=cluster_graph.device)
    new_run[1:] = cluster_graph[1:] != cluster_graph[:-1]
    start = torch.where(new_run, pos, 0).cummax(0).values
    k_max = int((pos - start).max()) + 1
    blocks = int(new_run.sum())
    if (node_graph.numel() + k) * k_max + blocks * k_max * k_max > budget:
        return None
    num_graphs = int(max(int(node_graph.max()), int(cluster_graph.max()))) + 1
    # first cluster of each graph (graphs without clusters get -1; none of their nodes is assigned)
    graph_start = torch.full((num_graphs,), -1, dtype=torch.long, device=pos.device)
    graph_start[cluster_graph[new_run]] = pos[new_run]
    block = torch.cumsum(new_run.long(), 0) - 1
    return start, block, graph_start[node_graph], k_max


def _rows(
    s_node: Tensor,
    s_cluster: Tensor,
    s_value: Tensor | None,
    a_row: Tensor,
    a_col: Tensor,
    a_value: Tensor | None,
    num_nodes: int,
    num_clusters: int,
    cluster_start: Tensor,
    cluster_block: Tensor,
    node_start: Tensor,
    k_max: int,
    a_csr_t: ops.CSR | None,
) -> tuple[Tensor, Tensor, Tensor | None]:
    r"""``W = A^T S`` and ``C = S^T W = (A')^T`` as dense rows (a cluster by its position in its
    graph), then each graph's ``[K_g, K_g]`` block transposed: no sort of the entries."""
    device = s_node.device
    flat = s_node * k_max + (s_cluster - node_start[s_node])
    size = num_nodes * k_max
    if a_csr_t is None:  # rows: A's columns j, gathering A's rows i
        a_csr_t = from_coo(a_col, a_row, num_nodes, num_nodes)
    s_csr, s_order = _grouped_rows(s_cluster, s_node, num_clusters, num_nodes)  # rows: clusters l

    def transposed_blocks(c: Tensor) -> Tensor:
        """``[G, K_max, K_max]`` with ``[g, k, l] = C[start_g + l, k]``."""
        l_local = torch.arange(num_clusters, device=device) - cluster_start
        padded = c.new_zeros(int(cluster_block[-1]) + 1, k_max, k_max)
        padded[cluster_block, l_local] = c
        return padded.transpose(1, 2)

    with torch.no_grad():
        ones = torch.ones(s_node.numel(), dtype=torch.float32, device=device)
        pattern_rows = ops.scatter(ones, flat, 0, size, "sum").view(num_nodes, k_max)
        pattern = transposed_blocks(ops.spmm(s_csr, ops.spmm(a_csr_t, pattern_rows)) > 0)
    block, k_local, l_local = pattern.nonzero().unbind(1)
    first = torch.zeros(int(cluster_block[-1]) + 1, dtype=torch.long, device=device)
    first[cluster_block] = cluster_start  # the first cluster of each block
    value = None
    if s_value is not None and a_value is not None:
        s_rows = ops.scatter(s_value, flat, 0, size, "sum").view(num_nodes, k_max)
        w = ops.spmm(a_csr_t, s_rows, a_value.to(s_rows.dtype))
        c = ops.spmm(s_csr, w, s_value[s_order])
        value = transposed_blocks(c)[block, k_local, l_local]
    return first[block] + k_local, first[block] + l_local, value


def coarsen_adjacency(
    s_index: Tensor,
    s_value: Tensor | None,
    a_index: Tensor,
    a_value: Tensor | None,
    num_nodes: int,
    num_clusters: int,
    *,
    node_graph: Tensor | None = None,
    cluster_graph: Tensor | None = None,
    method: str = "auto",
    a_csr_t: ops.CSR | None = None,
) -> tuple[Tensor, Tensor | None]:
    r""":math:`\mathbf{S}^\top\mathbf{A}\mathbf{S}` as ``(edge_index [2, E'], value [E'] or None)``.

    Args:
        s_index: ``[2, nnz_S]`` entries ``(node i, cluster k)`` of :math:`\mathbf{S}`.
        s_value: ``[nnz_S]`` their values (``None``: the pattern only, values ``None``).
        a_index: ``[2, nnz_A]`` entries ``(i, j)`` of :math:`\mathbf{A}`.
        a_value: ``[nnz_A]`` their values (``None``: the pattern only).
        num_nodes: :math:`N`; num_clusters: :math:`K`.
        node_graph: optional ``[N]`` graph of each node, and
        cluster_graph: ``[K]`` graph of each cluster: they enable the ``"rows"`` method.
        method: ``"auto"``, ``"rows"`` (falls back to ``"sparse"`` where it does not apply)
            or ``"sparse"``.
        a_csr_t: optional CSR of :math:`\mathbf{A}^\top` (rows: the ``j`` of ``a_index``, in the
            order of ``a_index``'s entries: ``ops.from_coo(a_index[1], a_index[0], N, N)``), reused
            by the ``"rows"`` method instead of sorting the entries again.

    Returns:
        Entries sorted by :math:`(k, l)`; values ``None`` unless both value inputs are given.

    Example:
        >>> s_index = torch.tensor([[0, 1, 2], [0, 0, 1]])  # nodes 0, 1 -> cluster 0; 2 -> 1
        >>> a_index = torch.tensor([[0, 1], [1, 2]])
        >>> coarsen_adjacency(s_index, torch.ones(3), a_index, torch.ones(2), 3, 2)
        (tensor([[0, 0],
                [0, 1]]), tensor([1., 1.]))
    """
    if method not in ("auto", "rows", "sparse"):
        raise ValueError(f"'method' must be 'auto', 'rows' or 'sparse', got {method!r}")
    s_node, s_cluster = s_index[0].long(), s_index[1].long()
    a_row, a_col = a_index[0].long(), a_index[1].long()
    if not (s_value is not None and a_value is not None):
        s_value = a_value = None
    layout = None
    if method != "sparse" and node_graph is not None and cluster_graph is not None and num_nodes:
        budget = _ROWS_BUDGET_PER_ENTRY * (s_node.numel() + a_row.numel()) + _ROWS_BUDGET_FLOOR
        # the sparse joins form at least one product per (A entry, S entry of its column): when
        # that is larger, the dense rows are the cheaper way even beyond the budget
        s_degree = group_counts(s_node, dim_size=num_nodes)
        budget = max(budget, 2 * int(s_degree[a_col].sum()) if a_col.numel() else 0)
        if method == "rows":
            budget = max(budget, (num_nodes + num_clusters) * max(num_clusters, 1) + num_clusters**3)
        layout = _rows_layout(
            s_node, s_cluster, a_row, a_col, node_graph.long(), cluster_graph.long(), budget
        )
    if layout is not None:
        row, col, value = _rows(
            s_node, s_cluster, s_value, a_row, a_col, a_value, num_nodes, num_clusters, *layout, a_csr_t
        )
    else:
        row, col, value = _sparse(s_node, s_cluster, s_value, a_row, a_col, a_value, num_nodes, num_clusters)
    return torch.stack([row, col]), value
