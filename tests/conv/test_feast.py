"""FeaStConv against a per-node loop reference, PyG, sparse inputs, bipartite graphs and bad input."""

from __future__ import annotations

import pytest
import torch

from gnn.conv import FeaStConv
from gnn.core import testing

N, E, F, C, H = 10, 32, 4, 5, 3


def graph(seed: int):
    x, ei = testing.random_graph(N, E, F, seed=seed, dtype=torch.float64)
    ei[:, 3] = torch.tensor([4, 4])  # a second self loop
    return x, ei


def loop_reference(conv, x_src, x_dst, ei, loops=True):
    """mean_j sum_h softmax_h(u_h . (x_j - x_i) + c_h) W_h x_j, + bias."""
    out = []
    num_loops = min(x_src.size(0), x_dst.size(0))
    u, w = conv.u.weight, conv.lin.weight.view(conv.heads, C, -1)
    with torch.no_grad():
        for i in range(x_dst.size(0)):
            src = ei[0][ei[1] == i].tolist()
            if loops:
                src = [j for j in src if j != i] + ([i] if i < num_loops else [])
            acc = torch.zeros(C, dtype=x_src.dtype)
            for j in src:
                q = torch.softmax(u @ (x_src[j] - x_dst[i]) + conv.c, dim=0)
                acc += sum(q[h] * (w[h] @ x_src[j]) for h in range(conv.heads))
            out.append(acc / max(len(src), 1))
        res = torch.stack(out)
    return res if conv.bias is None else res + conv.bias


def test_matches_loop_reference():
    x, ei = graph(1)
    for loops in (True, False):
        conv = FeaStConv(F, C, heads=H, add_self_loops=loops).double()
        expected = loop_reference(conv, x, x, ei, loops)
        testing.assert_close(conv(x, ei), expected, atol=1e-10, rtol=1e-8)
        seen: list[int] = []
        handle = conv.register_message_forward_hook(lambda m, inputs, out: seen.append(out.size(0)))
        testing.assert_close(conv(x, ei), expected, atol=1e-10, rtol=1e-8)
        handle.remove()
        assert seen == [E - int((ei[0] == ei[1]).sum()) + N if loops else E]


def test_bipartite_sparse_permutation():
    x, ei = graph(2)
    conv = FeaStConv(F, C, heads=H, bias=False).double()
    x_dst = torch.randn(6, F, dtype=torch.float64)
    bip = ei[:, ei[1] < 6]
    testing.assert_close(conv((x, x_dst), bip), loop_reference(conv, x, x_dst, bip))
    testing.assert_formats_agree(lambda adj: conv(x, adj), ei, N)
    perm = torch.randperm(E, generator=torch.Generator().manual_seed(0))
    testing.assert_close(conv(x, ei[:, perm]), conv(x, ei))
    testing.assert_close(conv(x, ei.int()), conv(x, ei))


def test_empty_lazy_and_bad_input():
    x, ei = graph(3)
    conv = FeaStConv(-1, C, heads=H).double()
    no_edges = torch.empty(2, 0, dtype=torch.long)
    out = conv(x, no_edges)  # only self loops: sum_h q_h W_h x_i with q = softmax(c)
    q = torch.softmax(conv.c, 0)
    expected = (conv.lin(x).view(N, H, C) * q.view(1, H, 1)).sum(1) + conv.bias
    testing.assert_close(out, expected)
    assert conv(x[:0], no_edges).shape == (0, C)
    with pytest.raises(ValueError, match="x"):
        conv(torch.randn(N, F + 1, dtype=torch.float64), ei)
    with pytest.raises(ValueError, match="edge_index"):
        conv(x, torch.tensor([[0, N], [1, 2]]))
    with pytest.raises(ValueError, match="heads"):
        FeaStConv(F, C, heads=0)


def test_pyg_parity():
    pyg = pytest.importorskip("torch_geometric")
    testing.assert_signatures_match(FeaStConv, pyg.nn.FeaStConv)
    x, ei = graph(4)
    for kw in ({}, {"add_self_loops": False, "bias": False}):
        theirs, ours = pyg.nn.FeaStConv(F, C, heads=H, **kw).double(), FeaStConv(F, C, heads=H, **kw).double()
        assert repr(ours) == repr(theirs)
        assert list(ours.state_dict()) == list(theirs.state_dict())
        testing.assert_gradients_match_pyg(ours, theirs, x, ei)
    x_dst = torch.randn(6, F, dtype=torch.float64)
    bip = ei[:, ei[1] < 6]
    testing.assert_close(ours((x, x_dst), bip), theirs((x, x_dst), bip))
