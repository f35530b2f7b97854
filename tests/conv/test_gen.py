"""GENConv against a per-node loop reference, PyG, sparse inputs and bad input."""

from __future__ import annotations

import copy

import pytest
import torch

from gnn.conv.gen import GENConv
from gnn.core import testing
from gnn.core.utils import is_sparse


def lin(module, x):
    out = x @ module.weight.t()
    return out + module.bias if module.bias is not None else out


def loop_reference(conv: GENConv, x_src, x_dst, edge_index, edge_attr, t=1.0, reduce="softmax"):
    """relu(x_j + e) + eps, softmax(t * m)-weighted sum or mean per node, msg norm, residual, MLP."""
    ref = copy.deepcopy(conv).double().eval()
    xs = x_src.double()
    xd = x_dst.double() if x_dst is not None else None
    with torch.no_grad():
        if hasattr(ref, "lin_src"):
            xs = lin(ref.lin_src, xs)
        n_dst = xd.size(0) if xd is not None else xs.size(0)
        agg = torch.zeros(n_dst, conv.out_channels, dtype=torch.float64)
        for i in range(n_dst):
            edges = (edge_index[1] == i).nonzero().view(-1)
            if edges.numel() == 0:
                continue
            m = xs[edge_index[0, edges]]
            if edge_attr is not None:
                e = edge_attr[edges].double()
                m = m + (lin(ref.lin_edge, e) if hasattr(ref, "lin_edge") else e)
            m = m.relu() + conv.eps
            if reduce == "softmax":
                agg[i] = (torch.softmax(t * m, dim=0) * m).sum(0)
            else:
                agg[i] = m.mean(0)
        if hasattr(ref, "msg_norm"):
            h = xd if xd is not None else xs
            agg = agg / agg.norm(dim=-1, keepdim=True) * h.norm(dim=-1, keepdim=True) * ref.msg_norm.scale
        if xd is not None:
            agg = agg + (lin(ref.lin_dst, xd) if hasattr(ref, "lin_dst") else xd)
        return ref.mlp(agg).float()


@pytest.mark.parametrize(
    "in_channels, options, t",
    [
        (4, dict(), 1.0),
        (6, dict(t=0.3, edge_dim=3, bias=True), 0.3),
        (6, dict(t=2.0, learn_t=True, edge_dim=6, msg_norm=True, norm="layer", num_layers=3), 2.0),
    ],
)
def test_softmax_matches_loop_reference(in_channels, options, t):
    x, edge_index = testing.random_graph(12, 40, in_channels, seed=1)
    edge_dim = options.get("edge_dim")
    edge_attr = torch.randn(40, edge_dim) if edge_dim else None
    conv = GENConv(in_channels, 6, **options).eval()
    expected = loop_reference(conv, x, x, edge_index, edge_attr, t=t)
    testing.assert_close(conv(x, edge_index, edge_attr), expected)


def test_mean_aggregation_and_bipartite():
    g = torch.Generator().manual_seed(2)
    x_src, x_dst = torch.randn(7, 4, generator=g), torch.randn(5, 3, generator=g)
    edge_index = torch.stack(
        [torch.randint(0, 7, (20,), generator=g), torch.randint(0, 5, (20,), generator=g)]
    )
    conv = GENConv((4, 3), 6, aggr="mean", norm=None).eval()
    out = conv((x_src, x_dst), edge_index)
    assert out.shape == (5, 6)
    testing.assert_close(out, loop_reference(conv, x_src, x_dst, edge_index, None, reduce="mean"))
    out = conv((x_src, None), edge_index, size=(7, 5))
    testing.assert_close(out, loop_reference(conv, x_src, None, edge_index, None, reduce="mean")[:5])


def test_sparse_formats_agree():
    x, edge_index = testing.random_graph(10, 30, 4, seed=3)
    conv = GENConv(4, 4, learn_t=True).eval()
    # without edge_dim the 1-D values of the sparse forms are ignored
    testing.assert_formats_agree(lambda adj: conv(x, adj), edge_index, 10)
    weight = torch.randn(30)
    conv = GENConv(4, 4, edge_dim=1).eval()
    testing.assert_formats_agree(
        lambda adj: conv(x, adj, None if is_sparse(adj) else weight.view(-1, 1)),
        edge_index,
        10,
        edge_weight=weight,
    )


