"""MFConv against a per-node loop reference, PyG, sparse inputs and bad input."""

from __future__ import annotations

import pytest
import torch

from gnn.conv.mf import MFConv
from gnn.core import ops, testing


def loop_reference(conv: MFConv, x_src, x_dst, edge_index, n_dst):
    """x'_i = W_l^{deg} sum_j x_j + b^{deg} + W_r^{deg} x_i, one node at a time (float64)."""
    out = []
    for i in range(n_dst):
        nbrs = edge_index[0][edge_index[1] == i]
        h = x_src[nbrs].double().sum(0) if nbrs.numel() else torch.zeros(x_src.size(1), dtype=torch.float64)
        d = min(nbrs.numel(), conv.max_degree)
        lin_l, lin_r = conv.lins_l[d], conv.lins_r[d]
        r = lin_l.weight.double() @ h
        if lin_l.bias is not None:
            r = r + lin_l.bias.double()
        if x_dst is not None:
            r = r + lin_r.weight.double() @ x_dst[i].double()
        out.append(r)
    return torch.stack(out).float()


@pytest.mark.parametrize("bias", [True, False])
def test_matches_loop_reference(bias):
    x, edge_index = testing.random_graph(15, 50, 6, seed=1)
    conv = MFConv(6, 5, max_degree=3, bias=bias)
    testing.assert_close(conv(x, edge_index), loop_reference(conv, x, x, edge_index, 15))


def test_bipartite_and_missing_target():
    g = torch.Generator().manual_seed(2)
    x_src, x_dst = torch.randn(7, 4, generator=g), torch.randn(5, 3, generator=g)
    edge_index = torch.stack(
        [torch.randint(0, 7, (25,), generator=g), torch.randint(0, 5, (25,), generator=g)]
    )
    conv = MFConv((4, 3), 6, max_degree=4)
    out = conv((x_src, x_dst), edge_index)
    testing.assert_close(out, loop_reference(conv, x_src, x_dst, edge_index, 5))
    out = conv((x_src, None), edge_index, size=(7, 5))
    testing.assert_close(out, loop_reference(conv, x_src, None, edge_index, 5))


def test_sparse_formats_agree_and_values_are_ignored():
    x, edge_index = testing.random_graph(12, 40, 4, seed=3)
    conv = MFConv(4, 8, max_degree=5)
    testing.assert_formats_agree(lambda adj: conv(x, adj), edge_index, 12)
    # weighted sparse input: PyG drops the values, each entry counts as one edge
    weight = torch.rand(edge_index.size(1)) + 0.5
    for name, adj in testing.edge_index_formats(edge_index, 12, weight):
        testing.assert_close(conv(x, adj), conv(x, edge_index), msg=name)


def test_uses_fused_spmm(monkeypatch):
    x, edge_index = testing.random_graph(10, 30, 4, seed=4)
    conv = MFConv(4, 4)
    calls = []
    spmm = ops.reduce.run_spmm
    monkeypatch.setattr(ops.reduce, "run_spmm", lambda *a, **k: calls.append(1) or spmm(*a, **k))
    conv(x, edge_index)
    assert calls == [1]


def test_edge_permutation_invariance():
    x, edge_index = testing.random_graph(14, 45, 5, seed=5)
    conv = MFConv(5, 3)
    perm = torch.randperm(edge_index.size(1), generator=torch.Generator().manual_seed(0))
    testing.assert_close(conv(x, edge_index[:, perm]), conv(x, edge_index))


def test_lazy_in_channels():
    x, edge_index = testing.random_graph(10, 30, 7, seed=6)
    conv = MFConv(-1, 3, max_degree=2)
    out = conv(x, edge_index)
    assert conv.lins_l[0].weight.shape == (3, 7)
    testing.assert_close(out, loop_reference(conv, x, x, edge_index, 10))


def test_reset_parameters():
    conv = MFConv(4, 3, max_degree=2)
    for p in conv.parameters():
        torch.nn.init.constant_(p, 7.0)
    conv.reset_parameters()
    for name, p in conv.named_parameters():
        assert p.abs().max() < 7.0, name
        assert p.std() > 0, name


def test_bad_input():
    x, edge_index = testing.random_graph(10, 30, 4, seed=7)
    conv = MFConv(4, 3)
    with pytest.raises(ValueError, match="x"):
        conv(torch.randn(10, 5), edge_index)
    with pytest.raises(ValueError, match="edge_index"):
        conv(x, edge_index[:1])
    with pytest.raises(TypeError, match="edge_index"):
        conv(x, edge_index.float())
    with pytest.raises(ValueError, match="edge_index"):
        conv(x, torch.tensor([[0, 10], [1, 2]]))
    with pytest.raises(ValueError, match="max_degree"):
        MFConv(4, 3, max_degree=-1)


def test_pyg_parity():
    pyg = pytest.importorskip("torch_geometric")
    x, edge_index = testing.random_graph(20, 70, 6, seed=8)
    theirs = pyg.nn.MFConv(6, 9, max_degree=4, bias=False, aggr="mean")
    ours = MFConv(6, 9, max_degree=4, bias=False, aggr="mean")
    assert repr(ours) == repr(theirs)
    testing.assert_signatures_match(MFConv, type(theirs), defaults=False)
    testing.load_pyg_state(ours, theirs)
    testing.assert_close(ours(x, edge_index), theirs(x, edge_index))
    # bipartite
    g = torch.Generator().manual_seed(9)
    x_src, x_dst = torch.randn(6, 4, generator=g), torch.randn(8, 5, generator=g)
    ei = torch.stack([torch.randint(0, 6, (30,), generator=g), torch.randint(0, 8, (30,), generator=g)])
    theirs, ours = pyg.nn.MFConv((4, 5), 3), MFConv((4, 5), 3)
    testing.load_pyg_state(ours, theirs)
    testing.assert_close(ours((x_src, x_dst), ei), theirs((x_src, x_dst), ei))


def test_empty_graph():
    conv = MFConv(4, 3)
    x, no_edges = torch.randn(5, 4), torch.empty(2, 0, dtype=torch.long)
    expected = conv.lins_l[0].bias + x @ conv.lins_r[0].weight.t()  # every node has degree 0
    testing.assert_close(conv(x, no_edges), expected)
    assert conv(torch.randn(0, 4), no_edges).shape == (0, 3)
