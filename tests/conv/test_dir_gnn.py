"""DirGNNConv against a dense in/out-neighbourhood reference, PyG, sparse inputs and bad input."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from gnn.conv.dir_gnn import DirGNNConv
from gnn.core import MessagePassing, testing


class MeanLin(MessagePassing):
    """mean_j x_j W^T (+ x_i W_r^T with root_weight, + x_i W^T for a self loop), written for the test."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(aggr="mean")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.add_self_loops = True
        self.root_weight = True
        self.lin = torch.nn.Linear(in_channels, out_channels, bias=False)
        self.lin_r = torch.nn.Linear(in_channels, out_channels, bias=False)

    def reset_parameters(self) -> None:
        self.lin.reset_parameters()
        self.lin_r.reset_parameters()

    def forward(self, x: Tensor, edge_index) -> Tensor:
        if self.add_self_loops:
            loops = torch.arange(x.size(0)).repeat(2, 1)
            edge_index = torch.cat([edge_index, loops], dim=1)
        out = self.propagate(edge_index, x=self.lin(x))
        return out + self.lin_r(x) if self.root_weight else out


def mean_adj(edge_index, n):
    a = torch.zeros(n, n, dtype=torch.float64)
    for e in range(edge_index.size(1)):
        a[edge_index[1, e], edge_index[0, e]] += 1
    return a / a.sum(1, keepdim=True).clamp(min=1)


def dense_reference(conv: DirGNNConv, x, edge_index):
    """alpha * mean over out-neighbours + (1 - alpha) * mean over in-neighbours + root (float64)."""
    n = x.size(0)
    x = x.double()
    w_in, w_out = conv.conv_in.lin.weight.double(), conv.conv_out.lin.weight.double()
    x_in = mean_adj(edge_index, n) @ x @ w_in.t()
    x_out = mean_adj(edge_index.flip(0), n) @ x @ w_out.t()
    out = conv.alpha * x_out + (1 - conv.alpha) * x_in
    if conv.root_weight:
        out = out + x @ conv.lin.weight.double().t() + conv.lin.bias.double()
    return out.float()


@pytest.mark.parametrize("alpha", [0.5, 0.2])
@pytest.mark.parametrize("root_weight", [True, False])
def test_matches_dense_reference(alpha, root_weight):
    x, edge_index = testing.random_graph(12, 40, 4, seed=1)
    conv = DirGNNConv(MeanLin(4, 5), alpha=alpha, root_weight=root_weight)
    # the copies lose their own self loops and root weights
    for inner in (conv.conv_in, conv.conv_out):
        assert inner.add_self_loops is False and inner.root_weight is False
    assert (conv.lin is not None) == root_weight
    testing.assert_close(conv(x, edge_index), dense_reference(conv, x, edge_index))


def test_copies_are_independent():
    conv = DirGNNConv(MeanLin(4, 5))
    assert conv.conv_in.lin.weight.data_ptr() != conv.conv_out.lin.weight.data_ptr()
    assert not torch.equal(conv.conv_in.lin.weight, conv.conv_out.lin.weight)  # reset separately


def test_sparse_formats_agree():
    x, edge_index = testing.random_graph(10, 30, 4, seed=2)
    conv = DirGNNConv(MeanLin(4, 3), alpha=0.3)
    testing.assert_formats_agree(lambda adj: conv(x, adj), edge_index, 10)


def test_with_library_convs():
    gcn = pytest.importorskip("gnn.conv.gcn")
    sage = pytest.importorskip("gnn.conv.sage")
    x, edge_index = testing.random_graph(10, 30, 4, seed=3)
    for inner in (gcn.GCNConv(4, 3), sage.SAGEConv(4, 3)):
        conv = DirGNNConv(inner, alpha=0.4)
        testing.assert_formats_agree(lambda adj: conv(x, adj), edge_index, 10)
        # alpha = 1 keeps only the outgoing-edge convolution (and the root term)
        conv.alpha = 1.0
        expected = conv.conv_out(x, edge_index.flip(0)) + conv.lin(x)
        testing.assert_close(conv(x, edge_index), expected)


def test_edge_permutation_invariance():
    x, edge_index = testing.random_graph(14, 45, 4, seed=4)
    conv = DirGNNConv(MeanLin(4, 3))
    perm = torch.randperm(45, generator=torch.Generator().manual_seed(0))
    testing.assert_close(conv(x, edge_index[:, perm]), conv(x, edge_index))


def test_reset_parameters():
    conv = DirGNNConv(MeanLin(4, 3))
    for p in conv.parameters():
        torch.nn.init.constant_(p, 7.0)
    conv.reset_parameters()
    for name, p in conv.named_parameters():
        assert p.abs().max() < 7.0 and p.std() > 0, name


def test_bad_input():
    x, edge_index = testing.random_graph(10, 30, 4, seed=5)
    conv = DirGNNConv(MeanLin(4, 3))
    with pytest.raises(ValueError, match="edge_index"):
        conv(x, edge_index[:1])
    with pytest.raises(TypeError, match="edge_index"):
        conv(x, edge_index.float())
    with pytest.raises(ValueError, match="edge_index"):
        conv(x, torch.tensor([[0, 10], [1, 2]]))
    with pytest.raises(TypeError, match="x"):
        conv([1.0], edge_index)
    with pytest.raises(TypeError, match="conv"):
        DirGNNConv(lambda x, e: x)
    inner = MeanLin(4, 3)
    inner.in_channels = -1
    with pytest.raises(ValueError, match="in_channels"):
        DirGNNConv(inner)


def test_pyg_parity():
    pyg = pytest.importorskip("torch_geometric")
    gcn = pytest.importorskip("gnn.conv.gcn")
    sage = pytest.importorskip("gnn.conv.sage")
    x, edge_index = testing.random_graph(20, 70, 6, seed=6)
    pairs = [
        (pyg.nn.GCNConv(6, 5), gcn.GCNConv(6, 5), dict(alpha=0.3)),
        (pyg.nn.SAGEConv(6, 5, aggr="max"), sage.SAGEConv(6, 5, aggr="max"), dict(root_weight=False)),
    ]
    for inner_theirs, inner_ours, options in pairs:
        theirs, ours = pyg.nn.DirGNNConv(inner_theirs, **options), DirGNNConv(inner_ours, **options)
        assert repr(ours) == repr(theirs)
        testing.assert_signatures_match(DirGNNConv, type(theirs), defaults=False)
        testing.load_pyg_state(ours, theirs)
        testing.assert_close(ours(x, edge_index), theirs(x, edge_index))


def test_empty_graph():
    conv = DirGNNConv(MeanLin(4, 3))
    x, no_edges = torch.randn(5, 4), torch.empty(2, 0, dtype=torch.long)
    testing.assert_close(conv(x, no_edges), dense_reference(conv, x, no_edges))
    assert conv(torch.randn(0, 4), no_edges).shape == (0, 3)
