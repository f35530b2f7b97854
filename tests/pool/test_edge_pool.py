"""EdgePooling: sequential loop reference, PyG parity, unpool round trip, dropout, gradients, bad input."""

from __future__ import annotations

import inspect

import pytest
import torch

from gnn.core import testing
from gnn.pool import EdgePooling
from gnn.pool.edge_pool import UnpoolInfo


def graph(seed=0, n=30, e=70, f=4, graphs=3, sort=True):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, f, generator=g, dtype=torch.float64)
    batch = torch.randint(0, graphs, (n,), generator=g)
    batch = batch.sort().values if sort else batch
    edge_index = torch.randint(0, n, (2, e), generator=g)
    edge_index = edge_index[:, batch[edge_index[0]] == batch[edge_index[1]]]
    edge_index = torch.cat([edge_index, torch.tensor([[3, 7], [3, 7]]), edge_index[:, :2]], 1)  # loops, dupes
    return x, edge_index, batch


def reference(pool: EdgePooling, x, edge_index, batch):
    """Scores from the formula; contract edges one at a time by decreasing score (torch.sort's order)."""
    w, b = pool.lin.weight.detach().view(-1), pool.lin.bias.detach()
    raw = torch.stack([torch.cat([x[s], x[d]]) @ w + b for s, d in edge_index.t().tolist()]).view(-1)
    score = pool.compute_edge_score(raw, edge_index, x.size(0)) + pool.add_to_edge_score
    free = [True] * x.size(0)
    clusters, scores = [], []
    for e in torch.sort(score, descending=True).indices.tolist():
        s, d = edge_index[:, e].tolist()
        if free[s] and free[d]:
            free[s] = free[d] = False
            clusters.append(sorted({s, d}))
            scores.append(float(score[e]))
    for i in range(x.size(0)):
        if free[i]:
            clusters.append([i])
            scores.append(1.0)
    cluster = torch.empty(x.size(0), dtype=torch.long)
    for c, members in enumerate(clusters):
        cluster[members] = c
    new_x = torch.stack([x[m].sum(0) * s for m, s in zip(clusters, scores)])
    pairs = sorted({(int(cluster[s]), int(cluster[d])) for s, d in edge_index.t().tolist()})
    new_edges = torch.tensor(pairs, dtype=torch.long).t().reshape(2, -1)
    new_batch = torch.stack([batch[m[0]] for m in clusters])
    return new_x, new_edges, new_batch, cluster, torch.tensor(scores, dtype=torch.float64)


@pytest.mark.parametrize("method", ["softmax", "tanh", "sigmoid"])
@pytest.mark.parametrize("sort", [True, False])
def test_matches_loop_reference(method, sort):
    x, edge_index, batch = graph(seed=1, sort=sort)
    pool = EdgePooling(
        4, getattr(EdgePooling, f"compute_edge_score_{method}"), add_to_edge_score=0.2
    ).double()
    new_x, new_edges, new_batch, info = pool(x, edge_index, batch)
    ref_x, ref_edges, ref_batch, ref_cluster, ref_score = reference(pool, x, edge_index, batch)
    testing.assert_close((new_x, new_edges, new_batch), (ref_x, ref_edges, ref_batch))
    assert torch.equal(info.cluster, ref_cluster)
    testing.assert_close(info.new_edge_score, ref_score)
    assert torch.equal(info.edge_index, edge_index) and torch.equal(info.batch, batch)


@pytest.mark.parametrize("method", [None, "tanh", "sigmoid"])
@pytest.mark.parametrize("seed", [0, 4])
def test_matches_pyg(method, seed):
    pyg = pytest.importorskip("torch_geometric.nn")
    x, edge_index, batch = graph(seed=seed)
    theirs = pyg.EdgePooling(
        4, None if method is None else getattr(pyg.EdgePooling, f"compute_edge_score_{method}")
    )
    ours = EdgePooling(4, None if method is None else getattr(EdgePooling, f"compute_edge_score_{method}"))
    theirs, ours = theirs.double(), ours.double()
    testing.load_pyg_state(ours, theirs)
    assert repr(ours) == repr(theirs)
    x_ours, x_theirs = x.clone().requires_grad_(), x.clone().requires_grad_()
    out, expected = ours(x_ours, edge_index, batch), theirs(x_theirs, edge_index, batch)
    testing.assert_close(out[:3], expected[:3])
    testing.assert_close(tuple(out[3]), tuple(expected[3]))
    back, back_pyg = ours.unpool(out[0], out[3]), theirs.unpool(expected[0], expected[3])
    testing.assert_close(back, back_pyg)
    (out[0].square().sum() + back[0].sum()).backward()
    (expected[0].square().sum() + back_pyg[0].sum()).backward()
    testing.assert_close(x_ours.grad, x_theirs.grad)
    testing.assert_close(ours.lin.weight.grad, theirs.lin.weight.grad)
    testing.assert_close(ours.lin.bias.grad, theirs.lin.bias.grad)
    assert ours.lin.weight.grad.abs().sum() > 0


