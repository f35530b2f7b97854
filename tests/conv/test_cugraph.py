"""CuGraphSAGEConv / CuGraphGATConv: PyG's API (signatures, repr, state_dict of PyG's classes, which
construct here once their pylibcugraphops check is bypassed), the numbers of SAGEConv / GATConv with
the same weights (PyG's own equality tests map them this way), every graph input form, bipartite
graphs (targets = the first source nodes), empty graphs and validation."""

from __future__ import annotations

import pytest
import torch

from gnn.conv import CuGraphGATConv, CuGraphSAGEConv, GATConv, SAGEConv
from gnn.core import testing


def pyg_cugraph(monkeypatch):
    """PyG's torch_geometric.nn with the CuGraph layers constructible (pylibcugraphops is not installable)."""
    pyg = pytest.importorskip("torch_geometric")
    base = pytest.importorskip("torch_geometric.nn.conv.cugraph.base")
    monkeypatch.setattr(base, "HAS_PYLIBCUGRAPHOPS", True)
    return pyg


def data(seed=0, n=10, e=35):
    return testing.random_graph(n, e, 6, seed=seed, dtype=torch.float64)


def sage_twin(conv: CuGraphSAGEConv) -> SAGEConv:
    """gnn's SAGEConv holding the same weights: lin = [lin_l | lin_r] (aggregated part first). (With
    ``project``, CuGraphSAGEConv projects the root features too: the caller projects x first.)"""
    twin = SAGEConv(
        conv.in_channels,
        conv.out_channels,
        aggr=conv.aggr,
        normalize=conv.normalize,
        root_weight=conv.root_weight,
        bias=conv.lin.bias is not None,
    ).double()
    f = conv.in_channels
    with torch.no_grad():
        twin.lin_l.weight.copy_(conv.lin.weight[:, :f])
        if conv.lin.bias is not None:
            twin.lin_l.bias.copy_(conv.lin.bias)
        if conv.root_weight:
            twin.lin_r.weight.copy_(conv.lin.weight[:, f:])
    return twin


def test_signatures_repr_and_state_dict_match_pyg(monkeypatch):
    pyg = pyg_cugraph(monkeypatch)
    cases = [
        (CuGraphSAGEConv, pyg.nn.CuGraphSAGEConv, {"aggr": "max", "project": True, "bias": False}),
        (CuGraphSAGEConv, pyg.nn.CuGraphSAGEConv, {"root_weight": False}),
        (CuGraphGATConv, pyg.nn.CuGraphGATConv, {"heads": 3, "concat": False}),
        (CuGraphGATConv, pyg.nn.CuGraphGATConv, {"heads": 2, "bias": False}),
    ]
    for ours_cls, theirs_cls, kwargs in cases:
        testing.assert_signatures_match(ours_cls, theirs_cls, ("__init__",))
        testing.assert_signatures_match(ours_cls, theirs_cls, ("forward",), defaults=False)
        theirs, ours = theirs_cls(6, 4, **kwargs), ours_cls(6, 4, **kwargs)
        testing.load_pyg_state(ours, theirs)
        assert repr(ours) == repr(theirs)


@pytest.mark.parametrize("aggr", ["mean", "sum", "min", "max"])
@pytest.mark.parametrize(
    "extra", [{}, {"root_weight": False, "normalize": True}, {"project": True, "bias": False}]
)
def test_sage_matches_sageconv(aggr, extra):
    torch.manual_seed(1)
    conv = CuGraphSAGEConv(6, 4, aggr=aggr, **extra).double()
    x, ei = data(2)
    expected = sage_twin(conv)(conv.pre_lin(x).relu() if conv.project else x, ei)
    testing.assert_close(conv(x, ei), expected, atol=1e-12)
    testing.assert_close(conv(x, CuGraphSAGEConv.to_csc(ei, (10, 10))), expected, atol=1e-12)


def test_sage_against_pyg_sageconv_and_edge_index_class():
    pyg = pytest.importorskip("torch_geometric")
    torch.manual_seed(3)
    conv = CuGraphSAGEConv(6, 4).double()
    theirs = pyg.nn.SAGEConv(6, 4).double()
    testing.load_pyg_state(sage_twin(conv), theirs)
    with torch.no_grad():
        theirs.lin_l.weight.copy_(conv.lin.weight[:, :6])
        theirs.lin_l.bias.copy_(conv.lin.bias)
        theirs.lin_r.weight.copy_(conv.lin.weight[:, 6:])
    x, ei = data(4)
    out = conv(x, pyg.EdgeIndex(ei, sparse_size=(10, 10)))
    testing.assert_close(out, theirs(x, ei), atol=1e-12)
    # bipartite: x holds the 10 sources, the 7 targets are its first rows
    ei_b = ei[:, ei[1] < 7]
    out_b = conv(x, pyg.EdgeIndex(ei_b, sparse_size=(10, 7)), max_num_neighbors=8)
    testing.assert_close(out_b, theirs((x, x[:7]), ei_b, size=(10, 7)), atol=1e-12)
    testing.assert_close(conv(x, CuGraphSAGEConv.to_csc(ei_b, (10, 7))), out_b, atol=1e-12)


def gat_twin(conv: CuGraphGATConv, pyg=None):
    module = pyg.nn.GATConv if pyg is not None else GATConv
    twin = module(
        conv.in_channels,
        conv.out_channels,
        conv.heads,
        concat=conv.concat,
        negative_slope=conv.negative_slope,
        add_self_loops=False,
        bias=conv.bias is not None,
    ).double()
    hc = conv.heads * conv.out_channels
    with torch.no_grad():
        twin.lin.weight.copy_(conv.lin.weight)
        twin.att_src.copy_(conv.att[:hc].view_as(twin.att_src))
        twin.att_dst.copy_(conv.att[hc:].view_as(twin.att_dst))
        if conv.bias is not None:
            twin.bias.copy_(conv.bias)
    return twin


