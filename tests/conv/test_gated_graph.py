"""GatedGraphConv: dense reference (A @ X W then a GRU cell per step), PyG parity, formats, bad input."""

from __future__ import annotations

import pytest
import torch

from gnn.conv.gated_graph import GatedGraphConv
from gnn.core import testing
from gnn.core.utils import is_sparse

N, E, F_IN, C = 9, 36, 5, 6


def graph(dtype=torch.float64):
    x, edge_index = testing.random_graph(N, E, F_IN, seed=0, dtype=dtype)
    return x, edge_index, torch.rand(E, generator=torch.Generator().manual_seed(1), dtype=dtype)


def dense_adj(edge_index, weight=None):
    a = torch.zeros(N, N, dtype=torch.float64)
    for e in range(edge_index.size(1)):
        a[edge_index[1, e], edge_index[0, e]] += 1.0 if weight is None else float(weight[e])
    return a


def gru(cell, m, h):
    """GRU cell written out: r, z gates and the candidate state."""
    gi = m @ cell.weight_ih.T + (cell.bias_ih if cell.bias_ih is not None else 0)
    gh = h @ cell.weight_hh.T + (cell.bias_hh if cell.bias_hh is not None else 0)
    i_r, i_z, i_n = gi.chunk(3, -1)
    h_r, h_z, h_n = gh.chunk(3, -1)
    r, z = torch.sigmoid(i_r + h_r), torch.sigmoid(i_z + h_z)
    n = torch.tanh(i_n + r * h_n)
    return (1 - z) * n + z * h


def reference(conv, x, edge_index, weight=None, mean=False):
    a = dense_adj(edge_index, weight)
    if mean:
        a = a / dense_adj(edge_index).sum(1, keepdim=True).clamp(min=1)
    h = torch.cat([x, x.new_zeros(x.size(0), C - x.size(1))], 1)
    for i in range(conv.num_layers):
        h = gru(conv.rnn, a @ (h @ conv.weight[i]), h)
    return h


@pytest.mark.parametrize("kwargs", [{}, dict(bias=False), dict(aggr="mean")], ids=str)
def test_matches_dense_reference(kwargs):
    torch.manual_seed(0)
    conv = GatedGraphConv(C, 3, **kwargs).double()
    x, edge_index, w = graph()
    mean = kwargs.get("aggr") == "mean"
    testing.assert_close(conv(x, edge_index), reference(conv, x, edge_index, mean=mean), atol=1e-10)
    if not mean:
        testing.assert_close(conv(x, edge_index, w), reference(conv, x, edge_index, w), atol=1e-10)


def test_full_width_input_and_formats():
    conv = GatedGraphConv(C, 2).double()
    x, edge_index, w = graph()
    x_full = torch.randn(N, C, dtype=torch.float64)
    testing.assert_close(conv(x_full, edge_index), reference(conv, x_full, edge_index), atol=1e-10)
    testing.assert_formats_agree(
        lambda adj: conv(x, adj, None if is_sparse(adj) else w), edge_index, N, edge_weight=w, atol=1e-10
    )
    perm = torch.randperm(E, generator=torch.Generator().manual_seed(2))
    testing.assert_close(conv(x, edge_index[:, perm], w[perm]), conv(x, edge_index, w), atol=1e-10)


def test_reset_parameters():
    conv = GatedGraphConv(C, 2)
    torch.manual_seed(1)
    conv.reset_parameters()
    first = {k: v.clone() for k, v in conv.state_dict().items()}
    torch.manual_seed(1)
    conv.reset_parameters()
    assert all(torch.equal(v, first[k]) for k, v in conv.state_dict().items())
    assert conv.weight.abs().max() <= 1 / C**0.5


def test_bad_input():
    conv = GatedGraphConv(C, 2)
    x, edge_index, _ = graph(torch.float32)
    with pytest.raises(ValueError, match="x"):
        conv(torch.randn(N, C + 1), edge_index)
    with pytest.raises(TypeError, match="x"):
        conv(x.tolist(), edge_index)
    with pytest.raises(TypeError, match="edge_index"):
        conv(x, edge_index.float())
    with pytest.raises(ValueError, match="edge_index"):
        conv(x, torch.cat([edge_index, torch.tensor([[N], [0]])], 1))
    with pytest.raises(ValueError, match="edge_weight"):
        conv(x, edge_index, torch.rand(E - 1))


@pytest.mark.parametrize("kwargs", [{}, dict(aggr="mean", bias=False)], ids=str)
def test_pyg_parity(kwargs):
    pyg = pytest.importorskip("torch_geometric")
    torch.manual_seed(0)
    theirs, ours = pyg.nn.GatedGraphConv(C, 3, **kwargs), GatedGraphConv(C, 3, **kwargs)
    testing.load_pyg_state(ours, theirs)
    assert repr(ours) == repr(theirs)
    x, edge_index, w = graph(torch.float32)
    testing.assert_close(ours(x, edge_index), theirs(x, edge_index))
    testing.assert_close(ours(x, edge_index, w), theirs(x, edge_index, w))
    testing.assert_signatures_match(GatedGraphConv, pyg.nn.GatedGraphConv, ("__init__",))
