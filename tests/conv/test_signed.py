"""SignedConv against a dense mean-adjacency reference, PyG, sparse inputs and bad input."""

from __future__ import annotations

import pytest
import torch

from gnn.conv.signed import SignedConv
from gnn.core import ops, testing


def mean_adj(edge_index, n_src, n_dst):
    """Row-normalized dense A[dst, src] counting duplicate edges (a loop, float64)."""
    a = torch.zeros(n_dst, n_src, dtype=torch.float64)
    for e in range(edge_index.size(1)):
        a[edge_index[1, e], edge_index[0, e]] += 1
    return a / a.sum(1, keepdim=True).clamp(min=1)


def lin(layer, x):
    out = x.double() @ layer.weight.double().t()
    return out + layer.bias.double() if layer.bias is not None else out


def dense_reference(conv: SignedConv, x_src, x_dst, pos, neg):
    p = mean_adj(pos, x_src.size(0), x_dst.size(0))
    n = mean_adj(neg, x_src.size(0), x_dst.size(0))
    xs = x_src.double()
    if conv.first_aggr:
        out_pos = lin(conv.lin_pos_l, p @ xs) + lin(conv.lin_pos_r, x_dst)
        out_neg = lin(conv.lin_neg_l, n @ xs) + lin(conv.lin_neg_r, x_dst)
    else:
        f = conv.in_channels
        xs_pos, xs_neg = xs[:, :f], xs[:, f:]
        out_pos = lin(conv.lin_pos_l, torch.cat([p @ xs_pos, n @ xs_neg], 1)) + lin(
            conv.lin_pos_r, x_dst[:, :f]
        )
        out_neg = lin(conv.lin_neg_l, torch.cat([p @ xs_neg, n @ xs_pos], 1)) + lin(
            conv.lin_neg_r, x_dst[:, f:]
        )
    return torch.cat([out_pos, out_neg], 1).float()


def graphs(n=12, seed=0):
    _, pos = testing.random_graph(n, 40, 1, seed=seed)
    _, neg = testing.random_graph(n, 25, 1, seed=seed + 100)
    return pos, neg


@pytest.mark.parametrize("first_aggr", [True, False])
@pytest.mark.parametrize("bias", [True, False])
def test_matches_dense_reference(first_aggr, bias):
    pos, neg = graphs()
    x = torch.randn(12, 4 if first_aggr else 8)
    conv = SignedConv(4, 3, first_aggr=first_aggr, bias=bias)
    out = conv(x, pos, neg)
    assert out.shape == (12, 6)
    testing.assert_close(out, dense_reference(conv, x, x, pos, neg))


@pytest.mark.parametrize("first_aggr", [True, False])
def test_bipartite(first_aggr):
    g = torch.Generator().manual_seed(1)
    f = 4 if first_aggr else 8
    x_src, x_dst = torch.randn(7, f, generator=g), torch.randn(5, f, generator=g)

    def edges(e):
        return torch.stack([torch.randint(0, 7, (e,), generator=g), torch.randint(0, 5, (e,), generator=g)])

    pos, neg = edges(20), edges(15)
    conv = SignedConv(4, 3, first_aggr=first_aggr)
    testing.assert_close(conv((x_src, x_dst), pos, neg), dense_reference(conv, x_src, x_dst, pos, neg))


def test_sparse_formats_agree_and_values_are_ignored():
    pos, neg = graphs(seed=2)
    x = torch.randn(12, 8)
    conv = SignedConv(4, 3, first_aggr=False)
    sparse_neg = dict(testing.edge_index_formats(neg, 12))["torch.sparse_csr"]
    testing.assert_formats_agree(lambda adj: conv(x, adj, sparse_neg), pos, 12)
    weight = torch.rand(pos.size(1)) + 0.5
    for name, adj in testing.edge_index_formats(pos, 12, weight):
        testing.assert_close(conv(x, adj, neg), conv(x, pos, neg), msg=name)


def test_uses_fused_spmm(monkeypatch):
    pos, neg = graphs(seed=3)
    conv = SignedConv(4, 3, first_aggr=False)
    calls = []
    spmm = ops.reduce.run_spmm
    monkeypatch.setattr(ops.reduce, "run_spmm", lambda *a, **k: calls.append(1) or spmm(*a, **k))
    conv(torch.randn(12, 8), pos, neg)
    assert len(calls) == 4


def test_edge_permutation_invariance():
    pos, neg = graphs(seed=4)
    x = torch.randn(12, 4)
    conv = SignedConv(4, 3, first_aggr=True)
    g = torch.Generator().manual_seed(0)
    p1, p2 = torch.randperm(pos.size(1), generator=g), torch.randperm(neg.size(1), generator=g)
    testing.assert_close(conv(x, pos[:, p1], neg[:, p2]), conv(x, pos, neg))


def test_lazy_in_channels():
    pos, neg = graphs(seed=5)
    x = torch.randn(12, 5)
    conv = SignedConv(-1, 3, first_aggr=True)
    out = conv(x, pos, neg)
    assert conv.lin_pos_l.weight.shape == (3, 5)
    testing.assert_close(out, dense_reference(conv, x, x, pos, neg))


def test_reset_parameters():
    conv = SignedConv(4, 3, first_aggr=False)
    for p in conv.parameters():
        torch.nn.init.constant_(p, 7.0)
    conv.reset_parameters()
    for name, p in conv.named_parameters():
        assert p.abs().max() < 7.0 and p.std() > 0, name


def test_bad_input():
    pos, neg = graphs(seed=6)
    conv = SignedConv(4, 3, first_aggr=False)
    with pytest.raises(ValueError, match="x"):
        conv(torch.randn(12, 4), pos, neg)
    with pytest.raises(ValueError, match="in_channels"):
        SignedConv(-1, 3, first_aggr=False)
    x = torch.randn(12, 8)
    with pytest.raises(ValueError, match="edge_index"):
        conv(x, pos[:, :, None], neg)
    with pytest.raises(TypeError, match="edge_index"):
        conv(x, pos, neg.float())
    with pytest.raises(ValueError, match="edge_index"):
        conv(x, pos, torch.tensor([[0, 12], [1, 2]]))


def test_pyg_parity():
    pyg = pytest.importorskip("torch_geometric")
    pos, neg = graphs(20, seed=7)
    for first_aggr in (True, False):
        x = torch.randn(20, 4 if first_aggr else 8)
        theirs = pyg.nn.SignedConv(4, 5, first_aggr=first_aggr, bias=False)
        ours = SignedConv(4, 5, first_aggr=first_aggr, bias=False)
        assert repr(ours) == repr(theirs)
        testing.assert_signatures_match(SignedConv, type(theirs), defaults=False)
        testing.load_pyg_state(ours, theirs)
        testing.assert_close(ours(x, pos, neg), theirs(x, pos, neg))
        x_dst = torch.randn(20, x.size(1))
        testing.assert_close(ours((x, x_dst), pos, neg), theirs((x, x_dst), pos, neg))


def test_empty_graph():
    conv = SignedConv(4, 3, first_aggr=True)
    x, no_edges = torch.randn(5, 4), torch.empty(2, 0, dtype=torch.long)
    expected = torch.cat([conv.lin_pos_r(x), conv.lin_neg_r(x)], dim=1)
    testing.assert_close(conv(x, no_edges, no_edges), expected)
    assert conv(torch.randn(0, 4), no_edges, no_edges).shape == (0, 6)
