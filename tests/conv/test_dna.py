"""DNAConv against a per-edge loop reference of its grouped multi-head attention, PyG, sparse inputs,
caching and bad input."""

from __future__ import annotations

import math

import pytest
import torch

from gnn.conv import DNAConv
from gnn.core import testing
from gnn.core.testing import dense_gcn_adjacency

N, E, L, C = 9, 28, 3, 8


def graph(seed: int):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(N, L, C, generator=g, dtype=torch.float64)
    _, ei = testing.random_graph(N, E, 1, seed=seed)
    weight = torch.rand(E, generator=g, dtype=torch.float64) + 0.1
    return x, ei, weight


def grouped(lin, v: torch.Tensor) -> torch.Tensor:
    """y = [v_g W_g for each group g] + b, by explicit loops over the groups."""
    G = lin.groups
    size_in = lin.in_channels // G
    parts = [v[..., g * size_in : (g + 1) * size_in] @ lin.weight[g] for g in range(G)]
    out = torch.cat(parts, dim=-1)
    return out if lin.bias is None else out + lin.bias


def attention(conv, x_i: torch.Tensor, x_j: torch.Tensor) -> torch.Tensor:
    """Attention of the last layer of x_i over the layers of x_j, head by head (restricted softmax)."""
    mh = conv.multi_head
    q, k, v = grouped(mh.lin_q, x_i[-1]), grouped(mh.lin_k, x_j), grouped(mh.lin_v, x_j)
    H, d = mh.heads, C // mh.heads
    out = []
    for h in range(H):
        s = (k[:, h * d : (h + 1) * d] @ q[h * d : (h + 1) * d]) / math.sqrt(d)  # [L]
        m = max(float(s.max()), 0.0)
        w = torch.exp(s - m) / (torch.exp(s - m).sum() + math.exp(-m))
        out.append(w @ v[:, h * d : (h + 1) * d])
    return torch.cat(out)


def loop_reference(conv, x, ei, weight):
    """sum over edges (j -> i) of weight_ji * attention(x_i, x_j) with the given weights."""
    out = torch.zeros(N, C, dtype=torch.float64)
    with torch.no_grad():
        for e in range(ei.size(1)):
            j, i = int(ei[0, e]), int(ei[1, e])
            out[i] += weight[e] * attention(conv, x[i], x[j])
    return out


def gcn_edges(ei: torch.Tensor, weight: torch.Tensor):
    """The normalized graph as a list of edges, from a dense D^-1/2 (A + I) D^-1/2."""
    adj = dense_gcn_adjacency(ei, weight, N)  # [target, source]
    dst, src = adj.nonzero(as_tuple=True)
    return torch.stack([src, dst]), adj[dst, src]


@pytest.mark.parametrize("heads, groups", [(1, 1), (2, 2), (4, 2), (2, 4)])
def test_matches_loop_reference(heads, groups):
    x, ei, weight = graph(1)
    conv = DNAConv(C, heads=heads, groups=groups).double()
    norm_ei, norm_w = gcn_edges(ei, weight)
    testing.assert_close(conv(x, ei, weight), loop_reference(conv, x, norm_ei, norm_w), atol=1e-10, rtol=1e-8)
    conv = DNAConv(C, heads=heads, groups=groups, normalize=False).double()
    testing.assert_close(conv(x, ei, weight), loop_reference(conv, x, ei, weight), atol=1e-10, rtol=1e-8)


def test_sparse_permutation_cache_and_empty():
    x, ei, weight = graph(2)
    conv = DNAConv(C, heads=2).double()
    testing.assert_formats_agree(
        lambda adj: conv(x, adj, None if adj.layout != torch.strided else weight), ei, N, edge_weight=weight
    )
    perm = torch.randperm(E, generator=torch.Generator().manual_seed(0))
    # (unweighted: a node with two weighted self loops keeps one of the weights, by position, as in PyG)
    testing.assert_close(conv(x, ei[:, perm]), conv(x, ei))
    cached = DNAConv(C, heads=2, cached=True).double()
    cached.load_state_dict(conv.state_dict())
    first = cached(x, ei, weight)
    assert cached._cached_edge_index is not None
    testing.assert_close(cached(x, ei, weight), first)
    cached.reset_parameters()
    assert cached._cached_edge_index is None
    no_edges = torch.empty(2, 0, dtype=torch.long)
    # only self loops of weight 1: each node attends over its own layers
    with torch.no_grad():
        expected = torch.stack([attention(conv, x[i], x[i]) for i in range(N)])
    testing.assert_close(conv(x, no_edges), expected)
    assert conv(x[:0], no_edges).shape == (0, C)


def test_bad_input():
    x, ei, weight = graph(3)
    conv = DNAConv(C)
    with pytest.raises(ValueError, match="x"):
        conv(x[:, 0].float(), ei)
    with pytest.raises(ValueError, match="x"):
        conv(torch.randn(N, L, C + 1), ei)
    with pytest.raises(ValueError, match="edge_index"):
        conv(x.float(), torch.tensor([[0, N], [1, 2]]))
    with pytest.raises(ValueError, match="heads"):
        DNAConv(C, heads=3)
    with pytest.raises(ValueError, match="groups"):
        DNAConv(C, heads=2, groups=3)


def test_pyg_parity():
    pyg = pytest.importorskip("torch_geometric")
    testing.assert_signatures_match(DNAConv, pyg.nn.DNAConv)
    x, ei, weight = graph(4)
    for kw in ({}, {"heads": 4, "groups": 2}, {"bias": False, "add_self_loops": False}):
        theirs, ours = pyg.nn.DNAConv(C, **kw).double(), DNAConv(C, **kw).double()
        assert repr(ours) == repr(theirs)
        assert list(ours.state_dict()) == list(theirs.state_dict())
        testing.assert_gradients_match_pyg(ours, theirs, x, ei, weight)