def test_edge_permutation_invariance():
    x, edge_index = testing.random_graph(14, 45, 4, seed=4)
    edge_attr = torch.randn(45, 2)
    conv = GENConv(4, 4, edge_dim=2, aggr="powermean", learn_p=True).eval()
    perm = torch.randperm(45, generator=torch.Generator().manual_seed(0))
    testing.assert_close(conv(x, edge_index[:, perm], edge_attr[perm]), conv(x, edge_index, edge_attr))


def test_lazy_in_channels():
    x, edge_index = testing.random_graph(10, 30, 5, seed=5)
    conv = GENConv(-1, 4).eval()
    out = conv(x, edge_index)
    assert conv.lin_src.weight.shape == (4, 5) and conv.lin_dst.weight.shape == (4, 5)
    testing.assert_close(out, loop_reference(conv, x, x, edge_index, None))


def test_reset_parameters():
    conv = GENConv(3, 4, edge_dim=2, bias=True, msg_norm=True, learn_msg_scale=True, learn_t=True)
    for p in conv.parameters():
        torch.nn.init.constant_(p, 7.0)
    conv.reset_parameters()
    assert conv.msg_norm.scale.item() == 1.0
    assert conv.aggr_module.t.item() == 1.0
    assert torch.equal(conv.mlp[1].weight, torch.ones(8))
    for name in ("lin_src.weight", "lin_dst.weight", "lin_edge.weight", "mlp.0.weight", "mlp.4.weight"):
        p = conv.get_parameter(name)
        assert p.abs().max() < 7.0 and p.std() > 0, name


def test_bad_input():
    x, edge_index = testing.random_graph(10, 30, 4, seed=6)
    conv = GENConv(4, 4, edge_dim=2)
    edge_attr = torch.randn(30, 2)
    with pytest.raises(ValueError, match="x"):
        conv(torch.randn(10, 5), edge_index, edge_attr)
    with pytest.raises(ValueError, match="edge_attr"):
        conv(x, edge_index, edge_attr[:-1])
    with pytest.raises(ValueError, match="edge_attr"):
        conv(x, edge_index, torch.randn(30, 3))
    with pytest.raises(ValueError, match="edge_attr"):
        GENConv(4, 8)(x, edge_index, edge_attr)
    with pytest.raises(ValueError, match="edge_index"):
        conv(x, edge_index[:1], edge_attr)
    with pytest.raises(TypeError, match="edge_index"):
        conv(x, edge_index.float(), edge_attr)
    with pytest.raises(ValueError, match="edge_index"):
        conv(x, torch.tensor([[0, 10], [1, 2]]), edge_attr[:2])
    with pytest.raises(ValueError, match="norm"):
        GENConv(4, 4, norm="group")


@pytest.mark.filterwarnings("ignore:input's size at dim=0 does not match num_features")
@pytest.mark.parametrize(
    "args, options",
    [
        ((8, 8), dict(aggr="softmax", t=0.5, learn_t=True, edge_dim=3, bias=True)),
        (
            (8, 6),
            dict(aggr="powermean", p=2.0, learn_p=True, msg_norm=True, learn_msg_scale=True, edge_dim=3),
        ),
        ((8, 6), dict(aggr="softmax_sg", norm="instance", expansion=3, num_layers=3)),
        ((8, 6), dict(aggr=["softmax", "mean", "max"], norm="layer")),
        (((8, 5), 6), dict(aggr="power", p=1.5, edge_dim=6)),
    ],
)
def test_pyg_parity(args, options):
    pyg = pytest.importorskip("torch_geometric")
    x, edge_index = testing.random_graph(20, 70, 8, seed=7)
    edge_attr = torch.randn(70, options["edge_dim"]) if "edge_dim" in options else None
    theirs, ours = pyg.nn.GENConv(*args, **options), GENConv(*args, **options)
    assert repr(ours) == repr(theirs)
    testing.assert_signatures_match(GENConv, type(theirs), defaults=False)
    testing.load_pyg_state(ours, theirs)
    if isinstance(args[0], tuple):
        x = (x, torch.randn(20, args[0][1]))
    for mode in ("eval", "train"):
        getattr(ours, mode)(), getattr(theirs, mode)()
        testing.assert_close(ours(x, edge_index, edge_attr), theirs(x, edge_index, edge_attr))


def test_empty_graph():
    conv = GENConv(4, 4, edge_dim=2).eval()
    x, no_edges, no_attr = torch.randn(5, 4), torch.empty(2, 0, dtype=torch.long), torch.empty(0, 2)
    testing.assert_close(conv(x, no_edges, no_attr), loop_reference(conv, x, x, no_edges, no_attr))
    assert conv(torch.randn(0, 4), no_edges, no_attr).shape == (0, 4)
