"""ClusterGCNConv: dense formula, PyG parity, formats, fused path, lazy, bad inputs."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from gnn.conv import ClusterGCNConv
from gnn.core import ops, testing

N, E, F_IN, F_OUT = 10, 40, 5, 7


def propagation_matrix(edge_index: Tensor, n: int, diag_lambda: float, loops: bool) -> Tensor:
    """(D^-1 A + lambda diag(D^-1 A)) with A 0/1 (duplicates counted); loops replaced by I when `loops`."""
    a = torch.zeros(n, n, dtype=torch.float64)
    for e in range(edge_index.size(1)):
        s, d = int(edge_index[0, e]), int(edge_index[1, e])
        if not (loops and s == d):
            a[d, s] += 1.0
    if loops:
        a += torch.eye(n, dtype=torch.float64)
    p = a / a.sum(1, keepdim=True).clamp(min=1)
    return p + diag_lambda * torch.diag(torch.diag(p))


@pytest.mark.parametrize("diag_lambda", [0.0, 0.7])
@pytest.mark.parametrize("loops", [True, False])
def test_dense_formula(diag_lambda, loops):
    x, edge_index = testing.random_graph(N, E, F_IN, seed=1)
    conv = ClusterGCNConv(F_IN, F_OUT, diag_lambda=diag_lambda, add_self_loops=loops)
    p = propagation_matrix(edge_index, N, diag_lambda, loops)
    lin_out, lin_root = conv.lin_out, conv.lin_root
    expected = p @ x.double() @ lin_out.weight.double().t() + lin_out.bias.double()
    expected = expected + x.double() @ lin_root.weight.double().t()
    torch.testing.assert_close(conv(x, edge_index).double(), expected, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("diag_lambda, bias", [(0.0, True), (0.4, False)])
def test_matches_pyg(diag_lambda, bias):
    pyg = pytest.importorskip("torch_geometric")
    x, edge_index = testing.random_graph(N, E, F_IN, seed=2)
    theirs = pyg.nn.ClusterGCNConv(F_IN, F_OUT, diag_lambda=diag_lambda, bias=bias)
    ours = ClusterGCNConv(F_IN, F_OUT, diag_lambda=diag_lambda, bias=bias)
    testing.load_pyg_state(ours, theirs)
    assert repr(ours) == repr(theirs)
    testing.assert_close(ours(x, edge_index), theirs(x, edge_index))
    # without add_self_loops PyG matches the formula when the graph ends with one loop per node
    no_loops = edge_index[:, edge_index[0] != edge_index[1]]
    with_loops = torch.cat([no_loops, torch.arange(N).repeat(2, 1)], dim=1)
    theirs = pyg.nn.ClusterGCNConv(F_IN, F_OUT, diag_lambda=diag_lambda, add_self_loops=False)
    ours = ClusterGCNConv(F_IN, F_OUT, diag_lambda=diag_lambda, add_self_loops=False)
    testing.load_pyg_state(ours, theirs)
    testing.assert_close(ours(x, with_loops), theirs(x, with_loops))


def test_input_formats_permutation_and_fused_path(monkeypatch):
    x, edge_index = testing.random_graph(N, E, F_IN, seed=3)
    conv = ClusterGCNConv(F_IN, F_OUT, diag_lambda=0.3)
    testing.assert_formats_agree(lambda adj: conv(x, adj), edge_index, N)
    perm = torch.randperm(E, generator=torch.Generator().manual_seed(0))
    testing.assert_close(conv(x, edge_index[:, perm]), conv(x, edge_index))
    expected = conv(x, edge_index)
    calls = []
    real = ops.reduce.run_spmm
    monkeypatch.setattr(ops.reduce, "run_spmm", lambda *a, **k: calls.append(1) or real(*a, **k))

    def no_message(*args, **kwargs):
        raise AssertionError("the [E, F] message path ran")

    conv.message = no_message
    testing.assert_close(conv(x, edge_index), expected)
    assert len(calls) == 1


def test_lazy_and_reset():
    x, edge_index = testing.random_graph(N, E, F_IN, seed=4)
    conv = ClusterGCNConv(-1, F_OUT)
    assert conv(x, edge_index).shape == (N, F_OUT)
    before = conv.lin_root.weight.detach().clone()
    conv.reset_parameters()
    assert not torch.equal(before, conv.lin_root.weight)


def test_bad_inputs():
    x, edge_index = testing.random_graph(N, E, F_IN, seed=5)
    conv = ClusterGCNConv(F_IN, F_OUT)
    with pytest.raises(ValueError, match="edge_index"):
        conv(x, edge_index[:1])
    with pytest.raises(TypeError, match="edge_index"):
        conv(x, edge_index.float())
    with pytest.raises(ValueError, match="edge_index"):
        conv(x, torch.tensor([[N], [0]]))
    with pytest.raises(ValueError, match="'x'.*in_channels"):
        conv(torch.randn(N, 2), edge_index)
