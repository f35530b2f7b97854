"""gnn.pool.select: top-k, edge filtering/coarsening, greedy matching, components, S^T A S, the gates."""

from __future__ import annotations

import math
import sys

import pytest
import torch

from gnn.pool.select import (
    check_min_score,
    check_ratio,
    coarsen_adjacency,
    coarsen_edges,
    connected_components,
    filter_edges,
    greedy_matching,
    topk,
    topk_counts,
)
from gnn.pool.select import coarsen as coarsen_module
from gnn.pool.select import matching as matching_module
from gnn.pool.select.gate import gate, project_gate


# -- top-k ---------------------------------------------------------------------------------------
def topk_reference(score, ratio, batch, min_score=None):
    """One graph at a time: the k best nodes (ties: lower node first), or the min_score rule."""
    perm = []
    graphs = sorted(set(batch.tolist()))
    if min_score is not None:
        best = {g: max(float(s) for s, b in zip(score, batch) if int(b) == g) for g in graphs}
        return torch.tensor(
            [i for i in range(score.numel()) if float(score[i]) > min(best[int(batch[i])] - 1e-7, min_score)],
            dtype=torch.long,
        )
    for g in graphs:
        nodes = [i for i in range(score.numel()) if int(batch[i]) == g]
        nodes.sort(key=lambda i: (-float(score[i]), i))
        k = int(ratio) if ratio >= 1 else math.ceil(ratio * len(nodes) - 1e-6)
        perm += nodes[:k]
    return torch.tensor(perm, dtype=torch.long)


@pytest.mark.parametrize("ratio", [0.5, 0.25, 0.999, 1, 3, 50])
@pytest.mark.parametrize("sorted_batch", [True, False])
def test_topk_matches_loop_over_graphs(ratio, sorted_batch):
    g = torch.Generator().manual_seed(7)
    batch = torch.randint(0, 6, (60,), generator=g)
    batch[batch == 2] = 4  # graph 2 empty
    batch[0] = 5  # graph 5 has one node more than that, at least
    batch = batch.sort().values if sorted_batch else batch
    score = torch.randn(60, generator=g, dtype=torch.float64)
    assert torch.equal(topk(score, ratio, batch), topk_reference(score, ratio, batch))


@pytest.mark.parametrize("ratio", [0.5, 0.3, 2, 1000])
def test_topk_padded_and_global_selection_agree(ratio, monkeypatch):
    """A sorted batch takes the padded per-graph path; ties and unsorted batches take the global sort."""
    module = sys.modules["gnn.pool.select.select_topk"]
    g = torch.Generator().manual_seed(5)
    batch = torch.randint(0, 8, (120,), generator=g).sort().values
    score = torch.randn(120, generator=g)
    used = []
    real = module._padded_topk
    monkeypatch.setattr(module, "_padded_topk", lambda *a: used.append(real(*a)) or used[-1])
    fast = topk(score, ratio, batch)
    assert used[-1] is not None  # the padded path answered
    assert torch.equal(fast, topk_reference(score, ratio, batch))
    monkeypatch.setattr(module, "_padded_topk", lambda *a: None)
    assert torch.equal(topk(score, ratio, batch), fast)
    monkeypatch.setattr(module, "_padded_topk", lambda *a: used.append(real(*a)) or used[-1])
    tied = score.clone()
    tied[batch == 3] = 0.25  # a whole graph of equal scores
    topk(tied, ratio, batch)
    assert used[-1] is None  # ties: the global sort, which orders them as PyG does
    topk(score, ratio, batch.flip(0))
    assert used[-1] is None


