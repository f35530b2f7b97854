"""NNConv against a per-edge loop reference, PyG, sparse inputs and bad input."""

from __future__ import annotations

import pytest
import torch

from gnn.conv.nn_conv import NNConv
from gnn.core import testing
from gnn.core.utils import is_sparse


class Column(torch.nn.Module):
    """[E] edge weights -> [E, 1] (so that the 1-D values of sparse inputs can feed a Linear)."""

    def forward(self, e: torch.Tensor) -> torch.Tensor:
        return e.view(-1, 1)


def edge_nn(dim: int, f_in: int, f_out: int) -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(dim, 8), torch.nn.Tanh(), torch.nn.Linear(8, f_in * f_out))


def loop_reference(conv: NNConv, x_src, x_dst, edge_index, edge_attr, n_dst, reduce="sum"):
    """sum/mean_j x_j @ nn(e_ji).view(F_in, F_out) + W x_i + b, edge by edge (float64)."""
    f_out = conv.out_channels
    acc = torch.zeros(n_dst, f_out, dtype=torch.float64)
    count = torch.zeros(n_dst)
    with torch.no_grad():
        weights = conv.nn(edge_attr).double().view(-1, x_src.size(1), f_out)
    for e in range(edge_index.size(1)):
        j, i = int(edge_index[0, e]), int(edge_index[1, e])
        acc[i] += x_src[j].double() @ weights[e]
        count[i] += 1
    if reduce == "mean":
        acc = acc / count.clamp(min=1).view(-1, 1).double()
    if conv.root_weight and x_dst is not None:
        acc = acc + x_dst.double() @ conv.lin.weight.double().t()
    if conv.bias is not None:
        acc = acc + conv.bias.double()
    return acc.float()


@pytest.mark.parametrize("aggr", ["add", "mean"])
@pytest.mark.parametrize("root_weight", [True, False])
def test_matches_loop_reference(aggr, root_weight):
    x, edge_index = testing.random_graph(12, 40, 4, seed=1)
    edge_attr = torch.randn(40, 3, generator=torch.Generator().manual_seed(1))
    conv = NNConv(4, 5, edge_nn(3, 4, 5), aggr=aggr, root_weight=root_weight)
    torch.nn.init.normal_(conv.bias)
    expected = loop_reference(conv, x, x, edge_index, edge_attr, 12, "mean" if aggr == "mean" else "sum")
    testing.assert_close(conv(x, edge_index, edge_attr), expected)


def test_bipartite():
    g = torch.Generator().manual_seed(2)
    x_src, x_dst = torch.randn(7, 4, generator=g), torch.randn(5, 3, generator=g)
    edge_index = torch.stack(
        [torch.randint(0, 7, (20,), generator=g), torch.randint(0, 5, (20,), generator=g)]
    )
    edge_attr = torch.randn(20, 2, generator=g)
    conv = NNConv((4, 3), 6, edge_nn(2, 4, 6))
    testing.assert_close(
        conv((x_src, x_dst), edge_index, edge_attr),
        loop_reference(conv, x_src, x_dst, edge_index, edge_attr, 5),
    )
    out = conv((x_src, None), edge_index, edge_attr, size=(7, 5))
    testing.assert_close(out, loop_reference(conv, x_src, None, edge_index, edge_attr, 5))


def test_sparse_formats_agree():
    x, edge_index = testing.random_graph(10, 30, 3, seed=3)
    weight = torch.randn(30, generator=torch.Generator().manual_seed(3))
    conv = NNConv(3, 4, torch.nn.Sequential(Column(), torch.nn.Linear(1, 12)), aggr="mean")
    # the sparse values act as the (1-dimensional) edge features
    testing.assert_formats_agree(
        lambda adj: conv(x, adj, None if is_sparse(adj) else weight), edge_index, 10, edge_weight=weight
    )
    # multi-dimensional edge features as the values of a hybrid COO adjacency
    edge_attr = torch.randn(30, 2, generator=torch.Generator().manual_seed(4))
    conv = NNConv(3, 4, edge_nn(2, 3, 4))
    adj = torch.sparse_coo_tensor(torch.stack([edge_index[1], edge_index[0]]), edge_attr, (10, 10, 2))
    testing.assert_close(conv(x, adj), conv(x, edge_index, edge_attr))


