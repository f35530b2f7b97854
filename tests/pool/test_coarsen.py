"""max_pool / avg_pool and their _x / _neighbor_x forms: loop references, PyG parity, duck typing."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from gnn.core import Batch, Data
from gnn.pool import avg_pool, avg_pool_neighbor_x, avg_pool_x, max_pool, max_pool_neighbor_x, max_pool_x


def example(seed=0):
    g = torch.Generator().manual_seed(seed)
    n, e = 12, 30
    batch = torch.tensor([0] * 5 + [1] * 7)
    src = torch.randint(0, 5, (e // 2,), generator=g)
    dst = torch.randint(0, 5, (e // 2,), generator=g)
    src2 = torch.randint(5, 12, (e // 2,), generator=g)
    dst2 = torch.randint(5, 12, (e // 2,), generator=g)
    edge_index = torch.stack([torch.cat([src, src2]), torch.cat([dst, dst2])])
    cluster = torch.tensor([9, 9, 3, 3, 4, 20, 20, 20, 7, 11, 11, 30])  # clusters inside one graph each
    x = torch.randn(n, 3, generator=g, dtype=torch.float64)
    pos = torch.randn(n, 2, generator=g, dtype=torch.float64)
    edge_attr = torch.randn(e, 2, generator=g, dtype=torch.float64)
    return cluster, dict(x=x, edge_index=edge_index, edge_attr=edge_attr, pos=pos, batch=batch)


def reference(cluster, graph, reduce):
    """Clusters renumbered in increasing order; features/pos per cluster; edges merged in a dict."""
    ids = sorted(set(cluster.tolist()))
    new = {c: i for i, c in enumerate(ids)}
    members = [[i for i in range(cluster.numel()) if int(cluster[i]) == c] for c in ids]
    x = graph["x"]
    xs = [x[m].amax(0) if reduce == "max" else x[m].mean(0) for m in members]
    pos = torch.stack([graph["pos"][m].mean(0) for m in members])
    batch = torch.tensor([int(graph["batch"][m[0]]) for m in members])
    edges: dict[tuple[int, int], torch.Tensor] = {}
    for e in range(graph["edge_index"].size(1)):
        a = new[int(cluster[graph["edge_index"][0, e]])]
        b = new[int(cluster[graph["edge_index"][1, e]])]
        if a != b:
            edges[(a, b)] = edges.get((a, b), 0) + graph["edge_attr"][e]
    keys = sorted(edges)
    edge_index = torch.tensor(keys, dtype=torch.long).t().reshape(2, -1)
    edge_attr = torch.stack([edges[k] for k in keys])
    return torch.stack(xs), edge_index, edge_attr, pos, batch


@pytest.mark.parametrize("reduce", ["max", "mean"])
def test_pool_matches_reference_on_gnn_data(reduce):
    cluster, graph = example()
    pool = max_pool if reduce == "max" else avg_pool
    out = pool(cluster, Data(**graph))
    assert isinstance(out, Batch)
    x, edge_index, edge_attr, pos, batch = reference(cluster, graph, reduce)
    torch.testing.assert_close(out.x, x)
    assert torch.equal(out.edge_index, edge_index)
    torch.testing.assert_close(out.edge_attr, edge_attr)
    torch.testing.assert_close(out.pos, pos)
    assert torch.equal(out.batch, batch)


@pytest.mark.parametrize("reduce", ["max", "mean"])
def test_pool_matches_pyg_on_pyg_and_duck_typed_data(reduce):
    pyg_data = pytest.importorskip("torch_geometric.data")
    pyg = pytest.importorskip("torch_geometric.nn")
    cluster, graph = example(1)
    ours = max_pool if reduce == "max" else avg_pool
    theirs = pyg.max_pool if reduce == "max" else pyg.avg_pool
    ref = theirs(cluster, pyg_data.Data(**graph))
    for data in (pyg_data.Data(**graph), SimpleNamespace(**graph), Batch(**graph)):
        out = ours(cluster, data)
        for key in ("x", "edge_index", "edge_attr", "pos", "batch"):
            torch.testing.assert_close(getattr(out, key), getattr(ref, key), msg=key)


def test_pool_missing_attributes_and_transform():
    cluster, graph = example(2)
    out = max_pool(cluster, SimpleNamespace(x=graph["x"], edge_index=graph["edge_index"]))
    assert out.edge_attr is None and out.pos is None and out.batch is None
    seen = []
    result = avg_pool(cluster, Data(x=graph["x"]), transform=lambda d: seen.append(d) or "done")
    assert result == "done" and seen[0].edge_index is None and seen[0].x.size(0) == 7


def test_pool_gradients_flow_to_features():
    cluster, graph = example(3)
    x = graph["x"].clone().requires_grad_()
    out = avg_pool(cluster, Data(x=x, edge_index=graph["edge_index"]))
    out.x.sum().backward()
    counts = torch.bincount(torch.unique(cluster, return_inverse=True)[1]).double()
    expected = (1 / counts)[torch.unique(cluster, return_inverse=True)[1]]
    torch.testing.assert_close(x.grad, expected.view(-1, 1).expand(-1, 3))


@pytest.mark.parametrize("reduce", ["max", "mean"])
def test_pool_x_matches_reference_and_pyg(reduce):
    cluster, graph = example(4)
    ours = max_pool_x if reduce == "max" else avg_pool_x
    x, _, _, _, batch = reference(cluster, graph, reduce)
    out, out_batch = ours(cluster, graph["x"], graph["batch"])
    torch.testing.assert_close(out, x)
    assert torch.equal(out_batch, batch)
    # size: cluster ids already dense per graph, [batch_size * size, F]
    dense_cluster = torch.tensor([0, 0, 1, 1, 2, 3, 3, 3, 4, 5, 5, 6])
    out, none = ours(dense_cluster, graph["x"], graph["batch"], size=4)
    assert none is None and out.shape == (8, 3)
    for c in range(8):
        members = graph["x"][dense_cluster == c]
        want = (
            torch.zeros(3, dtype=torch.float64)
            if members.numel() == 0
            else (members.amax(0) if reduce == "max" else members.mean(0))
        )
        torch.testing.assert_close(out[c], want)
    pyg = pytest.importorskip("torch_geometric.nn")
    theirs = pyg.max_pool_x if reduce == "max" else pyg.avg_pool_x
    for args in [(cluster, graph["x"], graph["batch"]), (dense_cluster, graph["x"], graph["batch"], 3, 4)]:
        a, b = ours(*args), theirs(*args)
        torch.testing.assert_close(a[0], b[0])
        assert (a[1] is None) == (b[1] is None) and (a[1] is None or torch.equal(a[1], b[1]))


def neighbor_reference(x, edge_index, reduce, flow):
    out = []
    for i in range(x.size(0)):
        if flow == "source_to_target":
            nb = edge_index[0, edge_index[1] == i]
        else:
            nb = edge_index[1, edge_index[0] == i]
        rows = torch.cat([x[i : i + 1], x[nb]])
        out.append(rows.amax(0) if reduce == "max" else rows.mean(0))
    return torch.stack(out)


@pytest.mark.parametrize("reduce", ["max", "mean"])
@pytest.mark.parametrize("flow", ["source_to_target", "target_to_source"])
def test_neighbor_x_matches_reference_and_pyg(reduce, flow):
    cluster, graph = example(5)
    edge_index = torch.cat([graph["edge_index"], torch.tensor([[3], [3]])], 1)  # an existing self loop
    ours = max_pool_neighbor_x if reduce == "max" else avg_pool_neighbor_x
    data = Data(x=graph["x"], edge_index=edge_index)
    result = ours(data, flow=flow)
    assert result is data
    expected = neighbor_reference(graph["x"], edge_index, reduce, flow)
    torch.testing.assert_close(data.x, expected)
    pyg_data = pytest.importorskip("torch_geometric.data")
    pyg = pytest.importorskip("torch_geometric.nn")
    theirs = pyg.max_pool_neighbor_x if reduce == "max" else pyg.avg_pool_neighbor_x
    ref = theirs(pyg_data.Data(x=graph["x"], edge_index=edge_index), flow=flow)
    torch.testing.assert_close(ours(SimpleNamespace(x=graph["x"], edge_index=edge_index), flow).x, ref.x)


def test_empty_graph():
    data = Data(x=torch.empty(0, 3), edge_index=torch.empty(2, 0, dtype=torch.long))
    out = max_pool(torch.empty(0, dtype=torch.long), data)
    assert out.x.shape == (0, 3) and out.edge_index.shape == (2, 0)
    x, batch = avg_pool_x(
        torch.empty(0, dtype=torch.long), torch.empty(0, 3), torch.empty(0, dtype=torch.long)
    )
    assert x.shape == (0, 3) and batch.numel() == 0
    assert max_pool_neighbor_x(data).x.shape == (0, 3)


def test_bad_inputs():
    cluster, graph = example(6)
    with pytest.raises(ValueError, match="'cluster'"):
        max_pool(cluster[:-1], Data(**graph))
    with pytest.raises(TypeError, match="'cluster'"):
        max_pool_x(cluster.double(), graph["x"], graph["batch"])
    with pytest.raises(ValueError, match="'batch'"):
        avg_pool_x(cluster, graph["x"], graph["batch"][:-1])
    with pytest.raises(ValueError, match="'edge_index'"):
        max_pool(cluster, Data(x=graph["x"], edge_index=torch.tensor([[0], [12]])))
    with pytest.raises(ValueError, match="'flow'"):
        max_pool_neighbor_x(Data(**graph), flow="sideways")
    with pytest.raises(ValueError, match="edge_index"):
        avg_pool_neighbor_x(Data(x=graph["x"], edge_index=torch.tensor([[0], [40]])))
