"""ASAPooling: a dense reference, PyG parity, both coarsening methods, gradients, bad input."""

from __future__ import annotations

import inspect
import math

import pytest
import torch
import torch.nn.functional as F

from gnn.conv import GCNConv
from gnn.core import testing
from gnn.pool import ASAPooling
from gnn.pool.select import coarsen as coarsen_module


def graph(seed=0, n=24, e=150, f=4, graphs=3, sort=True, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, f, generator=g, dtype=dtype)
    batch = torch.randint(0, graphs, (n,), generator=g)
    batch = batch.sort().values if sort else batch
    edge_index = torch.randint(0, n, (2, e), generator=g)
    edge_index = edge_index[:, batch[edge_index[0]] == batch[edge_index[1]]]
    edge_index = torch.cat([edge_index, torch.tensor([[2], [2]])], 1)  # an existing self loop
    edge_index = torch.unique(edge_index, dim=1)  # no duplicates: the dense reference merges them
    return x, edge_index, batch, torch.rand(edge_index.size(1), generator=g, dtype=dtype) + 0.1


def canonical(edge_index, weight, num_nodes, loops_last=False):
    """Edges sorted by (row, col) (self loops last when asked): PyG's order within a row follows
    its sparse matrix product."""
    key = edge_index[0] * num_nodes + edge_index[1]
    if loops_last:
        key = key + (edge_index[0] == edge_index[1]).long() * num_nodes * num_nodes
    order = torch.argsort(key)
    return edge_index[:, order], None if weight is None else weight[order]


def reference(pool: ASAPooling, x, edge_index, weight, batch):
    """Dense matrices: A with self loops, attention S, fitness, top-k per graph, S^T A S."""
    n = x.size(0)
    a = torch.zeros(n, n, dtype=x.dtype)  # a[i, j]: edge i -> j
    loops = {}
    for (s, d), w in zip(edge_index.t().tolist(), weight.tolist()):
        if s == d:
            loops[s] = w
        else:
            a[s, d] += w
    for i in range(n):
        a[i, i] = loops.get(i, 1.0)
    mask = a != 0
    for i in range(n):
        mask[i, i] = True
    with torch.no_grad():
        query = torch.stack([x[mask[:, i]].max(0).values for i in range(n)])
        query = pool.lin(query)
        att_w = pool.att.weight.view(2, -1)
        logits = (query @ att_w[0]).view(1, n) + (x @ att_w[1]).view(n, 1) + pool.att.bias  # [j, i]
        logits = F.leaky_relu(logits, pool.negative_slope).masked_fill(~mask, -math.inf)
        s = torch.softmax(logits, dim=0)  # over the members j of cluster i
        x_cluster = s.t() @ x
        le = pool.gnn_score
        edges = (mask & ~torch.eye(n, dtype=torch.bool)).nonzero()
        counts = torch.zeros(n, n, dtype=x.dtype)
        for j, i in edge_index.t().tolist():
            counts[j, i] += 1.0
        for i in range(n):
            counts[i, i] = 1.0
        fit = le.lin3(x_cluster).view(-1) + (
            counts.t() @ le.lin1(x_cluster).view(-1) - counts.sum(0) * le.lin2(x_cluster).view(-1)
        )
        fit = torch.sigmoid(fit)
        sign = 1.0 if float(pool.select.weight) > 0 else -1.0
        ranking = torch.tanh(fit * sign)
        perm = []
        for g in sorted(set(batch.tolist())):
            nodes = sorted((i for i in range(n) if int(batch[i]) == g), key=lambda i: (-float(ranking[i]), i))
            perm += nodes[: math.ceil(pool.ratio * len(nodes) - 1e-9)]
        perm = torch.tensor(perm)
        sp = s[:, perm]
        coarse = sp.t() @ a @ sp
        pattern = (mask.double().t() @ mask.double() @ mask.double())[perm][:, perm] > 0  # S^T A S pattern
        pattern.fill_diagonal_(False)
    new_edges = pattern.nonzero().t()
    del edges
    return (
        x_cluster[perm] * fit[perm].view(-1, 1),
        new_edges,
        coarse[new_edges[0], new_edges[1]],
        batch[perm],
        perm,
    )


@pytest.mark.parametrize("sort", [True, False])
def test_matches_dense_reference(sort):
    x, edge_index, batch, weight = graph(seed=1, sort=sort)
    pool = ASAPooling(4, ratio=0.5).double()
    out = pool(x, edge_index, weight, batch)
    expected = reference(pool, x, edge_index, weight, batch)
    testing.assert_close(out[0], expected[0])
    assert torch.equal(out[1], expected[1])
    testing.assert_close(out[2], expected[2])
    assert torch.equal(out[3], expected[3]) and torch.equal(out[4], expected[4])


