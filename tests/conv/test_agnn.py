"""AGNNConv: loop reference (cosine attention), PyG parity, formats, bad input."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from gnn.conv.agnn import AGNNConv
from gnn.core import testing

N, E, F_IN = 9, 36, 5


def graph(dtype=torch.float64):
    return testing.random_graph(N, E, F_IN, seed=0, dtype=dtype)


def reference(beta: float, x, edge_index, add_self_loops: bool):
    out = torch.zeros_like(x)
    for i in range(x.size(0)):
        nbrs = [int(edge_index[0, e]) for e in range(edge_index.size(1)) if int(edge_index[1, e]) == i]
        if add_self_loops:
            nbrs = [j for j in nbrs if j != i] + [i]
        if not nbrs:
            continue
        scores = torch.stack([beta * F.cosine_similarity(x[i], x[j], dim=0) for j in nbrs])
        alpha = torch.softmax(scores, 0)
        out[i] = sum(a * x[j] for a, j in zip(alpha, nbrs))
    return out


@pytest.mark.parametrize("add_self_loops", [True, False])
def test_matches_loop_reference(add_self_loops):
    conv = AGNNConv(add_self_loops=add_self_loops).double()
    with torch.no_grad():
        conv.beta.fill_(1.7)
    x, edge_index = graph()
    testing.assert_close(conv(x, edge_index), reference(1.7, x, edge_index, add_self_loops), atol=1e-10)


def test_beta_buffer_or_parameter():
    fixed = AGNNConv(requires_grad=False)
    assert "beta" in dict(fixed.named_buffers()) and not list(fixed.parameters())
    learn = AGNNConv()
    assert isinstance(learn.beta, torch.nn.Parameter) and float(learn.beta.detach()) == 1.0
    with torch.no_grad():
        learn.beta.fill_(3.0)
    learn.reset_parameters()
    assert float(learn.beta.detach()) == 1.0
    x, edge_index = graph(torch.float32)
    learn(x, edge_index).sum().backward()
    assert learn.beta.grad is not None


def test_formats_agree_and_permutation():
    conv = AGNNConv().double()
    x, edge_index = graph()
    testing.assert_formats_agree(lambda adj: conv(x, adj), edge_index, N, atol=1e-10)
    perm = torch.randperm(E, generator=torch.Generator().manual_seed(1))
    testing.assert_close(conv(x, edge_index[:, perm]), conv(x, edge_index), atol=1e-10)


def test_bad_input():
    conv = AGNNConv()
    x, edge_index = graph(torch.float32)
    with pytest.raises(TypeError, match="edge_index"):
        conv(x, edge_index.float())
    with pytest.raises(ValueError, match="edge_index"):
        conv(x, edge_index[:, :, None])
    with pytest.raises(ValueError, match="edge_index"):
        conv(x, torch.cat([edge_index, torch.tensor([[N], [0]])], 1))
    with pytest.raises(TypeError, match="x"):
        conv(None, edge_index)


@pytest.mark.parametrize("kwargs", [{}, dict(requires_grad=False), dict(add_self_loops=False)], ids=str)
def test_pyg_parity(kwargs):
    pyg = pytest.importorskip("torch_geometric")
    theirs, ours = pyg.nn.AGNNConv(**kwargs), AGNNConv(**kwargs)
    with torch.no_grad():
        theirs.beta.fill_(0.6)
    testing.load_pyg_state(ours, theirs)
    assert repr(ours) == repr(theirs)
    x, edge_index = graph(torch.float32)
    testing.assert_close(ours(x, edge_index), theirs(x, edge_index))
    testing.assert_signatures_match(AGNNConv, pyg.nn.AGNNConv, ("__init__",))
