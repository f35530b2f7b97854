"""GMMConv against a per-edge loop reference of the Gaussian kernels, PyG, sparse inputs,
bipartite graphs, lazy initialization and bad input."""

from __future__ import annotations

import math

import pytest
import torch

from gnn.conv import GMMConv
from gnn.core import testing

N, E, F, C, D, K = 10, 30, 4, 5, 3, 2


def graph(seed: int):
    x, ei = testing.random_graph(N, E, F, seed=seed, dtype=torch.float64)
    pseudo = torch.rand(E, D, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return x, ei, pseudo


def gaussian(e, mu, sigma) -> float:
    return math.exp(sum(-0.5 * (e[d] - mu[d]) ** 2 / (1e-15 + sigma[d] ** 2) for d in range(len(e))))


def loop_reference(conv, x_src, x_dst, ei, pseudo, reduce="mean"):
    """reduce over edges of sum_k w_k(e) (x_j Theta_k) (separate: sum_f x_jf sum_k g_fmk w_fmk(e)), + root + bias.

    ``g`` holds kernel ``k`` of output ``c`` in column ``k * C + c``, or ``c * K + k`` with separate mixtures."""
    g, mu, sigma = conv.g.detach(), conv.mu.detach(), conv.sigma.detach()
    msgs = []
    for e in range(ei.size(1)):
        j, ea = int(ei[0, e]), pseudo[e].tolist()
        m = torch.zeros(C, dtype=torch.float64)
        for c in range(C):
            for k in range(K):
                if conv.separate_gaussians:
                    m[c] += sum(
                        x_src[j, f] * g[f, c * K + k] * gaussian(ea, mu[f, c, k], sigma[f, c, k])
                        for f in range(F)
                    )
                else:
                    m[c] += gaussian(ea, mu[k], sigma[k]) * (x_src[j] @ g[:, k * C + c])
        msgs.append(m)
    out = []
    for i in range(x_dst.size(0)):
        mine = [msgs[e] for e in range(ei.size(1)) if int(ei[1, e]) == i]
        if not mine:
            out.append(torch.zeros(C, dtype=torch.float64))
        else:
            out.append(getattr(torch, reduce)(torch.stack(mine), dim=0))
    res = torch.stack(out)
    with torch.no_grad():
        if conv.root is not None:
            res = res + conv.root(x_dst)
        return res if conv.bias is None else res + conv.bias


@pytest.mark.parametrize("separate", [False, True])
def test_matches_loop_reference(separate):
    x, ei, pseudo = graph(1)
    conv = GMMConv(F, C, D, K, separate_gaussians=separate).double()
    with torch.no_grad():
        conv.sigma.mul_(3.0)  # wider kernels: weights far from 0
    testing.assert_close(conv(x, ei, pseudo), loop_reference(conv, x, x, ei, pseudo), atol=1e-10, rtol=1e-8)


def test_aggregations_bipartite_no_root():
    x, ei, pseudo = graph(2)
    x_dst = torch.randn(6, 3, dtype=torch.float64)
    keep = ei[1] < 6
    conv = GMMConv((F, 3), C, D, K, aggr="max").double()
    expected = loop_reference(conv, x, x_dst, ei[:, keep], pseudo[keep], "amax")
    testing.assert_close(conv((x, x_dst), ei[:, keep], pseudo[keep]), expected)
    conv = GMMConv(
        F, C, D, K, root_weight=False, bias=False
    ).double()  # PyG fails here; we leave out the root
    assert "root" not in dict(conv.named_modules())
    expected = loop_reference(conv, x, x, ei, pseudo)
    testing.assert_close(conv(x, ei, pseudo), expected)
    conv, x_dst = GMMConv(F, C, D, K).double(), x[:6]
    out = conv((x, None), ei[:, keep], pseudo[keep], size=(N, 6))
    testing.assert_close(out, loop_reference(conv, x, x_dst, ei[:, keep], pseudo[keep]) - conv.root(x_dst))


def test_sparse_permutation_empty():
    x, ei, pseudo = graph(3)
    conv = GMMConv(F, C, D, K).double()
    expected = conv(x, ei, pseudo)
    testing.assert_formats_agree(
        lambda adj: conv(x, adj, None if adj.layout != torch.strided else pseudo), ei, N, edge_weight=pseudo
    )
    perm = torch.randperm(E, generator=torch.Generator().manual_seed(0))
    testing.assert_close(conv(x, ei[:, perm], pseudo[perm]), expected)
    no_edges = torch.empty(2, 0, dtype=torch.long)
    testing.assert_close(conv(x, no_edges, pseudo[:0]), conv.root(x) + conv.bias)
    assert conv(x[:0], no_edges, pseudo[:0]).shape == (0, C)


def test_lazy_initialization_and_checkpoint():
    x, ei, pseudo = graph(4)
    for separate in (False, True):
        lazy = GMMConv(-1, C, D, K, separate_gaussians=separate).double()
        assert lazy(x, ei, pseudo).shape == (N, C)
        assert lazy.g.shape == (F, C * K)
        fresh = GMMConv(-1, C, D, K, separate_gaussians=separate).double()
        fresh.load_state_dict(lazy.state_dict(), strict=True)  # a checkpoint materializes a lazy layer
        testing.assert_close(fresh(x, ei, pseudo), lazy(x, ei, pseudo))


def test_bad_input():
    x, ei, pseudo = graph(5)
    conv = GMMConv(F, C, D, K)
    with pytest.raises(ValueError, match="edge_attr"):
        conv(x.float(), ei)
    with pytest.raises(ValueError, match="edge_attr"):
        conv(x.float(), ei, pseudo[:, :2].float())
    with pytest.raises(ValueError, match="edge_attr"):
        conv(x.float(), ei, pseudo[:5].float())
    with pytest.raises(ValueError, match="x"):
        conv(x[:, :2].float(), ei, pseudo.float())
    with pytest.raises(ValueError, match="kernel_size"):
        GMMConv(F, C, D, 0)


def test_pyg_parity():
    pyg = pytest.importorskip("torch_geometric")
    testing.assert_signatures_match(GMMConv, pyg.nn.GMMConv)
    x, ei, pseudo = graph(6)
    for kw in ({}, {"separate_gaussians": True}, {"aggr": "add", "bias": False}):
        theirs, ours = pyg.nn.GMMConv(F, C, D, K, **kw).double(), GMMConv(F, C, D, K, **kw).double()
        assert repr(ours) == repr(theirs)
        assert list(ours.state_dict()) == list(theirs.state_dict())
        testing.assert_gradients_match_pyg(ours, theirs, x, ei, pseudo)
    theirs, ours = pyg.nn.GMMConv((F, 3), C, D, K).double(), GMMConv((F, 3), C, D, K).double()
    testing.load_pyg_state(ours, theirs)
    x_dst, keep = torch.randn(6, 3, dtype=torch.float64), ei[1] < 6
    testing.assert_close(
        ours((x, x_dst), ei[:, keep], pseudo[keep]), theirs((x, x_dst), ei[:, keep], pseudo[keep])
    )
    assert repr(GMMConv(-1, C, D, K)) == repr(pyg.nn.GMMConv(-1, C, D, K))
