"""FiLMConv: loop reference (per-relation modulation), PyG parity, bipartite, formats, bad input."""

from __future__ import annotations

import inspect

import pytest
import torch

from gnn.conv.film import FiLMConv
from gnn.core import testing
from gnn.core.utils import is_sparse

N, E, F_IN, C = 9, 36, 5, 4


def graph(dtype=torch.float64, num_relations=3):
    x, edge_index = testing.random_graph(N, E, F_IN, seed=0, dtype=dtype)
    return x, edge_index, torch.randint(0, num_relations, (E,), generator=torch.Generator().manual_seed(1))


def apply(module, x):
    if (
        isinstance(module, torch.nn.Linear)
        or hasattr(module, "weight")
        and not isinstance(module, torch.nn.Sequential)
    ):
        return x @ module.weight.T + (module.bias if module.bias is not None else 0)
    return module(x)


def reference(conv: FiLMConv, x_src, edge_index, edge_type, x_dst=None, aggr="mean"):
    x_dst = x_src if x_dst is None else x_dst
    act = conv.act if conv.act is not None else (lambda t: t)
    beta, gamma = apply(conv.film_skip, x_dst).split(C, -1)
    out = act(gamma * (x_dst @ conv.lin_skip.weight.T) + beta)
    for r in range(conv.num_relations):
        h = x_src @ conv.lins[r].weight.T
        beta, gamma = apply(conv.films[r], x_dst).split(C, -1)
        for i in range(x_dst.size(0)):
            msgs = [
                act(gamma[i] * h[int(edge_index[0, e])] + beta[i])
                for e in range(edge_index.size(1))
                if int(edge_index[1, e]) == i and (conv.num_relations == 1 or int(edge_type[e]) == r)
            ]
            if msgs:
                stack = torch.stack(msgs)
                out[i] = out[i] + (stack.mean(0) if aggr == "mean" else stack.sum(0))
    return out


CONFIGS = [
    dict(),
    dict(num_relations=3),
    dict(num_relations=3, act=None, aggr="sum"),
    dict(num_relations=2, nn=torch.nn.Sequential(torch.nn.Linear(F_IN, 2 * C), torch.nn.Tanh())),
]


@pytest.mark.parametrize("kwargs", CONFIGS, ids=str)
def test_matches_loop_reference(kwargs):
    torch.manual_seed(0)
    conv = FiLMConv(F_IN, C, **kwargs).double()
    x, edge_index, edge_type = graph(num_relations=conv.num_relations)
    expected = reference(conv, x, edge_index, edge_type, aggr=kwargs.get("aggr", "mean"))
    testing.assert_close(conv(x, edge_index, edge_type), expected, atol=1e-10)


def test_nn_is_copied_per_relation():
    nn = torch.nn.Linear(F_IN, 2 * C)
    conv = FiLMConv(F_IN, C, num_relations=2, nn=nn)
    assert conv.films[0] is not nn and conv.films[0] is not conv.films[1] and conv.film_skip is not nn


def test_bipartite_formats_permutation():
    torch.manual_seed(0)
    conv = FiLMConv((F_IN, 3), C, num_relations=2).double()
    g = torch.Generator().manual_seed(3)
    x_src, x_dst = torch.randn(7, F_IN, generator=g).double(), torch.randn(5, 3, generator=g).double()
    ei = torch.stack([torch.randint(0, 7, (20,), generator=g), torch.randint(0, 5, (20,), generator=g)])
    et = torch.randint(0, 2, (20,), generator=g)
    testing.assert_close(conv((x_src, x_dst), ei, et), reference(conv, x_src, ei, et, x_dst), atol=1e-10)
    single = FiLMConv((F_IN, 3), C).double()
    testing.assert_formats_agree(lambda adj: single((x_src, x_dst), adj), ei, (7, 5), atol=1e-10)
    perm = torch.randperm(20, generator=g)
    testing.assert_close(
        conv((x_src, x_dst), ei[:, perm], et[perm]), conv((x_src, x_dst), ei, et), atol=1e-10
    )


