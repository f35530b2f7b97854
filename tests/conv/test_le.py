"""LEConv: loop reference, PyG parity, bipartite, formats, lazy, bad inputs."""

from __future__ import annotations

import pytest
import torch

from gnn.conv import LEConv
from gnn.core import testing
from gnn.core.utils import is_sparse

N, E, F_IN, F_OUT = 10, 40, 5, 7


def reference(conv: LEConv, x_src, x_dst, edge_index, weight):
    """sum_j w_ji (lin1(x_j) - lin2(x_i)) + lin3(x_i), one edge at a time."""
    out = conv.lin3(x_dst).detach().clone()
    for e in range(edge_index.size(1)):
        j, i = int(edge_index[0, e]), int(edge_index[1, e])
        w = 1.0 if weight is None else weight[e]
        out[i] += w * (conv.lin1(x_src[j]) - conv.lin2(x_dst[i])).detach()
    return out


@pytest.mark.parametrize("weighted", [False, True])
def test_loop_reference(weighted):
    x, edge_index = testing.random_graph(N, E, F_IN, seed=1)
    weight = torch.rand(E) if weighted else None
    conv = LEConv(F_IN, F_OUT)
    testing.assert_close(conv(x, edge_index, weight), reference(conv, x, x, edge_index, weight))


def test_bipartite():
    torch.manual_seed(0)
    x_src, x_dst = torch.randn(8, 4), torch.randn(5, 6)
    edge_index = torch.stack([torch.randint(0, 8, (20,)), torch.randint(0, 5, (20,))])
    weight = torch.rand(20)
    conv = LEConv((4, 6), F_OUT)
    testing.assert_close(
        conv((x_src, x_dst), edge_index, weight), reference(conv, x_src, x_dst, edge_index, weight)
    )
    # the same graph given as target_to_source (rows swapped)
    flipped = LEConv((4, 6), F_OUT, flow="target_to_source")
    flipped.load_state_dict(conv.state_dict())
    expected = conv((x_src, x_dst), edge_index, weight)
    testing.assert_close(flipped((x_src, x_dst), edge_index.flip(0), weight), expected)


@pytest.mark.parametrize("bias", [True, False])
def test_matches_pyg(bias):
    pyg = pytest.importorskip("torch_geometric")
    x, edge_index = testing.random_graph(N, E, F_IN, seed=2)
    weight = torch.rand(E)
    theirs = pyg.nn.LEConv(F_IN, F_OUT, bias=bias)
    ours = LEConv(F_IN, F_OUT, bias=bias)
    testing.load_pyg_state(ours, theirs)
    assert repr(ours) == repr(theirs)
    testing.assert_close(ours(x, edge_index, weight), theirs(x, edge_index, weight))
    testing.assert_close(ours(x, edge_index), theirs(x, edge_index))


def test_input_formats_and_permutation():
    x, edge_index = testing.random_graph(N, E, F_IN, seed=3)
    weight = torch.rand(E) + 0.1
    conv = LEConv(F_IN, F_OUT)
    testing.assert_formats_agree(
        lambda adj: conv(x, adj, None if is_sparse(adj) else weight), edge_index, N, edge_weight=weight
    )
    perm = torch.randperm(E, generator=torch.Generator().manual_seed(0))
    testing.assert_close(conv(x, edge_index[:, perm], weight[perm]), conv(x, edge_index, weight))


def test_lazy_and_reset():
    x, edge_index = testing.random_graph(N, E, F_IN, seed=4)
    conv = LEConv(-1, F_OUT)
    assert conv(x, edge_index).shape == (N, F_OUT)
    before = conv.lin2.weight.detach().clone()
    conv.reset_parameters()
    assert not torch.equal(before, conv.lin2.weight)


def test_bad_inputs():
    x, edge_index = testing.random_graph(N, E, F_IN, seed=5)
    conv = LEConv(F_IN, F_OUT)
    with pytest.raises(ValueError, match="edge_index"):
        conv(x, edge_index[0])
    with pytest.raises(TypeError, match="edge_index"):
        conv(x, edge_index.float())
    with pytest.raises(ValueError, match="edge_index"):
        conv(x, torch.tensor([[N], [0]]))
    with pytest.raises(ValueError, match="'x'.*in_channels"):
        conv(torch.randn(N, 2), edge_index)
    with pytest.raises(ValueError, match="'x'"):
        conv((x, None), edge_index)
