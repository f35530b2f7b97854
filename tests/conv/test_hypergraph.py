"""HypergraphConv: the incidence-matrix formula (dense), attention written per (node, hyperedge) pair,
PyG parity after a strict state_dict load, order of the incidence pairs, empty hypergraphs, validation."""

from __future__ import annotations

import pytest
import torch

from gnn.conv import HypergraphConv
from gnn.core import testing


def hypergraph(seed, num_nodes=7, num_edges=4, nnz=14):
    g = torch.Generator().manual_seed(seed)
    index = torch.stack(
        [
            torch.randint(0, num_nodes - 1, (nnz,), generator=g),
            torch.randint(0, num_edges, (nnz,), generator=g),
        ]
    )
    index[1, :num_edges] = torch.arange(num_edges)  # every hyperedge has a node; node N-1 is isolated
    return index


def dense_reference(conv, x, index, weight, num_edges, alpha=None):
    """D^-1 H B^-1 H^T X Theta per head, H replaced by the attention weights when given (alpha [nnz, heads])."""
    n, heads, c = x.size(0), conv.heads, conv.out_channels
    xt = (x.double() @ conv.lin.weight.detach().double().t()).view(n, heads, c)
    out = torch.zeros(n, heads, c, dtype=torch.float64)
    for h in range(heads):
        inc = torch.zeros(n, num_edges, dtype=torch.float64)
        ones = torch.zeros(n, num_edges, dtype=torch.float64)
        for k in range(index.size(1)):
            inc[index[0, k], index[1, k]] += 1.0 if alpha is None else float(alpha[k, h])
            ones[index[0, k], index[1, k]] += 1.0
        d = ones @ weight.double()
        b = ones.sum(0)
        d_inv = torch.where(d > 0, 1 / d, torch.zeros_like(d))
        b_inv = torch.where(b > 0, 1 / b, torch.zeros_like(b))
        out[:, h] = d_inv[:, None] * (inc @ (b_inv[:, None] * (inc.t() @ xt[:, h])))
    out = out.reshape(n, heads * c) if conv.concat else out.mean(1)
    return out if conv.bias is None else out + conv.bias.detach().double()


def loop_attention(conv, x, attr, index, num_nodes, num_edges):
    heads, c = conv.heads, conv.out_channels
    xt = (x.double() @ conv.lin.weight.detach().double().t()).view(-1, heads, c)
    et = (attr.double() @ conv.lin.weight.detach().double().t()).view(-1, heads, c)
    a = conv.att.detach().double()[0]
    score = torch.stack(
        [
            torch.nn.functional.leaky_relu(
                (xt[index[0, k]] * a[:, :c]).sum(-1) + (et[index[1, k]] * a[:, c:]).sum(-1),
                conv.negative_slope,
            )
            for k in range(index.size(1))
        ]
    )
    group = index[1] if conv.attention_mode == "node" else index[0]
    alpha = torch.zeros_like(score)
    for gid in group.unique():
        sel = group == gid
        alpha[sel] = torch.softmax(score[sel], dim=0)
    return alpha


def test_incidence_formula_with_weights():
    torch.manual_seed(0)
    conv = HypergraphConv(5, 3).double()
    x = torch.randn(7, 5, dtype=torch.float64)
    index = hypergraph(1)
    weight = torch.rand(4, dtype=torch.float64) + 0.5
    testing.assert_close(conv(x, index, weight), dense_reference(conv, x, index, weight, 4), atol=1e-12)
    testing.assert_close(conv(x, index), dense_reference(conv, x, index, torch.ones(4), 4), atol=1e-12)
    # an extra hyperedge without nodes (num_edges given) changes nothing
    testing.assert_close(conv(x, index, torch.cat([weight, weight[:1]]), num_edges=5), conv(x, index, weight))