@pytest.mark.parametrize("min_score", [-5.0, 0.2, 0.9, 2.0])
def test_topk_min_score_matches_loop(min_score):
    g = torch.Generator().manual_seed(3)
    batch = torch.randint(0, 4, (40,), generator=g)
    score = torch.rand(40, generator=g, dtype=torch.float64)
    assert torch.equal(topk(score, None, batch, min_score), topk_reference(score, None, batch, min_score))
    # every graph keeps at least its best node
    assert set(batch[topk(score, None, batch, 2.0)].tolist()) == set(batch.tolist())
    assert torch.equal(
        topk(score, 0.5, None, min_score), topk_reference(score, None, torch.zeros(40), min_score)
    )


def test_topk_without_batch_and_empty():
    score = torch.tensor([0.1, 0.7, 0.3, 0.9])
    assert topk(score, 0.5).tolist() == [3, 1]
    assert topk(score, 10).tolist() == [3, 1, 2, 0]  # k larger than the graph: all of it
    empty = torch.zeros(0)
    assert topk(empty, 0.5).numel() == 0
    assert topk(empty, 0.5, torch.zeros(0, dtype=torch.long), 0.3).numel() == 0


def test_topk_ties_follow_the_score_sort_of_pyg():
    pyg_topk = pytest.importorskip("torch_geometric.nn.pool.select.topk").topk
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        score = torch.randint(0, 3, (50,), generator=g).float()  # many equal scores
        batch = torch.randint(0, 3, (50,), generator=g)
        for ratio in (0.5, 0.3, 2, 7):
            assert torch.equal(topk(score, ratio, batch), pyg_topk(score, ratio, batch))


def test_topk_counts_round_in_the_score_dtype():
    hundred = torch.tensor([100])
    assert topk_counts(0.3, hundred, torch.float32).item() == 31  # 0.3f * 100 rounds above 30
    assert topk_counts(0.3, hundred, torch.float64).item() == 30
    assert topk_counts(0.3, hundred, torch.float16).item() == 31  # half scores count in float32
    ten = torch.tensor([10])
    assert topk_counts(1.0, ten).item() == 1  # a number >= 1 is k itself, as in PyG
    assert topk_counts(2.7, ten).item() == 2
    assert topk_counts(0.01, torch.tensor([0, 1, 250])).tolist() == [0, 1, 3]


@pytest.mark.parametrize("ratio", [0, 0.0, -1, -0.5, float("nan"), float("inf")])
def test_bad_ratio_value(ratio):
    with pytest.raises(ValueError, match="'ratio'"):
        check_ratio(ratio)


@pytest.mark.parametrize("ratio", ["0.5", True, torch.tensor(0.5), [0.5]])
def test_bad_ratio_type(ratio):
    with pytest.raises(TypeError, match="'ratio'"):
        check_ratio(ratio)


def test_ratio_and_min_score_checks():
    with pytest.raises(ValueError, match="'ratio' and 'min_score'"):
        check_ratio(None)
    assert check_ratio(None, 0.1) is None
    assert check_ratio(3) == 3 and check_ratio(0.5) == 0.5
    for bad in ("high", float("nan"), True, [0.1]):
        with pytest.raises(ValueError, match="'min_score'"):
            check_min_score(bad)
    with pytest.raises(ValueError, match="'ratio' and 'min_score'"):
        topk(torch.rand(3), None)


# -- edges -----------------------------------------------------------------------------------------
def test_filter_edges_matches_loop():
    g = torch.Generator().manual_seed(1)
    edge_index = torch.randint(0, 20, (2, 80), generator=g)
    attr = torch.randn(80, 3, generator=g)
    perm = torch.randperm(20, generator=g)[:9]
    position = {int(p): k for k, p in enumerate(perm)}
    kept = [e for e in range(80) if int(edge_index[0, e]) in position and int(edge_index[1, e]) in position]
    expected = torch.tensor([[position[int(edge_index[r, e])] for e in kept] for r in (0, 1)])
    out, out_attr = filter_edges(edge_index.int(), attr, perm, 20)  # int32 edges work too
    assert out.dtype == torch.long and torch.equal(out, expected.view(2, -1))
    assert torch.equal(out_attr, attr[kept])
    out, none = filter_edges(torch.zeros(2, 0, dtype=torch.long), None, perm, 20)
    assert out.shape == (2, 0) and none is None


