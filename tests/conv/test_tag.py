"""TAGConv: dense power series, PyG parity, formats, fused path, lazy, bad inputs."""

from __future__ import annotations

import pytest
import torch

from gnn.conv import TAGConv
from gnn.core import testing
from gnn.core.utils import is_sparse

N, E, F_IN, F_OUT = 10, 40, 5, 7


@pytest.mark.parametrize("K", [0, 1, 3])
@pytest.mark.parametrize("normalize", [True, False])
def test_dense_power_series(K, normalize):
    x, edge_index = testing.random_graph(N, E, F_IN, seed=1)
    weight = torch.rand(E) + 0.1
    conv = TAGConv(F_IN, F_OUT, K=K, normalize=normalize)
    torch.nn.init.normal_(conv.bias)
    p = testing.dense_gcn_adjacency(edge_index, weight, N, loops=False, normalize=normalize)
    h, expected = x.double(), conv.bias.double()
    for lin in conv.lins:
        expected = expected + h @ lin.weight.double().t()
        h = p @ h
    torch.testing.assert_close(conv(x, edge_index, weight).double(), expected, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("kwargs", [{}, {"K": 2, "bias": False}, {"normalize": False, "K": 1}])
def test_matches_pyg(kwargs):
    pyg = pytest.importorskip("torch_geometric")
    x, edge_index = testing.random_graph(N, E, F_IN, seed=2)
    weight = torch.rand(E)
    theirs = pyg.nn.TAGConv(F_IN, F_OUT, **kwargs)
    ours = TAGConv(F_IN, F_OUT, **kwargs)
    testing.load_pyg_state(ours, theirs)
    assert repr(ours) == repr(theirs)
    testing.assert_close(ours(x, edge_index, weight), theirs(x, edge_index, weight))
    testing.assert_close(ours(x, edge_index), theirs(x, edge_index))


@pytest.mark.parametrize("normalize", [True, False])
def test_input_formats_and_permutation(normalize):
    x, edge_index = testing.random_graph(N, E, F_IN, seed=3)
    weight = torch.rand(E) + 0.1
    conv = TAGConv(F_IN, F_OUT, K=2, normalize=normalize)
    testing.assert_formats_agree(
        lambda adj: conv(x, adj, None if is_sparse(adj) else weight), edge_index, N, edge_weight=weight
    )
    perm = torch.randperm(E, generator=torch.Generator().manual_seed(0))
    testing.assert_close(conv(x, edge_index[:, perm], weight[perm]), conv(x, edge_index, weight))


def test_takes_the_fused_spmm_path(monkeypatch):
    x, edge_index = testing.random_graph(N, E, F_IN, seed=4)
    conv = TAGConv(F_IN, F_OUT, K=3)
    expected = conv(x, edge_index)
    calls = testing.spy_spmm(monkeypatch, conv)
    testing.assert_close(conv(x, edge_index), expected)
    assert len(calls) == 3


def test_lazy_and_reset():
    x, edge_index = testing.random_graph(N, E, F_IN, seed=5)
    conv = TAGConv(-1, F_OUT, K=2)
    assert conv(x, edge_index).shape == (N, F_OUT)
    torch.nn.init.normal_(conv.bias)
    before = conv.lins[1].weight.detach().clone()
    conv.reset_parameters()
    assert torch.count_nonzero(conv.bias) == 0 and not torch.equal(before, conv.lins[1].weight)


def test_bad_inputs():
    x, edge_index = testing.random_graph(N, E, F_IN, seed=6)
    conv = TAGConv(F_IN, F_OUT)
    with pytest.raises(ValueError, match="edge_index"):
        conv(x, edge_index.view(4, -1))
    with pytest.raises(TypeError, match="edge_index"):
        conv(x, edge_index.float())
    with pytest.raises(ValueError, match="edge_index"):
        conv(x, torch.tensor([[N], [0]]))
    with pytest.raises(ValueError, match="'x'.*in_channels"):
        conv(torch.randn(N, 1), edge_index)
    with pytest.raises(ValueError, match="edge_weight"):
        conv(x, edge_index, torch.rand(E, 2))
    with pytest.raises(ValueError, match="K"):
        TAGConv(F_IN, F_OUT, K=-1)
