"""Graph utilities against hand-computed results and PyG (where installed)."""

from __future__ import annotations

import pytest
import torch

from gnn.core import utils

EDGES = torch.tensor([[0, 1, 1, 2, 2, 0], [1, 0, 2, 2, 1, 1]])  # one self loop (2,2), one duplicate (0,1)


def test_degree_and_self_loops():
    torch.testing.assert_close(utils.degree(EDGES[1], 4), torch.tensor([1.0, 3.0, 2.0, 0.0]))
    ei, _ = utils.remove_self_loops(EDGES)
    assert not utils.contains_self_loops(ei) and ei.size(1) == 5
    ei, attr = utils.add_self_loops(EDGES, torch.arange(6.0), fill_value=-1.0, num_nodes=4)
    assert ei.size(1) == 10 and attr[-4:].tolist() == [-1.0] * 4
    ei, attr = utils.add_remaining_self_loops(EDGES, torch.arange(6.0), fill_value=9.0, num_nodes=4)
    loops = ei[0] == ei[1]
    assert int(loops.sum()) == 4 and ei.size(1) == 9
    # the existing loop (2, 2) keeps its attribute 3.0, the others get the fill value
    assert attr[loops].tolist() == [9.0, 9.0, 3.0, 9.0]
    _, attr = utils.add_self_loops(EDGES, torch.arange(6.0), fill_value="mean", num_nodes=3)
    assert attr[-3:].tolist() == [1.0, (0.0 + 4.0 + 5.0) / 3, (2.0 + 3.0) / 2]


def test_coalesce_and_undirected():
    ei, attr = utils.coalesce(EDGES, torch.ones(6))
    assert ei.tolist() == [[0, 1, 1, 2, 2], [1, 0, 2, 1, 2]]
    assert attr.tolist() == [2.0, 1.0, 1.0, 1.0, 1.0]
    und, _ = utils.to_undirected(torch.tensor([[0, 1], [1, 2]]))
    assert und.tolist() == [[0, 1, 1, 2], [1, 0, 2, 1]]
    s, _ = utils.sort_edge_index(EDGES)
    assert s.tolist() == [[0, 0, 1, 1, 2, 2], [1, 1, 0, 2, 1, 2]]


def test_to_dense_batch_and_adj():
    x = torch.arange(10.0).view(5, 2)
    batch = torch.tensor([0, 0, 0, 1, 1])
    out, mask = utils.to_dense_batch(x, batch)
    assert out.shape == (2, 3, 2)
    assert mask.tolist() == [[True, True, True], [True, True, False]]
    torch.testing.assert_close(out[1, :2], x[3:])
    assert out[1, 2].tolist() == [0.0, 0.0]
    out, mask = utils.to_dense_batch(x, batch, fill_value=-1.0, max_num_nodes=2)
    assert out.shape == (2, 2, 2) and out[0, 1].tolist() == [2.0, 3.0]
    adj = utils.to_dense_adj(torch.tensor([[0, 0, 1, 3], [1, 1, 2, 4]]), batch)
    assert adj.shape == (2, 3, 3)
    assert adj[0, 0, 1] == 2.0 and adj[0, 1, 2] == 1.0 and adj[1, 0, 1] == 1.0
    assert float(adj.sum()) == 4.0
    with pytest.raises(ValueError, match="'batch' must be sorted"):
        utils.to_dense_batch(x, torch.tensor([1, 0, 0, 1, 1]))


