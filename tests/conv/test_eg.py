"""EGConv: dense reference (bases x aggregators x per-node head weights), PyG parity, caching, bad input."""

from __future__ import annotations

import pytest
import torch

from gnn.conv.eg import EGConv
from gnn.core import testing

N, E, F_IN = 9, 36, 5
ALL = ["sum", "mean", "symnorm", "max", "min", "var", "std"]


def graph(dtype=torch.float64):
    return testing.random_graph(N, E, F_IN, seed=0, dtype=dtype)


def reference(conv: EGConv, x, edge_index):
    """Neighbour lists with one self loop per node (given loops kept), every aggregator by hand."""
    src, dst = edge_index.tolist()
    edges = list(zip(src, dst))
    if conv.add_self_loops:
        edges = [(j, i) for j, i in edges if i != j] + [(i, i) for i in range(N)]
    deg = [sum(1 for _, i in edges if i == n) for n in range(N)]
    bases = x @ conv.bases_lin.weight.T  # [N, B * F']
    A, B, H = len(conv.aggregators), conv.num_bases, conv.num_heads
    fo = conv.out_channels // H
    out = torch.zeros(N, conv.out_channels, dtype=x.dtype)
    weights = (x @ conv.comb_lin.weight.T + conv.comb_lin.bias).view(N, H, A * B)
    for i in range(N):
        rows = [(j, bases[j]) for j, t in edges if t == i]
        per_aggr = []
        for name in conv.aggregators:
            if not rows:
                per_aggr.append(torch.zeros(B * fo, dtype=x.dtype))
                continue
            stack = torch.stack([b for _, b in rows])
            if name == "sum":
                per_aggr.append(stack.sum(0))
            elif name == "mean":
                per_aggr.append(stack.mean(0))
            elif name == "max":
                per_aggr.append(stack.max(0).values)
            elif name == "min":
                per_aggr.append(stack.min(0).values)
            elif name == "symnorm":
                per_aggr.append(sum(b / (deg[i] * deg[j]) ** 0.5 for j, b in rows))
            else:
                var = stack.var(0, unbiased=False)
                per_aggr.append(var if name == "var" else var.clamp(min=1e-5).sqrt())
        agg = torch.stack(per_aggr).view(A * B, fo)  # (aggregator, basis) rows
        out[i] = (weights[i] @ agg).reshape(-1)
    return out + conv.bias if conv.bias is not None else out


CONFIGS = [
    ((F_IN, 16), {}),
    ((F_IN, 8), dict(aggregators=ALL, num_heads=2, num_bases=3)),
    ((F_IN, 6), dict(aggregators=["max", "std", "mean"], num_heads=3, add_self_loops=False, bias=False)),
]


@pytest.mark.parametrize("args, kwargs", CONFIGS, ids=str)
def test_matches_loop_reference(args, kwargs):
    torch.manual_seed(0)
    conv = EGConv(*args, **kwargs).double()
    with torch.no_grad():
        if conv.bias is not None:
            conv.bias.normal_()
    x, edge_index = graph()
    testing.assert_close(conv(x, edge_index), reference(conv, x, edge_index), atol=1e-9)


def test_formats_permutation_cache():
    conv = EGConv(F_IN, 8, aggregators=["symnorm", "max", "std"], num_heads=2).double()
    x, edge_index = graph()
    testing.assert_formats_agree(lambda adj: conv(x, adj), edge_index, N, atol=1e-9)
    perm = torch.randperm(E, generator=torch.Generator().manual_seed(2))
    testing.assert_close(conv(x, edge_index[:, perm]), conv(x, edge_index), atol=1e-9)
    cached = EGConv(F_IN, 8, cached=True, num_heads=2).double()
    out = cached(x, edge_index)
    testing.assert_close(cached(x, edge_index), out)
    assert cached._cached_edge_index is not None  # PyG's attribute
    other = EGConv(F_IN, 8, num_heads=2).double()
    other.load_state_dict(cached.state_dict())
    # another graph is looped again (PyG would reuse the first)
    testing.assert_close(cached(x, edge_index.flip(0)), other(x, edge_index.flip(0)))
    cached.reset_parameters()
    assert cached._cached_edge_index is None
    fresh = EGConv(F_IN, 8, num_heads=2).double()
    fresh.load_state_dict(cached.state_dict())
    testing.assert_close(cached(x, edge_index.flip(0)), fresh(x, edge_index.flip(0)))


def test_lazy_and_reset():
    torch.manual_seed(0)
    lazy = EGConv(-1, 8, num_heads=2).double()
    x, edge_index = graph()
    out = lazy(x, edge_index)
    eager = EGConv(F_IN, 8, num_heads=2).double()
    eager.load_state_dict(lazy.state_dict())
    testing.assert_close(eager(x, edge_index), out)
    torch.manual_seed(1)
    eager.reset_parameters()
    first = {k: v.clone() for k, v in eager.state_dict().items()}
    torch.manual_seed(1)
    eager.reset_parameters()
    assert all(torch.equal(v, first[k]) for k, v in eager.state_dict().items())


def test_bad_input():
    with pytest.raises(ValueError, match="out_channels"):
        EGConv(F_IN, 10, num_heads=4)
    with pytest.raises(ValueError, match="aggregators"):
        EGConv(F_IN, 8, aggregators=["median"])
    conv = EGConv(F_IN, 8)
    x, edge_index = graph(torch.float32)
    with pytest.raises(TypeError, match="edge_index"):
        conv(x, edge_index.float())
    with pytest.raises(ValueError, match="edge_index"):
        conv(x, torch.cat([edge_index, torch.tensor([[N], [0]])], 1))
    with pytest.raises(ValueError, match="x"):
        conv(torch.randn(N, 2), edge_index)


@pytest.mark.parametrize("args, kwargs", CONFIGS, ids=str)
def test_pyg_parity(args, kwargs):
    pyg = pytest.importorskip("torch_geometric")
    torch.manual_seed(0)
    theirs, ours = pyg.nn.EGConv(*args, **kwargs), EGConv(*args, **kwargs)
    testing.load_pyg_state(ours, theirs)
    assert repr(ours) == repr(theirs)
    x, edge_index = graph(torch.float32)
    testing.assert_close(ours(x, edge_index), theirs(x, edge_index))
    testing.assert_signatures_match(EGConv, pyg.nn.EGConv, ("__init__",))


def test_int32_indices_and_zero_nodes():
    conv = EGConv(F_IN, 8, aggregators=["symnorm", "std"], num_heads=2)
    x, edge_index = graph(torch.float32)
    testing.assert_close(conv(x, edge_index.int()), conv(x, edge_index))
    assert conv(x[:0], edge_index[:, :0]).shape == (0, 8)
