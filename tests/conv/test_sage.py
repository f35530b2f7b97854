"""SAGEConv: dense/loop references, PyG parity, formats, fused path, lazy, bad inputs."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from gnn.conv import SAGEConv
from gnn.core import ops, testing

N, E, F_IN, F_OUT = 10, 40, 5, 7


def neighbour_reduce(x: Tensor, edge_index: Tensor, n_dst: int, reduce: str) -> Tensor:
    """Loop reference: reduce the senders' rows of x into each receiver (0 without neighbours)."""
    out = torch.zeros(n_dst, x.size(1), dtype=torch.float64)
    for i in range(n_dst):
        rows = x[edge_index[0, edge_index[1] == i]].double()
        if rows.numel():
            out[i] = {"sum": rows.sum(0), "mean": rows.mean(0), "max": rows.max(0).values}[reduce]
    return out


@pytest.mark.parametrize("aggr", ["mean", "sum", "max"])
@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("project", [False, True])
def test_loop_reference(aggr, normalize, project):
    x, edge_index = testing.random_graph(N, E, F_IN, seed=1)
    conv = SAGEConv(F_IN, F_OUT, aggr=aggr, normalize=normalize, project=project)
    h = x.double()
    if project:
        h = (h @ conv.lin.weight.double().t() + conv.lin.bias.double()).relu()
    agg = neighbour_reduce(h, edge_index, N, aggr)
    expected = agg @ conv.lin_l.weight.double().t() + conv.lin_l.bias.double()
    expected = expected + x.double() @ conv.lin_r.weight.double().t()
    if normalize:
        expected = F.normalize(expected, dim=-1)
    torch.testing.assert_close(conv(x, edge_index).double(), expected, atol=1e-5, rtol=1e-4)


def test_bipartite_and_no_root_weight():
    x_src = torch.randn(8, 4)
    x_dst = torch.randn(5, 6)
    edge_index = torch.stack([torch.randint(0, 8, (20,)), torch.randint(0, 5, (20,))])
    conv = SAGEConv((4, 6), F_OUT)
    agg = neighbour_reduce(x_src, edge_index, 5, "mean")
    expected = agg @ conv.lin_l.weight.double().t() + conv.lin_l.bias.double()
    expected = expected + x_dst.double() @ conv.lin_r.weight.double().t()
    torch.testing.assert_close(conv((x_src, x_dst), edge_index).double(), expected, atol=1e-5, rtol=1e-4)
    # without destination features (x_dst=None) the size comes from `size`
    no_root = SAGEConv((4, 6), F_OUT, root_weight=False)
    out = no_root((x_src, None), edge_index, size=(8, 5))
    torch.testing.assert_close(
        out.double(),
        agg @ no_root.lin_l.weight.double().t() + no_root.lin_l.bias.double(),
        atol=1e-5,
        rtol=1e-4,
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"aggr": "mean"},
        {"aggr": "max", "project": True, "normalize": True},
        {"aggr": "sum", "root_weight": False, "bias": False},
    ],
)
def test_matches_pyg(kwargs):
    pyg = pytest.importorskip("torch_geometric")
    x, edge_index = testing.random_graph(N, E, F_IN, seed=2)
    theirs = pyg.nn.SAGEConv(F_IN, F_OUT, **kwargs)
    ours = SAGEConv(F_IN, F_OUT, **kwargs)
    testing.load_pyg_state(ours, theirs)
    assert repr(ours) == repr(theirs)
    testing.assert_close(ours(x, edge_index), theirs(x, edge_index))


def test_matches_pyg_bipartite():
    pyg = pytest.importorskip("torch_geometric")
    x = (torch.randn(8, 4), torch.randn(5, 6))
    edge_index = torch.stack([torch.randint(0, 8, (20,)), torch.randint(0, 5, (20,))])
    theirs = pyg.nn.SAGEConv((4, 6), F_OUT, aggr="max")
    ours = SAGEConv((4, 6), F_OUT, aggr="max")
    testing.load_pyg_state(ours, theirs)
    assert repr(ours) == repr(theirs)
    testing.assert_close(ours(x, edge_index), theirs(x, edge_index))