def test_matches_pyg_utils():
    pyg_utils = pytest.importorskip("torch_geometric.utils")
    g = torch.Generator().manual_seed(0)
    ei = torch.randint(0, 9, (2, 40), generator=g)
    attr = torch.rand(40, generator=g)
    for ours, theirs in [(utils.coalesce(ei, attr, 9), pyg_utils.coalesce(ei, attr, 9))]:
        torch.testing.assert_close(ours[0], theirs[0])
        torch.testing.assert_close(ours[1], theirs[1])
    ours = utils.add_remaining_self_loops(ei, attr, 2.0, 9)
    theirs = pyg_utils.add_remaining_self_loops(ei, attr, 2.0, 9)
    torch.testing.assert_close(ours[0], theirs[0])
    torch.testing.assert_close(ours[1], theirs[1])
    x = torch.randn(9, 3, generator=g)
    batch = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2, 2])
    for a, b in zip(utils.to_dense_batch(x, batch), pyg_utils.to_dense_batch(x, batch)):
        torch.testing.assert_close(a, b)
    ei_local = torch.tensor([[0, 1, 3, 5, 6, 8, 8], [1, 2, 4, 6, 7, 5, 5]])
    torch.testing.assert_close(utils.to_dense_adj(ei_local, batch), pyg_utils.to_dense_adj(ei_local, batch))


def test_csr_cache_hits_and_invalidation():
    utils.clear_csr_cache()
    ei = torch.tensor([[0, 1, 2], [2, 0, 1]])
    a = utils.to_csr(ei, (3, 3))
    assert utils.to_csr(ei, (3, 3)) is a
    assert utils.to_csr(ei.clone(), (3, 3)) is not a  # another tensor
    assert utils.to_csr(ei, (3, 3), "target_to_source") is not a
    ei[0, 0] = 2  # in-place change bumps the version counter: a miss
    b = utils.to_csr(ei, (3, 3))
    assert b is not a
    assert b.col.tolist() == [1, 2, 2]
    assert b.rowptr.tolist() == [0, 1, 2, 3]
    utils.set_csr_cache_size(0)
    try:
        assert utils.to_csr(ei, (3, 3)) is not utils.to_csr(ei, (3, 3))
    finally:
        utils.set_csr_cache_size(8)


def test_sparse_inputs_to_edge_index():
    dense = torch.tensor([[0.0, 2.0], [1.0, 0.0]])  # adj_t: row = receiver
    for adj in (dense.to_sparse(), dense.to_sparse_csr(), dense.to_sparse_csc()):
        assert utils.is_sparse(adj)
        ei, value = utils.to_edge_index(adj)
        assert ei.tolist() == [[1, 0], [0, 1]] and value.tolist() == [2.0, 1.0]
    assert not utils.is_sparse(torch.zeros(2, 2))


def test_ptr_to_index_and_group_counts():
    # groups of sizes 2, 0, 3, 1 (an empty group in the middle)
    ptr = torch.tensor([0, 2, 2, 5, 6])
    expected = torch.tensor([0, 0, 2, 2, 2, 3])
    assert torch.equal(utils.ptr_to_index(ptr), expected)
    assert torch.equal(utils.ptr_to_index(ptr, 6), expected)
    assert utils.ptr_to_index(ptr.int()).dtype == torch.int32
    assert utils.ptr_to_index(ptr.int(), dtype=torch.long).dtype == torch.long
    assert torch.equal(utils.ptr_from_sorted_index(expected, 4), ptr)
    assert utils.ptr_to_index(torch.zeros(1, dtype=torch.long)).numel() == 0

    # counts from ptr and from a shuffled index agree with a Python loop
    counts = [sum(1 for g in expected.tolist() if g == k) for k in range(4)]
    assert utils.group_counts(ptr=ptr).tolist() == counts
    shuffled = expected[torch.randperm(6, generator=torch.Generator().manual_seed(0))]
    assert utils.group_counts(shuffled, dim_size=4).tolist() == counts
    assert utils.group_counts(shuffled, dim_size=6).tolist() == counts + [0, 0]
    assert utils.group_counts(shuffled).tolist() == counts  # dim_size = max + 1
    as_float = utils.group_counts(shuffled, dim_size=4, dtype=torch.float64)
    assert as_float.dtype == torch.float64 and as_float.tolist() == counts
    with pytest.raises(ValueError, match="'index' or 'ptr'"):
        utils.group_counts()
    with pytest.raises(TypeError, match="index"):
        utils.group_counts([0, 1])
