"""Geometric ops of the compiled library: fake implementations and the backend methods.

:func:`register_fakes` (called by the library loader, harmless before) gives
``torch.compile`` the output shapes (``knn``, ``graclus`` and ``grid_cluster``
are static; ``radius`` and ``fps`` depend on the data). :class:`GeometryOps`
holds the backend methods that serve ``knn``, ``radius``, ``nearest``,
``fps``, ``graclus`` and ``grid_cluster`` of :mod:`gnn.core.ops`; they take the
arguments of gnn-core's ``*_reference`` functions (validated inputs, examples
as offsets ``ptr [B + 1]``, random choices already drawn).
"""

from __future__ import annotations

import torch
from torch import Tensor

_LONG = torch.int64


# -- fake implementations ----------------------------------------------------------------------
def _knn_fake(x, y, ptr_x, ptr_y, k, cosine):
    return y.new_empty(2, y.shape[0] * k, dtype=_LONG)


def _radius_fake(x, y, ptr_x, ptr_y, r, max_num_neighbors):
    return y.new_empty(2, torch.library.get_ctx().new_dynamic_size(), dtype=_LONG)


def _fps_fake(src, ptr, num_samples, start):
    return src.new_empty(torch.library.get_ctx().new_dynamic_size(), dtype=_LONG)


def _graclus_fake(rowptr, col, weight, perm):
    return rowptr.new_empty(rowptr.shape[0] - 1, dtype=_LONG)


def _grid_cluster_fake(pos, size, start, end):
    return pos.new_empty(pos.shape[0], dtype=_LONG)


_FAKES = {
    "knn": _knn_fake,
    "radius": _radius_fake,
    "fps": _fps_fake,
    "graclus": _graclus_fake,
    "grid_cluster": _grid_cluster_fake,
}
_registered = False


def register_fakes() -> bool:
    """Register the fake implementations once the compiled ops exist; ``True`` when they are registered.

    Idempotent; called on import and again by the library loader, so that
    importing this module before the library is loaded is harmless.
    """
    global _registered
    if not _registered and all(hasattr(torch.ops.gnn_kernels, name) for name in _FAKES):
        for name, fake in _FAKES.items():
            torch.library.register_fake(f"gnn_kernels::{name}")(fake)
        _registered = True
    return _registered


register_fakes()


# -- backend methods ---------------------------------------------------------------------------
def _long(t: Tensor) -> Tensor:
    return t.to(_LONG).contiguous()


class GeometryOps:
    """Mixin of a kernel backend: the geometric ops on the compiled CPU kernels."""

    def knn(self, x: Tensor, y: Tensor, k: int, ptr_x: Tensor, ptr_y: Tensor, cosine: bool) -> Tensor:
        """``[2, E]`` (query in ``y``, neighbour in ``x``), see :func:`gnn.core.ops.knn`."""
        out = torch.ops.gnn_kernels.knn(
            x.detach().contiguous(), y.detach().contiguous(), _long(ptr_x), _long(ptr_y), k, cosine
        )
        found = out[1] >= 0
        if not bool(found.all()):  # examples with fewer than k points
            out = out[:, found]
        return out

    def radius(
        self, x: Tensor, y: Tensor, r: float, ptr_x: Tensor, ptr_y: Tensor, max_num_neighbors: int
    ) -> Tensor:
        """``[2, E]`` pairs closer than ``r``, see :func:`gnn.core.ops.radius`."""
        return torch.ops.gnn_kernels.radius(
            x.detach().contiguous(), y.detach().contiguous(), _long(ptr_x), _long(ptr_y), r, max_num_neighbors
        )

    def nearest(self, x: Tensor, y: Tensor, ptr_x: Tensor, ptr_y: Tensor) -> Tensor:
        """``[N]`` index of the nearest point of ``y`` for each point of ``x``."""
        return self.knn(y, x, 1, ptr_y, ptr_x, False)[1]

    def fps(self, src: Tensor, ptr: Tensor, num_samples: Tensor, start: Tensor) -> Tensor:
        """Farthest point sampling from the given start offsets, see :func:`gnn.core.ops.fps`."""
        return torch.ops.gnn_kernels.fps(
            src.detach().contiguous(), _long(ptr), _long(num_samples), _long(start)
        )

    def graclus(self, rowptr: Tensor, col: Tensor, weight: Tensor, perm: Tensor) -> Tensor:
        """Greedy matching on a CSR graph in the visiting order ``perm``, see :func:`gnn.core.ops.graclus`."""
        if weight.dtype not in (torch.float32, torch.float64):
            weight = weight.to(torch.float64)
        return torch.ops.gnn_kernels.graclus(
            _long(rowptr), _long(col), weight.detach().contiguous(), _long(perm)
        )

    def grid_cluster(self, pos: Tensor, size: Tensor, start: Tensor, end: Tensor) -> Tensor:
        """Voxel id of every point, see :func:`gnn.core.ops.grid_cluster`."""
        dtype = pos.dtype
        return torch.ops.gnn_kernels.grid_cluster(
            pos.detach().contiguous(),
            size.to(dtype).contiguous(),
            start.to(dtype).contiguous(),
            end.to(dtype).contiguous(),
        )