@pytest.mark.parametrize("aggr", ["mean", "sum", "max", "min"])
def test_input_formats_agree(aggr):
    x, edge_index = testing.random_graph(N, E, F_IN, seed=3)
    conv = SAGEConv(F_IN, F_OUT, aggr=aggr)
    testing.assert_formats_agree(lambda adj: conv(x, adj), edge_index, N)
    x_src, x_dst = torch.randn(8, F_IN), torch.randn(5, F_IN)
    bip = torch.stack([torch.randint(0, 8, (20,)), torch.randint(0, 5, (20,))])
    testing.assert_formats_agree(lambda adj: conv((x_src, x_dst), adj), bip, (8, 5))


def test_edge_permutation_invariance():
    x, edge_index = testing.random_graph(N, E, F_IN, seed=4)
    perm = torch.randperm(E, generator=torch.Generator().manual_seed(0))
    for aggr in ("mean", "max"):
        conv = SAGEConv(F_IN, F_OUT, aggr=aggr)
        testing.assert_close(conv(x, edge_index[:, perm]), conv(x, edge_index))


@pytest.mark.parametrize("aggr", ["mean", "sum", "max"])
def test_edge_index_input_takes_the_fused_spmm_path(monkeypatch, aggr):
    x, edge_index = testing.random_graph(N, E, F_IN, seed=5)
    conv = SAGEConv(F_IN, F_OUT, aggr=aggr)
    expected = conv(x, edge_index)
    calls = []
    real = ops.reduce.run_spmm
    monkeypatch.setattr(ops.reduce, "run_spmm", lambda *a, **k: calls.append(1) or real(*a, **k))

    def no_message(*args, **kwargs):
        raise AssertionError("the [E, F] message path ran")

    conv.message = no_message
    testing.assert_close(conv(x, edge_index), expected)
    assert len(calls) == 1


def test_lazy_in_channels():
    x, edge_index = testing.random_graph(N, E, F_IN, seed=6)
    conv = SAGEConv(-1, F_OUT)
    assert conv(x, edge_index).shape == (N, F_OUT)
    assert conv.lin_l.weight.shape == (F_OUT, F_IN) and conv.lin_r.weight.shape == (F_OUT, F_IN)
    bip = SAGEConv((-1, -1), F_OUT)
    assert bip((torch.randn(8, 4), torch.randn(5, 6)), torch.tensor([[0, 7], [1, 4]])).shape == (5, F_OUT)
    with pytest.raises(ValueError, match="lazy"):
        SAGEConv(-1, F_OUT, project=True)


def test_reset_parameters():
    conv = SAGEConv(F_IN, F_OUT, project=True)
    before = [p.detach().clone() for p in conv.parameters()]
    conv.reset_parameters()
    assert all(not torch.equal(a, b) for a, b in zip(before, conv.parameters()))


def test_bad_inputs():
    x, edge_index = testing.random_graph(N, E, F_IN, seed=7)
    conv = SAGEConv(F_IN, F_OUT)
    with pytest.raises(ValueError, match="edge_index"):
        conv(x, edge_index.view(1, -1))
    with pytest.raises(TypeError, match="edge_index"):
        conv(x, edge_index.float())
    with pytest.raises(ValueError, match="edge_index"):
        conv(x, torch.tensor([[0, 1], [N, 2]]))
    with pytest.raises(ValueError, match="'x'.*in_channels"):
        conv(torch.randn(N, F_IN + 2), edge_index)
    bip = SAGEConv((4, 6), F_OUT)
    with pytest.raises(ValueError, match=r"'x\[1\]'"):
        bip((torch.randn(8, 4), torch.randn(5, 5)), torch.tensor([[0], [1]]))


@pytest.mark.parametrize("aggr", [["mean", "max"], "lstm", "std"])
def test_learnable_and_multi_aggregations_match_pyg(aggr):
    pyg = pytest.importorskip("torch_geometric")
    x, edge_index = testing.random_graph(N, E, F_IN, seed=8)
    edge_index = edge_index[:, torch.argsort(edge_index[1], stable=True)]  # LSTM needs receivers sorted
    theirs = pyg.nn.SAGEConv(F_IN, F_OUT, aggr=aggr)
    ours = SAGEConv(F_IN, F_OUT, aggr=aggr)
    testing.load_pyg_state(ours, theirs)
    assert repr(ours) == repr(theirs)
    testing.assert_close(ours(x, edge_index), theirs(x, edge_index))