def test_coarsen_edges_matches_loop():
    edge_index = torch.tensor([[0, 1, 2, 3, 3, 0], [1, 2, 3, 0, 0, 0]])
    cluster = torch.tensor([1, 1, 0, 2])
    attr = torch.arange(6.0)
    merged: dict[tuple[int, int], float] = {}
    for e in range(6):
        key = (int(cluster[edge_index[0, e]]), int(cluster[edge_index[1, e]]))
        merged[key] = merged.get(key, 0.0) + float(attr[e])
    out, out_attr = coarsen_edges(edge_index, cluster, 3, attr)
    assert [tuple(e) for e in out.t().tolist()] == sorted(merged)
    assert out_attr.tolist() == [merged[k] for k in sorted(merged)]
    out, _ = coarsen_edges(edge_index, cluster, 3, remove_self_loops=True)
    assert [tuple(e) for e in out.t().tolist()] == [k for k in sorted(merged) if k[0] != k[1]]


# -- greedy matching ---------------------------------------------------------------------------------
def greedy_reference(edge_index, score, num_nodes):
    """The sequential greedy pass, one edge at a time, in torch.sort's descending order."""
    order = torch.sort(score, descending=True).indices.tolist()
    free = [True] * num_nodes
    taken = []
    for e in order:
        s, d = int(edge_index[0, e]), int(edge_index[1, e])
        if free[s] and free[d]:
            free[s] = free[d] = False
            taken.append(e)
    cluster = [-1] * num_nodes
    for c, e in enumerate(taken):
        cluster[int(edge_index[0, e])] = cluster[int(edge_index[1, e])] = c
    rest = [i for i in range(num_nodes) if free[i]]
    for c, i in enumerate(rest, start=len(taken)):
        cluster[i] = c
    return torch.tensor(cluster), torch.tensor(taken, dtype=torch.long), len(taken) + len(rest)


@pytest.mark.parametrize("seed", range(6))
def test_greedy_matching_equals_the_sequential_pass(seed):
    g = torch.Generator().manual_seed(seed)
    n = 30
    edge_index = torch.randint(0, n, (2, 70), generator=g)
    edge_index[:, :3] = torch.tensor([[4, 5, 6], [4, 5, 9]])  # self loops
    score = torch.randint(0, 5, (70,), generator=g).double() if seed % 2 else torch.rand(70, generator=g)
    cluster, taken, c = greedy_matching(edge_index, score, n)
    ref_cluster, ref_taken, ref_c = greedy_reference(edge_index, score, n)
    assert torch.equal(cluster, ref_cluster) and torch.equal(taken, ref_taken) and c == ref_c


def test_greedy_matching_finishes_long_chains_sequentially(monkeypatch):
    """A path whose scores decrease along it matches one edge per round: the rounds hand over."""
    n = 400
    edge_index = torch.stack([torch.arange(n - 1), torch.arange(1, n)])
    score = torch.linspace(1.0, 0.0, n - 1)
    calls = []
    real = matching_module._sequential_finish
    monkeypatch.setattr(matching_module, "_sequential_finish", lambda *a: calls.append(1) or real(*a))
    cluster, taken, c = greedy_matching(edge_index, score, n)
    assert calls == [1]
    ref = greedy_reference(edge_index, score, n)
    assert torch.equal(cluster, ref[0]) and torch.equal(taken, ref[1]) and c == ref[2]


def test_greedy_matching_without_edges():
    cluster, taken, c = greedy_matching(torch.zeros(2, 0, dtype=torch.long), torch.zeros(0), 3)
    assert cluster.tolist() == [0, 1, 2] and taken.numel() == 0 and c == 3


