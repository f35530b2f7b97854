"""ARMAConv: dense recursion, PyG parity, formats, fused path (all stacks in one spmm), lazy, bad inputs."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from gnn.conv import ARMAConv
from gnn.core import testing
from gnn.core.utils import is_sparse

N, E, F_IN, F_OUT = 10, 40, 5, 7


def dense_arma(conv: ARMAConv, x: Tensor, p: Tensor) -> Tensor:
    """Per stack k and layer t: act(P X_k W_kt + X V_kt + b_kt), averaged over the stacks."""
    outs = []
    for k in range(conv.num_stacks):
        h = x.double()
        for t in range(conv.num_layers):
            idx = 0 if conv.shared_weights else t
            w = conv.init_weight[k] if t == 0 else conv.weight[0 if conv.shared_weights else t - 1, k]
            h = p @ (h @ w.double()) + x.double() @ conv.root_weight[idx, k].double()
            if conv.bias is not None:
                h = h + conv.bias[idx, k].double()
            if conv.act is not None:
                h = conv.act(h)
        outs.append(h)
    return torch.stack(outs).mean(0)


@pytest.mark.parametrize("stacks, layers", [(1, 1), (3, 2), (2, 4)])
@pytest.mark.parametrize("shared", [False, True])
def test_dense_recursion(stacks, layers, shared):
    x, edge_index = testing.random_graph(N, E, F_IN, seed=1)
    weight = torch.rand(E) + 0.1
    conv = ARMAConv(F_IN, F_OUT, stacks, layers, shared_weights=shared)
    torch.nn.init.normal_(conv.bias)
    expected = dense_arma(conv, x, testing.dense_gcn_adjacency(edge_index, weight, N, loops=False))
    torch.testing.assert_close(conv(x, edge_index, weight).double(), expected, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"num_stacks": 3, "num_layers": 2},
        {"num_stacks": 2, "num_layers": 3, "shared_weights": True, "act": None, "bias": False},
    ],
)
def test_matches_pyg(kwargs):
    pyg = pytest.importorskip("torch_geometric")
    x, edge_index = testing.random_graph(N, E, F_IN, seed=2)
    weight = torch.rand(E)
    theirs, ours = pyg.nn.ARMAConv(F_IN, F_OUT, **kwargs), ARMAConv(F_IN, F_OUT, **kwargs)
    if theirs.bias is not None:
        torch.nn.init.normal_(theirs.bias)
    testing.load_pyg_state(ours, theirs)
    assert repr(ours) == repr(theirs)
    testing.assert_close(ours(x, edge_index, weight), theirs(x, edge_index, weight))


def test_input_formats_permutation_and_fused_path(monkeypatch):
    x, edge_index = testing.random_graph(N, E, F_IN, seed=3)
    weight = torch.rand(E) + 0.1
    conv = ARMAConv(F_IN, F_OUT, num_stacks=3, num_layers=2)
    testing.assert_formats_agree(
        lambda adj: conv(x, adj, None if is_sparse(adj) else weight), edge_index, N, edge_weight=weight
    )
    perm = torch.randperm(E, generator=torch.Generator().manual_seed(0))
    testing.assert_close(conv(x, edge_index[:, perm], weight[perm]), conv(x, edge_index, weight))
    expected = conv(x, edge_index, weight)
    calls = testing.spy_spmm(monkeypatch, conv)
    testing.assert_close(conv(x, edge_index, weight), expected)
    assert len(calls) == 2  # one per layer, all three stacks at once


def test_dropout_only_in_training():
    x, edge_index = testing.random_graph(N, E, F_IN, seed=4)
    conv = ARMAConv(F_IN, F_OUT, dropout=0.5)
    conv.eval()
    out = conv(x, edge_index)
    testing.assert_close(conv(x, edge_index), out)
    conv.train()
    torch.manual_seed(0)
    assert not torch.allclose(conv(x, edge_index), out)


def test_lazy_and_reset():
    x, edge_index = testing.random_graph(N, E, F_IN, seed=5)
    conv = ARMAConv(-1, F_OUT, num_stacks=2, num_layers=2)
    assert conv(x, edge_index).shape == (N, F_OUT)
    assert conv.init_weight.shape == (2, F_IN, F_OUT) and conv.root_weight.shape == (2, 2, F_IN, F_OUT)
    torch.nn.init.normal_(conv.bias)
    before = conv.init_weight.detach().clone()
    conv.reset_parameters()
    assert torch.count_nonzero(conv.bias) == 0 and not torch.equal(before, conv.init_weight)


def test_bad_inputs():
    x, edge_index = testing.random_graph(N, E, F_IN, seed=6)
    with pytest.raises(ValueError, match="num_stacks"):
        ARMAConv(F_IN, F_OUT, num_stacks=0)
    conv = ARMAConv(F_IN, F_OUT)
    with pytest.raises(ValueError, match="edge_index"):
        conv(x, edge_index[:1])
    with pytest.raises(TypeError, match="edge_index"):
        conv(x, edge_index.float())
    with pytest.raises(ValueError, match="edge_index"):
        conv(x, torch.tensor([[N], [0]]))
    with pytest.raises(ValueError, match="'x'.*in_channels"):
        conv(torch.randn(N, 2), edge_index)
