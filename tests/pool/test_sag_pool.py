"""SAGPooling: dense reference, PyG parity, the GNN by class or registry name, gradients, bad input."""

from __future__ import annotations

import inspect
import math

import pytest
import torch

from gnn.conv import GCNConv, GraphConv
from gnn.core import testing
from gnn.pool import SAGPooling


def graph(seed=0, n=20, e=60, f=4, graphs=3, sort=True):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, f, generator=g, dtype=torch.float64)
    edge_index = torch.randint(0, n, (2, e), generator=g)
    batch = torch.randint(0, graphs, (n,), generator=g)
    return x, edge_index, batch.sort().values if sort else batch


def reference(pool: SAGPooling, x, edge_index, batch):
    """GraphConv score densely, then tanh(score * sign(w)) and the k best of each graph (loops)."""
    conv = pool.gnn
    adj = torch.zeros(x.size(0), x.size(0), dtype=torch.float64)
    for s, d in edge_index.t().tolist():
        adj[d, s] += 1.0
    with torch.no_grad():
        raw = (adj @ x @ conv.lin_rel.weight.t() + conv.lin_rel.bias + x @ conv.lin_root.weight.t()).view(-1)
    w = float(pool.select.weight.detach())
    score = torch.tanh(raw * w / abs(w))
    perm = []
    for g in sorted(set(batch.tolist())):
        nodes = sorted(
            (i for i in range(x.size(0)) if int(batch[i]) == g), key=lambda i: (-float(score[i]), i)
        )
        perm += nodes[: math.ceil(pool.ratio * len(nodes) - 1e-9)]
    perm = torch.tensor(perm)
    return x[perm] * score[perm].view(-1, 1), batch[perm], perm, score[perm]


@pytest.mark.parametrize("sort", [True, False])
def test_matches_dense_reference(sort):
    x, edge_index, batch = graph(sort=sort)
    pool = SAGPooling(4, ratio=0.4).double()
    out = pool(x, edge_index, batch=batch)
    expected = reference(pool, x, edge_index, batch)
    testing.assert_close((out[0], out[3], out[4], out[5]), expected)


@pytest.mark.parametrize(
    ("gnn", "pyg_gnn", "kwargs"),
    [
        (None, None, {}),
        ("GCNConv", "GCNConv", {}),
        ("sage", "SAGEConv", {}),
        (GraphConv, "GraphConv", {"aggr": "mean"}),
        ("graph", "GraphConv", {"min_score": 0.3}),
        ("GraphConv", "GraphConv", {"ratio": 3, "multiplier": 2.0, "nonlinearity": "sigmoid"}),
    ],
)
@pytest.mark.parametrize("sort", [True, False])
def test_matches_pyg(gnn, pyg_gnn, kwargs, sort):
    pyg = pytest.importorskip("torch_geometric.nn")
    x, edge_index, batch = graph(seed=2, sort=sort)
    edge_attr = torch.randn(edge_index.size(1), 2, dtype=torch.float64)
    extra = {k: v for k, v in kwargs.items() if k == "aggr"}
    pool_kwargs = {k: v for k, v in kwargs.items() if k != "aggr"}
    theirs = pyg.SAGPooling(
        4, **pool_kwargs, **({} if pyg_gnn is None else {"GNN": getattr(pyg, pyg_gnn)}), **extra
    )
    ours = SAGPooling(4, **pool_kwargs, **({} if gnn is None else {"GNN": gnn}), **extra)
    theirs, ours = theirs.double(), ours.double()
    testing.load_pyg_state(ours, theirs)
    assert repr(ours) == repr(theirs)
    x_ours, x_theirs = x.clone().requires_grad_(), x.clone().requires_grad_()
    out, expected = ours(x_ours, edge_index, edge_attr, batch), theirs(x_theirs, edge_index, edge_attr, batch)
    testing.assert_close(out, expected)
    out[0].square().sum().backward()
    expected[0].square().sum().backward()
    testing.assert_close(x_ours.grad, x_theirs.grad)
    grads = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        if grads[name].grad is None:
            assert p.grad is None, name
        else:
            testing.assert_close(p.grad, grads[name].grad, msg=name)
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in ours.gnn.parameters())


def test_signatures_and_gnn_resolution():
    pyg = pytest.importorskip("torch_geometric.nn")
    for name in ("__init__", "forward"):
        ours = inspect.signature(getattr(SAGPooling, name))
        theirs = inspect.signature(getattr(pyg.SAGPooling, name))
        assert list(ours.parameters) == list(theirs.parameters)
    defaults = inspect.signature(SAGPooling.__init__).parameters
    pyg_defaults = inspect.signature(pyg.SAGPooling.__init__).parameters
    for name in defaults:
        if name == "GNN":  # PyG's GraphConv class there, ours here
            assert defaults[name].default is GraphConv and pyg_defaults[name].default.__name__ == "GraphConv"
        else:
            assert defaults[name].default == pyg_defaults[name].default, name
    assert isinstance(SAGPooling(4, GNN="gcn").gnn, GCNConv)
    assert isinstance(SAGPooling(4, GNN="GCNConv").gnn, GCNConv)
    assert repr(SAGPooling(4, 0.3, GNN="gcn")) == "SAGPooling(GCNConv, 4, ratio=0.3, multiplier=1.0)"
    with pytest.raises(ValueError, match="unknown convs name"):
        SAGPooling(4, GNN="no_such_conv")
    with pytest.raises(TypeError, match="'GNN'"):
        SAGPooling(4, GNN=GraphConv(4, 1))


def test_empty_and_bad_inputs():
    pool = SAGPooling(3, ratio=2)
    out = pool(torch.zeros(0, 3), torch.zeros(2, 0, dtype=torch.long))
    assert out[0].shape == (0, 3) and out[4].numel() == 0
    x = torch.randn(4, 3)
    out = pool(x, torch.tensor([[0, 1], [1, 0]]), batch=torch.tensor([0, 0, 0, 2]))  # graph 1 empty
    assert out[3].tolist() == [0, 0, 2] and out[4][2] == 3  # 2 of graph 0's 3 nodes, graph 2's only
    with pytest.raises(ValueError, match="'batch'"):
        pool(x, torch.tensor([[0], [1]]), batch=torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="'ratio'"):
        SAGPooling(3, ratio=-1)
    with pytest.raises(ValueError, match="'GNN' must give one score per node"):
        SAGPooling(3, GNN="GATConv", heads=2)(x, torch.tensor([[0], [1]]))
