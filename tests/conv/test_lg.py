"""LGConv: dense formula, PyG parity, formats, fused path, bad inputs."""

from __future__ import annotations

import pytest
import torch

from gnn.conv import LGConv
from gnn.core import testing
from gnn.core.utils import is_sparse

N, E, F = 10, 40, 5


@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("weighted", [True, False])
def test_dense_formula(normalize, weighted):
    x, edge_index = testing.random_graph(N, E, F, seed=1)
    weight = torch.rand(E) + 0.1 if weighted else None
    expected = (
        testing.dense_gcn_adjacency(edge_index, weight, N, loops=False, normalize=normalize) @ x.double()
    )
    torch.testing.assert_close(
        LGConv(normalize)(x, edge_index, weight).double(), expected, atol=1e-5, rtol=1e-4
    )


@pytest.mark.parametrize("normalize", [True, False])
def test_matches_pyg(normalize):
    pyg = pytest.importorskip("torch_geometric")
    x, edge_index = testing.random_graph(N, E, F, seed=2)
    weight = torch.rand(E)
    theirs, ours = pyg.nn.LGConv(normalize), LGConv(normalize)
    assert repr(ours) == repr(theirs) and not ours.state_dict()
    testing.assert_close(ours(x, edge_index, weight), theirs(x, edge_index, weight))
    testing.assert_close(ours(x, edge_index), theirs(x, edge_index))


@pytest.mark.parametrize("normalize", [True, False])
def test_input_formats_and_permutation(normalize):
    x, edge_index = testing.random_graph(N, E, F, seed=3)
    weight = torch.rand(E) + 0.1
    conv = LGConv(normalize)
    testing.assert_formats_agree(
        lambda adj: conv(x, adj, None if is_sparse(adj) else weight), edge_index, N, edge_weight=weight
    )
    perm = torch.randperm(E, generator=torch.Generator().manual_seed(0))
    testing.assert_close(conv(x, edge_index[:, perm], weight[perm]), conv(x, edge_index, weight))


def test_takes_the_fused_spmm_path(monkeypatch):
    x, edge_index = testing.random_graph(N, E, F, seed=4)
    conv = LGConv()
    expected = conv(x, edge_index)
    calls = testing.spy_spmm(monkeypatch, conv)
    testing.assert_close(conv(x, edge_index), expected)
    assert len(calls) == 1


def test_bad_inputs():
    x, edge_index = testing.random_graph(N, E, F, seed=5)
    conv = LGConv()
    with pytest.raises(ValueError, match="edge_index"):
        conv(x, edge_index[:1])
    with pytest.raises(TypeError, match="edge_index"):
        conv(x, edge_index.float())
    with pytest.raises(ValueError, match="edge_index"):
        conv(x, torch.tensor([[N], [0]]))
    with pytest.raises(TypeError, match="'x'"):
        conv([x], edge_index)
    with pytest.raises(ValueError, match="edge_weight"):
        conv(x, edge_index, torch.rand(E + 1))
