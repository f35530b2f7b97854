"""AntiSymmetricConv against a dense Euler-step reference, PyG, sparse inputs and bad input."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from gnn.conv.antisymmetric import AntiSymmetricConv
from gnn.core import MessagePassing, testing


class SumLin(MessagePassing):
    """phi(x) = A x V^T with A[i, j] = summed weight of the edges j -> i (written for the test)."""

    fused_message = "edge_weight * x_j"

    def __init__(self, channels: int) -> None:
        super().__init__(aggr="sum")
        self.lin = torch.nn.Linear(channels, channels, bias=False)

    def reset_parameters(self) -> None:
        self.lin.reset_parameters()

    def forward(self, x: Tensor, edge_index, edge_weight: Tensor | None = None) -> Tensor:
        return self.propagate(edge_index, x=self.lin(x), edge_weight=edge_weight)

    def message(self, x_j: Tensor, edge_weight: Tensor | None) -> Tensor:
        return x_j if edge_weight is None else edge_weight.view(-1, 1) * x_j


def dense_adj(edge_index, n, weight=None):
    a = torch.zeros(n, n, dtype=torch.float64)
    for e in range(edge_index.size(1)):
        a[edge_index[1, e], edge_index[0, e]] += 1.0 if weight is None else float(weight[e])
    return a


def dense_reference(conv: AntiSymmetricConv, x, a, act=torch.tanh):
    x = x.double()
    w = conv.W.double()
    m = w - w.t() - conv.gamma * torch.eye(w.size(0), dtype=torch.float64)
    v = conv.phi.lin.weight.double()
    for _ in range(conv.num_iters):
        h = x @ m.t() + a @ x @ v.t()
        if conv.bias is not None:
            h = h + conv.bias.double()
        x = x + conv.epsilon * (act(h) if act is not None else h)
    return x.float()


@pytest.mark.parametrize("num_iters", [1, 3])
@pytest.mark.parametrize("bias", [True, False])
def test_matches_dense_reference(num_iters, bias):
    x, edge_index = testing.random_graph(12, 40, 5, seed=num_iters)
    conv = AntiSymmetricConv(5, phi=SumLin(5), num_iters=num_iters, epsilon=0.3, gamma=0.2, bias=bias)
    if bias:
        torch.nn.init.normal_(conv.bias)
    expected = dense_reference(conv, x, dense_adj(edge_index, 12))
    testing.assert_close(conv(x, edge_index), expected)


def test_activation_options_and_extra_arguments_reach_phi():
    x, edge_index = testing.random_graph(10, 30, 4, seed=2)
    weight = torch.rand(30)
    a = dense_adj(edge_index, 10, weight)
    conv = AntiSymmetricConv(
        4, phi=SumLin(4), act="leaky_relu", act_kwargs={"negative_slope": 0.2}, num_iters=2
    )
    expected = dense_reference(conv, x, a, act=lambda h: torch.nn.functional.leaky_relu(h, 0.2))
    testing.assert_close(conv(x, edge_index, weight), expected)
    conv = AntiSymmetricConv(4, phi=SumLin(4), act=None)
    testing.assert_close(conv(x, edge_index, edge_weight=weight), dense_reference(conv, x, a, act=None))


def test_default_phi_is_gcn():
    gcn = pytest.importorskip("gnn.conv.gcn")
    x, edge_index = testing.random_graph(10, 30, 4, seed=3, self_loops=False)
    edge_index = edge_index[:, edge_index[0] != edge_index[1]]
    conv = AntiSymmetricConv(4)
    assert isinstance(conv.phi, gcn.GCNConv) and conv.phi.bias is None
    # GCN: D^-1/2 (A + I) D^-1/2 x V^T with in-degrees (self loop included)
    a = dense_adj(edge_index, 10) + torch.eye(10, dtype=torch.float64)
    d = a.sum(1).pow(-0.5)
    testing.assert_close(conv(x, edge_index), dense_reference(conv, x, d.view(-1, 1) * a * d.view(1, -1)))
    testing.assert_formats_agree(lambda adj: conv(x, adj), edge_index, 10)


def test_sparse_formats_agree():
    x, edge_index = testing.random_graph(10, 30, 4, seed=4)
    conv = AntiSymmetricConv(4, phi=SumLin(4), num_iters=2)
    testing.assert_formats_agree(lambda adj: conv(x, adj), edge_index, 10)


def test_edge_permutation_invariance():
    x, edge_index = testing.random_graph(14, 45, 4, seed=5)
    conv = AntiSymmetricConv(4, phi=SumLin(4), num_iters=2)
    perm = torch.randperm(45, generator=torch.Generator().manual_seed(0))
    testing.assert_close(conv(x, edge_index[:, perm]), conv(x, edge_index))


def test_reset_parameters():
    conv = AntiSymmetricConv(4, phi=SumLin(4))
    for p in conv.parameters():
        torch.nn.init.constant_(p, 7.0)
    conv.reset_parameters()
    assert torch.equal(conv.bias, torch.zeros(4))
    for p in (conv.W, conv.phi.lin.weight):
        assert p.abs().max() < 7.0 and p.std() > 0
    assert torch.equal(conv.eye, torch.eye(4))


def test_bad_input():
    x, edge_index = testing.random_graph(10, 30, 4, seed=6)
    conv = AntiSymmetricConv(4, phi=SumLin(4))
    with pytest.raises(ValueError, match="x"):
        conv(torch.randn(10, 5), edge_index)
    with pytest.raises(TypeError, match="x"):
        conv((x, x), edge_index)
    with pytest.raises(ValueError, match="edge_index"):
        conv(x, edge_index[:1])
    with pytest.raises(TypeError, match="edge_index"):
        conv(x, edge_index.float())
    with pytest.raises(ValueError, match="edge_index"):
        conv(x, torch.tensor([[0, 10], [1, 2]]))
    with pytest.raises(ValueError, match="in_channels"):
        AntiSymmetricConv(0)
    with pytest.raises(ValueError, match="act"):
        AntiSymmetricConv(4, phi=SumLin(4), act="nonsense")


def test_pyg_parity():
    pyg = pytest.importorskip("torch_geometric")
    pytest.importorskip("gnn.conv.gcn")
    x, edge_index = testing.random_graph(20, 70, 6, seed=7)
    options = dict(num_iters=3, epsilon=0.2, gamma=0.05, act="leaky_relu", act_kwargs={"negative_slope": 0.1})
    theirs, ours = pyg.nn.AntiSymmetricConv(6, **options), AntiSymmetricConv(6, **options)
    assert repr(ours) == repr(theirs)
    testing.assert_signatures_match(AntiSymmetricConv, type(theirs), defaults=False)
    testing.load_pyg_state(ours, theirs)
    testing.assert_close(ours(x, edge_index), theirs(x, edge_index))
    theirs = pyg.nn.AntiSymmetricConv(6, phi=pyg.nn.GCNConv(6, 6), bias=False, act=None)
    ours = AntiSymmetricConv(6, phi=pytest.importorskip("gnn.conv.gcn").GCNConv(6, 6), bias=False, act=None)
    testing.load_pyg_state(ours, theirs)
    weight = torch.rand(70)
    testing.assert_close(ours(x, edge_index, weight), theirs(x, edge_index, weight))


def test_empty_graph():
    conv = AntiSymmetricConv(4, phi=SumLin(4), num_iters=2)
    x, no_edges = torch.randn(5, 4), torch.empty(2, 0, dtype=torch.long)
    testing.assert_close(conv(x, no_edges), dense_reference(conv, x, torch.zeros(5, 5, dtype=torch.float64)))
    assert conv(torch.randn(0, 4), no_edges).shape == (0, 4)
