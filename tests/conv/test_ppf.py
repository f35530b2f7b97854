"""PPFConv against a per-node loop reference written from the point pair features, PyG, sparse
inputs, bipartite graphs and bad input."""

from __future__ import annotations

import math

import pytest
import torch

from gnn.conv import PPFConv
from gnn.core import testing

N, E, F = 10, 32, 4


def graph(seed: int):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(N, F, generator=g, dtype=torch.float64)
    pos = torch.randn(N, 3, generator=g, dtype=torch.float64)
    normal = torch.nn.functional.normalize(torch.randn(N, 3, generator=g, dtype=torch.float64), dim=1)
    ei = torch.randint(0, N, (2, E), generator=g)
    ei[:, :3] = torch.tensor([[0, 4, 4], [0, 4, 4]])
    ei[:, 3] = ei[:, 4]
    return x, pos, normal, ei


def angle(a: torch.Tensor, b: torch.Tensor) -> float:
    """The angle between two 3-vectors from its cosine (0 for a zero vector)."""
    na, nb = float(a.norm()), float(b.norm())
    if na == 0 or nb == 0:
        return 0.0
    return math.acos(max(-1.0, min(1.0, float(a @ b) / (na * nb))))


def ppf(p_i, p_j, n_i, n_j) -> torch.Tensor:
    d = p_j - p_i
    return torch.tensor([float(d.norm()), angle(n_i, d), angle(n_j, d), angle(n_i, n_j)], dtype=torch.float64)


def loop_reference(conv, x_src, pos, normal, ei, reduce, n_dst=N, loops=True):
    (pos_src, pos_dst), (n_src, n_dst_) = pos, normal
    out = []
    num_loops = min(pos_src.size(0), n_dst)
    with torch.no_grad():
        for i in range(n_dst):
            src = ei[0][ei[1] == i].tolist()
            if loops:
                src = [j for j in src if j != i] + ([i] if i < num_loops else [])
            rows = [ppf(pos_dst[i], pos_src[j], n_dst_[i], n_src[j]) for j in src]
            feats = torch.stack(rows) if rows else torch.zeros(0, 4, dtype=torch.float64)
            if x_src is not None:
                feats = torch.cat([x_src[torch.tensor(src, dtype=torch.long)], feats], dim=1)
            msgs = conv.local_nn(feats) if conv.local_nn is not None else feats
            out.append(getattr(torch, reduce)(msgs, dim=0) if src else msgs.new_zeros(msgs.size(1)))
        res = torch.stack(out)
    return res if conv.global_nn is None else conv.global_nn(res)


def mlp(f_in: int) -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(f_in, 6), torch.nn.ReLU(), torch.nn.Linear(6, 5)).double()


@pytest.mark.parametrize("aggr, reduce", [("max", "amax"), ("mean", "mean"), ("add", "sum")])
def test_matches_loop_reference(aggr, reduce):
    x, pos, normal, ei = graph(1)
    conv = PPFConv(mlp(F + 4), torch.nn.Linear(5, 3).double(), aggr=aggr)
    expected = loop_reference(conv, x, (pos, pos), (normal, normal), ei, reduce)
    testing.assert_close(conv(x, pos, normal, ei), expected, atol=1e-10, rtol=1e-8)
    seen: list[int] = []
    handle = conv.register_message_forward_hook(lambda m, inputs, out: seen.append(out.size(0)))
    testing.assert_close(conv(x, pos, normal, ei), expected, atol=1e-10, rtol=1e-8)
    handle.remove()
    assert seen == [E - int((ei[0] == ei[1]).sum()) + N]
    conv.add_self_loops = False
    expected = loop_reference(conv, x, (pos, pos), (normal, normal), ei, reduce, loops=False)
    testing.assert_close(conv(x, pos, normal, ei), expected, atol=1e-10, rtol=1e-8)


def test_without_features_bipartite():
    x, pos, normal, ei = graph(2)
    conv = PPFConv(mlp(4), aggr="mean")
    bip = ei[:, ei[1] < 6]
    pos_dst, normal_dst = pos[:6] + 0.3, normal.flip(0)[:6]
    expected = loop_reference(conv, None, (pos, pos_dst), (normal, normal_dst), bip, "mean", n_dst=6)
    testing.assert_close(conv(None, (pos, pos_dst), (normal, normal_dst), bip), expected)


def test_no_nan_gradient_from_replaced_loops():
    x, pos, normal, ei = graph(3)
    conv = PPFConv(mlp(F + 4), aggr="mean")
    normal = normal.clone().requires_grad_()
    conv(x, pos, normal, ei).sum().backward()
    assert torch.isfinite(normal.grad).all()


def test_sparse_formats_permutation_empty():
    x, pos, normal, ei = graph(4)
    conv = PPFConv(mlp(F + 4), aggr="add")
    testing.assert_formats_agree(lambda adj: conv(x, pos, normal, adj), ei, N)
    perm = torch.randperm(E, generator=torch.Generator().manual_seed(0))
    testing.assert_close(conv(x, pos, normal, ei[:, perm]), conv(x, pos, normal, ei))
    no_edges = torch.empty(2, 0, dtype=torch.long)
    expected = conv.local_nn(torch.cat([x, torch.zeros(N, 4, dtype=torch.float64)], 1))  # only self loops
    testing.assert_close(conv(x, pos, normal, no_edges), expected)
    assert conv(x[:0], pos[:0], normal[:0], no_edges).shape == (0, 5)


def test_bad_input():
    x, pos, normal, ei = graph(5)
    conv = PPFConv(mlp(F + 4))
    with pytest.raises(ValueError, match="pos"):
        conv(x, pos[:, :2], normal, ei)
    with pytest.raises(ValueError, match="normal"):
        conv(x, pos, normal[:5], ei)
    with pytest.raises(ValueError, match="x"):
        conv(x[:5], pos, normal, ei)
    with pytest.raises(ValueError, match="edge_index"):
        conv(x, pos, normal, torch.tensor([[0, N], [1, 2]]))


def test_pyg_parity():
    pyg = pytest.importorskip("torch_geometric")
    testing.assert_signatures_match(PPFConv, pyg.nn.PPFConv)
    x, pos, normal, ei = graph(6)
    for aggr in ("max", "mean"):
        theirs = pyg.nn.PPFConv(mlp(F + 4), torch.nn.Linear(5, 2).double(), aggr=aggr)
        ours = PPFConv(mlp(F + 4), torch.nn.Linear(5, 2).double(), aggr=aggr)
        assert repr(ours) == repr(theirs)
        testing.assert_gradients_match_pyg(ours, theirs, x, pos, normal, ei)
    theirs, ours = pyg.nn.PPFConv(None), PPFConv(None)
    testing.assert_close(ours(None, pos, normal, ei), theirs(None, pos, normal, ei))
