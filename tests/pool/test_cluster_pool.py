"""ClusterPooling: a loop reference written from the formula, PyG parity (PyG needs scipy), bad input."""

from __future__ import annotations

import inspect
import math

import pytest
import torch

from gnn.core import testing
from gnn.pool import ClusterPooling
from gnn.pool.cluster_pool import UnpoolInfo


def graph(seed=0, n=24, e=40, f=4, graphs=3, sort=True):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, f, generator=g, dtype=torch.float64)
    batch = torch.randint(0, graphs, (n,), generator=g)
    batch = batch.sort().values if sort else batch
    edge_index = torch.randint(0, n, (2, e), generator=g)
    edge_index = edge_index[:, batch[edge_index[0]] == batch[edge_index[1]]]
    edge_index = torch.cat([edge_index, torch.tensor([[5], [5]]), edge_index[:, :2]], 1)  # a loop, duplicates
    return x, edge_index, batch


def reference(pool: ClusterPooling, x, edge_index, batch):
    """Edge by edge: scores, the components of the edges above the threshold (breadth-first,
    numbered by their smallest node), x'_c = sum_{(i,j): j in c} s_ij x_i (+ x_i for a lone node)."""
    edges = [(s, d) for s, d in edge_index.t().tolist() if s != d]
    w, b = pool.lin.weight.detach().view(-1), float(pool.lin.bias.detach())
    raw = torch.tensor([float(torch.cat([x[s], x[d]]) @ w) + b for s, d in edges], dtype=torch.float64)
    if pool.edge_score_method == "tanh":
        score = raw.tanh()
    elif pool.edge_score_method == "sigmoid":
        score = raw.sigmoid()
    else:
        score = raw - math.log(float(raw.exp().sum()))
    n = x.size(0)
    neighbours: list[list[int]] = [[] for _ in range(n)]
    for (s, d), value in zip(edges, score.tolist()):
        if value > pool.threshold:
            neighbours[s].append(d)
            neighbours[d].append(s)
    cluster = [-1] * n
    count = 0
    for start in range(n):
        if cluster[start] < 0:
            cluster[start], stack = count, [start]
            while stack:
                node = stack.pop()
                for other in neighbours[node]:
                    if cluster[other] < 0:
                        cluster[other] = count
                        stack.append(other)
            count += 1
    sizes = [cluster.count(c) for c in range(count)]
    new_x = torch.zeros(count, x.size(1), dtype=torch.float64)
    for (s, d), value in zip(edges, score.tolist()):
        new_x[cluster[d]] += value * x[s]
    for i in range(n):
        if sizes[cluster[i]] == 1:
            new_x[cluster[i]] += x[i]
    pairs = sorted({(cluster[s], cluster[d]) for s, d in edges if cluster[s] != cluster[d]})
    new_edges = torch.tensor(pairs, dtype=torch.long).t().reshape(2, -1)
    new_batch = torch.tensor([int(batch[cluster.index(c)]) for c in range(count)])
    return new_x, new_edges, new_batch, torch.tensor(cluster), torch.tensor(edges, dtype=torch.long).t()


@pytest.mark.parametrize(
    ("method", "threshold"), [("tanh", None), ("sigmoid", None), ("sigmoid", 0.3), ("log_softmax", -4.0)]
)
@pytest.mark.parametrize("sort", [True, False])
def test_matches_loop_reference(method, threshold, sort):
    x, edge_index, batch = graph(seed=2, sort=sort)
    pool = ClusterPooling(4, method, threshold=threshold).double()
    with torch.no_grad():
        pool.lin.weight.mul_(3.0)  # spread the scores on both sides of the threshold
    new_x, new_edges, new_batch, info = pool(x, edge_index, batch)
    ref_x, ref_edges, ref_batch, ref_cluster, ref_edge_index = reference(pool, x, edge_index, batch)
    assert 1 < new_x.size(0) < x.size(0)  # some merged, not all
    testing.assert_close((new_x, new_edges, new_batch), (ref_x, ref_edges, ref_batch))
    assert torch.equal(info.cluster, ref_cluster) and torch.equal(info.edge_index, ref_edge_index)
    assert torch.equal(info.batch, batch)


