"""Graph utilities: degrees, self loops, coalescing, CSR conversion, dense batching, groups.

All functions accept ``[2, E]`` integer ``edge_index`` tensors (int64 or
int32) and validate them when validation is on.
"""

from .csr import clear_csr_cache, set_csr_cache_size, to_csr
from .dense import to_dense_adj, to_dense_batch
from .edges import (
    add_remaining_self_loops,
    add_self_loops,
    coalesce,
    contains_self_loops,
    degree,
    maybe_num_nodes,
    remove_self_loops,
    sort_edge_index,
    to_undirected,
)
from .groups import group_counts, ptr_from_sorted_index, ptr_to_index
from .normalization import gcn_norm
from .sparse import SparseInput, is_sparse, to_edge_index

__all__ = [
    "SparseInput",
    "add_remaining_self_loops",
    "add_self_loops",
    "clear_csr_cache",
    "coalesce",
    "contains_self_loops",
    "degree",
    "gcn_norm",
    "group_counts",
    "is_sparse",
    "maybe_num_nodes",
    "ptr_from_sorted_index",
    "ptr_to_index",
    "remove_self_loops",
    "set_csr_cache_size",
    "sort_edge_index",
    "to_csr",
    "to_dense_adj",
    "to_dense_batch",
    "to_edge_index",
    "to_undirected",
]
