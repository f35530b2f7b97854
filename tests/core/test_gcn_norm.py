"""gcn_norm against a dense reference, PyG, every sparse layout, and bad inputs."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from gnn.core import testing
from gnn.core.utils import gcn_norm, is_sparse, to_edge_index


def dense(edge_index: Tensor, weight: Tensor, n: int) -> Tensor:
    """M[dst, src] = summed weight of the edges src -> dst (float64)."""
    m = torch.zeros(n, n, dtype=torch.float64)
    for e in range(edge_index.size(1)):
        m[edge_index[1, e], edge_index[0, e]] += float(weight[e])
    return m


def reference(
    edge_index: Tensor, weight: Tensor | None, n: int, improved: bool, loops: bool, flow: str
) -> Tensor:
    """D^-1/2 (A + fill I) D^-1/2 written with loops over edges; a node's last self loop is kept."""
    w = torch.ones(edge_index.size(1)) if weight is None else weight
    a = torch.zeros(n, n, dtype=torch.float64)
    diag: dict[int, float] = {}
    for e in range(edge_index.size(1)):
        s, d = int(edge_index[0, e]), int(edge_index[1, e])
        if loops and s == d:
            diag[s] = float(w[e])
        else:
            a[d, s] += float(w[e])
    if loops:
        for i in range(n):
            a[i, i] = diag.get(i, 2.0 if improved else 1.0)
    deg = a.sum(1) if flow == "source_to_target" else a.sum(0)
    inv = torch.where(deg > 0, deg.pow(-0.5), torch.zeros_like(deg))
    return inv.view(-1, 1) * a * inv.view(1, -1)


@pytest.mark.parametrize("improved", [False, True])
@pytest.mark.parametrize("loops", [False, True])
@pytest.mark.parametrize("flow", ["source_to_target", "target_to_source"])
@pytest.mark.parametrize("weighted", [False, True])
def test_matches_dense_formula(improved, loops, flow, weighted):
    _, edge_index = testing.random_graph(9, 30, 1, seed=3)
    edge_index[:, 5] = torch.tensor([4, 4])  # a second loop on another node
    weight = torch.rand(30, generator=torch.Generator().manual_seed(1)) + 0.1 if weighted else None
    out_index, out_weight = gcn_norm(edge_index, weight, 9, improved, loops, flow)
    expected = reference(edge_index, weight, 9, improved, loops, flow)
    torch.testing.assert_close(dense(out_index, out_weight, 9), expected, atol=1e-6, rtol=1e-5)


def test_shapes_do_not_depend_on_the_data():
    """E + N edges whatever the number of existing loops: no data-dependent shapes."""
    n = 6
    no_loops = torch.tensor([[0, 1, 2], [1, 2, 3]])
    all_loops = torch.tensor([[0, 1, 2], [0, 1, 2]])
    for ei in (no_loops, all_loops):
        out_index, out_weight = gcn_norm(ei, num_nodes=n)
        assert out_index.shape == (2, 3 + n) and out_weight.shape == (3 + n,)
    # existing loops keep their weight in the appended loop and are zeroed in place
    ei = torch.tensor([[0, 1], [0, 2]])
    out_index, out_weight = gcn_norm(ei, torch.tensor([4.0, 1.0]), 3, add_self_loops=True)
    assert out_weight[0] == 0
    # node 0: only its loop of weight 4 -> normalized 4 / 4 = 1
    assert torch.isclose(out_weight[2], torch.tensor(1.0))


def test_isolated_nodes_and_empty_graph():
    out_index, out_weight = gcn_norm(torch.empty(2, 0, dtype=torch.long), num_nodes=3)
    torch.testing.assert_close(dense(out_index, out_weight, 3), torch.eye(3, dtype=torch.float64))
    _, out_weight = gcn_norm(torch.empty(2, 0, dtype=torch.long), num_nodes=3, add_self_loops=False)
    assert out_weight.numel() == 0


def test_int32_index_and_dtype():
    _, edge_index = testing.random_graph(7, 20, 1, seed=4)
    i64 = gcn_norm(edge_index, num_nodes=7, dtype=torch.float64)
    i32 = gcn_norm(edge_index.int(), num_nodes=7, dtype=torch.float64)
    assert i64[1].dtype == torch.float64 and i32[0].dtype == torch.int32
    torch.testing.assert_close(dense(*i32, 7), dense(*i64, 7))


@pytest.mark.parametrize("loops", [False, True])
def test_sparse_layouts_keep_layout_and_values(loops):
    _, edge_index = testing.random_graph(8, 25, 1, seed=5)
    weight = torch.rand(25, generator=torch.Generator().manual_seed(2)) + 0.1
    expected = dense(*gcn_norm(edge_index, weight, 8, improved=True, add_self_loops=loops), 8)
    for name, adj in testing.edge_index_formats(edge_index, 8, weight):
        out, none = gcn_norm(adj, improved=True, add_self_loops=loops)
        assert none is None and is_sparse(out)
        if isinstance(out, Tensor):
            assert out.layout == adj.layout, name
        ei, value = to_edge_index(out)
        torch.testing.assert_close(dense(ei, value, 8), expected, msg=name)


def test_matches_pyg():
    pyg = pytest.importorskip("torch_geometric.nn.conv.gcn_conv")
    _, edge_index = testing.random_graph(10, 40, 1, seed=6)
    weight = torch.rand(40, generator=torch.Generator().manual_seed(3))
    for improved in (False, True):
        for loops in (False, True):
            ours = gcn_norm(edge_index, weight, 10, improved, loops)
            theirs = pyg.gcn_norm(edge_index, weight, 10, improved, loops)
            torch.testing.assert_close(dense(*ours, 10), dense(*theirs, 10), atol=1e-6, rtol=1e-5)


def test_bad_inputs():
    ei = torch.tensor([[0, 1], [1, 2]])
    with pytest.raises(ValueError, match="edge_index"):
        gcn_norm(torch.zeros(3, 2, dtype=torch.long))
    with pytest.raises(TypeError, match="edge_index"):
        gcn_norm(ei.float())
    with pytest.raises(ValueError, match="edge_index"):
        gcn_norm(ei, num_nodes=2)
    with pytest.raises(ValueError, match="edge_weight"):
        gcn_norm(ei, torch.ones(3), 3)
    with pytest.raises(ValueError, match="flow"):
        gcn_norm(ei, flow="sideways")
    rect = torch.sparse_coo_tensor(torch.tensor([[0], [1]]), torch.ones(1), (2, 3))
    with pytest.raises(ValueError, match="square"):
        gcn_norm(rect)
