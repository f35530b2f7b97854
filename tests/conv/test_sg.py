"""SGConv: dense formula, PyG parity, formats, fused path, per-graph caching, bad inputs."""

from __future__ import annotations

import pytest
import torch

import gnn.conv.sg as sg_module
from gnn.conv import SGConv
from gnn.core import testing
from gnn.core.utils import is_sparse

N, E, F_IN, F_OUT = 10, 40, 5, 7


@pytest.mark.parametrize("K", [1, 3])
@pytest.mark.parametrize("loops", [True, False])
def test_dense_formula(K, loops):
    x, edge_index = testing.random_graph(N, E, F_IN, seed=1)
    weight = torch.rand(E) + 0.1
    conv = SGConv(F_IN, F_OUT, K=K, add_self_loops=loops)
    p = testing.dense_gcn_adjacency(edge_index, weight, N, loops=loops)
    expected = (
        torch.linalg.matrix_power(p, K) @ x.double() @ conv.lin.weight.double().t() + conv.lin.bias.double()
    )
    torch.testing.assert_close(conv(x, edge_index, weight).double(), expected, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("kwargs", [{}, {"K": 3, "bias": False}, {"add_self_loops": False, "K": 2}])
def test_matches_pyg(kwargs):
    pyg = pytest.importorskip("torch_geometric")
    x, edge_index = testing.random_graph(N, E, F_IN, seed=2)
    weight = torch.rand(E)
    theirs = pyg.nn.SGConv(F_IN, F_OUT, **kwargs)
    ours = SGConv(F_IN, F_OUT, **kwargs)
    testing.load_pyg_state(ours, theirs)
    assert repr(ours) == repr(theirs)
    testing.assert_close(ours(x, edge_index, weight), theirs(x, edge_index, weight))
    testing.assert_close(ours(x, edge_index), theirs(x, edge_index))


def test_input_formats_and_permutation():
    x, edge_index = testing.random_graph(N, E, F_IN, seed=3)
    weight = torch.rand(E) + 0.1
    conv = SGConv(F_IN, F_OUT, K=2)
    testing.assert_formats_agree(
        lambda adj: conv(x, adj, None if is_sparse(adj) else weight), edge_index, N, edge_weight=weight
    )
    weight[edge_index[0] == edge_index[1]] = 0.7  # duplicate self loops: the last one's weight is kept
    perm = torch.randperm(E, generator=torch.Generator().manual_seed(0))
    testing.assert_close(conv(x, edge_index[:, perm], weight[perm]), conv(x, edge_index, weight))


def test_takes_the_fused_spmm_path(monkeypatch):
    x, edge_index = testing.random_graph(N, E, F_IN, seed=4)
    conv = SGConv(F_IN, F_OUT, K=3)
    expected = conv(x, edge_index)
    calls = testing.spy_spmm(monkeypatch, conv)
    testing.assert_close(conv(x, edge_index), expected)
    assert len(calls) == 3


def test_cached_features_per_graph(monkeypatch):
    x, edge_index = testing.random_graph(N, E, F_IN, seed=5)
    counted: list[int] = []
    real = sg_module.gcn_norm
    monkeypatch.setattr(sg_module, "gcn_norm", lambda *a, **k: counted.append(1) or real(*a, **k))
    conv = SGConv(F_IN, F_OUT, K=2, cached=True)
    fresh = SGConv(F_IN, F_OUT, K=2)
    fresh.load_state_dict(conv.state_dict())
    out = conv(x, edge_index)
    testing.assert_close(conv(x, edge_index), out)
    assert len(counted) == 1
    _, other = testing.random_graph(N, E, F_IN, seed=6)
    testing.assert_close(conv(x, other), fresh(x, other))  # a new graph is not served from the cache
    conv.reset_parameters()
    conv(x, other)
    assert len(counted) == 4  # first, new graph, fresh (uncached), after reset


def test_lazy_and_bad_inputs():
    x, edge_index = testing.random_graph(N, E, F_IN, seed=7)
    assert SGConv(-1, F_OUT)(x, edge_index).shape == (N, F_OUT)
    conv = SGConv(F_IN, F_OUT)
    with pytest.raises(ValueError, match="edge_index"):
        conv(x, edge_index[:1])
    with pytest.raises(TypeError, match="edge_index"):
        conv(x, edge_index.float())
    with pytest.raises(ValueError, match="edge_index"):
        conv(x, torch.tensor([[N], [0]]))
    with pytest.raises(ValueError, match="'x'.*in_channels"):
        conv(torch.randn(N, 1), edge_index)
    with pytest.raises(ValueError, match="edge_weight"):
        conv(x, edge_index, torch.rand(1))
