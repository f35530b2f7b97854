"""The random-walk op of the compiled library: its fake implementation and the backend method.

``torch.ops.gnn_kernels.random_walk(rowptr, col, neighbors, start, rand, p, q)``
takes gnn-core's reference arguments (CSR offsets and targets, the targets sorted
within rows for biased walks, the start nodes, the float64 draws ``[S, L]`` or
``[S, L, 2]``) and returns ``(nodes [S, L + 1], edges [S, L])``, the walks of
``gnn.core.ops.reference_walk`` for the same draws.
"""

from __future__ import annotations

import torch
from torch import Tensor

_LONG = torch.int64


def _random_walk_fake(rowptr, col, neighbors, start, rand, p, q):
    num, length = rand.shape[0], rand.shape[1]
    return start.new_empty(num, length + 1, dtype=_LONG), start.new_empty(num, length, dtype=_LONG)


_registered = False


def register_fakes() -> bool:
    """Register the fake implementation once the compiled op exists (idempotent)."""
    global _registered
    if not _registered and hasattr(torch.ops.gnn_kernels, "random_walk"):
        torch.library.register_fake("gnn_kernels::random_walk")(_random_walk_fake)
        _registered = True
    return _registered


register_fakes()


class WalkOps:
    """Mixin of a kernel backend: random walks on the compiled CPU kernel."""

    def random_walk(
        self,
        rowptr: Tensor,
        col: Tensor,
        neighbors: Tensor | None,
        start: Tensor,
        rand: Tensor,
        p: float,
        q: float,
    ) -> tuple[Tensor, Tensor]:
        """Walks from ``start`` for the given draws, see ``gnn.core.ops.random_walk``."""
        return torch.ops.gnn_kernels.random_walk(
            rowptr.to(_LONG).contiguous(),
            col.to(_LONG).contiguous(),
            None if neighbors is None else neighbors.to(_LONG).contiguous(),
            start.to(_LONG).contiguous(),
            rand.to(torch.float64).contiguous(),
            float(p),
            float(q),
        )
