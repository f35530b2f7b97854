"""gnn.core.ops.random_walk: walk statistics against node2vec's definition, shapes, errors.

The transition probabilities estimated from many walks are compared with the
ones computed here from the definition (Grover & Leskovec, 2016): from node c,
reached from t, the out-edge c -> x weighs 1/p if x == t, 1 if t -> x is an
edge, 1/q otherwise (every edge weighs 1 on the first step).
"""

from __future__ import annotations

from collections import Counter, defaultdict

import pytest
import torch

from gnn.core import ops
from gnn.core import validation as v

# a small directed multigraph: a parallel edge (0 -> 1 twice), a self loop (2 -> 2),
# a one-way edge (3 -> 0), node 5 without out-edges
EDGES = [(0, 1), (0, 1), (0, 2), (0, 3), (1, 0), (1, 2), (1, 4), (2, 0), (2, 1), (2, 2), (2, 4),
         (3, 0), (3, 4), (4, 1), (4, 2), (4, 3), (4, 5)]  # fmt: skip
N = 6


def csr(edges, n):
    edges = sorted(edges, key=lambda e: e[0])  # stable: keeps the order of each row's targets
    counts = torch.bincount(torch.tensor([e[0] for e in edges], dtype=torch.long), minlength=n)
    rowptr = torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)])
    return rowptr, torch.tensor([e[1] for e in edges], dtype=torch.long)


def expected_transition(t: int, c: int, p: float, q: float) -> dict[int, float]:
    """P(next = x | prev = t, cur = c) from the definition."""
    out = [x for (a, x) in EDGES if a == c]
    has = {(a, b) for (a, b) in EDGES}

    def alpha(x):
        if x == t:
            return 1 / p
        return 1.0 if (t, x) in has else 1 / q

    total = sum(alpha(x) for x in out)
    probs: dict[int, float] = defaultdict(float)
    for x in out:
        probs[x] += alpha(x) / total
    return dict(probs)


def backend_torch():
    return ops.backend("torch")


@pytest.mark.parametrize("p,q", [(1.0, 1.0), (0.25, 4.0), (4.0, 0.5)])
def test_transition_probabilities_match_the_definition(p, q):
    rowptr, col = csr(EDGES, N)
    torch.manual_seed(0)
    start = torch.arange(5).repeat(600)  # node 5 has no out-edge: not a start
    with backend_torch():
        nodes, edges = ops.random_walk(rowptr, col, start, 6, p, q)
    counts: dict[tuple[int, int], Counter] = defaultdict(Counter)
    walks = nodes.tolist()
    for walk in walks:
        for step in range(1, len(walk) - 1):
            t, c, x = walk[step - 1], walk[step], walk[step + 1]
            if c == 5:  # stuck: checked below
                continue
            counts[(t, c)][x] += 1
    checked = 0
    for (t, c), seen in counts.items():
        total = sum(seen.values())
        if total < 200:
            continue
        expected = expected_transition(t, c, p, q)
        assert set(seen) <= set(expected)
        for x, prob in expected.items():
            freq = seen[x] / total
            tol = 4.5 * (prob * (1 - prob) / total) ** 0.5 + 1e-9
            assert abs(freq - prob) <= tol, (t, c, x, freq, prob, total)
        checked += 1
    assert checked >= 10


def test_first_step_is_uniform_over_out_edges():
    rowptr, col = csr(EDGES, N)
    torch.manual_seed(1)
    nodes, _ = ops.random_walk(rowptr, col, torch.zeros(8000, dtype=torch.long), 1, p=0.3, q=3.0)
    freq = torch.bincount(nodes[:, 1], minlength=N).double() / 8000
    expected = torch.tensor([0, 0.5, 0.25, 0.25, 0, 0], dtype=torch.float64)  # 0 -> 1 is a parallel edge
    assert torch.allclose(freq, expected, atol=0.025)