def test_edge_permutation_invariance():
    x, edge_index = testing.random_graph(14, 45, 3, seed=5)
    edge_attr = torch.randn(45, 2)
    conv = NNConv(3, 4, edge_nn(2, 3, 4), aggr="max")
    perm = torch.randperm(45, generator=torch.Generator().manual_seed(0))
    testing.assert_close(conv(x, edge_index[:, perm], edge_attr[perm]), conv(x, edge_index, edge_attr))


def test_lazy_in_channels():
    x, edge_index = testing.random_graph(10, 30, 3, seed=6)
    edge_attr = torch.randn(30, 2)
    conv = NNConv(-1, 4, edge_nn(2, 3, 4))
    out = conv(x, edge_index, edge_attr)
    assert conv.lin.weight.shape == (4, 3)
    testing.assert_close(out, loop_reference(conv, x, x, edge_index, edge_attr, 10))


def test_reset_parameters():
    conv = NNConv(3, 4, edge_nn(2, 3, 4))
    for p in conv.parameters():
        torch.nn.init.constant_(p, 7.0)
    conv.reset_parameters()
    assert torch.equal(conv.bias, torch.zeros(4))
    for name, p in conv.named_parameters():
        if name != "bias":
            assert p.abs().max() < 7.0 and p.std() > 0, name


def test_bad_input():
    x, edge_index = testing.random_graph(10, 30, 3, seed=7)
    edge_attr = torch.randn(30, 2)
    conv = NNConv(3, 4, edge_nn(2, 3, 4))
    with pytest.raises(ValueError, match="x"):
        conv(torch.randn(10, 5), edge_index, edge_attr)
    with pytest.raises(ValueError, match="edge_attr"):
        conv(x, edge_index)
    with pytest.raises(ValueError, match="edge_attr"):
        conv(x, edge_index, edge_attr[:-1])
    with pytest.raises(ValueError, match="edge_index"):
        conv(x, edge_index.view(1, -1), torch.randn(60, 2))
    with pytest.raises(TypeError, match="edge_index"):
        conv(x, edge_index.double(), edge_attr)
    with pytest.raises(ValueError, match="edge_index"):
        conv(x, torch.tensor([[0, 1], [1, 10]]), edge_attr[:2])
    with pytest.raises(ValueError, match="nn"):
        NNConv(3, 4, edge_nn(2, 3, 5))(x, edge_index, edge_attr)


def test_pyg_parity():
    pyg = pytest.importorskip("torch_geometric")
    x, edge_index = testing.random_graph(20, 70, 4, seed=8)
    edge_attr = torch.randn(70, 3, generator=torch.Generator().manual_seed(8))
    theirs = pyg.nn.NNConv(4, 6, edge_nn(3, 4, 6), aggr="mean", bias=False)
    ours = NNConv(4, 6, edge_nn(3, 4, 6), aggr="mean", bias=False)
    assert repr(ours) == repr(theirs)
    testing.assert_signatures_match(NNConv, type(theirs), defaults=False)
    testing.load_pyg_state(ours, theirs)
    testing.assert_close(ours(x, edge_index, edge_attr), theirs(x, edge_index, edge_attr))
    theirs = pyg.nn.NNConv((4, 2), 3, edge_nn(3, 4, 3), root_weight=False)
    ours = NNConv((4, 2), 3, edge_nn(3, 4, 3), root_weight=False)
    testing.load_pyg_state(ours, theirs)
    x_dst = torch.randn(20, 2)
    testing.assert_close(ours((x, x_dst), edge_index, edge_attr), theirs((x, x_dst), edge_index, edge_attr))


def test_empty_graph():
    conv = NNConv(3, 4, edge_nn(2, 3, 4))
    torch.nn.init.normal_(conv.bias)
    x, no_edges = torch.randn(5, 3), torch.empty(2, 0, dtype=torch.long)
    testing.assert_close(conv(x, no_edges, torch.empty(0, 2)), conv.lin(x) + conv.bias)
    assert conv(torch.randn(0, 3), no_edges, torch.empty(0, 2)).shape == (0, 4)
