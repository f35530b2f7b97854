"""ResGatedGraphConv: loop reference, PyG parity, edge features, bipartite, formats, bad input."""

from __future__ import annotations

import inspect

import pytest
import torch

from gnn.conv.res_gated import ResGatedGraphConv
from gnn.core import testing
from gnn.core.utils import is_sparse

N, E, F_IN, C = 9, 36, 5, 4


def graph(dtype=torch.float64):
    x, edge_index = testing.random_graph(N, E, F_IN, seed=0, dtype=dtype)
    return x, edge_index, torch.randn(E, 2, generator=torch.Generator().manual_seed(1), dtype=dtype)


def lin(layer, x):
    return x @ layer.weight.T + (layer.bias if layer.bias is not None else 0)


def reference(conv, x_src, edge_index, edge_attr=None, x_dst=None):
    x_dst = x_src if x_dst is None else x_dst
    act = conv.act if conv.act is not None else (lambda t: t)
    out = torch.zeros(x_dst.size(0), conv.out_channels, dtype=x_src.dtype)
    for e in range(edge_index.size(1)):
        j, i = int(edge_index[0, e]), int(edge_index[1, e])
        xi, xj = x_dst[i], x_src[j]
        if edge_attr is not None:
            xi, xj = torch.cat([xi, edge_attr[e]]), torch.cat([xj, edge_attr[e]])
        out[i] += act(lin(conv.lin_key, xi) + lin(conv.lin_query, xj)) * lin(conv.lin_value, xj)
    if conv.lin_skip is not None:
        out = out + x_dst @ conv.lin_skip.weight.T
    if conv.bias is not None:
        out = out + conv.bias
    return out


CONFIGS = [{}, dict(edge_dim=2), dict(root_weight=False, bias=False, act=torch.nn.Tanh()), dict(act=None)]


@pytest.mark.parametrize("kwargs", CONFIGS, ids=str)
def test_matches_loop_reference(kwargs):
    torch.manual_seed(0)
    conv = ResGatedGraphConv(F_IN, C, **kwargs).double()
    with torch.no_grad():
        if conv.bias is not None:
            conv.bias.normal_()
    x, edge_index, edge_attr = graph()
    ea = edge_attr if "edge_dim" in kwargs else None
    testing.assert_close(conv(x, edge_index, ea), reference(conv, x, edge_index, ea), atol=1e-10)


def test_bipartite_matches_loop_reference():
    torch.manual_seed(0)
    conv = ResGatedGraphConv((F_IN, 3), C, edge_dim=2).double()
    g = torch.Generator().manual_seed(3)
    x_src, x_dst = torch.randn(7, F_IN, generator=g).double(), torch.randn(5, 3, generator=g).double()
    edge_index = torch.stack(
        [torch.randint(0, 7, (20,), generator=g), torch.randint(0, 5, (20,), generator=g)]
    )
    ea = torch.randn(20, 2, generator=g).double()
    expected = reference(conv, x_src, edge_index, ea, x_dst)
    testing.assert_close(conv((x_src, x_dst), edge_index, ea), expected, atol=1e-10)


def test_formats_and_permutation():
    conv = ResGatedGraphConv(F_IN, C).double()
    x, edge_index, edge_attr = graph()
    testing.assert_formats_agree(lambda adj: conv(x, adj), edge_index, N, atol=1e-10)
    conv = ResGatedGraphConv(F_IN, C, edge_dim=1).double()
    w = edge_attr[:, 0].contiguous()
    testing.assert_formats_agree(
        lambda adj: conv(x, adj, None if is_sparse(adj) else w), edge_index, N, edge_weight=w, atol=1e-10
    )
    perm = torch.randperm(E, generator=torch.Generator().manual_seed(2))
    testing.assert_close(conv(x, edge_index[:, perm], w[perm]), conv(x, edge_index, w), atol=1e-10)


def test_lazy_and_reset():
    torch.manual_seed(0)
    lazy = ResGatedGraphConv(-1, C).double()
    x, edge_index, _ = graph()
    out = lazy(x, edge_index)
    eager = ResGatedGraphConv(F_IN, C).double()
    eager.load_state_dict(lazy.state_dict())
    testing.assert_close(eager(x, edge_index), out)
    torch.manual_seed(1)
    eager.reset_parameters()
    first = {k: v.clone() for k, v in eager.state_dict().items()}
    torch.manual_seed(1)
    eager.reset_parameters()
    assert all(torch.equal(v, first[k]) for k, v in eager.state_dict().items())
    assert torch.equal(eager.bias, torch.zeros(C, dtype=torch.float64))


def test_bad_input():
    conv = ResGatedGraphConv(F_IN, C)
    x, edge_index, _ = graph(torch.float32)
    with pytest.raises(TypeError, match="edge_index"):
        conv(x, edge_index.float())
    with pytest.raises(ValueError, match="edge_index"):
        conv(x, torch.cat([edge_index, torch.tensor([[N], [0]])], 1))
    with pytest.raises(ValueError, match="x"):
        conv(torch.randn(N, 2), edge_index)
    with pytest.raises(ValueError, match="edge_attr"):
        conv(x, edge_index, torch.randn(E, 2))
    with pytest.raises(ValueError, match="edge_attr"):
        ResGatedGraphConv(F_IN, C, edge_dim=2)(x, edge_index)
    with pytest.raises(ValueError, match="edge_attr"):
        ResGatedGraphConv(F_IN, C, edge_dim=2)(x, edge_index, torch.randn(E - 2, 2))


@pytest.mark.parametrize("kwargs", CONFIGS[:3], ids=str)  # PyG cannot run act=None
def test_pyg_parity(kwargs):
    pyg = pytest.importorskip("torch_geometric")
    torch.manual_seed(0)
    theirs, ours = pyg.nn.ResGatedGraphConv((F_IN, 3), C, **kwargs), ResGatedGraphConv((F_IN, 3), C, **kwargs)
    testing.load_pyg_state(ours, theirs)
    assert repr(ours) == repr(theirs)
    g = torch.Generator().manual_seed(3)
    x_src, x_dst = torch.randn(7, F_IN, generator=g), torch.randn(5, 3, generator=g)
    edge_index = torch.stack(
        [torch.randint(0, 7, (20,), generator=g), torch.randint(0, 5, (20,), generator=g)]
    )
    ea = torch.randn(20, 2, generator=g) if "edge_dim" in kwargs else None
    testing.assert_close(ours((x_src, x_dst), edge_index, ea), theirs((x_src, x_dst), edge_index, ea))
    theirs, ours = pyg.nn.ResGatedGraphConv(F_IN, C, **kwargs), ResGatedGraphConv(F_IN, C, **kwargs)
    testing.load_pyg_state(ours, theirs)
    x, edge_index, edge_attr = graph(torch.float32)
    ea = edge_attr if "edge_dim" in kwargs else None
    testing.assert_close(ours(x, edge_index, ea), theirs(x, edge_index, ea))


def test_pyg_signature():
    pyg = pytest.importorskip("torch_geometric")
    ours = inspect.signature(ResGatedGraphConv.__init__).parameters.values()
    theirs = inspect.signature(pyg.nn.ResGatedGraphConv.__init__).parameters.values()
    assert [(p.name, repr(p.default)) for p in ours] == [(p.name, repr(p.default)) for p in theirs]
