"""FusedGATConv: PyG's API (to_graph_format's exact output, the (csr, csc, perm) input, the
constructor's refusals), GATConv's numbers (gnn's and PyG's, same weights), the fused op."""

from __future__ import annotations

import inspect

import pytest
import torch

from gnn.conv import FusedGATConv, GATConv
from gnn.core import testing


def graph(seed=0, n=9, e=30):
    x, ei = testing.random_graph(n, e, 6, seed=seed, dtype=torch.float64, self_loops=False)
    return x, ei


def test_to_graph_format_is_pygs():
    pyg = pytest.importorskip("torch_geometric")
    _, ei = testing.random_graph(9, 30, 1, seed=1, duplicates=False)
    ei = torch.unique(ei, dim=1)[:, torch.randperm(torch.unique(ei, dim=1).size(1))]  # no duplicate edges
    for size in (None, (9, 9), (12, 10)):
        ours = FusedGATConv.to_graph_format(ei, size)
        theirs = pyg.nn.FusedGATConv.to_graph_format(ei, size)
        (a_rowptr, a_col), (a_row, a_colptr), a_perm = ours
        (b_rowptr, b_col), (b_row, b_colptr), b_perm = theirs
        for a, b in (
            (a_rowptr, b_rowptr),
            (a_col, b_col),
            (a_row, b_row),
            (a_colptr, b_colptr),
            (a_perm, b_perm),
        ):
            assert a.dtype == b.dtype == torch.int32
            assert torch.equal(a, b)
    # duplicate edges: the order among equal edges is free, perm must still map CSC to CSR entries
    _, dup = graph(1)
    (rowptr, col), (row, colptr), perm = FusedGATConv.to_graph_format(dup)
    csr_rows = torch.repeat_interleave(torch.arange(rowptr.numel() - 1), (rowptr[1:] - rowptr[:-1]).long())
    csc_cols = torch.repeat_interleave(torch.arange(colptr.numel() - 1), (colptr[1:] - colptr[:-1]).long())
    assert torch.equal(csr_rows[perm.long()], row.long()) and torch.equal(col[perm.long()].long(), csc_cols)
    empty = FusedGATConv.to_graph_format(torch.empty(2, 0, dtype=torch.long), (3, 3))
    assert empty[0][0].tolist() == [0, 0, 0, 0] and empty[2].numel() == 0


def test_signatures_and_refusals_match_pyg():
    pyg = pytest.importorskip("torch_geometric")
    ours, theirs = inspect.signature(FusedGATConv.forward), inspect.signature(pyg.nn.FusedGATConv.forward)
    assert list(ours.parameters) == list(theirs.parameters)
    assert list(inspect.signature(FusedGATConv.__init__).parameters) == ["self", "args", "kwargs"]
    with pytest.raises(ValueError, match="self-loops"):
        FusedGATConv(6, 4)
    with pytest.raises(ValueError, match="edge features"):
        FusedGATConv(6, 4, add_self_loops=False, edge_dim=3)


@pytest.mark.parametrize("heads,concat", [(1, True), (3, True), (2, False)])
def test_same_numbers_as_gat_and_pyg(heads, concat):
    pyg = pytest.importorskip("torch_geometric")
    torch.manual_seed(heads)
    x, ei = graph(2)
    theirs = pyg.nn.GATConv(6, 4, heads=heads, concat=concat, add_self_loops=False).double()
    fused = FusedGATConv(6, 4, heads=heads, concat=concat, add_self_loops=False).double()
    gat = GATConv(6, 4, heads=heads, concat=concat, add_self_loops=False).double()
    testing.load_pyg_state(fused, theirs)
    testing.load_pyg_state(gat, theirs)
    csr, csc, perm = FusedGATConv.to_graph_format(ei, (9, 9))
    out = fused(x, csr, csc, perm)
    testing.assert_close(out, theirs(x, ei), atol=1e-12)
    testing.assert_close(out, gat(x, ei), atol=1e-12)
    testing.assert_close(fused(x, ei), out, atol=1e-12)
    testing.assert_gradients_match_pyg(fused, theirs, x, ei)


def test_runs_the_fused_attention_op(monkeypatch):
    conv = FusedGATConv(6, 4, heads=2, add_self_loops=False).double()
    x, ei = graph(3)
    expected = conv(x, ei)
    calls = testing.spy_op(monkeypatch, conv, "node_score_attention")
    csr, csc, perm = FusedGATConv.to_graph_format(ei)
    testing.assert_close(conv(x, csr, csc, perm), expected, atol=1e-12)
    assert calls == [1]


def test_formats_order_and_empty_graph():
    torch.manual_seed(4)
    conv = FusedGATConv(6, 4, heads=2, add_self_loops=False).double()
    x, ei = graph(4)
    out = conv(x, ei)
    testing.assert_formats_agree(lambda adj: conv(x, adj), ei, 9, atol=1e-12)
    perm = torch.randperm(ei.size(1))
    testing.assert_close(conv(x, *FusedGATConv.to_graph_format(ei[:, perm], (9, 9))), out, atol=1e-12)
    # to_graph_format without size: trailing isolated nodes are not listed, their output is the bias
    few = ei.clamp(max=5)
    short = FusedGATConv.to_graph_format(few)
    testing.assert_close(conv(x, *short), conv(x, few), atol=1e-12)
    empty = conv(x, *FusedGATConv.to_graph_format(torch.empty(2, 0, dtype=torch.long), (9, 9)))
    testing.assert_close(empty, conv.bias.expand(9, 8))


def test_dropout_in_training_and_validation():
    conv = FusedGATConv(6, 4, heads=2, add_self_loops=False, dropout=0.5).train()
    x, ei = testing.random_graph(9, 30, 6, seed=5)
    assert conv(x, *FusedGATConv.to_graph_format(ei, (9, 9))).shape == (9, 8)
    csr, csc, perm = FusedGATConv.to_graph_format(ei, (9, 9))
    with pytest.raises(ValueError, match="x"):
        conv(x.unsqueeze(0), csr, csc, perm)
    with pytest.raises(ValueError, match="target nodes"):
        conv(x[:4], csr, csc, perm)
    with pytest.raises(TypeError, match="csc"):
        conv(x, csr, csc[0], perm)
    with pytest.raises(ValueError, match="csc"):
        conv(x, csr, (csc[0][:-1], csc[1]), perm)
    with pytest.raises(TypeError, match="csr"):
        conv(x, csr)
