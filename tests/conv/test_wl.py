"""WLConv (colour refinement) and WLConvContinuous: references, PyG parity, formats, bad inputs."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from gnn.conv import WLConv, WLConvContinuous
from gnn.core import ops, testing
from gnn.core.utils import is_sparse

N, E, F = 10, 40, 5


def refine(colours: list[int], edge_index: Tensor, table: dict) -> list[int]:
    """Textbook WL step: (own colour, sorted in-neighbour colours) -> new id in first-seen order."""
    out = []
    for i, c in enumerate(colours):
        neighbours = sorted(colours[int(j)] for j in edge_index[0, edge_index[1] == i])
        key = (c, *neighbours)
        table.setdefault(key, len(table))
        out.append(table[key])
    return out


def cycle_with_tail() -> Tensor:
    # a 6-cycle (undirected) with a path 0 - 6 - 7 attached, plus a duplicated edge
    edges = [(k, (k + 1) % 6) for k in range(6)] + [(0, 6), (6, 7), (6, 7)]
    both = edges + [(b, a) for a, b in edges]
    return torch.tensor(both).t()


def test_wl_matches_textbook_refinement_across_calls():
    edge_index = cycle_with_tail()
    conv = WLConv()
    table: dict = {}
    colours = [0] * 8
    x = torch.zeros(8, dtype=torch.long)
    for _ in range(4):
        colours = refine(colours, edge_index, table)
        x = conv(x, edge_index)
        assert x.tolist() == colours
    # a second graph shares the colour table
    other = torch.tensor([[0, 1], [1, 0]])
    assert conv(torch.zeros(3, dtype=torch.long), other).tolist() == refine([0, 0, 0], other, table)
    assert len(conv.hashmap) == len(table)
    conv.reset_parameters()
    assert conv.hashmap == {}


def test_wl_one_hot_input_histogram_and_pyg():
    edge_index = cycle_with_tail()
    one_hot = torch.nn.functional.one_hot(torch.tensor([0, 1, 0, 1, 0, 1, 2, 2]), 3).float()
    conv = WLConv()
    x = conv(one_hot, edge_index)
    assert x.tolist() == refine([0, 1, 0, 1, 0, 1, 2, 2], edge_index, {})
    batch = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    hist = conv.histogram(x, batch)
    expected = torch.zeros(2, len(conv.hashmap))
    for node, colour in enumerate(x.tolist()):
        expected[batch[node], colour] += 1
    testing.assert_close(hist, expected)
    testing.assert_close(conv.histogram(x, batch, norm=True), expected / expected.norm(dim=-1, keepdim=True))
    pyg = pytest.importorskip("torch_geometric")
    theirs = pyg.nn.WLConv()
    ours = WLConv()
    colours = torch.randint(0, 3, (N,), generator=torch.Generator().manual_seed(0))
    _, random_edges = testing.random_graph(N, E, 1, seed=1)
    for graph in (edge_index, random_edges, edge_index):
        n = int(graph.max()) + 1
        a, b = ours(colours[:n], graph), theirs(colours[:n], graph)
        assert a.tolist() == b.tolist()
        assert repr(ours) == repr(theirs)
        testing.assert_close(ours.histogram(a, norm=True), theirs.histogram(b, norm=True))


def test_wl_formats_and_permutation():
    edge_index = cycle_with_tail()
    x = torch.tensor([0, 1, 0, 1, 0, 1, 2, 2])
    expected = WLConv()(x, edge_index)
    for name, adj in testing.edge_index_formats(edge_index, 8):
        assert WLConv()(x, adj).tolist() == expected.tolist(), name
    perm = torch.randperm(edge_index.size(1), generator=torch.Generator().manual_seed(0))
    assert WLConv()(x, edge_index[:, perm]).tolist() == expected.tolist()


def test_wl_bad_inputs():
    conv = WLConv()
    edge_index = cycle_with_tail()
    with pytest.raises(ValueError, match="one-hot"):
        conv(torch.ones(8, 2), edge_index)
    with pytest.raises(TypeError, match="'x'"):
        conv(torch.rand(8), edge_index)
    with pytest.raises(ValueError, match="edge_index"):
        conv(torch.zeros(3, dtype=torch.long), edge_index)
    with pytest.raises(ValueError, match="edge_index"):
        conv(torch.zeros(8, dtype=torch.long), edge_index[:1])


def weighted_mean(x_src, edge_index, weight, n_dst):
    w = torch.ones(edge_index.size(1)) if weight is None else weight
    num = torch.zeros(n_dst, x_src.size(1), dtype=torch.float64)
    den = torch.zeros(n_dst, dtype=torch.float64)
    for e in range(edge_index.size(1)):
        j, i = int(edge_index[0, e]), int(edge_index[1, e])
        num[i] += float(w[e]) * x_src[j].double()
        den[i] += float(w[e])
    return torch.where(den.view(-1, 1) != 0, num / den.view(-1, 1), torch.zeros_like(num))


@pytest.mark.parametrize("weighted", [False, True])
def test_continuous_reference_and_pyg(weighted):
    x, edge_index = testing.random_graph(N, E, F, seed=2)
    weight = torch.rand(E) + 0.1 if weighted else None
    conv = WLConvContinuous()
    expected = 0.5 * (x.double() + weighted_mean(x, edge_index, weight, N))
    torch.testing.assert_close(conv(x, edge_index, weight).double(), expected, atol=1e-5, rtol=1e-4)
    x_src, x_dst = torch.randn(8, F), torch.randn(5, F)
    bip = torch.stack([torch.randint(0, 8, (20,)), torch.randint(0, 5, (20,))])
    bip_w = None if weight is None else weight[:20]
    expected = 0.5 * (x_dst.double() + weighted_mean(x_src, bip, bip_w, 5))
    torch.testing.assert_close(conv((x_src, x_dst), bip, bip_w).double(), expected, atol=1e-5, rtol=1e-4)
    pyg = pytest.importorskip("torch_geometric")
    theirs = pyg.nn.WLConvContinuous()
    assert repr(conv) == repr(theirs)
    testing.assert_close(conv(x, edge_index, weight), theirs(x, edge_index, weight))
    testing.assert_close(conv((x_src, x_dst), bip, bip_w), theirs((x_src, x_dst), bip, bip_w))


def test_continuous_formats_fused_and_bad_inputs(monkeypatch):
    x, edge_index = testing.random_graph(N, E, F, seed=3)
    weight = torch.rand(E) + 0.1
    conv = WLConvContinuous()
    testing.assert_formats_agree(
        lambda adj: conv(x, adj, None if is_sparse(adj) else weight), edge_index, N, edge_weight=weight
    )
    expected = conv(x, edge_index, weight)
    calls = []
    real = ops.reduce.run_spmm
    monkeypatch.setattr(ops.reduce, "run_spmm", lambda *a, **k: calls.append(1) or real(*a, **k))

    def no_message(*args, **kwargs):
        raise AssertionError("the [E, F] message path ran")

    conv.message = no_message
    testing.assert_close(conv(x, edge_index, weight), expected)
    assert len(calls) == 1
    with pytest.raises(ValueError, match="edge_index"):
        conv(x, torch.tensor([[N], [0]]))
    with pytest.raises(ValueError, match="edge_weight"):
        conv(x, edge_index, weight[1:])
    with pytest.raises(TypeError, match="aggr"):
        WLConvContinuous(aggr="mean")