def test_sparse_values_as_edge_type():
    conv = FiLMConv(F_IN, C, num_relations=3).double()
    x, edge_index, edge_type = graph()
    testing.assert_formats_agree(
        lambda adj: conv(x, adj, None if is_sparse(adj) else edge_type),
        edge_index,
        N,
        edge_weight=edge_type,
        atol=1e-10,
    )


def test_lazy_and_reset():
    torch.manual_seed(0)
    lazy = FiLMConv(-1, C, num_relations=2).double()
    x, edge_index, edge_type = graph(num_relations=2)
    out = lazy(x, edge_index, edge_type)
    eager = FiLMConv(F_IN, C, num_relations=2).double()
    eager.load_state_dict(lazy.state_dict())
    testing.assert_close(eager(x, edge_index, edge_type), out)
    torch.manual_seed(1)
    eager.reset_parameters()
    first = {k: v.clone() for k, v in eager.state_dict().items()}
    torch.manual_seed(1)
    eager.reset_parameters()
    assert all(torch.equal(v, first[k]) for k, v in eager.state_dict().items())


def test_bad_input():
    conv = FiLMConv(F_IN, C, num_relations=3)
    x, edge_index, edge_type = graph(torch.float32)
    with pytest.raises(ValueError, match="edge_type"):
        conv(x, edge_index)
    with pytest.raises(ValueError, match="edge_type"):
        conv(x, edge_index, edge_type[:-1])
    with pytest.raises(ValueError, match="edge_type"):
        conv(x, edge_index, edge_type + 3)
    with pytest.raises(TypeError, match="edge_type"):
        conv(x, edge_index, edge_type.float())
    with pytest.raises(TypeError, match="edge_index"):
        conv(x, edge_index.float(), edge_type)
    with pytest.raises(ValueError, match="edge_index"):
        conv(x, torch.cat([edge_index, torch.tensor([[N], [0]])], 1), torch.cat([edge_type, edge_type[:1]]))
    with pytest.raises(ValueError, match="x"):
        conv(torch.randn(N, 2), edge_index, edge_type)


@pytest.mark.parametrize("kwargs", CONFIGS, ids=str)
def test_pyg_parity(kwargs):
    pyg = pytest.importorskip("torch_geometric")
    torch.manual_seed(0)
    theirs, ours = pyg.nn.FiLMConv(F_IN, C, **kwargs), FiLMConv(F_IN, C, **kwargs)
    testing.load_pyg_state(ours, theirs)
    assert repr(ours) == repr(theirs)
    x, edge_index, edge_type = graph(torch.float32, ours.num_relations)
    testing.assert_close(ours(x, edge_index, edge_type), theirs(x, edge_index, edge_type))


def test_pyg_parity_bipartite_and_signature():
    pyg = pytest.importorskip("torch_geometric")
    torch.manual_seed(0)
    theirs, ours = pyg.nn.FiLMConv((F_IN, 3), C, num_relations=2), FiLMConv((F_IN, 3), C, num_relations=2)
    testing.load_pyg_state(ours, theirs)
    g = torch.Generator().manual_seed(3)
    x_src, x_dst = torch.randn(7, F_IN, generator=g), torch.randn(5, 3, generator=g)
    ei = torch.stack([torch.randint(0, 7, (20,), generator=g), torch.randint(0, 5, (20,), generator=g)])
    et = torch.randint(0, 2, (20,), generator=g)
    testing.assert_close(ours((x_src, x_dst), ei, et), theirs((x_src, x_dst), ei, et))
    ours_sig = inspect.signature(FiLMConv.__init__).parameters.values()
    theirs_sig = inspect.signature(pyg.nn.FiLMConv.__init__).parameters.values()
    assert [(p.name, repr(p.default)) for p in ours_sig] == [(p.name, repr(p.default)) for p in theirs_sig]
