"""gnn.pool's public names: lazy exports, the gnn.nn facade table, PyG 2.8.1 signatures."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys

import pytest

import gnn.pool
from gnn.nn._names import NAMES

PART1 = [
    "global_add_pool",
    "global_mean_pool",
    "global_max_pool",
    "max_pool",
    "avg_pool",
    "max_pool_x",
    "avg_pool_x",
    "max_pool_neighbor_x",
    "avg_pool_neighbor_x",
    "graclus",
    "voxel_grid",
    "knn",
    "knn_graph",
    "radius",
    "radius_graph",
    "nearest",
    "fps",
    "approx_knn",
    "approx_knn_graph",
    "KNNIndex",
    "L2KNNIndex",
    "MIPSKNNIndex",
    "ApproxL2KNNIndex",
    "ApproxMIPSKNNIndex",
    "knn_interpolate",
    "dense_diff_pool",
    "dense_mincut_pool",
    "DMoNPooling",
]


@pytest.mark.parametrize("name", PART1)
def test_exported_and_listed_in_the_facade(name):
    assert name in gnn.pool.__all__
    obj = getattr(gnn.pool, name)
    assert obj.__name__ == name
    assert NAMES[name] == ("gnn.pool", "gnn-pool")
    assert getattr(importlib.import_module("gnn.nn"), name) is obj


def test_import_is_lazy_and_needs_no_extra():
    code = (
        "import sys, gnn.pool; "
        "assert 'faiss' not in sys.modules and 'torch_geometric' not in sys.modules; "
        "assert 'gnn.pool.glob' not in sys.modules; "
        "gnn.pool.global_mean_pool; assert 'gnn.pool.glob' in sys.modules; "
        "gnn.pool.L2KNNIndex; assert 'faiss' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_unknown_name():
    with pytest.raises(AttributeError, match="no_such_pool"):
        gnn.pool.no_such_pool  # noqa: B018


def _params(obj):
    target = obj.__init__ if inspect.isclass(obj) else obj
    sig = inspect.signature(target)
    return [(p.name, p.kind, p.default) for p in sig.parameters.values()]


@pytest.mark.parametrize("name", PART1)
def test_signature_equals_pyg(name):
    pyg = pytest.importorskip("torch_geometric.nn")
    ours, theirs = getattr(gnn.pool, name), getattr(pyg, name)
    assert _params(ours) == _params(theirs)
    if inspect.isclass(ours):
        for method in ("forward", "add", "search", "get_emb"):
            if hasattr(theirs, method):
                assert _params(getattr(ours, method)) == _params(getattr(theirs, method)), method