@pytest.mark.parametrize("p,q", [(1.0, 1.0), (2.0, 0.5)])
def test_walks_follow_edges_and_stay_at_sinks(p, q):
    rowptr, col = csr(EDGES, N)
    torch.manual_seed(2)
    start = torch.tensor([5, 0, 4, 3, 5])
    nodes, edges = ops.random_walk(rowptr, col, start, 8, p, q)
    assert nodes.shape == (5, 9) and edges.shape == (5, 8)
    assert nodes.dtype == torch.long and edges.dtype == torch.long
    assert torch.equal(nodes[:, 0], start)
    row = torch.repeat_interleave(torch.arange(N), rowptr.diff())
    moved = edges >= 0
    assert torch.equal(row[edges[moved]], nodes[:, :-1][moved])  # the edge leaves the current node
    assert torch.equal(col[edges[moved]], nodes[:, 1:][moved])  # and reaches the next one
    stuck = ~moved
    assert torch.equal(nodes[:, 1:][stuck], nodes[:, :-1][stuck])
    assert bool((nodes[[0, 4]] == 5).all()) and bool((edges[[0, 4]] == -1).all())


def test_reproducible_under_manual_seed_and_input_forms():
    rowptr, col = csr(EDGES, N)
    start = torch.arange(5).repeat(3)
    torch.manual_seed(3)
    a = ops.random_walk(rowptr, col, start, 5, 0.5, 2.0)
    torch.manual_seed(3)
    b = ops.random_walk(rowptr.int(), col.int(), start.int(), 5, 0.5, 2.0)
    torch.manual_seed(3)
    wide = torch.stack([start, start], 1)
    c = ops.random_walk(rowptr, col, wide[:, 0], 5, 0.5, 2.0)  # non-contiguous start
    assert not wide[:, 0].is_contiguous()
    for other in (b, c):
        assert torch.equal(a[0], other[0]) and torch.equal(a[1], other[1])


def test_empty_inputs():
    rowptr, col = csr(EDGES, N)
    nodes, edges = ops.random_walk(rowptr, col, torch.empty(0, dtype=torch.long), 4, 2.0, 0.5)
    assert nodes.shape == (0, 5) and edges.shape == (0, 4)
    nodes, edges = ops.random_walk(rowptr, col, torch.tensor([1, 2]), 0)
    assert nodes.tolist() == [[1], [2]] and edges.shape == (2, 0)
    # no edges at all: every walk stays where it started
    nodes, edges = ops.random_walk(torch.zeros(4, dtype=torch.long), torch.empty(0, dtype=torch.long),
                                   torch.tensor([0, 2]), 3, 2.0, 0.5)  # fmt: skip
    assert nodes.tolist() == [[0] * 4, [2] * 4] and bool((edges == -1).all())
    nodes, _ = ops.random_walk(torch.zeros(1, dtype=torch.long), torch.empty(0, dtype=torch.long),
                               torch.empty(0, dtype=torch.long), 3)  # fmt: skip
    assert nodes.shape == (0, 4)


def test_bad_inputs_raise():
    rowptr, col = csr(EDGES, N)
    start = torch.tensor([0, 1])
    with pytest.raises(TypeError, match="rowptr"):
        ops.random_walk(rowptr.float(), col, start, 3)
    with pytest.raises(ValueError, match="rowptr"):
        ops.random_walk(torch.tensor([0, 5, 3, 17, 17, 17, 17]), col, start, 3)
    with pytest.raises(ValueError, match="rowptr"):
        ops.random_walk(torch.cat([rowptr[:-2], torch.tensor([16, 16])]), col, start, 3)  # ends before E
    with pytest.raises(v.IndexRangeError, match="col"):
        ops.random_walk(rowptr, torch.where(col == 4, 9, col), start, 3)
    with pytest.raises(IndexError, match="start"):
        ops.random_walk(rowptr, col, torch.tensor([0, 6]), 3)
    with pytest.raises(ValueError, match="start"):
        ops.random_walk(rowptr, col, torch.tensor([[0, 1]]), 3)
    with pytest.raises(TypeError, match="walk_length"):
        ops.random_walk(rowptr, col, start, 2.5)
    with pytest.raises(ValueError, match="walk_length"):
        ops.random_walk(rowptr, col, start, -1)
    for bad in (0.0, -1.0, float("inf"), float("nan"), 1e-320):
        with pytest.raises(ValueError, match="'p'"):
            ops.random_walk(rowptr, col, start, 3, p=bad)
    with pytest.raises(TypeError, match="'q'"):
        ops.random_walk(rowptr, col, start, 3, q="2")
    with pytest.raises(TypeError, match="start"):
        ops.random_walk(rowptr, col, [0, 1], 3)
