"""APPNP: dense personalized-PageRank recursion, PyG parity, formats, fused path, caching, dropout."""

from __future__ import annotations

import pytest
import torch

import gnn.conv._utils as conv_utils
from gnn.conv import APPNP
from gnn.core import testing
from gnn.core.utils import is_sparse

N, E, F = 10, 40, 5


@pytest.mark.parametrize("K", [1, 5])
@pytest.mark.parametrize("normalize, loops", [(True, True), (True, False), (False, False)])
def test_dense_recursion(K, normalize, loops):
    x, edge_index = testing.random_graph(N, E, F, seed=1)
    weight = torch.rand(E) + 0.1
    alpha = 0.2
    p = testing.dense_gcn_adjacency(edge_index, weight, N, loops=loops, normalize=normalize)
    h = x.double()
    for _ in range(K):
        h = (1 - alpha) * p @ h + alpha * x.double()
    prop = APPNP(K, alpha, add_self_loops=loops, normalize=normalize)
    torch.testing.assert_close(prop(x, edge_index, weight).double(), h, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize(
    "kwargs", [{}, {"add_self_loops": False}, {"normalize": False, "add_self_loops": False}]
)
def test_matches_pyg(kwargs):
    pyg = pytest.importorskip("torch_geometric")
    x, edge_index = testing.random_graph(N, E, F, seed=2)
    weight = torch.rand(E)
    theirs, ours = pyg.nn.APPNP(4, 0.15, **kwargs), APPNP(4, 0.15, **kwargs)
    assert repr(ours) == repr(theirs) and not ours.state_dict()
    testing.assert_close(ours(x, edge_index, weight), theirs(x, edge_index, weight))


def test_input_formats_permutation_and_fused_path(monkeypatch):
    x, edge_index = testing.random_graph(N, E, F, seed=3)
    weight = torch.rand(E) + 0.1
    prop = APPNP(3, 0.1)
    testing.assert_formats_agree(
        lambda adj: prop(x, adj, None if is_sparse(adj) else weight), edge_index, N, edge_weight=weight
    )
    weight[edge_index[0] == edge_index[1]] = 0.7  # duplicate self loops: the last one's weight is kept
    perm = torch.randperm(E, generator=torch.Generator().manual_seed(0))
    testing.assert_close(prop(x, edge_index[:, perm], weight[perm]), prop(x, edge_index, weight))
    expected = prop(x, edge_index, weight)
    calls = testing.spy_spmm(monkeypatch, prop)
    testing.assert_close(prop(x, edge_index, weight), expected)
    assert len(calls) == 3


def test_cached_normalization_per_graph(monkeypatch):
    x, edge_index = testing.random_graph(N, E, F, seed=4)
    counted: list[int] = []
    real = conv_utils.gcn_norm  # APPNP normalizes through the shared cached_gcn_norm
    monkeypatch.setattr(conv_utils, "gcn_norm", lambda *a, **k: counted.append(1) or real(*a, **k))
    prop = APPNP(3, 0.1, cached=True)
    out = prop(x, edge_index)
    testing.assert_close(prop(x * 2, edge_index), out * 2)  # cached graph, new features
    assert len(counted) == 1
    _, other = testing.random_graph(N, E, F, seed=5)
    testing.assert_close(prop(x, other), APPNP(3, 0.1)(x, other))
    prop.reset_parameters()
    assert prop._cached_edge_index is None


def test_dropout_only_in_training():
    x, edge_index = testing.random_graph(N, E, F, seed=6)
    prop = APPNP(3, 0.1, dropout=0.5)
    reference = APPNP(3, 0.1)
    prop.eval()
    testing.assert_close(prop(x, edge_index), reference(x, edge_index))
    prop.train()
    torch.manual_seed(0)
    assert not torch.allclose(prop(x, edge_index), reference(x, edge_index))
    adj = next(iter(testing.edge_index_formats(edge_index, N)))[1]
    assert prop(x, adj).shape == (N, F)  # sparse input with edge dropout


def test_bad_inputs():
    x, edge_index = testing.random_graph(N, E, F, seed=7)
    prop = APPNP(2, 0.1)
    with pytest.raises(ValueError, match="edge_index"):
        prop(x, edge_index[:1])
    with pytest.raises(TypeError, match="edge_index"):
        prop(x, edge_index.float())
    with pytest.raises(ValueError, match="edge_index"):
        prop(x, torch.tensor([[N], [0]]))
    with pytest.raises(TypeError, match="'x'"):
        prop((x, x), edge_index)
