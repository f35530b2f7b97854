"""The raw ``gnn_kernels::random_walk`` op against a loop written here (gnn-kernels alone: torch only).

The loop spells out the step rule the kernel documents (csrc/random_walk.h) for
given draws; a CUDA run (where a GPU and a CUDA build exist) must return the
CPU's walks element for element.
"""

from __future__ import annotations

import pytest
import torch

import gnn.kernels

pytestmark = pytest.mark.skipif(
    not gnn.kernels.load(), reason=f"kernels not built: {gnn.kernels.load_error()}"
)
if gnn.kernels.load():
    from gnn.kernels import walk

    walk.register_fakes()  # idempotent (the library loader calls it as well)
K = torch.ops.gnn_kernels if gnn.kernels.load() else None


def csr(edges, n):
    edges = sorted(edges, key=lambda e: e[0])
    counts = torch.bincount(torch.tensor([e[0] for e in edges], dtype=torch.long), minlength=n)
    rowptr = torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)])
    return rowptr, torch.tensor([e[1] for e in edges], dtype=torch.long)


def sorted_rows(rowptr, col):
    out = col.clone()
    for i in range(rowptr.numel() - 1):
        a, b = int(rowptr[i]), int(rowptr[i + 1])
        out[a:b] = col[a:b].sort().values
    return out


def loop_walks(rowptr, col, start, rand, p, q):
    """The documented rule, one walk and one step at a time, in Python floats (IEEE doubles)."""
    rp, cl = rowptr.tolist(), col.tolist()
    edges_of = {i: cl[rp[i] : rp[i + 1]] for i in range(len(rp) - 1)}
    biased = rand.dim() == 3
    all_nodes, all_edges = [], []
    for w, s in enumerate(start.tolist()):
        cur = prev = s
        nodes, edges = [s], []
        for step in range(rand.size(1)):
            out = edges_of[cur]
            if not out:
                edges.append(-1)
                nodes.append(cur)
                prev = cur
                continue
            if not biased or step == 0:
                u = float(rand[w, step, 1]) if biased else float(rand[w, step])
                off = min(int(u * len(out)), len(out) - 1)
            else:
                cls = [0 if x == prev else (1 if x in edges_of[prev] else 2) for x in out]
                n = [cls.count(0), cls.count(1), cls.count(2)]
                a, b, c = n[0] / p, float(n[1]), n[2] / q
                s_ = float(rand[w, step, 0]) * ((a + b) + c)
                chosen = 0
                if s_ >= a and n[1] > 0:
                    chosen = 1
                if s_ >= a + b and n[2] > 0:
                    chosen = 2
                j = min(int(float(rand[w, step, 1]) * n[chosen]), n[chosen] - 1)
                off = [i for i, k in enumerate(cls) if k == chosen][j]
            edges.append(rp[cur] + off)
            prev, cur = cur, out[off]
            nodes.append(cur)
        all_nodes.append(nodes)
        all_edges.append(edges)
    return all_nodes, all_edges


EDGES = [(0, 1), (0, 1), (0, 2), (0, 3), (1, 0), (1, 2), (1, 4), (2, 0), (2, 1), (2, 2), (2, 4),
         (3, 0), (3, 4), (4, 1), (4, 2), (4, 3), (4, 5)]  # fmt: skip


@pytest.mark.parametrize("p,q", [(1.0, 1.0), (0.5, 2.0), (3.0, 0.3)])
def test_walks_follow_the_documented_rule(p, q):
    rowptr, col = csr(EDGES, 6)
    g = torch.Generator().manual_seed(0)
    start = torch.tensor([0, 1, 2, 3, 4, 5] * 5)
    biased = (p, q) != (1.0, 1.0)
    rand = torch.rand((30, 7, 2) if biased else (30, 7), generator=g, dtype=torch.float64)
    nodes, edges = K.random_walk(rowptr, col, sorted_rows(rowptr, col) if biased else None, start, rand, p, q)
    want_nodes, want_edges = loop_walks(rowptr, col, start, rand, p, q)
    assert nodes.tolist() == want_nodes and edges.tolist() == want_edges


