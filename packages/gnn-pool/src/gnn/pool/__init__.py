"""gnn-pool: the pooling layers and point-set operators of gnn (PyG 2.8's API).

Every public name is imported on first access (PEP 562), so ``import
gnn.pool`` is cheap and needs none of the optional extras::

    >>> from gnn.pool import global_mean_pool, knn_graph
    >>> out = global_mean_pool(torch.randn(5, 8), torch.tensor([0, 0, 1, 1, 1]))

The faiss-based names (``KNNIndex`` and its subclasses, ``approx_knn``,
``approx_knn_graph``) import faiss when used: ``pip install gnn-pool[faiss]``.
The selection pools (``TopKPooling``, ``SAGPooling``, ...) are learnable modules.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> module (relative to gnn.pool) that defines it
_EXPORTS: dict[str, str] = {}

# --- global, cluster, neighbour-search, faiss-index, unpool and dense pools (issue 13, branch h-pool1) --
_EXPORTS.update(
    {
        "global_add_pool": ".glob",
        "global_mean_pool": ".glob",
        "global_max_pool": ".glob",
        "max_pool": ".coarsen",
        "avg_pool": ".coarsen",
        "max_pool_x": ".coarsen",
        "avg_pool_x": ".coarsen",
        "max_pool_neighbor_x": ".coarsen",
        "avg_pool_neighbor_x": ".coarsen",
        "graclus": ".clustering",
        "voxel_grid": ".clustering",
        "knn": ".neighbors",
        "knn_graph": ".neighbors",
        "radius": ".neighbors",
        "radius_graph": ".neighbors",
        "nearest": ".neighbors",
        "fps": ".neighbors",
        "approx_knn": ".approx",
        "approx_knn_graph": ".approx",
        "KNNIndex": ".knn_index",
        "L2KNNIndex": ".knn_index",
        "MIPSKNNIndex": ".knn_index",
        "ApproxL2KNNIndex": ".knn_index",
        "ApproxMIPSKNNIndex": ".knn_index",
        "knn_interpolate": ".unpool",
        "dense_diff_pool": ".dense",
        "dense_mincut_pool": ".dense",
        "DMoNPooling": ".dense",
    }
)
if TYPE_CHECKING:  # pragma: no cover
    from .approx import approx_knn, approx_knn_graph  # noqa: F401
    from .clustering import graclus, voxel_grid  # noqa: F401
    from .coarsen import (  # noqa: F401
        avg_pool,
        avg_pool_neighbor_x,
        avg_pool_x,
        max_pool,
        max_pool_neighbor_x,
        max_pool_x,
    )
    from .dense import DMoNPooling, dense_diff_pool, dense_mincut_pool  # noqa: F401
    from .glob import global_add_pool, global_max_pool, global_mean_pool  # noqa: F401
    from .knn_index import (  # noqa: F401
        ApproxL2KNNIndex,
        ApproxMIPSKNNIndex,
        KNNIndex,
        L2KNNIndex,
        MIPSKNNIndex,
    )
    from .neighbors import fps, knn, knn_graph, nearest, radius, radius_graph  # noqa: F401
    from .unpool import knn_interpolate  # noqa: F401
# --- end of global, cluster, neighbour-search, faiss-index, unpool and dense pools ------------------

# --- selection pools (issue 13, branch h-pool2) ---------------------------------------------------
_EXPORTS.update(
    {
        "TopKPooling": ".topk_pool",
        "SAGPooling": ".sag_pool",
        "EdgePooling": ".edge_pool",
        "ClusterPooling": ".cluster_pool",
        "ASAPooling": ".asap",
        "PANPooling": ".pan_pool",
        "MemPooling": ".mem_pool",
    }
)
# --- end of selection pools -------------------------------------------------------------------------

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'gnn.pool' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