# -- connected components ---------------------------------------------------------------------------
def components_reference(edge_index, n):
    """Breadth-first search from node 0, 1, ... (directions ignored)."""
    neighbours: list[set[int]] = [set() for _ in range(n)]
    for s, d in edge_index.t().tolist():
        neighbours[s].add(d)
        neighbours[d].add(s)
    label = [-1] * n
    count = 0
    for start in range(n):
        if label[start] >= 0:
            continue
        label[start], queue = count, [start]
        while queue:
            node = queue.pop()
            for other in neighbours[node]:
                if label[other] < 0:
                    label[other] = count
                    queue.append(other)
        count += 1
    return torch.tensor(label, dtype=torch.long), count


@pytest.mark.parametrize("seed", range(5))
def test_connected_components_matches_bfs(seed):
    g = torch.Generator().manual_seed(seed)
    n = 50
    edge_index = torch.randint(0, n, (2, 10 * seed + 5), generator=g)
    component, count = connected_components(edge_index, n)
    ref_component, ref_count = components_reference(edge_index, n)
    assert torch.equal(component, ref_component) and count == ref_count


def test_connected_components_long_path():
    n = 300
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(0))
    edge_index = torch.stack([perm[:-1], perm[1:]])
    component, count = connected_components(edge_index, n)
    assert count == 1 and component.eq(0).all()
    assert connected_components(torch.zeros(2, 0, dtype=torch.long), 3)[1] == 3


# -- S^T A S ---------------------------------------------------------------------------------------
def coarsen_reference(s_index, s_value, a_index, a_value, n, k):
    """Dense S^T A S (float64) and its structural pattern (ones in place of the values)."""
    s = torch.zeros(n, k, dtype=torch.float64).index_put_(tuple(s_index), s_value, accumulate=True)
    a = torch.zeros(n, n, dtype=torch.float64).index_put_(tuple(a_index), a_value, accumulate=True)
    ones = torch.ones
    sp = torch.zeros(n, k).index_put_(tuple(s_index), ones(s_index.size(1)), accumulate=True)
    ap = torch.zeros(n, n).index_put_(tuple(a_index), ones(a_index.size(1)), accumulate=True)
    index = ((sp.t() @ ap @ sp) > 0).nonzero().t()
    return index, (s.t() @ a @ s)[index[0], index[1]]


def random_assignment(seed):
    """Nodes in graphs (sizes 0..7), edges and assignments inside graphs, clusters grouped by graph."""
    g = torch.Generator().manual_seed(seed)
    sizes = torch.randint(0, 8, (4,), generator=g)
    sizes[0] = max(int(sizes[0]), 1)
    n = int(sizes.sum())
    batch = torch.repeat_interleave(torch.arange(4), sizes)
    ptr = torch.cat([torch.zeros(1, dtype=torch.long), sizes.cumsum(0)])

    def nodes_in(graphs):
        return ptr[graphs] + (torch.rand(graphs.numel(), generator=g) * sizes[graphs]).long()

    graphs = batch[torch.randint(0, n, (30,), generator=g)]
    a_index = torch.stack([nodes_in(graphs), nodes_in(graphs)])
    perm = (torch.rand(n, generator=g) < 0.5).nonzero().view(-1)
    perm = torch.cat([perm, torch.tensor([0])]).unique()
    clusters = torch.randint(0, perm.numel(), (25,), generator=g)
    s_index = torch.stack([nodes_in(batch[perm][clusters]), clusters])
    s_value = torch.rand(25, generator=g, dtype=torch.float64)
    a_value = torch.randn(30, generator=g, dtype=torch.float64)
    a_value[:3] = 0.0  # structural entries survive a zero value
    return s_index, s_value, a_index, a_value, n, perm.numel(), batch, batch[perm]


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("method", ["rows", "sparse"])
def test_coarsen_adjacency_matches_dense(seed, method, monkeypatch):
    s_index, s_value, a_index, a_value, n, k, node_graph, cluster_graph = random_assignment(seed)
    used = []
    real_rows, real_sparse = coarsen_module._rows, coarsen_module._sparse
    monkeypatch.setattr(coarsen_module, "_rows", lambda *a: used.append("rows") or real_rows(*a))
    monkeypatch.setattr(coarsen_module, "_sparse", lambda *a: used.append("sparse") or real_sparse(*a))
    index, value = coarsen_adjacency(
        s_index,
        s_value,
        a_index,
        a_value,
        n,
        k,
        node_graph=node_graph,
        cluster_graph=cluster_graph,
        method=method,
    )
    assert used == [method]
    ref_index, ref_value = coarsen_reference(s_index, s_value, a_index, a_value, n, k)
    assert torch.equal(index, ref_index)
    torch.testing.assert_close(value, ref_value)
    pattern, none = coarsen_adjacency(s_index, None, a_index, a_value, n, k, method=method)
    assert torch.equal(pattern, ref_index) and none is None