def test_edge_draws_at_the_ends_of_the_unit_interval():
    rowptr, col = csr(EDGES, 6)
    start = torch.tensor([0, 0])
    rand = torch.tensor([[0.0], [1.0 - 2.0**-53]], dtype=torch.float64)
    nodes, edges = K.random_walk(rowptr, col, None, start, rand, 1.0, 1.0)
    assert edges.tolist() == [[0], [3]]  # the first and the last out-edge of node 0
    assert nodes.tolist() == [[0, 1], [0, 3]]


def test_bad_inputs_raise_instead_of_crashing():
    rowptr, col = csr(EDGES, 6)
    start = torch.tensor([0, 1])
    rand = torch.rand(2, 3, dtype=torch.float64)
    with pytest.raises(RuntimeError, match="out of range"):
        K.random_walk(rowptr, torch.where(col == 4, 7, col), None, start, rand, 1.0, 1.0)
    with pytest.raises(RuntimeError, match="start"):
        K.random_walk(rowptr, col, None, torch.tensor([0, 6]), rand, 1.0, 1.0)
    with pytest.raises(RuntimeError, match="rowptr"):
        K.random_walk(torch.tensor([0, 5, 3, 17, 17, 17, 17]), col, None, start, rand, 1.0, 1.0)
    with pytest.raises(RuntimeError, match="float64"):
        K.random_walk(rowptr, col, None, start, rand.float(), 1.0, 1.0)
    with pytest.raises(RuntimeError, match="shape"):
        K.random_walk(rowptr, col, None, start, torch.rand(3, 3, dtype=torch.float64), 1.0, 1.0)
    biased = torch.rand(2, 3, 2, dtype=torch.float64)
    with pytest.raises(RuntimeError, match="neighbors"):
        K.random_walk(rowptr, col, None, start, biased, 2.0, 1.0)
    with pytest.raises(RuntimeError, match="neighbors"):
        K.random_walk(rowptr, col, col[:-1].contiguous(), start, biased, 2.0, 1.0)
    with pytest.raises(RuntimeError, match="positive"):
        K.random_walk(rowptr, col, col, start, biased, 0.0, 1.0)


def test_fake_implementation_and_schema():
    rowptr, col = csr(EDGES, 6)
    start = torch.tensor([0, 4, 5])
    for rand, nb in (
        (torch.rand(3, 4, dtype=torch.float64), None),
        (torch.rand(3, 4, 2, dtype=torch.float64), col),
    ):
        torch.library.opcheck(
            K.random_walk,
            (rowptr, col, nb, start, rand, 2.0, 0.5),
            test_utils=("test_schema", "test_faketensor"),
        )


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_walks_equal_cpu_walks():
    if gnn.kernels.build_info().get("cuda") is None:
        pytest.skip("gnn-kernels built without CUDA")
    g = torch.Generator().manual_seed(5)
    ei = torch.randint(0, 300, (2, 3000), generator=g)
    ei = ei[:, ei[0] < 280]
    rowptr, col = csr(list(zip(*ei.tolist())), 300)
    nb = sorted_rows(rowptr, col)
    start = torch.arange(300).repeat(4)
    for shape, p, q in (((1200, 9), 1.0, 1.0), ((1200, 9, 2), 0.5, 2.0)):
        rand = torch.rand(shape, generator=g, dtype=torch.float64)
        cpu = K.random_walk(rowptr, col, nb, start, rand, p, q)
        gpu = K.random_walk(rowptr.cuda(), col.cuda(), nb.cuda(), start.cuda(), rand.cuda(), p, q)
        assert torch.equal(gpu[0].cpu(), cpu[0]) and torch.equal(gpu[1].cpu(), cpu[1])
