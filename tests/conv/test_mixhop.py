"""MixHopConv: dense powers, PyG parity, formats, fused path, lazy, bad inputs."""

from __future__ import annotations

import pytest
import torch

from gnn.conv import MixHopConv
from gnn.core import testing
from gnn.core.utils import is_sparse

N, E, F_IN, F_OUT = 10, 40, 5, 7


@pytest.mark.parametrize("powers", [None, [2, 0], [3, 1]])
@pytest.mark.parametrize("loops", [True, False])
def test_dense_powers(powers, loops):
    x, edge_index = testing.random_graph(N, E, F_IN, seed=1)
    weight = torch.rand(E) + 0.1
    conv = MixHopConv(F_IN, F_OUT, powers=powers, add_self_loops=loops)
    torch.nn.init.normal_(conv.bias)
    p = testing.dense_gcn_adjacency(edge_index, weight, N, loops=loops)
    parts = [
        torch.linalg.matrix_power(p, k) @ x.double() @ conv.lins[k].weight.double().t() for k in conv.powers
    ]
    expected = torch.cat(parts, dim=-1) + conv.bias.double()
    torch.testing.assert_close(conv(x, edge_index, weight).double(), expected, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("kwargs", [{}, {"powers": [2, 0, 3], "bias": False}, {"add_self_loops": False}])
def test_matches_pyg(kwargs):
    pyg = pytest.importorskip("torch_geometric")
    x, edge_index = testing.random_graph(N, E, F_IN, seed=2)
    weight = torch.rand(E)
    theirs, ours = pyg.nn.MixHopConv(F_IN, F_OUT, **kwargs), MixHopConv(F_IN, F_OUT, **kwargs)
    if theirs.bias is not None:
        torch.nn.init.normal_(theirs.bias)
    testing.load_pyg_state(ours, theirs)
    assert repr(ours) == repr(theirs)
    testing.assert_close(ours(x, edge_index, weight), theirs(x, edge_index, weight))


def test_input_formats_permutation_and_fused_path(monkeypatch):
    x, edge_index = testing.random_graph(N, E, F_IN, seed=3)
    weight = torch.rand(E) + 0.1
    conv = MixHopConv(F_IN, F_OUT)
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


def test_lazy_and_reset():
    x, edge_index = testing.random_graph(N, E, F_IN, seed=4)
    conv = MixHopConv(-1, F_OUT, powers=[0, 2])
    assert conv(x, edge_index).shape == (N, 2 * F_OUT)
    assert isinstance(conv.lins[1], torch.nn.Identity)
    torch.nn.init.normal_(conv.bias)
    conv.reset_parameters()
    assert torch.count_nonzero(conv.bias) == 0


def test_bad_inputs():
    x, edge_index = testing.random_graph(N, E, F_IN, seed=5)
    with pytest.raises(ValueError, match="powers"):
        MixHopConv(F_IN, F_OUT, powers=[])
    with pytest.raises(ValueError, match="powers"):
        MixHopConv(F_IN, F_OUT, powers=[-1, 1])
    conv = MixHopConv(F_IN, F_OUT)
    with pytest.raises(ValueError, match="edge_index"):
        conv(x, edge_index[:1])
    with pytest.raises(TypeError, match="edge_index"):
        conv(x, edge_index.float())
    with pytest.raises(ValueError, match="edge_index"):
        conv(x, torch.tensor([[N], [0]]))
    with pytest.raises(ValueError, match="'x'.*in_channels"):
        conv(torch.randn(N, 2), edge_index)
