"""EdgeConv against a per-node loop reference, PyG, sparse inputs and bad input."""

from __future__ import annotations

import pytest
import torch

from gnn.conv.edge_conv import EdgeConv
from gnn.core import testing


def make_nn(f_in: int, f_out: int) -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(2 * f_in, 8), torch.nn.ReLU(), torch.nn.Linear(8, f_out))


def loop_reference(conv: EdgeConv, x_src, x_dst, edge_index, reduce: str):
    """reduce_j nn([x_i, x_j - x_i]) node by node; nodes without neighbours give 0."""
    out = []
    with torch.no_grad():
        f_out = conv.nn(torch.zeros(1, 2 * x_src.size(1))).size(-1)
        for i in range(x_dst.size(0)):
            nbrs = edge_index[0][edge_index[1] == i]
            if nbrs.numel() == 0:
                out.append(torch.zeros(f_out))
                continue
            xi = x_dst[i].expand(nbrs.numel(), -1)
            msgs = conv.nn(torch.cat([xi, x_src[nbrs] - xi], dim=-1))
            out.append({"max": msgs.max(0).values, "sum": msgs.sum(0), "mean": msgs.mean(0)}[reduce])
    return torch.stack(out)


@pytest.mark.parametrize("aggr", ["max", "add", "mean"])
def test_matches_loop_reference(aggr):
    x, edge_index = testing.random_graph(12, 35, 4, seed=1)
    conv = EdgeConv(make_nn(4, 5), aggr=aggr)
    expected = loop_reference(conv, x, x, edge_index, "sum" if aggr == "add" else aggr)
    testing.assert_close(conv(x, edge_index), expected)


def test_bipartite():
    g = torch.Generator().manual_seed(2)
    x_src, x_dst = torch.randn(7, 4, generator=g), torch.randn(5, 4, generator=g)
    edge_index = torch.stack(
        [torch.randint(0, 7, (20,), generator=g), torch.randint(0, 5, (20,), generator=g)]
    )
    conv = EdgeConv(make_nn(4, 3))
    testing.assert_close(
        conv((x_src, x_dst), edge_index), loop_reference(conv, x_src, x_dst, edge_index, "max")
    )


def test_sparse_formats_agree():
    x, edge_index = testing.random_graph(10, 30, 3, seed=3)
    conv = EdgeConv(make_nn(3, 4))
    testing.assert_formats_agree(lambda adj: conv(x, adj), edge_index, 10)


def test_edge_permutation_invariance():
    x, edge_index = testing.random_graph(14, 45, 3, seed=4)
    conv = EdgeConv(make_nn(3, 4), aggr="mean")
    perm = torch.randperm(45, generator=torch.Generator().manual_seed(0))
    testing.assert_close(conv(x, edge_index[:, perm]), conv(x, edge_index))


def test_reset_parameters():
    conv = EdgeConv(make_nn(3, 4))
    for p in conv.parameters():
        torch.nn.init.constant_(p, 7.0)
    conv.reset_parameters()
    for name, p in conv.named_parameters():
        assert p.abs().max() < 7.0 and p.std() > 0, name


def test_bad_input():
    x, edge_index = testing.random_graph(10, 30, 3, seed=5)
    conv = EdgeConv(make_nn(3, 4))
    with pytest.raises(ValueError, match="x"):
        conv((x, torch.randn(10, 4)), edge_index)
    with pytest.raises(TypeError, match="x"):
        conv([1.0, 2.0], edge_index)
    with pytest.raises(ValueError, match="edge_index"):
        conv(x, edge_index[0])
    with pytest.raises(TypeError, match="edge_index"):
        conv(x, edge_index.float())
    with pytest.raises(ValueError, match="edge_index"):
        conv(x, torch.tensor([[0, 11], [1, 2]]))


def test_pyg_parity():
    pyg = pytest.importorskip("torch_geometric")
    x, edge_index = testing.random_graph(20, 70, 4, seed=6)
    theirs = pyg.nn.EdgeConv(make_nn(4, 6), aggr="mean")
    ours = EdgeConv(make_nn(4, 6), aggr="mean")
    assert repr(ours) == repr(theirs)
    testing.assert_signatures_match(EdgeConv, type(theirs), defaults=False)
    testing.load_pyg_state(ours, theirs)
    testing.assert_close(ours(x, edge_index), theirs(x, edge_index))
    x_dst = torch.randn(20, 4)
    theirs, ours = pyg.nn.EdgeConv(make_nn(4, 2)), EdgeConv(make_nn(4, 2))
    testing.load_pyg_state(ours, theirs)
    testing.assert_close(ours((x, x_dst), edge_index), theirs((x, x_dst), edge_index))


def test_empty_graph():
    conv = EdgeConv(make_nn(3, 4))
    no_edges = torch.empty(2, 0, dtype=torch.long)
    testing.assert_close(conv(torch.randn(5, 3), no_edges), torch.zeros(5, 4))
    assert conv(torch.randn(0, 3), no_edges).shape == (0, 4)
