"""The faiss KNNIndex family: brute-force references, PyG parity, exclude_links, errors without faiss."""

from __future__ import annotations

import sys

import pytest
import torch

import gnn.pool
from gnn.pool import ApproxL2KNNIndex, ApproxMIPSKNNIndex, KNNIndex, L2KNNIndex, MIPSKNNIndex


def emb(n, d=8, seed=0):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed))


def test_without_faiss_import_works_and_use_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "faiss", None)  # makes `import faiss` fail
    from gnn.pool import knn_index

    assert knn_index.L2KNNIndex is L2KNNIndex
    for make in (
        lambda: L2KNNIndex(),
        lambda: MIPSKNNIndex(emb(4)),
        lambda: KNNIndex("Flat"),
        lambda: ApproxL2KNNIndex(4, 2, 2),
        lambda: ApproxMIPSKNNIndex(4, 2, 2),
        lambda: gnn.pool.approx_knn(emb(5), emb(2), 2),
        lambda: gnn.pool.approx_knn_graph(emb(5), 2),
    ):
        with pytest.raises(ImportError, match=r"pip install gnn-pool\[faiss\]"):
            make()


@pytest.fixture
def faiss():
    return pytest.importorskip("faiss")


def test_l2_and_mips_match_brute_force(faiss):
    points, queries = emb(50, seed=1), emb(7, seed=2)
    out = L2KNNIndex(points).search(queries, 5)
    d = torch.cdist(queries, points) ** 2
    ref = d.topk(5, largest=False)
    assert torch.equal(out.index, ref.indices)
    torch.testing.assert_close(out.score, ref.values, rtol=1e-4, atol=1e-4)
    out = MIPSKNNIndex(points).search(queries, 5)
    ref = (queries @ points.t()).topk(5)
    assert torch.equal(out.index, ref.indices)
    torch.testing.assert_close(out.score, ref.values, rtol=1e-5, atol=1e-5)


def test_exclude_links_against_brute_force(faiss):
    points, queries = emb(20, seed=3), emb(4, seed=4)
    index = L2KNNIndex(points)
    d = torch.cdist(queries, points) ** 2
    exclude = torch.tensor([[0, 0, 0, 2, 3], [int(d[0].argmin()), 5, 6, int(d[2].argmin()), 19]])
    out = index.search(queries, 3, exclude_links=exclude)
    for q in range(4):
        banned = set(exclude[1, exclude[0] == q].tolist())
        order = [j for j in d[q].argsort().tolist() if j not in banned][:3]
        assert out.index[q].tolist() == order


def test_every_link_excluded_pads_with_minus_one(faiss):
    index = L2KNNIndex(emb(3, seed=5))
    exclude = torch.tensor([[0, 0, 0], [0, 1, 2]])
    out = index.search(emb(2, seed=6), 4, exclude_links=exclude)
    assert out.index.shape == (2, 4)
    assert out.index[0].tolist() == [-1] * 4 and bool(torch.isinf(out.score[0]).all())
    assert sorted(out.index[1, :3].tolist()) == [0, 1, 2] and out.index[1, 3] == -1


@pytest.mark.parametrize("cls", ["L2KNNIndex", "MIPSKNNIndex"])
def test_exact_indices_equal_pyg(faiss, cls):
    pyg = pytest.importorskip("torch_geometric.nn")
    points, queries = emb(60, seed=7), emb(9, seed=8)
    ours, theirs = getattr(gnn.pool, cls)(points), getattr(pyg, cls)(points)
    ours.add(emb(10, seed=9))
    theirs.add(emb(10, seed=9))
    exclude = torch.tensor([[0, 1, 1, 8], [3, 4, 5, 60]])
    for k, links in [(4, None), (100, None), (4, exclude), (75, exclude), (3, exclude[:, :0])]:
        a, b = ours.search(queries, k, links), theirs.search(queries, k, links)
        assert a._fields == b._fields == ("score", "index")
        assert torch.equal(a.index, b.index), (k, links)
        torch.testing.assert_close(a.score, b.score)
    torch.testing.assert_close(ours.get_emb(), theirs.get_emb())


def test_approx_indices_equal_pyg(faiss):
    """Same faiss index (IVF cells, PQ sub-quantizers, probes, metric), same results as PyG's."""
    pyg = pytest.importorskip("torch_geometric.nn")
    points, queries = emb(1000, seed=10), emb(20, seed=11)
    for cls in ("ApproxL2KNNIndex", "ApproxMIPSKNNIndex"):
        ours = getattr(gnn.pool, cls)(num_cells=8, num_cells_to_visit=3, bits_per_vector=1, emb=points)
        theirs = getattr(pyg, cls)(num_cells=8, num_cells_to_visit=3, bits_per_vector=1, emb=points)
        assert (ours.num_cells, ours.num_cells_to_visit, ours.bits_per_vector) == (8, 3, 1)
        a, b = faiss.downcast_index(ours.index), faiss.downcast_index(theirs.index)
        assert type(a) is type(b) and a.metric_type == b.metric_type
        assert (a.nlist, a.nprobe, a.pq.M, a.pq.nbits) == (b.nlist, b.nprobe, b.pq.M, b.pq.nbits)
        out, ref = ours.search(queries, 10), theirs.search(queries, 10)
        assert torch.equal(out.index, ref.index)
        torch.testing.assert_close(out.score, ref.score)
        torch.testing.assert_close(ours.get_emb(), theirs.get_emb())


def test_approx_recall_on_clustered_points(faiss):
    g = torch.Generator().manual_seed(12)
    centers = torch.randn(32, 16, generator=g) * 4
    points = centers[torch.randint(0, 32, (4000,), generator=g)] + torch.randn(4000, 16, generator=g)
    queries = points[:200] + 0.1 * torch.randn(200, 16, generator=g)
    index = ApproxL2KNNIndex(num_cells=32, num_cells_to_visit=8, bits_per_vector=8, emb=points)
    found = index.search(queries, 10).index
    exact = L2KNNIndex(points).search(queries, 10).index
    recall = sum(len(set(a.tolist()) & set(b.tolist())) for a, b in zip(found, exact)) / exact.numel()
    assert recall >= 0.6  # product quantization (8 bytes per 16-d vector) is lossy by design


def test_errors_and_empty_inputs(faiss):
    index = L2KNNIndex()
    with pytest.raises(RuntimeError, match="add"):
        index.search(emb(2), 1)
    with pytest.raises(RuntimeError, match="add"):
        index.get_emb()
    index.add(emb(5))
    with pytest.raises(ValueError, match="'emb'"):
        index.search(emb(2, d=3), 1)
    with pytest.raises(ValueError, match="'emb'"):
        index.add(emb(2, d=4))
    with pytest.raises(ValueError, match="'k'"):
        index.search(emb(2), 0)
    with pytest.raises(ValueError, match="exclude_links"):
        index.search(emb(2), 1, exclude_links=torch.tensor([[5], [0]]))
    with pytest.raises(ValueError, match="'num_cells'"):
        ApproxL2KNNIndex(0, 1, 1)
    out = index.search(torch.empty(0, 8), 3)
    assert out.score.shape == (0, 3) and out.index.shape == (0, 3)
    out = index.search(emb(2, seed=3).double(), 2)  # float64 queries are cast for faiss
    assert out.index.shape == (2, 2)
    assert L2KNNIndex(torch.empty(0, 8)).search(emb(2), 3).index.shape == (2, 0)
