"""GraphConv: dense reference, PyG parity, bipartite, formats, fused path, lazy, bad inputs."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from gnn.conv import GraphConv
from gnn.core import ops, testing
from gnn.core.utils import is_sparse

N, E, F_IN, F_OUT = 10, 40, 5, 7


def dense_adj(edge_index: Tensor, n_dst: int, n_src: int, weight: Tensor | None = None) -> Tensor:
    w = torch.ones(edge_index.size(1)) if weight is None else weight
    a = torch.zeros(n_dst, n_src, dtype=torch.float64)
    a.index_put_((edge_index[1], edge_index[0]), w.double(), accumulate=True)
    return a


@pytest.mark.parametrize("aggr", ["add", "mean"])
@pytest.mark.parametrize("weighted", [False, True])
def test_dense_formula(aggr, weighted):
    x, edge_index = testing.random_graph(N, E, F_IN, seed=1)
    weight = torch.rand(E) + 0.1 if weighted else None
    conv = GraphConv(F_IN, F_OUT, aggr=aggr)
    a = dense_adj(edge_index, N, N, weight)
    if aggr == "mean":
        count = dense_adj(edge_index, N, N).sum(1, keepdim=True).clamp(min=1)
        a = a / count
    lin_rel, lin_root = conv.lin_rel, conv.lin_root
    expected = a @ x.double() @ lin_rel.weight.double().t() + lin_rel.bias.double()
    expected = expected + x.double() @ lin_root.weight.double().t()
    torch.testing.assert_close(conv(x, edge_index, weight).double(), expected, atol=1e-5, rtol=1e-4)


def test_bipartite():
    x_src, x_dst = torch.randn(8, 4), torch.randn(5, 6)
    edge_index = torch.stack([torch.randint(0, 8, (20,)), torch.randint(0, 5, (20,))])
    weight = torch.rand(20)
    conv = GraphConv((4, 6), F_OUT)
    agg = (dense_adj(edge_index, 5, 8, weight) @ x_src.double()).float()
    testing.assert_close(conv((x_src, x_dst), edge_index, weight), conv.lin_rel(agg) + conv.lin_root(x_dst))
    testing.assert_close(conv((x_src, None), edge_index, weight, size=(8, 5)), conv.lin_rel(agg))


@pytest.mark.parametrize("kwargs", [{}, {"aggr": "max", "bias": False}, {"aggr": "mean"}])
def test_matches_pyg(kwargs):
    pyg = pytest.importorskip("torch_geometric")
    x, edge_index = testing.random_graph(N, E, F_IN, seed=2)
    weight = torch.rand(E)
    theirs = pyg.nn.GraphConv(F_IN, F_OUT, **kwargs)
    ours = GraphConv(F_IN, F_OUT, **kwargs)
    testing.load_pyg_state(ours, theirs)
    assert repr(ours) == repr(theirs)
    testing.assert_close(ours(x, edge_index, weight), theirs(x, edge_index, weight))
    x_bip = (torch.randn(8, F_IN), torch.randn(5, F_IN))
    bip = torch.stack([torch.randint(0, 8, (20,)), torch.randint(0, 5, (20,))])
    testing.assert_close(ours(x_bip, bip), theirs(x_bip, bip))


@pytest.mark.parametrize("aggr", ["add", "mean", "max"])
def test_input_formats_agree(aggr):
    x, edge_index = testing.random_graph(N, E, F_IN, seed=3)
    weight = torch.rand(E) + 0.1
    conv = GraphConv(F_IN, F_OUT, aggr=aggr)
    testing.assert_formats_agree(
        lambda adj: conv(x, adj, None if is_sparse(adj) else weight), edge_index, N, edge_weight=weight
    )


def test_edge_permutation_invariance():
    x, edge_index = testing.random_graph(N, E, F_IN, seed=4)
    weight = torch.rand(E)
    perm = torch.randperm(E, generator=torch.Generator().manual_seed(0))
    conv = GraphConv(F_IN, F_OUT)
    testing.assert_close(conv(x, edge_index[:, perm], weight[perm]), conv(x, edge_index, weight))


def test_edge_index_input_takes_the_fused_spmm_path(monkeypatch):
    x, edge_index = testing.random_graph(N, E, F_IN, seed=5)
    weight = torch.rand(E)
    conv = GraphConv(F_IN, F_OUT)
    expected = conv(x, edge_index, weight)
    calls = []
    real = ops.reduce.run_spmm
    monkeypatch.setattr(ops.reduce, "run_spmm", lambda *a, **k: calls.append(1) or real(*a, **k))

    def no_message(*args, **kwargs):
        raise AssertionError("the [E, F] message path ran")

    conv.message = no_message
    testing.assert_close(conv(x, edge_index, weight), expected)
    assert len(calls) == 1


def test_lazy_and_reset():
    x, edge_index = testing.random_graph(N, E, F_IN, seed=6)
    conv = GraphConv(-1, F_OUT)
    assert conv(x, edge_index).shape == (N, F_OUT)
    before = conv.lin_rel.weight.detach().clone()
    conv.reset_parameters()
    assert not torch.equal(before, conv.lin_rel.weight)


def test_bad_inputs():
    x, edge_index = testing.random_graph(N, E, F_IN, seed=7)
    conv = GraphConv(F_IN, F_OUT)
    with pytest.raises(ValueError, match="edge_index"):
        conv(x, edge_index[:, :, None])
    with pytest.raises(TypeError, match="edge_index"):
        conv(x, edge_index.bool())
    with pytest.raises(ValueError, match="edge_index"):
        conv(x, torch.tensor([[0], [N]]))
    with pytest.raises(ValueError, match="'x'.*in_channels"):
        conv(torch.randn(N, 3), edge_index)
    with pytest.raises(ValueError, match="edge_weight"):
        conv(x, edge_index, torch.rand(3))
