"""GeneralConv: loop reference (messages, attention, heads, skip), PyG parity, formats, bad input."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from gnn.conv.general import GeneralConv
from gnn.core import testing
from gnn.core.utils import is_sparse

N, E, F_IN, C = 9, 36, 5, 4


def graph(dtype=torch.float64):
    x, edge_index = testing.random_graph(N, E, F_IN, seed=0, dtype=dtype)
    return x, edge_index, torch.randn(E, 3, generator=torch.Generator().manual_seed(1), dtype=dtype)


def lin(layer, x):
    return x @ layer.weight.T + (layer.bias if layer.bias is not None else 0)


def reference(conv, x_src, edge_index, edge_attr=None, x_dst=None):
    x_dst = x_src if x_dst is None else x_dst
    H, Cc = conv.heads, conv.out_channels

    def msg(xi, xj, e):
        m = lin(conv.lin_msg, xj)
        if conv.lin_msg_i is not None:
            m = m + lin(conv.lin_msg_i, xi)
        if e is not None:
            m = m + lin(conv.lin_edge, e)
        return m.view(H, Cc)

    reduce = {"add": lambda t: t.sum(0), "mean": lambda t: t.mean(0), "max": lambda t: t.max(0).values}
    out = torch.zeros(x_dst.size(0), H, Cc, dtype=x_src.dtype)
    for i in range(x_dst.size(0)):
        es = [e for e in range(edge_index.size(1)) if int(edge_index[1, e]) == i]
        if not es:
            continue
        ea = [None if edge_attr is None else edge_attr[e] for e in es]
        msgs = torch.stack([msg(x_dst[i], x_src[int(edge_index[0, e])], a) for e, a in zip(es, ea)])
        if conv.attention:
            if conv.attention_type == "additive":
                s = (msgs * conv.att_msg[0]).sum(-1)
            else:
                rev = torch.stack([msg(x_src[int(edge_index[0, e])], x_dst[i], a) for e, a in zip(es, ea)])
                s = (msgs * rev).sum(-1) / math.sqrt(Cc)
            alpha = torch.softmax(F.leaky_relu(s, 0.2), 0)
            msgs = msgs * alpha.unsqueeze(-1)
        out[i] = reduce[conv.aggr](msgs)
    out = out.mean(1)
    skip = (
        lin(conv.lin_self, x_dst)
        if isinstance(conv.lin_self, torch.nn.Module) and hasattr(conv.lin_self, "weight")
        else x_dst
    )
    out = out + skip
    return F.normalize(out, dim=-1) if conv.normalize_l2 else out


CONFIGS = [
    ((F_IN, C), {}),
    ((F_IN, F_IN), {}),
    ((F_IN, C), dict(in_edge_channels=3, heads=2, attention=True)),
    ((F_IN, C), dict(in_edge_channels=3, heads=2, attention=True, attention_type="dot_product")),
    ((F_IN, C), dict(directed_msg=False, attention=True, attention_type="dot_product", aggr="mean")),
    ((F_IN, F_IN), dict(skip_linear=True, aggr="max", l2_normalize=True, bias=False, heads=3)),
]


@pytest.mark.parametrize("args, kwargs", CONFIGS, ids=str)
def test_matches_loop_reference(args, kwargs):
    torch.manual_seed(0)
    conv = GeneralConv(*args, **kwargs).double()
    x, edge_index, edge_attr = graph()
    ea = edge_attr if "in_edge_channels" in kwargs else None
    testing.assert_close(conv(x, edge_index, ea), reference(conv, x, edge_index, ea), atol=1e-10)


def test_identity_skip_and_default_out_channels():
    conv = GeneralConv(F_IN, F_IN)
    assert isinstance(conv.lin_self, torch.nn.Identity)
    assert GeneralConv(F_IN, None).out_channels == F_IN


def test_bipartite_formats_permutation():
    torch.manual_seed(0)
    conv = GeneralConv((F_IN, 3), C, heads=2, attention=True, directed_msg=False).double()
    g = torch.Generator().manual_seed(3)
    x_src, x_dst = torch.randn(7, F_IN, generator=g).double(), torch.randn(5, 3, generator=g).double()
    ei = torch.stack([torch.randint(0, 7, (20,), generator=g), torch.randint(0, 5, (20,), generator=g)])
    # directed_msg=False applies lin_msg_i to the target features: needs F_src == F_dst
    with pytest.raises(ValueError, match="x"):
        conv((x_src, x_dst), ei)
    conv = GeneralConv((F_IN, 3), C, heads=2, attention=True).double()
    testing.assert_close(conv((x_src, x_dst), ei), reference(conv, x_src, ei, x_dst=x_dst), atol=1e-10)
    testing.assert_formats_agree(lambda adj: conv((x_src, x_dst), adj), ei, (7, 5), atol=1e-10)
    conv = GeneralConv(F_IN, C, in_edge_channels=1, attention=True).double()
    x, edge_index, edge_attr = graph()
    w = edge_attr[:, 0].contiguous()
    testing.assert_formats_agree(
        lambda adj: conv(x, adj, None if is_sparse(adj) else w), edge_index, N, edge_weight=w, atol=1e-10
    )
    perm = torch.randperm(E, generator=torch.Generator().manual_seed(2))
    testing.assert_close(conv(x, edge_index[:, perm], w[perm]), conv(x, edge_index, w), atol=1e-10)


def test_lazy_and_reset():
    torch.manual_seed(0)
    lazy = GeneralConv(-1, C, attention=True).double()
    x, edge_index, _ = graph()
    out = lazy(x, edge_index)
    eager = GeneralConv(F_IN, C, attention=True).double()
    eager.load_state_dict(lazy.state_dict())
    testing.assert_close(eager(x, edge_index), out)
    torch.manual_seed(1)
    eager.reset_parameters()
    first = {k: v.clone() for k, v in eager.state_dict().items()}
    torch.manual_seed(1)
    eager.reset_parameters()
    assert all(torch.equal(v, first[k]) for k, v in eager.state_dict().items())


def test_bad_input():
    conv = GeneralConv(F_IN, C, in_edge_channels=3)
    x, edge_index, edge_attr = graph(torch.float32)
    with pytest.raises(ValueError, match="attention_type"):
        GeneralConv(F_IN, C, attention=True, attention_type="cosine")
    with pytest.raises(TypeError, match="edge_index"):
        conv(x, edge_index.float())
    with pytest.raises(ValueError, match="edge_index"):
        conv(x, torch.cat([edge_index, torch.tensor([[N], [0]])], 1))
    with pytest.raises(ValueError, match="x"):
        conv(torch.randn(N, 1), edge_index)
    with pytest.raises(ValueError, match="edge_attr"):
        conv(x, edge_index, edge_attr[:-1])


@pytest.mark.parametrize("args, kwargs", [c for c in CONFIGS], ids=str)
def test_pyg_parity(args, kwargs):
    pyg = pytest.importorskip("torch_geometric")
    torch.manual_seed(0)
    theirs, ours = pyg.nn.GeneralConv(*args, **kwargs), GeneralConv(*args, **kwargs)
    testing.load_pyg_state(ours, theirs)
    assert repr(ours) == repr(theirs)
    x, edge_index, edge_attr = graph(torch.float32)
    ea = edge_attr if "in_edge_channels" in kwargs else None
    testing.assert_close(ours(x, edge_index, ea), theirs(x, edge_index, ea))


def test_pyg_parity_bipartite_and_signature():
    pyg = pytest.importorskip("torch_geometric")
    torch.manual_seed(0)
    theirs = pyg.nn.GeneralConv((F_IN, 3), C, heads=2, attention=True, skip_linear=True)
    ours = GeneralConv((F_IN, 3), C, heads=2, attention=True, skip_linear=True)
    testing.load_pyg_state(ours, theirs)
    g = torch.Generator().manual_seed(3)
    x_src, x_dst = torch.randn(7, F_IN, generator=g), torch.randn(5, 3, generator=g)
    ei = torch.stack([torch.randint(0, 7, (20,), generator=g), torch.randint(0, 5, (20,), generator=g)])
    testing.assert_close(ours((x_src, x_dst), ei), theirs((x_src, x_dst), ei))
    testing.assert_signatures_match(GeneralConv, pyg.nn.GeneralConv, ("__init__",))