@pytest.mark.parametrize(
    ("kwargs", "pyg_gnn"),
    [({}, None), ({"add_self_loops": True}, None), ({"ratio": 3}, None), ({"GNN": "GraphConv"}, "GraphConv")],
)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("sort", [True, False])
def test_matches_pyg(kwargs, pyg_gnn, weighted, sort):
    pyg = pytest.importorskip("torch_geometric.nn")
    torch.manual_seed(0)
    x, edge_index, batch, weight = graph(seed=3, sort=sort, dtype=torch.float32)  # PyG's ASAP: float32 only
    weight = weight if weighted else None
    pyg_kwargs = dict(kwargs, **({"GNN": getattr(pyg, pyg_gnn)} if pyg_gnn else {}))
    theirs, ours = pyg.ASAPooling(4, **pyg_kwargs), ASAPooling(4, **kwargs)
    testing.load_pyg_state(ours, theirs)
    assert repr(ours) == repr(theirs)
    x_ours, x_theirs = x.clone().requires_grad_(), x.clone().requires_grad_()
    out, expected = (
        list(ours(x_ours, edge_index, weight, batch)),
        list(theirs(x_theirs, edge_index, weight, batch)),
    )
    k = out[0].size(0)
    loops = kwargs.get("add_self_loops", False)
    out[1], out[2] = canonical(out[1], out[2], k, loops)
    expected[1], expected[2] = canonical(expected[1], expected[2], k, loops)
    testing.assert_close(out, expected)
    # (PyG's coarsened edge weights cannot be differentiated: its sparse product has no backward here;
    # ours are, see test_select.py::test_coarsen_adjacency_gradients and test_edge_weight_gradients)
    out[0].square().sum().backward()
    expected[0].square().sum().backward()
    testing.assert_close(x_ours.grad, x_theirs.grad)
    grads = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        if grads[name].grad is None:
            assert p.grad is None or p.grad.abs().sum() == 0, name
        else:
            testing.assert_close(p.grad, grads[name].grad, msg=name)
    for name in ("att.weight", "lin.weight", "gnn_score.lin1.weight"):  # the scorers learn
        assert dict(ours.named_parameters())[name].grad.abs().sum() > 0, name


def test_edge_weight_gradients():
    x, edge_index, batch, weight = graph(seed=8)
    pool = ASAPooling(4).double()
    weight = weight.requires_grad_()
    out = pool(x, edge_index, weight, batch)
    out[2].sum().backward()
    assert weight.grad.abs().sum() > 0 and pool.att.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("method", ["rows", "sparse"])
def test_both_coarsening_methods_agree(method, monkeypatch):
    x, edge_index, batch, weight = graph(seed=4)
    pool = ASAPooling(4, add_self_loops=True).double()
    expected = pool(x, edge_index, weight, batch)
    real = coarsen_module.coarsen_adjacency
    monkeypatch.setattr("gnn.pool.asap.coarsen_adjacency", lambda *a, **k: real(*a, **dict(k, method=method)))
    testing.assert_close(pool(x, edge_index, weight, batch), expected)


def test_gnn_by_name_and_signatures():
    pyg = pytest.importorskip("torch_geometric.nn")
    for name in ("__init__", "forward"):
        ours = inspect.signature(getattr(ASAPooling, name))
        theirs = inspect.signature(getattr(pyg.ASAPooling, name))
        assert list(ours.parameters) == list(theirs.parameters)
        assert [p.default for p in ours.parameters.values()] == [
            p.default for p in theirs.parameters.values()
        ]
    pool = ASAPooling(4, GNN="gcn")
    assert pool.GNN is GCNConv and isinstance(pool.gnn_intra_cluster, GCNConv)
    assert ASAPooling(4, GNN=GCNConv).GNN is GCNConv
    assert repr(ASAPooling(4, 3)) == "ASAPooling(4, ratio=3)"
    assert list(ASAPooling(4).state_dict())[-1] == "select.weight"


def test_empty_graphs_and_bad_inputs():
    pool = ASAPooling(3)
    out = pool(torch.zeros(0, 3), torch.zeros(2, 0, dtype=torch.long))
    assert out[0].shape == (0, 3) and out[1].shape == (2, 0) and out[4].numel() == 0
    x = torch.randn(5, 3)
    out = pool(x, torch.tensor([[0, 1], [1, 0]]), batch=torch.tensor([0, 0, 3, 3, 3]))
    assert out[3].tolist() == [0, 3, 3]  # ceil(0.5 * 2) and ceil(0.5 * 3); graphs 1, 2 are empty
    with pytest.raises(ValueError, match="'batch'"):
        pool(x, torch.tensor([[0], [1]]), batch=torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="'edge_weight'"):
        pool(x, torch.tensor([[0], [1]]), torch.ones(2))
    with pytest.raises(ValueError, match="'ratio'"):
        ASAPooling(3, ratio=0)
    with pytest.raises(ValueError, match="'dropout'"):
        ASAPooling(3, dropout=-0.1)