def test_default_thresholds_and_repr():
    assert [ClusterPooling(3, m).threshold for m in ("tanh", "sigmoid", "log_softmax")] == [0.0, 0.5, 0.0]
    assert repr(ClusterPooling(3, "sigmoid", 0.1, 0.2)) == "ClusterPooling(3)"
    assert list(ClusterPooling(3).state_dict()) == ["lin.weight", "lin.bias"]
    assert UnpoolInfo._fields == ("edge_index", "cluster", "batch")


def test_signatures_match_pyg():
    pyg = pytest.importorskip("torch_geometric.nn")
    for name in ("__init__", "forward"):
        ours = inspect.signature(getattr(ClusterPooling, name))
        theirs = inspect.signature(getattr(pyg.ClusterPooling, name))
        assert list(ours.parameters) == list(theirs.parameters)
        assert [p.default for p in ours.parameters.values()] == [
            p.default for p in theirs.parameters.values()
        ]


@pytest.mark.parametrize("method", ["tanh", "sigmoid", "log_softmax"])
def test_matches_pyg(method):
    pyg = pytest.importorskip("torch_geometric.nn")
    pytest.importorskip("scipy")  # PyG's ClusterPooling labels components with scipy
    x, edge_index, batch = graph(seed=5)
    x = x.float()  # PyG's ClusterPooling runs in float32 only
    theirs, ours = pyg.ClusterPooling(4, method), ClusterPooling(4, method)
    testing.load_pyg_state(ours, theirs)
    assert repr(ours) == repr(theirs)
    x_ours, x_theirs = x.clone().requires_grad_(), x.clone().requires_grad_()
    out, expected = ours(x_ours, edge_index, batch), theirs(x_theirs, edge_index, batch)
    testing.assert_close(out[:3], expected[:3])
    testing.assert_close(tuple(out[3]), tuple(expected[3]))
    out[0].square().sum().backward()
    expected[0].square().sum().backward()
    testing.assert_close(x_ours.grad, x_theirs.grad)
    testing.assert_close(ours.lin.weight.grad, theirs.lin.weight.grad)


def test_gradients_reach_the_scorer():
    x, edge_index, batch = graph(seed=6)
    pool = ClusterPooling(4, "sigmoid").double()
    x = x.requires_grad_()
    pool(x, edge_index, batch)[0].square().sum().backward()
    assert pool.lin.weight.grad.abs().sum() > 0 and x.grad.abs().sum() > 0


def test_dropout_in_training():
    x, edge_index, batch = graph(seed=7)
    pool = ClusterPooling(4, dropout=0.5).double()
    torch.manual_seed(0)
    first = pool(x, edge_index, batch)[0]
    torch.manual_seed(0)
    testing.assert_close(pool(x, edge_index, batch)[0], first)
    pool.eval()
    testing.assert_close(pool(x, edge_index, batch)[0], reference(pool, x, edge_index, batch)[0])


def test_empty_and_bad_inputs():
    pool = ClusterPooling(3)
    out = pool(torch.zeros(0, 3), torch.zeros(2, 0, dtype=torch.long), torch.zeros(0, dtype=torch.long))
    assert out[0].shape == (0, 3) and out[1].shape == (2, 0)
    x = torch.randn(3, 3)
    out = pool(x, torch.zeros(2, 0, dtype=torch.long), torch.zeros(3, dtype=torch.long))
    testing.assert_close(out[0], x)
    with pytest.raises(ValueError, match="'edge_score_method'"):
        ClusterPooling(3, "softmax")
    with pytest.raises(ValueError, match="'threshold'"):
        ClusterPooling(3, threshold="high")
    with pytest.raises(ValueError, match="'batch'"):
        pool(x, torch.tensor([[0], [1]]), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="'x'"):
        pool(torch.randn(3, 4), torch.tensor([[0], [1]]), torch.zeros(3, dtype=torch.long))
