"""Shared fixtures of the gnn-models tests: a stand-in for pyg-lib's ``torch.ops.pyg.radius`` (a
brute-force loop) so that PyG's 3-D molecular models (ViSNet, GNNFF) run here for parity checks."""

from __future__ import annotations

from types import ModuleType

import pytest
import torch
from torch import Tensor


def brute_radius(x: Tensor, y: Tensor, bx: Tensor, by: Tensor, r: float, k: int, no_self: bool) -> Tensor:
    """``[2, E]`` pairs (query in ``y``, neighbour in ``x``) closer than ``r`` within one example,
    at most ``k`` per query, those of smallest index (loop over queries)."""
    rows, cols = [], []
    for i in range(y.size(0)):
        found = [
            j
            for j in range(x.size(0))
            if bx[j] == by[i] and not (no_self and i == j) and float(((x[j] - y[i]) ** 2).sum()) <= r * r
        ][:k]
        rows += [i] * len(found)
        cols += found
    return torch.tensor([rows, cols], dtype=torch.long).view(2, -1)


@pytest.fixture
def pyg_with_radius(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """``torch_geometric`` (the test is skipped without it) with its ``radius_graph`` switched on.

    PyG's radius search needs pyg-lib's ``torch.ops.pyg.radius``; where it is missing, a brute-force
    one is defined (once per process) from :func:`brute_radius`."""
    pyg = pytest.importorskip("torch_geometric")
    import torch_geometric.typing

    monkeypatch.setattr(torch_geometric.typing, "WITH_RADIUS", True)
    if not hasattr(torch.ops.pyg, "radius"):

        @torch.library.custom_op("pyg::radius", mutates_args=())
        def radius(
            x: Tensor,
            y: Tensor,
            ptr_x: Tensor | None,
            ptr_y: Tensor | None,
            r: float,
            max_num_neighbors: int,
            num_workers: int,
            ignore_same_index: bool,
        ) -> Tensor:
            bx = (
                torch.zeros(x.size(0), dtype=torch.long)
                if ptr_x is None
                else torch.repeat_interleave(ptr_x.diff())
            )
            by = (
                torch.zeros(y.size(0), dtype=torch.long)
                if ptr_y is None
                else torch.repeat_interleave(ptr_y.diff())
            )
            return brute_radius(x, y, bx, by, r, max_num_neighbors, ignore_same_index)

    return pyg
