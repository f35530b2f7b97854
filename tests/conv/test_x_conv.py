"""XConv against a per-point loop reference (brute-force kNN, dilation, batches), PyG (its layer
runs here on a brute-force ``pyg::knn`` from conftest.py), in train and eval mode, and bad input."""

from __future__ import annotations

import pytest
import torch

from gnn.conv import XConv
from gnn.core import testing

F, OUT, D, K = 6, 5, 3, 4


def build(**kw) -> XConv:
    torch.manual_seed(0)
    return XConv(F, OUT, D, K, **kw).double()


def cloud(seed: int, n: int = 20):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, F, generator=g, dtype=torch.float64), torch.randn(
        n, D, generator=g, dtype=torch.float64
    )


def loop_reference(knn, conv, x, pos, batch=None):
    """Point by point (eval mode): neighbours P_i (every dilation-th of the K * dilation nearest),
    lifted = [mlp1(P_i - p_i), x_P], X = mlp2(P_i - p_i), out = conv(lifted^T X); ``knn`` is the
    ``brute_knn`` fixture."""
    reach = conv.kernel_size * conv.dilation
    out = []
    with torch.no_grad():
        for i, nbrs in enumerate(knn(pos, pos, reach, batch, batch)):
            idx = torch.tensor(nbrs[:: conv.dilation])
            rel = pos[idx] - pos[i]  # [K, D]
            lifted = conv.mlp1[:-1](rel)  # [K, C_delta] (the last step only reshapes)
            if x is not None:
                lifted = torch.cat([lifted, x[idx]], dim=1)
            transform = conv.mlp2(rel.reshape(1, -1))[0]  # [K, K]
            out.append(conv.conv((lifted.t() @ transform).unsqueeze(0))[0])
    return torch.stack(out)


@pytest.mark.parametrize("kw", [{}, {"dilation": 2, "hidden_channels": 3}, {"bias": False}])
def test_matches_loop_reference(kw, brute_knn):
    x, pos = cloud(1)
    batch = torch.tensor([0] * 9 + [1] * 11)
    conv = build(**kw).eval()
    testing.assert_close(
        conv(x, pos, batch), loop_reference(brute_knn, conv, x, pos, batch), atol=1e-10, rtol=1e-8
    )
    testing.assert_close(conv(x, pos), loop_reference(brute_knn, conv, x, pos), atol=1e-10, rtol=1e-8)


def test_positions_only_and_empty(brute_knn):
    _, pos = cloud(2)
    torch.manual_seed(0)
    conv = XConv(0, OUT, D, K, hidden_channels=4).double().eval()
    testing.assert_close(conv(None, pos), loop_reference(brute_knn, conv, None, pos))
    conv = build().eval()
    assert conv(torch.zeros(0, F, dtype=torch.float64), pos[:0]).shape == (0, OUT)


def test_bad_input():
    x, pos = cloud(3)
    conv = build()
    with pytest.raises(ValueError, match="at least"):
        conv(x, pos, torch.tensor([0] * 17 + [1] * 3))
    with pytest.raises(ValueError, match="pos"):
        conv(x, pos[:, :2])
    with pytest.raises(ValueError, match="x"):
        conv(x[:5], pos)
    with pytest.raises(ValueError, match="batch"):
        conv(x, pos, torch.tensor([1] * 10 + [0] * 10))
    with pytest.raises(ValueError, match="hidden_channels"):
        XConv(3, OUT, D, K)  # in_channels // 4 == 0


def test_pyg_parity(pyg_with_knn):
    pyg = pyg_with_knn
    testing.assert_signatures_match(XConv, pyg.nn.XConv)
    x, pos = cloud(4)
    batch = torch.tensor([0] * 9 + [1] * 11)
    for kw in ({}, {"dilation": 2, "hidden_channels": 3}):
        theirs, ours = pyg.nn.XConv(F, OUT, D, K, **kw).double(), build(**kw)
        assert repr(ours) == repr(theirs)
        assert list(ours.state_dict()) == list(theirs.state_dict())
        testing.assert_gradients_match_pyg(ours, theirs, x, pos, batch)  # train mode: batch statistics
        for m in (ours, theirs):
            m.eval()
        testing.assert_close(ours(x, pos, batch), theirs(x, pos, batch))
        testing.assert_close(ours.mlp1[2].running_mean, theirs.mlp1[2].running_mean)
