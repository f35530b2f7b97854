"""GCN2Conv: dense GCNII formula, PyG parity, formats, fused path, caching, bad inputs."""

from __future__ import annotations

import math

import pytest
import torch

from gnn.conv import GCN2Conv
from gnn.core import testing
from gnn.core.utils import is_sparse

N, E, C = 10, 40, 6


@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize("theta, layer", [(None, None), (0.5, 2)])
def test_dense_formula(shared, theta, layer):
    x, edge_index = testing.random_graph(N, E, C, seed=1)
    x_0 = torch.randn(N + 3, C)  # only the first N rows are used
    weight = torch.rand(E) + 0.1
    alpha = 0.2
    conv = GCN2Conv(C, alpha, theta, layer, shared_weights=shared)
    beta = 1.0 if theta is None else math.log(theta / layer + 1)
    assert conv.beta == beta
    p = testing.dense_gcn_adjacency(edge_index, weight, N)
    h = (1 - alpha) * p @ x.double()
    h0 = alpha * x_0[:N].double()
    eye = torch.eye(C, dtype=torch.float64)
    w1 = (1 - beta) * eye + beta * conv.weight1.double()
    if shared:
        expected = (h + h0) @ w1
    else:
        expected = h @ w1 + h0 @ ((1 - beta) * eye + beta * conv.weight2.double())
    torch.testing.assert_close(conv(x, x_0, edge_index, weight).double(), expected, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"theta": 0.5, "layer": 3, "shared_weights": False}, {"normalize": False, "add_self_loops": False}],
)
def test_matches_pyg(kwargs):
    pyg = pytest.importorskip("torch_geometric")
    x, edge_index = testing.random_graph(N, E, C, seed=2)
    x_0 = torch.randn(N, C)
    weight = torch.rand(E)
    theirs, ours = pyg.nn.GCN2Conv(C, 0.1, **kwargs), GCN2Conv(C, 0.1, **kwargs)
    testing.load_pyg_state(ours, theirs)
    assert repr(ours) == repr(theirs)
    testing.assert_close(ours(x, x_0, edge_index, weight), theirs(x, x_0, edge_index, weight))


def test_input_formats_permutation_and_fused_path(monkeypatch):
    x, edge_index = testing.random_graph(N, E, C, seed=3)
    x_0 = torch.randn(N, C)
    weight = torch.rand(E) + 0.1
    conv = GCN2Conv(C, 0.1, 0.5, 1)
    testing.assert_formats_agree(
        lambda adj: conv(x, x_0, adj, None if is_sparse(adj) else weight), edge_index, N, edge_weight=weight
    )
    weight[edge_index[0] == edge_index[1]] = 0.7  # duplicate self loops: the last one's weight is kept
    perm = torch.randperm(E, generator=torch.Generator().manual_seed(0))
    testing.assert_close(conv(x, x_0, edge_index[:, perm], weight[perm]), conv(x, x_0, edge_index, weight))
    expected = conv(x, x_0, edge_index, weight)
    calls = testing.spy_spmm(monkeypatch, conv)
    testing.assert_close(conv(x, x_0, edge_index, weight), expected)
    assert len(calls) == 1


def test_cached_and_reset():
    x, edge_index = testing.random_graph(N, E, C, seed=4)
    conv = GCN2Conv(C, 0.1, cached=True)
    out = conv(x, x, edge_index)
    assert conv._cached_edge_index is not None  # PyG's attribute
    testing.assert_close(conv(x, x, edge_index), out)
    before = conv.weight1.detach().clone()
    conv.reset_parameters()
    assert conv._cached_edge_index is None and not torch.equal(before, conv.weight1)


def test_bad_inputs():
    x, edge_index = testing.random_graph(N, E, C, seed=5)
    conv = GCN2Conv(C, 0.1)
    with pytest.raises(ValueError, match="edge_index"):
        conv(x, x, edge_index[:1])
    with pytest.raises(ValueError, match="edge_index"):
        conv(x, x, torch.tensor([[N], [0]]))
    with pytest.raises(ValueError, match="'x'.*in_channels"):
        conv(torch.randn(N, C + 1), x, edge_index)
    with pytest.raises(ValueError, match="x_0"):
        conv(x, torch.randn(N, C - 1), edge_index)
    with pytest.raises(ValueError, match="x_0"):
        conv(x, x[:3], edge_index)
