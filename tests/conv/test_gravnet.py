"""GravNetConv against a brute-force kNN loop reference in the learned space (batches, bipartite
inputs), gradients through the distance weights, PyG (its layer runs here on a brute-force
``pyg::knn`` from conftest.py) and bad input."""

from __future__ import annotations

import math

import pytest
import torch

from gnn.conv import GravNetConv
from gnn.core import ops, testing

F, OUT, S, P = 6, 5, 3, 4


def build(in_channels=F, k=4) -> GravNetConv:
    torch.manual_seed(0)
    return GravNetConv(in_channels, OUT, S, P, k=k).double()


def points(seed: int, n: int = 20):
    return torch.randn(n, F, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def loop_reference(knn, conv, x_src, x_dst, k, b_src=None, b_dst=None):
    """lin_out1(x_i) + lin_out2([mean_j w_ji h_j, max_j w_ji h_j]), neighbours found in s = lin_s(x)
    by ``knn`` (the ``brute_knn`` fixture)."""
    with torch.no_grad():
        s_src, s_dst, h = conv.lin_s(x_src), conv.lin_s(x_dst), conv.lin_h(x_src)
        out = []
        for i, src in enumerate(knn(s_src, s_dst, k, b_src, b_dst)):
            agg = torch.zeros(2 * P, dtype=torch.float64)
            if src:
                msgs = torch.stack(
                    [math.exp(-10 * float(((s_src[j] - s_dst[i]) ** 2).sum())) * h[j] for j in src]
                )
                agg = torch.cat([msgs.mean(0), msgs.amax(0)])
            out.append(conv.lin_out1(x_dst[i]) + conv.lin_out2(agg))
        return torch.stack(out)


def test_matches_brute_force_reference(brute_knn):
    x = points(1)
    batch = torch.tensor([0] * 7 + [1] * 2 + [2] * 11)
    conv = build()
    testing.assert_close(conv(x, batch), loop_reference(brute_knn, conv, x, x, 4, batch, batch))
    testing.assert_close(conv(x), loop_reference(brute_knn, conv, x, x, 4))
    with ops.backend("torch"):
        testing.assert_close(conv(x, batch), loop_reference(brute_knn, conv, x, x, 4, batch, batch))


def test_bipartite_and_empty(brute_knn):
    x_src, x_dst = points(2, 14), points(3, 8)
    b_src, b_dst = torch.tensor([0] * 6 + [2] * 8), torch.tensor([0] * 3 + [1] * 2 + [2] * 3)
    conv = build(k=3)
    expected = loop_reference(brute_knn, conv, x_src, x_dst, 3, b_src, b_dst)
    testing.assert_close(conv((x_src, x_dst), (b_src, b_dst)), expected)
    assert conv(points(4, 0)).shape == (0, OUT)


def test_gradient_reaches_the_space_projection():
    x = points(5)
    conv = build()
    conv(x).square().sum().backward()
    assert conv.lin_s.weight.grad is not None and conv.lin_s.weight.grad.abs().sum() > 0
    lazy = GravNetConv(-1, OUT, S, P, k=3).double()
    assert lazy(x).shape == (20, OUT) and lazy.lin_s.weight.shape == (S, F)


def test_bad_input_and_deprecated_workers():
    x = points(6)
    conv = build()
    with pytest.raises(ValueError, match="Static graphs"):
        conv(x.view(20, 2, 3))
    with pytest.raises(ValueError, match="x"):
        conv(torch.randn(20, F + 1, dtype=torch.float64))
    with pytest.raises(ValueError, match="batch"):
        conv(x, torch.tensor([1] * 10 + [0] * 10))
    with pytest.raises(ValueError, match="k"):
        GravNetConv(F, OUT, S, P, k=0)
    with pytest.warns(UserWarning, match="num_workers"):
        GravNetConv(F, OUT, S, P, k=2, num_workers=2)


def test_pyg_parity(pyg_with_knn):
    pyg = pyg_with_knn
    testing.assert_signatures_match(GravNetConv, pyg.nn.GravNetConv)
    x, batch = points(7), torch.tensor([0] * 8 + [1] * 12)
    theirs, ours = pyg.nn.GravNetConv(F, OUT, S, P, k=4).double(), build()
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    testing.assert_gradients_match_pyg(ours, theirs, x, batch)
    x_dst, b_dst = points(8, 6), torch.tensor([0, 0, 1, 1, 1, 1])
    testing.assert_close(ours((x, x_dst), (batch, b_dst)), theirs((x, x_dst), (batch, b_dst)))
