"""Selection helpers shared by gnn-pool's selection pools (TopK, SAG, ASAP, PAN, Edge, Cluster).

* :mod:`.select_topk`: top-:math:`k` per graph (:func:`topk`) and the learned scorer :class:`SelectTopK`;
* :mod:`.connect`: the edges of a pooled graph (:func:`filter_edges`, :func:`coarsen_edges`);
* :mod:`.matching`: greedy edge contraction and connected components;
* :mod:`.coarsen`: :math:`S^T A S` for a sparse soft assignment.
"""

from .coarsen import coarsen_adjacency
from .connect import cluster_batch, coarsen_edges, filter_edges, node_relabel
from .matching import connected_components, greedy_matching
from .select_topk import SelectTopK, check_min_score, check_ratio, resolve_nonlinearity, topk, topk_counts

__all__ = [
    "SelectTopK",
    "check_min_score",
    "check_ratio",
    "cluster_batch",
    "coarsen_adjacency",
    "coarsen_edges",
    "connected_components",
    "filter_edges",
    "greedy_matching",
    "node_relabel",
    "resolve_nonlinearity",
    "topk",
    "topk_counts",
]
