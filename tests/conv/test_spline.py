"""SplineConv: a loop reference written from SplineCNN's formula (B-spline basis by Cox-de Boor),
PyG's API (signatures, repr, state_dict; its forward with its missing pyg-lib ops supplied by gnn's),
input formats, edge order, empty graphs and validation."""

from __future__ import annotations

import pytest
import torch

from gnn.conv import SplineConv
from gnn.core import ops, testing


def kernel_of(u, weight, kernel_size, is_open, m):
    """h(u) = sum_p B_p(u) W_p over all K kernel matrices (B: the loop B-spline reference)."""
    basis = testing.bspline_kernel_weights(u, kernel_size, is_open, m)
    return (basis.view(-1, 1, 1) * weight.double()).sum(0)


def loop_spline_conv(conv, x_src, x_dst, edge_index, pseudo, aggr):
    kernel_size = conv.kernel_size.tolist()
    is_open = conv.is_open_spline.tolist()
    n_dst = x_dst.size(0)
    msgs = [[] for _ in range(n_dst)]
    for e in range(edge_index.size(1)):
        j, i = int(edge_index[0, e]), int(edge_index[1, e])
        h = kernel_of(pseudo[e].tolist(), conv.weight.detach(), kernel_size, is_open, conv.degree)
        msgs[i].append(x_src[j].double() @ h)
    out = torch.zeros(n_dst, conv.out_channels, dtype=torch.float64)
    for i, m in enumerate(msgs):
        if m:
            stack = torch.stack(m)
            out[i] = {"mean": stack.mean(0), "add": stack.sum(0), "max": stack.max(0).values}[aggr]
    if conv.root_weight:
        out += x_dst.double() @ conv.lin.weight.detach().double().t()
    if conv.bias is not None:
        out += conv.bias.detach().double()
    return out


@pytest.mark.parametrize(
    "dim,kernel_size,is_open,degree,aggr",
    [
        (1, 5, True, 1, "mean"),
        (2, [3, 4], [True, False], 2, "add"),
        (3, [3, 4, 5], [False, True, True], 3, "max"),
        (2, 4, False, 1, "mean"),
        (1, 6, False, 3, "add"),
    ],
)
def test_matches_loop_reference(dim, kernel_size, is_open, degree, aggr):
    torch.manual_seed(0)
    conv = SplineConv(4, 3, dim, kernel_size, is_open, degree, aggr=aggr).double()
    x, ei = testing.random_graph(7, 20, 4, seed=1, dtype=torch.float64)
    pseudo = torch.rand(20, dim, dtype=torch.float64)
    out = conv(x, ei, pseudo if dim > 1 else pseudo.view(-1))
    testing.assert_close(out, loop_spline_conv(conv, x, x, ei, pseudo, aggr), atol=1e-10, rtol=1e-8)


def test_bipartite_no_root_no_bias_and_pseudo_gradient():
    torch.manual_seed(1)
    conv = SplineConv((4, 2), 3, 2, [3, 3], degree=2, root_weight=False, bias=False).double()
    x_src = torch.randn(6, 4, dtype=torch.float64)
    x_dst = torch.randn(3, 2, dtype=torch.float64)
    ei = torch.stack([torch.randint(0, 6, (15,)), torch.randint(0, 3, (15,))])
    pseudo = (0.05 + 0.9 * torch.rand(15, 2, dtype=torch.float64)).requires_grad_()
    out = conv((x_src, x_dst), ei, pseudo)
    assert out.shape == (3, 3)
    testing.assert_close(out, loop_spline_conv(conv, x_src, x_dst, ei, pseudo.detach(), "mean"), atol=1e-10)
    assert conv((x_src, None), ei, pseudo, size=(6, 3)).shape == (3, 3)
    torch.autograd.gradcheck(lambda p: conv((x_src, x_dst), ei, p), (pseudo,))


def _pyg_spline(monkeypatch):
    """PyG's SplineConv class with its pyg-lib ops (not installable here) supplied by gnn's ops."""
    pyg = pytest.importorskip("torch_geometric")
    module = pytest.importorskip("torch_geometric.nn.conv.spline_conv")
    monkeypatch.setattr(module, "spline_basis", lambda p, k, o, d: ops.spline_basis(p, k, o, d))
    monkeypatch.setattr(module, "spline_weighting", ops.spline_weighting)
    return pyg.nn.SplineConv


def test_signatures_match_pyg():
    pyg = pytest.importorskip("torch_geometric")
    testing.assert_signatures_match(SplineConv, pyg.nn.SplineConv)


