"""Shared fixtures of the gnn-conv tests: a brute-force kNN reference and a stand-in for pyg-lib's
``torch.ops.pyg.knn`` so that PyG's kNN layers (DynamicEdgeConv, GravNetConv, XConv) run here."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import pytest
import torch
from torch import Tensor


def brute_knn(
    x_src: Tensor, x_dst: Tensor, k: int, b_src: Tensor | None = None, b_dst: Tensor | None = None
) -> list[list[int]]:
    """For every target: its k nearest sources of the same example, by (squared distance, index)."""
    b_src = torch.zeros(x_src.size(0), dtype=torch.long) if b_src is None else b_src
    b_dst = torch.zeros(x_dst.size(0), dtype=torch.long) if b_dst is None else b_dst
    out = []
    for i in range(x_dst.size(0)):
        cand = [j for j in range(x_src.size(0)) if b_src[j] == b_dst[i]]
        dist = [float(((x_src[j] - x_dst[i]) ** 2).sum()) for j in cand]
        out.append([j for _, j in sorted(zip(dist, cand))[:k]])
    return out


@pytest.fixture(name="brute_knn")
def _brute_knn_fixture() -> Callable[..., list[list[int]]]:
    """``brute_knn(x_src, x_dst, k, b_src=None, b_dst=None)``: neighbour lists per target."""
    return brute_knn


@pytest.fixture
def pyg_with_knn(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """``torch_geometric`` (the test is skipped without it) with its kNN layers switched on.

    PyG's kNN layers need pyg-lib's ``torch.ops.pyg.knn``; where it is missing, a brute-force one is
    defined (once per process) from :func:`brute_knn`."""
    pyg = pytest.importorskip("torch_geometric")
    monkeypatch.setattr(pyg.typing, "WITH_KNN", True)
    if not hasattr(torch.ops.pyg, "knn"):

        @torch.library.custom_op("pyg::knn", mutates_args=())
        def knn(
            x: Tensor,
            y: Tensor,
            ptr_x: Tensor | None,
            ptr_y: Tensor | None,
            k: int,
            cosine: bool,
            workers: int,
        ) -> Tensor:
            bx = None if ptr_x is None else torch.repeat_interleave(ptr_x.diff())
            by = None if ptr_y is None else torch.repeat_interleave(ptr_y.diff())
            nbrs = brute_knn(x, y, k, bx, by)
            rows = [i for i, n in enumerate(nbrs) for _ in n]
            return torch.tensor([rows, [j for n in nbrs for j in n]], dtype=torch.long).view(2, -1)

    return pyg
