"""SSGConv: dense Markov-diffusion formula, PyG parity, formats, fused path, caching, bad inputs."""

from __future__ import annotations

import pytest
import torch

from gnn.conv import SSGConv
from gnn.core import testing
from gnn.core.utils import is_sparse

N, E, F_IN, F_OUT = 10, 40, 5, 7


@pytest.mark.parametrize("K", [1, 3])
@pytest.mark.parametrize("alpha", [0.0, 0.3])
def test_dense_formula(K, alpha):
    x, edge_index = testing.random_graph(N, E, F_IN, seed=1)
    weight = torch.rand(E) + 0.1
    conv = SSGConv(F_IN, F_OUT, alpha, K=K)
    p = testing.dense_gcn_adjacency(edge_index, weight, N)
    h = (
        alpha * x.double()
        + (1 - alpha) / K * sum(torch.linalg.matrix_power(p, k) for k in range(1, K + 1)) @ x.double()
    )
    expected = h @ conv.lin.weight.double().t() + conv.lin.bias.double()
    torch.testing.assert_close(conv(x, edge_index, weight).double(), expected, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize(
    "kwargs", [{"alpha": 0.1}, {"alpha": 0.5, "K": 3, "bias": False, "add_self_loops": False}]
)
def test_matches_pyg(kwargs):
    pyg = pytest.importorskip("torch_geometric")
    x, edge_index = testing.random_graph(N, E, F_IN, seed=2)
    weight = torch.rand(E)
    theirs = pyg.nn.SSGConv(F_IN, F_OUT, **kwargs)
    ours = SSGConv(F_IN, F_OUT, **kwargs)
    testing.load_pyg_state(ours, theirs)
    assert repr(ours) == repr(theirs)
    testing.assert_close(ours(x, edge_index, weight), theirs(x, edge_index, weight))


def test_input_formats_permutation_and_fused_path(monkeypatch):
    x, edge_index = testing.random_graph(N, E, F_IN, seed=3)
    weight = torch.rand(E) + 0.1
    conv = SSGConv(F_IN, F_OUT, 0.2, K=2)
    testing.assert_formats_agree(
        lambda adj: conv(x, adj, None if is_sparse(adj) else weight), edge_index, N, edge_weight=weight
    )
    weight[edge_index[0] == edge_index[1]] = 0.7  # duplicate self loops: the last one's weight is kept
    perm = torch.randperm(E, generator=torch.Generator().manual_seed(0))
    testing.assert_close(conv(x, edge_index[:, perm], weight[perm]), conv(x, edge_index, weight))
    expected = conv(x, edge_index, weight)
    calls = testing.spy_spmm(monkeypatch, conv)
    testing.assert_close(conv(x, edge_index, weight), expected)
    assert len(calls) == 2


def test_cached_and_reset():
    x, edge_index = testing.random_graph(N, E, F_IN, seed=4)
    conv = SSGConv(F_IN, F_OUT, 0.2, K=2, cached=True)
    out = conv(x, edge_index)
    assert conv._cached_h is not None  # PyG's attribute
    testing.assert_close(conv(x, edge_index), out)
    conv.reset_parameters()
    assert conv._cached_h is None


def test_bad_inputs():
    x, edge_index = testing.random_graph(N, E, F_IN, seed=5)
    conv = SSGConv(F_IN, F_OUT, 0.1)
    with pytest.raises(ValueError, match="edge_index"):
        conv(x, edge_index[:1])
    with pytest.raises(ValueError, match="edge_index"):
        conv(x, torch.tensor([[N], [0]]))
    with pytest.raises(ValueError, match="'x'.*in_channels"):
        conv(torch.randn(N, 1), edge_index)
