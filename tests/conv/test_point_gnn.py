"""PointGNNConv against a per-node loop reference, PyG, sparse inputs and bad input."""

from __future__ import annotations

import pytest
import torch

from gnn.conv import PointGNNConv
from gnn.core import testing

N, E, F = 10, 32, 4


def graph(seed: int):
    x, ei = testing.random_graph(N, E, F, seed=seed, dtype=torch.float64)
    pos = torch.randn(N, 3, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return x, pos, ei


def build() -> PointGNNConv:
    torch.manual_seed(0)
    L = torch.nn.Linear
    mlp_f = torch.nn.Sequential(L(3 + F, 6), torch.nn.ReLU(), L(6, 6))
    return PointGNNConv(L(F, 3), mlp_f, L(6, F)).double()


def loop_reference(conv, x, pos, ei, reduce="amax"):
    """x_i + g(max_j f([p_j - p_i + h(x_i), x_j])), 0 for nodes without neighbours."""
    out = []
    with torch.no_grad():
        for i in range(N):
            src = ei[0][ei[1] == i]
            if src.numel() == 0:
                agg = torch.zeros(6, dtype=torch.float64)
            else:
                rel = pos[src] - pos[i] + conv.mlp_h(x[i])
                agg = getattr(torch, reduce)(conv.mlp_f(torch.cat([rel, x[src]], dim=1)), dim=0)
            out.append(x[i] + conv.mlp_g(agg))
    return torch.stack(out)


def test_matches_loop_reference():
    x, pos, ei = graph(1)
    conv = build()
    testing.assert_close(conv(x, pos, ei), loop_reference(conv, x, pos, ei), atol=1e-10, rtol=1e-8)
    conv = PointGNNConv(conv.mlp_h, conv.mlp_f, conv.mlp_g, aggr="mean")
    testing.assert_close(conv(x, pos, ei), loop_reference(conv, x, pos, ei, "mean"), atol=1e-10, rtol=1e-8)


def test_sparse_permutation_empty():
    x, pos, ei = graph(2)
    conv = build()
    testing.assert_formats_agree(lambda adj: conv(x, pos, adj), ei, N)
    perm = torch.randperm(E, generator=torch.Generator().manual_seed(0))
    testing.assert_close(conv(x, pos, ei[:, perm]), conv(x, pos, ei))
    testing.assert_close(conv(x, pos, ei.int()), conv(x, pos, ei))
    no_edges = torch.empty(2, 0, dtype=torch.long)
    testing.assert_close(conv(x, pos, no_edges), x + conv.mlp_g(torch.zeros(N, 6, dtype=torch.float64)))
    assert conv(x[:0], pos[:0], no_edges).shape == (0, F)


def test_bad_input():
    x, pos, ei = graph(3)
    conv = build()
    with pytest.raises(ValueError, match="pos"):
        conv(x, pos[:5], ei)
    with pytest.raises(TypeError, match="pos"):
        conv(x, (pos, pos), ei)
    with pytest.raises(ValueError, match="x"):
        conv(x[:, 0], pos, ei)
    with pytest.raises(ValueError, match="edge_index"):
        conv(x, pos, torch.tensor([[0, N], [1, 2]]))


def test_pyg_parity():
    pyg = pytest.importorskip("torch_geometric")
    testing.assert_signatures_match(PointGNNConv, pyg.nn.PointGNNConv)
    x, pos, ei = graph(4)
    theirs = pyg.nn.PointGNNConv(build().mlp_h, build().mlp_f, build().mlp_g)
    ours = build()
    assert repr(ours) == repr(theirs)
    testing.assert_gradients_match_pyg(ours, theirs, x, pos, ei)