def test_dropout_in_training_matches_pyg():
    pyg = pytest.importorskip("torch_geometric.nn")
    x, edge_index, batch = graph(seed=2)
    theirs, ours = pyg.EdgePooling(4, dropout=0.4).double(), EdgePooling(4, dropout=0.4).double()
    testing.load_pyg_state(ours, theirs)
    torch.manual_seed(11)
    expected = theirs(x, edge_index, batch)
    torch.manual_seed(11)
    out = ours(x, edge_index, batch)
    testing.assert_close(out[0], expected[0])
    ours.eval()
    testing.assert_close(ours(x, edge_index, batch)[0], theirs.eval()(x, edge_index, batch)[0])


def test_unpool_round_trip():
    x, edge_index, batch = graph(seed=3)
    pool = EdgePooling(4).double()
    new_x, _, _, info = pool(x, edge_index, batch)
    back, back_edges, back_batch = pool.unpool(new_x, info)
    # every node gets its cluster's sum back; a node left alone gets exactly its features
    expected = torch.zeros_like(new_x).index_add_(0, info.cluster, x)[info.cluster]
    testing.assert_close(back, expected)
    alone = torch.bincount(info.cluster)[info.cluster] == 1
    testing.assert_close(back[alone], x[alone])
    assert torch.equal(back_edges, edge_index) and torch.equal(back_batch, batch)
    assert isinstance(info, UnpoolInfo) and info._fields == (
        "edge_index",
        "cluster",
        "batch",
        "new_edge_score",
    )
    with pytest.raises(ValueError, match="'x'"):
        pool.unpool(new_x[:-1], info)
    with pytest.raises(TypeError, match="'unpool_info'"):
        pool.unpool(new_x, (1, 2))


def test_signatures_match_pyg():
    pyg = pytest.importorskip("torch_geometric.nn")
    for name in (
        "__init__",
        "forward",
        "unpool",
        "compute_edge_score_softmax",
        "compute_edge_score_tanh",
        "compute_edge_score_sigmoid",
    ):
        ours = inspect.signature(getattr(EdgePooling, name))
        theirs = inspect.signature(getattr(pyg.EdgePooling, name))
        assert list(ours.parameters) == list(theirs.parameters), name
        assert [p.default for p in ours.parameters.values()] == [
            p.default for p in theirs.parameters.values()
        ]
    assert isinstance(EdgePooling.__dict__["compute_edge_score_tanh"], staticmethod)
    assert list(EdgePooling(3).state_dict()) == ["lin.weight", "lin.bias"]


def test_empty_and_edgeless_graphs():
    pool = EdgePooling(3)
    out = pool(torch.zeros(0, 3), torch.zeros(2, 0, dtype=torch.long), torch.zeros(0, dtype=torch.long))
    assert out[0].shape == (0, 3) and out[1].shape == (2, 0) and out[3].cluster.numel() == 0
    x = torch.randn(4, 3)
    out = pool(x, torch.zeros(2, 0, dtype=torch.long), torch.tensor([0, 0, 1, 1]))
    testing.assert_close(out[0], x)  # no edge: nothing merged, scores 1
    assert out[2].tolist() == [0, 0, 1, 1]


def test_bad_inputs():
    pool = EdgePooling(3)
    x, edge_index = torch.randn(4, 3), torch.tensor([[0, 1], [1, 2]])
    with pytest.raises(ValueError, match="'batch'"):
        pool(x, edge_index, torch.zeros(3, dtype=torch.long))
    with pytest.raises(IndexError, match="'edge_index'"):
        pool(x, torch.tensor([[0], [4]]), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="'x'"):
        pool(torch.randn(4, 2), edge_index, torch.zeros(4, dtype=torch.long))
    with pytest.raises(TypeError, match="'edge_score_method'"):
        EdgePooling(3, edge_score_method="softmax")
    with pytest.raises(ValueError, match="'dropout'"):
        EdgePooling(3, dropout=1.5)
    with pytest.raises(ValueError, match="'in_channels'"):
        EdgePooling(0)
