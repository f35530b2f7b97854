"""graclus (matching properties, greedy weights) and voxel_grid (brute-force voxel ids).

PyG's versions need torch-cluster (not installed here); the checks below
follow their documented behaviour.
"""

from __future__ import annotations

import math

import pytest
import torch

from gnn.core import Data
from gnn.core.utils import to_undirected
from gnn.pool import graclus, max_pool, voxel_grid


def random_undirected(n, e, seed):
    g = torch.Generator().manual_seed(seed)
    edge_index = torch.randint(0, n, (2, e), generator=g)
    edge_index, _ = to_undirected(edge_index, num_nodes=n)
    return edge_index[:, edge_index[0] != edge_index[1]]


def check_matching(cluster, edge_index, n):
    adjacent = {(int(a), int(b)) for a, b in edge_index.t()}
    for c in cluster.unique().tolist():
        members = (cluster == c).nonzero().flatten().tolist()
        assert len(members) in (1, 2)
        assert c == min(members)  # a cluster is named by its smaller node
        if len(members) == 2:
            assert (members[0], members[1]) in adjacent
    single = {i for i in range(n) if int((cluster == cluster[i]).sum()) == 1}
    for a, b in adjacent:  # maximal: two unmatched nodes are never adjacent
        assert not (a in single and b in single)


def test_graclus_is_a_maximal_matching():
    n = 40
    edge_index = random_undirected(n, 80, seed=0)
    torch.manual_seed(0)
    cluster = graclus(edge_index, num_nodes=n)
    assert cluster.shape == (n,)
    check_matching(cluster, edge_index, n)
    torch.manual_seed(0)
    assert torch.equal(graclus(edge_index, num_nodes=n), cluster)


def test_graclus_with_weights_matches_heaviest_free_neighbour():
    # a path 0 - 1 - 2 - 3 with a heavy middle edge: whichever node goes first, 1 and 2 pair up
    edge_index = torch.tensor([[0, 1, 1, 2, 2, 3], [1, 0, 2, 1, 3, 2]])
    weight = torch.tensor([1.0, 1.0, 5.0, 5.0, 1.0, 1.0])
    for seed in range(6):
        torch.manual_seed(seed)
        cluster = graclus(edge_index, weight)
        if cluster[1] == cluster[2]:
            assert cluster.tolist() == [0, 1, 1, 3]
        else:  # 0 (or 3) was visited first and took its only neighbour
            assert cluster.tolist() in ([0, 0, 2, 2],)
        check_matching(cluster, edge_index, 4)


def test_graclus_feeds_max_pool_and_handles_isolated_and_empty():
    edge_index = random_undirected(10, 12, seed=1)
    cluster = graclus(edge_index, num_nodes=14)  # nodes 10..13 isolated
    assert torch.equal(cluster[10:], torch.arange(10, 14))
    out = max_pool(cluster, Data(x=torch.randn(14, 2), edge_index=edge_index))
    assert out.x.size(0) == cluster.unique().numel()
    assert graclus(torch.empty(2, 0, dtype=torch.long), num_nodes=3).tolist() == [0, 1, 2]


def brute_voxel(pos, size, start, end):
    """Voxel coordinates floor((p - start) / size), flattened with end's extent."""
    cells = [math.floor((e - s) / z) + 1 for s, e, z in zip(start, end, size)]
    out = []
    for p in pos.tolist():
        vid, stride = 0, 1
        for d, c in enumerate(cells):
            vid += math.floor((p[d] - start[d]) / size[d]) * stride
            stride *= c
        out.append(vid)
    return torch.tensor(out)


def test_voxel_grid_matches_brute_force():
    pos = torch.rand(50, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64) * 4
    size = [0.7, 1.0, 1.3]
    start, end = pos.amin(0).tolist(), pos.amax(0).tolist()
    assert torch.equal(voxel_grid(pos, size), brute_voxel(pos, size, start, end))
    assert torch.equal(
        voxel_grid(pos, size, start=[-1.0] * 3, end=[5.0] * 3), brute_voxel(pos, size, [-1.0] * 3, [5.0] * 3)
    )


def test_voxel_grid_separates_graphs():
    pos = torch.tensor([[0.1, 0.1], [0.2, 0.2], [0.15, 0.1], [0.3, 0.3]])
    batch = torch.tensor([0, 0, 1, 1])
    cluster = voxel_grid(pos, 1.0, batch)
    assert cluster[0] == cluster[1] and cluster[2] == cluster[3] and cluster[0] != cluster[2]
    assert voxel_grid(pos, 1.0).unique().numel() == 1
    assert voxel_grid(torch.tensor([0.1, 0.9, 1.5]), 1.0).tolist() == [0, 0, 1]  # 1-D positions


def test_voxel_grid_bad_inputs():
    with pytest.raises(ValueError, match="'size'"):
        voxel_grid(torch.rand(4, 2), 0.0)
    with pytest.raises(ValueError, match="'size'"):
        voxel_grid(torch.rand(4, 2), [1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="'batch'"):
        voxel_grid(torch.rand(4, 2), 1.0, torch.zeros(3, dtype=torch.long))
