"""CGConv against a per-edge loop reference, PyG, sparse inputs and bad input."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from gnn.conv.cg import CGConv
from gnn.core import testing
from gnn.core.utils import is_sparse


def loop_reference(conv: CGConv, x_src, x_dst, edge_index, edge_attr, reduce="sum"):
    """x_i + sum/mean_j sigmoid(W_f z + b_f) * softplus(W_s z + b_s), z = [x_i, x_j, e] (float64)."""
    n_dst = x_dst.size(0)
    acc = torch.zeros(n_dst, x_dst.size(1), dtype=torch.float64)
    count = torch.zeros(n_dst, 1, dtype=torch.float64)
    wf, ws = conv.lin_f.weight.double(), conv.lin_s.weight.double()
    bf = conv.lin_f.bias.double() if conv.lin_f.bias is not None else 0.0
    bs = conv.lin_s.bias.double() if conv.lin_s.bias is not None else 0.0
    for e in range(edge_index.size(1)):
        j, i = int(edge_index[0, e]), int(edge_index[1, e])
        parts = [x_dst[i], x_src[j]] + ([edge_attr[e].view(-1)] if edge_attr is not None else [])
        z = torch.cat(parts).double()
        acc[i] += torch.sigmoid(wf @ z + bf) * F.softplus(ws @ z + bs)
        count[i] += 1
    if reduce == "mean":
        acc = acc / count.clamp(min=1)
    return (acc + x_dst.double()).float()


@pytest.mark.parametrize("dim", [0, 3])
@pytest.mark.parametrize("bias", [True, False])
def test_matches_loop_reference(dim, bias):
    x, edge_index = testing.random_graph(12, 40, 4, seed=1)
    edge_attr = torch.randn(40, dim) if dim else None
    conv = CGConv(4, dim=dim, bias=bias)
    testing.assert_close(conv(x, edge_index, edge_attr), loop_reference(conv, x, x, edge_index, edge_attr))


def test_mean_aggregation_and_batch_norm():
    x, edge_index = testing.random_graph(12, 40, 4, seed=2)
    edge_attr = torch.randn(40, 2)
    conv = CGConv(4, dim=2, aggr="mean", batch_norm=True).eval()
    with torch.no_grad():
        conv.bn.running_mean.uniform_(-1, 1)
        conv.bn.running_var.uniform_(0.5, 2)
        conv.bn.weight.uniform_(0.5, 2)
    aggregated = loop_reference(conv, x, x, edge_index, edge_attr, "mean") - x
    bn = conv.bn
    expected = (aggregated - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps) * bn.weight + bn.bias + x
    testing.assert_close(conv(x, edge_index, edge_attr), expected.detach())


def test_bipartite():
    g = torch.Generator().manual_seed(3)
    x_src, x_dst = torch.randn(7, 4, generator=g), torch.randn(5, 3, generator=g)
    edge_index = torch.stack(
        [torch.randint(0, 7, (20,), generator=g), torch.randint(0, 5, (20,), generator=g)]
    )
    edge_attr = torch.randn(20, 2, generator=g)
    conv = CGConv((4, 3), dim=2)
    out = conv((x_src, x_dst), edge_index, edge_attr)
    assert out.shape == (5, 3)
    testing.assert_close(out, loop_reference(conv, x_src, x_dst, edge_index, edge_attr))


def test_sparse_formats_agree():
    x, edge_index = testing.random_graph(10, 30, 3, seed=4)
    # no edge features: the values of the sparse forms are ignored
    conv = CGConv(3)
    testing.assert_formats_agree(lambda adj: conv(x, adj), edge_index, 10)
    # one edge feature carried as the sparse values
    weight = torch.randn(30)
    conv = CGConv(3, dim=1)
    testing.assert_formats_agree(
        lambda adj: conv(x, adj, None if is_sparse(adj) else weight.view(-1, 1)),
        edge_index,
        10,
        edge_weight=weight,
    )
    # several edge features in a hybrid COO adjacency
    edge_attr = torch.randn(30, 2)
    conv = CGConv(3, dim=2)
    adj = torch.sparse_coo_tensor(torch.stack([edge_index[1], edge_index[0]]), edge_attr, (10, 10, 2))
    testing.assert_close(conv(x, adj), conv(x, edge_index, edge_attr))


def test_edge_permutation_invariance():
    x, edge_index = testing.random_graph(14, 45, 3, seed=5)
    edge_attr = torch.randn(45, 2)
    conv = CGConv(3, dim=2, aggr="max")
    perm = torch.randperm(45, generator=torch.Generator().manual_seed(0))
    testing.assert_close(conv(x, edge_index[:, perm], edge_attr[perm]), conv(x, edge_index, edge_attr))


def test_reset_parameters():
    conv = CGConv(3, dim=2, batch_norm=True)
    for p in conv.parameters():
        torch.nn.init.constant_(p, 7.0)
    conv.bn.running_mean.fill_(3.0)
    conv.reset_parameters()
    assert torch.equal(conv.bn.running_mean, torch.zeros(3))
    assert torch.equal(conv.bn.weight, torch.ones(3))
    for name in ("lin_f.weight", "lin_s.weight", "lin_f.bias", "lin_s.bias"):
        p = conv.get_parameter(name)
        assert p.abs().max() < 7.0 and p.std() > 0, name


def test_bad_input():
    x, edge_index = testing.random_graph(10, 30, 3, seed=6)
    edge_attr = torch.randn(30, 2)
    conv = CGConv(3, dim=2)
    with pytest.raises(ValueError, match="x"):
        conv(torch.randn(10, 4), edge_index, edge_attr)
    with pytest.raises(ValueError, match="edge_attr"):
        conv(x, edge_index, edge_attr[:-1])
    with pytest.raises(ValueError, match="edge_attr"):
        conv(x, edge_index, torch.randn(30, 3))
    with pytest.raises(ValueError, match="edge_index"):
        conv(x, edge_index.t(), edge_attr)
    with pytest.raises(TypeError, match="edge_index"):
        conv(x, edge_index.float(), edge_attr)
    with pytest.raises(ValueError, match="edge_index"):
        conv(x, torch.tensor([[0, -1], [1, 2]]), edge_attr[:2])


def test_pyg_parity():
    pyg = pytest.importorskip("torch_geometric")
    x, edge_index = testing.random_graph(20, 70, 4, seed=7)
    edge_attr = torch.randn(70, 3)
    theirs = pyg.nn.CGConv(4, dim=3, aggr="mean", batch_norm=True)
    ours = CGConv(4, dim=3, aggr="mean", batch_norm=True)
    assert repr(ours) == repr(theirs)
    testing.assert_signatures_match(CGConv, type(theirs), defaults=False)
    testing.load_pyg_state(ours, theirs)
    ours.eval(), theirs.eval()
    testing.assert_close(ours(x, edge_index, edge_attr), theirs(x, edge_index, edge_attr))
    # training mode uses batch statistics in both
    ours.train(), theirs.train()
    testing.assert_close(ours(x, edge_index, edge_attr), theirs(x, edge_index, edge_attr))
    x_dst = torch.randn(20, 2)
    theirs, ours = pyg.nn.CGConv((4, 2), dim=0, bias=False), CGConv((4, 2), dim=0, bias=False)
    assert repr(ours) == repr(theirs)
    testing.load_pyg_state(ours, theirs)
    testing.assert_close(ours((x, x_dst), edge_index), theirs((x, x_dst), edge_index))


def test_empty_graph():
    conv = CGConv(3, dim=2)
    x, no_edges = torch.randn(5, 3), torch.empty(2, 0, dtype=torch.long)
    testing.assert_close(conv(x, no_edges, torch.empty(0, 2)), x)
    assert conv(torch.randn(0, 3), no_edges, torch.empty(0, 2)).shape == (0, 3)
