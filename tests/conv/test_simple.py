"""SimpleConv: loop references for every combine_root, PyG parity, formats, fused path, bad inputs."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from gnn.conv import SimpleConv
from gnn.core import ops, testing
from gnn.core.utils import is_sparse

N, E, F = 10, 40, 5


def reduce_weighted(x: Tensor, edge_index: Tensor, weight: Tensor | None, n_dst: int, reduce: str) -> Tensor:
    """Loop reference of aggr(w_e * x_src) per receiver (0 without neighbours)."""
    w = torch.ones(edge_index.size(1)) if weight is None else weight
    out = torch.zeros(n_dst, x.size(1), dtype=torch.float64)
    for i in range(n_dst):
        mask = edge_index[1] == i
        rows = w[mask].double().view(-1, 1) * x[edge_index[0, mask]].double()
        if rows.numel():
            out[i] = {"sum": rows.sum(0), "mean": rows.mean(0), "max": rows.max(0).values}[reduce]
    return out


@pytest.mark.parametrize("aggr", ["sum", "mean", "max"])
@pytest.mark.parametrize("combine_root", [None, "sum", "cat", "self_loop"])
def test_loop_reference(aggr, combine_root):
    x, edge_index = testing.random_graph(N, E, F, seed=1)
    weight = torch.rand(E) + 0.1
    conv = SimpleConv(aggr, combine_root)
    if combine_root == "self_loop":
        loops = torch.arange(N).repeat(2, 1)
        expected = reduce_weighted(
            x, torch.cat([edge_index, loops], 1), torch.cat([weight, torch.ones(N)]), N, aggr
        )
    else:
        expected = reduce_weighted(x, edge_index, weight, N, aggr)
        if combine_root == "sum":
            expected = expected + x.double()
        elif combine_root == "cat":
            expected = torch.cat([x.double(), expected], dim=-1)
    torch.testing.assert_close(conv(x, edge_index, weight).double(), expected, atol=1e-5, rtol=1e-4)


def test_bipartite():
    x_src, x_dst = torch.randn(8, F), torch.randn(5, F)
    edge_index = torch.stack([torch.randint(0, 8, (20,)), torch.randint(0, 5, (20,))])
    agg = reduce_weighted(x_src, edge_index, None, 5, "mean")
    testing.assert_close(SimpleConv("mean")((x_src, x_dst), edge_index), agg.float())
    testing.assert_close(SimpleConv("mean", "sum")((x_src, x_dst), edge_index), agg.float() + x_dst)
    testing.assert_close(SimpleConv("mean", "cat")((x_src, None), edge_index, size=(8, 5)), agg.float())


@pytest.mark.parametrize(
    "aggr, combine_root", [("sum", None), ("mean", "sum"), ("max", "cat"), ("mean", "self_loop")]
)
def test_matches_pyg(aggr, combine_root):
    pyg = pytest.importorskip("torch_geometric")
    x, edge_index = testing.random_graph(N, E, F, seed=2)
    weight = torch.rand(E)
    theirs = pyg.nn.SimpleConv(aggr, combine_root)
    ours = SimpleConv(aggr, combine_root)
    assert repr(ours) == repr(theirs)
    testing.assert_close(ours(x, edge_index, weight), theirs(x, edge_index, weight))
    testing.assert_close(ours(x, edge_index), theirs(x, edge_index))


@pytest.mark.parametrize("combine_root", [None, "sum", "cat", "self_loop"])
def test_input_formats_agree(combine_root):
    x, edge_index = testing.random_graph(N, E, F, seed=3)
    weight = torch.rand(E) + 0.1
    for aggr in ("sum", "mean", "max"):
        conv = SimpleConv(aggr, combine_root)
        testing.assert_formats_agree(
            lambda adj: conv(x, adj, None if is_sparse(adj) else weight), edge_index, N, edge_weight=weight
        )


def test_edge_permutation_invariance():
    x, edge_index = testing.random_graph(N, E, F, seed=4)
    weight = torch.rand(E)
    perm = torch.randperm(E, generator=torch.Generator().manual_seed(0))
    conv = SimpleConv("mean", "self_loop")
    testing.assert_close(conv(x, edge_index[:, perm], weight[perm]), conv(x, edge_index, weight))


@pytest.mark.parametrize("aggr", ["sum", "mean", "max"])
def test_edge_index_input_takes_the_fused_spmm_path(monkeypatch, aggr):
    x, edge_index = testing.random_graph(N, E, F, seed=5)
    weight = torch.rand(E)
    conv = SimpleConv(aggr)
    expected = conv(x, edge_index, weight)
    calls = []
    real = ops.reduce.run_spmm
    monkeypatch.setattr(ops.reduce, "run_spmm", lambda *a, **k: calls.append(1) or real(*a, **k))

    def no_message(*args, **kwargs):
        raise AssertionError("the [E, F] message path ran")

    conv.message = no_message
    testing.assert_close(conv(x, edge_index, weight), expected)
    assert len(calls) == 1


def test_bad_inputs():
    x, edge_index = testing.random_graph(N, E, F, seed=6)
    with pytest.raises(ValueError, match="combine_root"):
        SimpleConv(combine_root="max")
    with pytest.raises(ValueError, match="bipartite"):
        SimpleConv(combine_root="self_loop")((x, x[:3]), edge_index)
    conv = SimpleConv()
    with pytest.raises(ValueError, match="edge_index"):
        conv(x, edge_index.t())
    with pytest.raises(TypeError, match="edge_index"):
        conv(x, edge_index.float())
    with pytest.raises(ValueError, match="edge_index"):
        conv(x, torch.tensor([[-1], [0]]))
    with pytest.raises(ValueError, match="edge_weight"):
        conv(x, edge_index, torch.ones(E + 1))