@pytest.mark.parametrize("kwargs", [{}, {"degree": 2, "is_open_spline": False, "aggr": "add", "bias": False}])
def test_pyg_checkpoint_loads_and_gives_the_same_numbers(monkeypatch, kwargs):
    PyGSplineConv = _pyg_spline(monkeypatch)
    torch.manual_seed(2)
    theirs = PyGSplineConv(4, 5, dim=2, kernel_size=[3, 4], **kwargs).double()
    ours = SplineConv(4, 5, dim=2, kernel_size=[3, 4], **kwargs).double()
    assert repr(ours) == repr(theirs)
    x, ei = testing.random_graph(9, 30, 4, seed=3, dtype=torch.float64)
    pseudo = torch.rand(30, 2, dtype=torch.float64)
    with pytest.warns(UserWarning):  # PyG warns about its CPU path
        testing.assert_gradients_match_pyg(ours, theirs, x, ei, pseudo)
    assert torch.equal(ours.kernel_size, theirs.kernel_size)
    assert ours.is_open_spline.dtype == theirs.is_open_spline.dtype == torch.uint8


def test_lazy_in_channels_and_reset():
    conv = SplineConv(-1, 4, dim=1, kernel_size=3)
    assert repr(conv) == "SplineConv(-1, 4, dim=1)"
    x, ei = testing.random_graph(5, 10, 6, seed=4)
    assert conv(x, ei, torch.rand(10, 1)).shape == (5, 4)
    assert conv.weight.shape == (3, 6, 4)
    conv.reset_parameters()


def test_formats_and_edge_permutation():
    torch.manual_seed(5)
    conv = SplineConv(3, 4, dim=2, kernel_size=3).double()
    x, ei = testing.random_graph(8, 25, 3, seed=6, dtype=torch.float64)
    pseudo = torch.rand(25, 2, dtype=torch.float64)

    def call(adj):
        return conv(
            x, adj, None if not isinstance(adj, torch.Tensor) or adj.layout != torch.strided else pseudo
        )

    testing.assert_formats_agree(call, ei, 8, edge_weight=pseudo, atol=1e-10)
    perm = torch.randperm(25)
    testing.assert_close(conv(x, ei[:, perm], pseudo[perm]), conv(x, ei, pseudo), atol=1e-10)


def test_empty_graphs_int32_and_float32():
    conv = SplineConv(3, 4, dim=2, kernel_size=3)
    x = torch.randn(5, 3)
    out = conv(x, torch.empty(2, 0, dtype=torch.long), torch.empty(0, 2))
    testing.assert_close(out, conv.lin(x) + conv.bias)
    assert conv(torch.empty(0, 3), torch.empty(2, 0, dtype=torch.long), torch.empty(0, 2)).shape == (0, 4)
    _, ei = testing.random_graph(5, 9, 3, seed=7)
    pseudo = torch.rand(9, 2)
    testing.assert_close(conv(x, ei.int(), pseudo), conv(x, ei, pseudo))


def test_basis_of_a_static_graph_is_computed_once(monkeypatch):
    conv = SplineConv(3, 4, dim=2, kernel_size=3)
    x, ei = testing.random_graph(6, 12, 3, seed=8)
    pseudo = torch.rand(12, 2)
    calls = []
    real = ops.spline_basis
    monkeypatch.setattr(ops, "spline_basis", lambda *a: calls.append(1) or real(*a))
    first = conv(x, ei, pseudo)
    second = conv(x, ei, pseudo)
    assert len(calls) == 1
    testing.assert_close(first, second)


def test_validation():
    with pytest.raises(ValueError, match="kernel_size"):
        SplineConv(3, 4, dim=1, kernel_size=1)  # an open spline of degree 1 needs 2 weights
    with pytest.raises(ValueError, match="degree"):
        SplineConv(3, 4, dim=1, kernel_size=5, degree=4)
    with pytest.raises(ValueError, match="dim"):
        SplineConv(3, 4, dim=0, kernel_size=5)
    conv = SplineConv(3, 4, dim=2, kernel_size=3)
    x, ei = testing.random_graph(5, 8, 3, seed=9)
    with pytest.raises(ValueError, match="edge_attr"):
        conv(x, ei)
    with pytest.raises(ValueError, match="edge_attr"):
        conv(x, ei, torch.rand(8, 3))
    with pytest.raises(ValueError, match="edge_attr"):
        conv(x, ei, torch.rand(7, 2))
    with pytest.raises(ValueError, match="x"):
        conv(torch.randn(5, 2), ei, torch.rand(8, 2))
    with pytest.raises(IndexError, match="edge_index"):
        conv(x, ei + 5, torch.rand(8, 2))