@pytest.mark.parametrize("heads,concat,bias", [(1, True, True), (3, True, False), (2, False, True)])
def test_gat_matches_gatconv_and_pyg(heads, concat, bias):
    pyg = pytest.importorskip("torch_geometric")
    torch.manual_seed(heads)
    conv = CuGraphGATConv(6, 4, heads=heads, concat=concat, bias=bias).double()
    x, ei = data(5)
    out = conv(x, pyg.EdgeIndex(ei, sparse_size=(10, 10)), None)
    testing.assert_close(out, gat_twin(conv)(x, ei), atol=1e-12)
    theirs = gat_twin(conv, pyg)
    testing.assert_close(out, theirs(x, ei), atol=1e-12)
    # edge_attr is accepted and unused, as by a GATConv without edge_dim
    testing.assert_close(conv(x, ei, torch.randn(ei.size(1), 3, dtype=torch.float64)), out, atol=1e-12)
    # gradients of the weights, PyG's test's mapping
    out.square().sum().backward()
    theirs(x, ei).square().sum().backward()
    hc = heads * 4
    testing.assert_close(conv.lin.weight.grad, theirs.lin.weight.grad, atol=1e-10)
    testing.assert_close(conv.att.grad[:hc], theirs.att_src.grad.flatten(), atol=1e-10)
    testing.assert_close(conv.att.grad[hc:], theirs.att_dst.grad.flatten(), atol=1e-10)


def test_gat_bipartite_formats_and_order():
    pyg = pytest.importorskip("torch_geometric")
    torch.manual_seed(6)
    conv = CuGraphGATConv(6, 4, heads=2).double()
    x, ei = data(7)
    ei_b = ei[:, ei[1] < 7]
    out = conv(x, pyg.EdgeIndex(ei_b, sparse_size=(10, 7)), None)
    expected = gat_twin(conv, pyg)((x, x[:7]), ei_b, size=(10, 7))
    testing.assert_close(out, expected, atol=1e-12)
    testing.assert_close(conv(x, CuGraphGATConv.to_csc(ei_b, (10, 7)), None), out, atol=1e-12)
    full = conv(x, ei, None)
    testing.assert_formats_agree(lambda adj: conv(x, adj, None), ei, 10, atol=1e-12)
    perm = torch.randperm(ei.size(1))
    testing.assert_close(conv(x, ei[:, perm], None), full, atol=1e-12)


def test_fused_paths_and_empty_graphs(monkeypatch):
    x, ei = data(8)
    gat = CuGraphGATConv(6, 4, heads=2).double()
    expected = gat(x, ei, None)
    calls = testing.spy_op(monkeypatch, gat, "node_score_attention")
    testing.assert_close(gat(x, ei, None), expected, atol=1e-12)
    assert calls == [1]
    sage = CuGraphSAGEConv(6, 4).double()
    expected = sage(x, ei)
    spmm = testing.spy_spmm(monkeypatch, sage)
    testing.assert_close(sage(x, ei), expected, atol=1e-12)
    assert spmm
    empty = torch.empty(2, 0, dtype=torch.long)
    assert CuGraphSAGEConv(6, 4)(torch.randn(5, 6), empty).shape == (5, 4)
    assert CuGraphGATConv(6, 4)(torch.randn(5, 6), empty, None).shape == (5, 4)
    assert CuGraphSAGEConv(6, 4)(torch.empty(0, 6), CuGraphSAGEConv.to_csc(empty, (0, 0))).shape == (0, 4)


def test_to_csc_and_get_cugraph():
    ei = torch.tensor([[2, 0, 1, 0], [1, 1, 0, 2]])
    (row, colptr, num_src), attr = CuGraphSAGEConv.to_csc(ei, (3, 3), torch.arange(4.0))
    assert row.tolist() == [1, 2, 0, 0] and colptr.tolist() == [0, 1, 3, 4] and num_src == 3
    assert attr.tolist() == [2.0, 0.0, 1.0, 3.0]
    csr = CuGraphSAGEConv(2, 2).get_cugraph((row, colptr, num_src))
    assert csr.rowptr.tolist() == [0, 1, 3, 4] and csr.num_cols == 3


def test_validation():
    with pytest.raises(ValueError, match="Aggregation"):
        CuGraphSAGEConv(6, 4, aggr="std")
    conv = CuGraphSAGEConv(6, 4)
    x, ei = testing.random_graph(10, 20, 6, seed=9)
    with pytest.raises(ValueError, match="source nodes"):
        conv(x[:8], CuGraphSAGEConv.to_csc(ei, (10, 10)))
    with pytest.raises(ValueError, match="target nodes"):
        conv(x[:4], CuGraphSAGEConv.to_csc(ei.clamp(max=3), (4, 9)))
    with pytest.raises(TypeError, match="CSC"):
        conv(x, (ei[0], ei[1]))
    with pytest.raises(TypeError, match="max_num_neighbors"):
        conv(x, ei, max_num_neighbors=2.5)
    with pytest.raises(IndexError, match="edge_index"):
        conv(x, ei + 10)
    with pytest.raises(ValueError, match="x"):
        CuGraphGATConv(6, 4)(torch.randn(10, 5), ei, None)