@pytest.mark.parametrize("mode", ["node", "edge"])
@pytest.mark.parametrize("concat", [True, False])
def test_attention_matches_loop(mode, concat):
    torch.manual_seed(1)
    conv = HypergraphConv(5, 3, use_attention=True, attention_mode=mode, heads=2, concat=concat).double()
    x = torch.randn(7, 5, dtype=torch.float64)
    attr = torch.randn(4, 5, dtype=torch.float64)
    index = hypergraph(2)
    alpha = loop_attention(conv, x, attr, index, 7, 4)
    weight = torch.rand(4, dtype=torch.float64) + 0.5
    expected = dense_reference(conv, x, index, weight, 4, alpha)
    testing.assert_close(conv(x, index, weight, attr), expected, atol=1e-12)


def test_signatures_match_pyg():
    pyg = pytest.importorskip("torch_geometric")
    testing.assert_signatures_match(HypergraphConv, pyg.nn.HypergraphConv)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"bias": False},
        {"use_attention": True, "heads": 2},
        {"use_attention": True, "heads": 3, "concat": False, "attention_mode": "edge", "negative_slope": 0.1},
    ],
)
def test_pyg_parity(kwargs):
    pyg = pytest.importorskip("torch_geometric")
    torch.manual_seed(3)
    theirs = pyg.nn.HypergraphConv(5, 4, **kwargs).double()
    ours = HypergraphConv(5, 4, **kwargs).double()
    assert repr(ours) == repr(theirs)
    x = torch.randn(7, 5, dtype=torch.float64)
    index = hypergraph(4)
    weight = torch.rand(4, dtype=torch.float64) + 0.5
    attr = torch.randn(4, 5, dtype=torch.float64) if kwargs.get("use_attention") else None
    testing.assert_gradients_match_pyg(ours, theirs, x, index, weight, attr)


def test_order_of_incidence_pairs_and_int32():
    torch.manual_seed(5)
    conv = HypergraphConv(5, 3, use_attention=True, heads=2).double()
    x = torch.randn(7, 5, dtype=torch.float64)
    attr = torch.randn(4, 5, dtype=torch.float64)
    index = hypergraph(6)
    perm = torch.randperm(index.size(1))
    out = conv(x, index, hyperedge_attr=attr)
    testing.assert_close(conv(x, index[:, perm], hyperedge_attr=attr), out, atol=1e-12)
    testing.assert_close(conv(x, index.int(), hyperedge_attr=attr), out, atol=1e-12)


def test_empty_hypergraph_and_dropout():
    conv = HypergraphConv(5, 3)
    x = torch.randn(4, 5)
    out = conv(x, torch.empty(2, 0, dtype=torch.long))
    testing.assert_close(out, conv.bias.expand(4, 3))
    assert conv(torch.empty(0, 5), torch.empty(2, 0, dtype=torch.long)).shape == (0, 3)
    att = HypergraphConv(5, 3, use_attention=True, dropout=0.5).train()
    index = hypergraph(7, num_nodes=4, num_edges=2, nnz=6)
    assert att(x, index, hyperedge_attr=torch.randn(2, 5)).shape == (4, 3)


def test_validation():
    conv = HypergraphConv(5, 3)
    x = torch.randn(7, 5)
    index = hypergraph(8)
    with pytest.raises(ValueError, match="hyperedge_weight"):
        conv(x, index, torch.ones(3))
    with pytest.raises(IndexError, match="hyperedge_index"):
        conv(x, index, num_edges=2)
    with pytest.raises(IndexError, match="hyperedge_index"):
        conv(torch.randn(3, 5), index)
    with pytest.raises(ValueError, match="x"):
        conv(torch.randn(7, 4), index)
    with pytest.raises(ValueError, match="hyperedge_attr"):
        HypergraphConv(5, 3, use_attention=True)(x, index)
    with pytest.raises(ValueError, match="attention_mode"):
        HypergraphConv(5, 3, attention_mode="both")
    with pytest.raises(ValueError, match="heads"):
        HypergraphConv(5, 3, heads=2)(x, index)  # PyG sizes that bias for 2 heads without attention