def test_coarsen_adjacency_falls_back_for_crossing_edges():
    s_index, s_value, a_index, a_value, n, k, node_graph, cluster_graph = random_assignment(2)
    a_index = torch.cat([a_index, torch.tensor([[0], [n - 1]])], 1)  # an edge between two graphs
    a_value = torch.cat([a_value, torch.ones(1, dtype=torch.float64)])
    index, value = coarsen_adjacency(
        s_index, s_value, a_index, a_value, n, k, node_graph=node_graph, cluster_graph=cluster_graph
    )
    ref_index, ref_value = coarsen_reference(s_index, s_value, a_index, a_value, n, k)
    assert torch.equal(index, ref_index)
    torch.testing.assert_close(value, ref_value)


@pytest.mark.parametrize("method", ["rows", "sparse"])
def test_coarsen_adjacency_gradients(method):
    s_index, s_value, a_index, a_value, n, k, node_graph, cluster_graph = random_assignment(4)

    def run(s, a):
        return coarsen_adjacency(
            s_index, s, a_index, a, n, k, node_graph=node_graph, cluster_graph=cluster_graph, method=method
        )[1]

    assert torch.autograd.gradcheck(run, (s_value.requires_grad_(), a_value.requires_grad_()))
    with pytest.raises(ValueError, match="'method'"):
        coarsen_adjacency(s_index, s_value, a_index, a_value, n, k, method="dense")


# -- gates ------------------------------------------------------------------------------------------
def test_gate_gradcheck():
    x = torch.randn(7, 3, dtype=torch.float64, requires_grad=True)
    score = torch.randn(7, dtype=torch.float64, requires_grad=True)
    perm = torch.tensor([5, 0, 3])
    assert torch.autograd.gradcheck(lambda a, b: gate(a, b, perm, 1.5), (x, score))
    torch.testing.assert_close(gate(x, score, perm, 1.5), 1.5 * x[perm] * score[perm].view(-1, 1))


@pytest.mark.parametrize("softmax", [False, True])
def test_project_gate_gradcheck(softmax):
    from gnn.core import ops

    batch = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2])
    x = torch.randn(8, 3, dtype=torch.float64, requires_grad=True)
    u = torch.randn(3, dtype=torch.float64, requires_grad=True)
    scorer = (lambda raw: ops.softmax(raw, batch)) if softmax else torch.tanh
    selector = lambda score: topk(score, 0.5, batch)  # noqa: E731

    def run(a, b):
        out, _, kept = project_gate(a, b, scorer, selector, 2.0)
        return out, kept

    assert torch.autograd.gradcheck(run, (x, u))
    out, perm, kept = project_gate(x, u, scorer, selector, 2.0)
    score = scorer(x @ u)
    torch.testing.assert_close(out, 2.0 * x[perm] * score[perm].view(-1, 1))
    torch.testing.assert_close(kept, score[perm])
