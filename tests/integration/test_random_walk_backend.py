"""gnn.core.ops.random_walk on gnn-kernels' compiled kernel against the pure-torch reference:
the same walks, element for element, for the same seed."""

from __future__ import annotations

import pytest
import torch

from gnn.core import ops
from gnn.core.ops import backends

kernels = pytest.importorskip("gnn.kernels")
pytestmark = pytest.mark.skipif(not kernels.load(), reason=f"gnn-kernels not usable: {kernels.load_error()}")


def graph(seed: int, n: int, e: int, sinks: int):
    g = torch.Generator().manual_seed(seed)
    ei = torch.randint(0, n, (2, e), generator=g)
    ei = ei[:, ei[0] < n - sinks]  # the last nodes have no out-edges
    ei = ei[:, torch.randperm(ei.size(1), generator=g)]
    row, col = ei[:, torch.argsort(ei[0], stable=True)]  # targets unsorted within rows
    rowptr = torch.cat([torch.zeros(1, dtype=torch.long), torch.bincount(row, minlength=n).cumsum(0)])
    return rowptr, col


def test_kernel_serves_the_op(monkeypatch):
    monkeypatch.delenv("GNN_KERNELS", raising=False)
    ctx = {"device": torch.device("cpu"), "dtype": torch.float64, "reduce": None, "requires_grad": False}
    assert backends.select("random_walk", work=1, **ctx)[0] == "native"


@pytest.mark.parametrize("p,q", [(1.0, 1.0), (0.5, 2.0), (4.0, 0.25), (1.0, 3.0)])
def test_kernel_walks_equal_reference_walks(monkeypatch, p, q):
    monkeypatch.delenv("GNN_KERNELS", raising=False)
    rowptr, col = graph(0, 120, 900, 6)
    start = torch.arange(120).repeat(8)
    torch.manual_seed(7)
    with ops.backend("native"):
        a = ops.random_walk(rowptr, col, start, 10, p, q)
    torch.manual_seed(7)
    with ops.backend("torch"):
        b = ops.random_walk(rowptr, col, start, 10, p, q)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert bool((a[1][start >= 114] == -1).all())
