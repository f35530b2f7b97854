"""Geometric ops on point sets: nearest neighbours, radius graphs, farthest
point sampling and clustering.

The public functions (:func:`knn`, :func:`radius`, :func:`nearest`,
:func:`fps`, :func:`graclus`, :func:`grid_cluster`) follow torch_cluster's
semantics and PyG's argument names. They validate their inputs, draw the
random choices (so that results are reproducible under
:func:`torch.manual_seed` on every backend), then run the best backend that
supports the call (:func:`gnn.core.ops.backends.select`); the pure-torch
``*_reference`` functions of :mod:`gnn.core.ops.reference_geometry` run otherwise and are the correctness
reference of compiled backends.

Mini-batches: ``batch_x``/``batch_y``/``batch`` assign every point to an
example; they must be sorted, and points only match within their example.
The backends receive them as offsets ``ptr`` (``[B + 1]``, example ``b`` owns
rows ``ptr[b]:ptr[b+1]``).

Distances are squared euclidean distances ``sum_d (y_d - x_d)^2``, the
squares added in order (or, for cosine knn, a key that orders points like
``1 - cosine similarity``); ties are broken by the smaller index, so ``knn``
and ``radius`` are deterministic and every backend returns the same indices.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from .. import validation as v
from . import backends

__all__ = ["knn", "radius", "nearest", "fps", "graclus", "grid_cluster"]


def _impl(op: str, device: torch.device, dtype: torch.dtype) -> Any:
    """The implementation of ``op`` for this call: a backend's when one supports it, else ours."""
    return backends.select(op, device=device, dtype=dtype, reduce=None, requires_grad=False)[1]


# -- validation helpers ------------------------------------------------------------------------
def _points(name: str, value: object) -> Tensor:
    t = v.check_tensor(name, value)
    if not t.is_floating_point():
        raise TypeError(f"'{name}' must be a floating-point tensor of points, got {v.describe(t)}")
    if t.dim() == 1:
        t = t.view(-1, 1)
    elif t.dim() != 2 or t.size(1) == 0:
        raise ValueError(f"'{name}' must have shape [N, D] with D >= 1 (or [N]), got {v.describe(t)}")
    if v.validation_enabled() and t.numel() and not bool(torch.isfinite(t).all()):
        raise ValueError(f"'{name}' holds NaN or infinite coordinates")
    return t.detach().contiguous()


def _same_space(x: Tensor, y: Tensor) -> None:
    if x.size(1) != y.size(1):
        raise ValueError(
            f"'x' and 'y' must have the same number of dimensions, got {x.size(1)} and {y.size(1)}"
        )
    if x.dtype != y.dtype:
        raise TypeError(f"'x' and 'y' must have the same dtype, got {x.dtype} and {y.dtype}")
    if x.device != y.device:
        raise ValueError(f"'x' and 'y' must be on the same device, got {x.device} and {y.device}")


def _int(name: str, value: object, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, Tensor) and value.numel() == 1 and not value.is_floating_point():
            value = int(value)
        else:
            raise TypeError(f"'{name}' must be an int, got {v.describe(value)}")
    if value < low:
        raise ValueError(f"'{name}' must be at least {low}, got {value}")
    return value


def _batch_ptrs(
    batches: Sequence[tuple[str, Tensor | None, int]], batch_size: int | None, device: torch.device
) -> list[Tensor]:
    """Validate sorted batch vectors and turn them into offsets ``[B + 1]`` over one common ``B``."""
    found = 1
    for name, batch, n in batches:
        if batch is None:
            continue
        v.check_tensor(name, batch)
        v.check_index_dtype(name, batch)
        if batch.dim() != 1 or batch.numel() != n:
            raise ValueError(
                f"'{name}' must have shape [{n}] (one example per point), got {v.describe(batch)}"
            )
        if batch.device != device:
            raise ValueError(f"'{name}' must be on {device}, got {batch.device}")
        if n and v.validation_enabled():
            lo = int(batch.min())
            if lo < 0:
                raise ValueError(f"'{name}' contains a negative example index ({lo})")
            if n > 1 and bool((batch[1:] < batch[:-1]).any()):
                raise ValueError(f"'{name}' must be sorted (points grouped by example, in order)")
        if n:
            found = max(found, int(batch[-1]) + 1)
    if batch_size is not None:
        batch_size = _int("batch_size", batch_size, 1)
        if v.validation_enabled() and found > batch_size:
            raise ValueError(f"'batch_size' is {batch_size} but the batch vectors hold example {found - 1}")
        found = batch_size
    ptrs = []
    for _, batch, n in batches:
        if batch is None:
            ptr = torch.full((found + 1,), n, dtype=torch.long, device=device)
            ptr[0] = 0
        else:
            counts = torch.bincount(batch.long(), minlength=found)[:found]
            ptr = torch.cat([counts.new_zeros(1), counts.cumsum(0)])
        ptrs.append(ptr)
    return ptrs


def _vector(name: str, value: object, dim: int, like: Tensor) -> Tensor:
    """A float, a sequence or a tensor as a ``[dim]`` tensor of ``like``'s dtype and device."""
    if isinstance(value, Tensor):
        t = value.detach().to(device=like.device, dtype=like.dtype).flatten()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        t = torch.tensor([float(value)], dtype=like.dtype, device=like.device)
    elif isinstance(value, Sequence) and all(isinstance(e, (int, float)) for e in value):
        t = torch.tensor([float(e) for e in value], dtype=like.dtype, device=like.device)
    else:
        raise TypeError(
            f"'{name}' must be a float, a sequence of floats or a tensor, got {v.describe(value)}"
        )
    if t.numel() == 1 and dim != 1:
        t = t.expand(dim)
    if t.numel() != dim:
        raise ValueError(f"'{name}' must have {dim} entries (one per dimension of 'pos'), got {t.numel()}")
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"'{name}' must be finite, got {t.tolist()}")
    return t.contiguous()


# -- public API --------------------------------------------------------------------------------
def knn(
    x: Tensor,
    y: Tensor,
    k: int,
    batch_x: Tensor | None = None,
    batch_y: Tensor | None = None,
    cosine: bool = False,
    num_workers: int = 1,
    batch_size: int | None = None,
) -> Tensor:
    r"""For every point of ``y``, the ``k`` nearest points of ``x`` (in the same example).

    Distance :math:`d(y_i, x_j) = \sum_d (y_{i,d} - x_{j,d})^2`, or
    :math:`1 - \frac{y_i \cdot x_j}{\|y_i\| \|x_j\|}` with ``cosine=True``
    (ranked through the equivalent key :math:`-\frac{(y_i \cdot x_j)|y_i \cdot x_j|}{\|x_j\|^2}`,
    which needs no square root, so that every backend agrees; zero vectors
    have similarity 0).

    Args:
        x: ``[N, D]`` (or ``[N]``) points searched.
        y: ``[M, D]`` (or ``[M]``) query points.
        k: neighbours per query.
        batch_x: ``[N]`` sorted example of each point of ``x`` (default: all 0).
        batch_y: ``[M]`` sorted example of each point of ``y`` (default: all 0).
        cosine: use the cosine distance.
        num_workers: accepted for PyG compatibility; torch's intra-op threads are used.
        batch_size: number of examples (default ``max(batch) + 1``).

    Returns:
        ``[2, E]`` with ``E = M * k`` when every example of ``x`` holds ``k``
        points (fewer otherwise): row 0 indexes ``y``, row 1 ``x``; grouped by
        query, neighbours by increasing (distance, index).

    Example:
        >>> x = torch.tensor([[0.0], [1.0], [5.0]])
        >>> knn(x, torch.tensor([[0.9]]), 2)
        tensor([[0, 0],
                [1, 0]])
    """
    x, y = _points("x", x), _points("y", y)
    _same_space(x, y)
    k = _int("k", k, 1)
    ptr_x, ptr_y = _batch_ptrs(
        [("batch_x", batch_x, x.size(0)), ("batch_y", batch_y, y.size(0))], batch_size, x.device
    )
    return _impl("knn", x.device, x.dtype)(x, y, k, ptr_x, ptr_y, bool(cosine))


def radius(
    x: Tensor,
    y: Tensor,
    r: float,
    batch_x: Tensor | None = None,
    batch_y: Tensor | None = None,
    max_num_neighbors: int = 32,
    num_workers: int = 1,
    batch_size: int | None = None,
) -> Tensor:
    r"""For every point of ``y``, the points of ``x`` (same example) closer than ``r``.

    Pairs with :math:`\sum_d (y_{i,d} - x_{j,d})^2 < r^2`; a query with more
    than ``max_num_neighbors`` of them keeps those with the smallest indices.

    Args:
        x: ``[N, D]`` (or ``[N]``) points searched.
        y: ``[M, D]`` (or ``[M]``) query points.
        r: the radius.
        batch_x, batch_y: sorted examples (default: all 0).
        max_num_neighbors: most neighbours per query.
        num_workers: accepted for PyG compatibility.
        batch_size: number of examples (default ``max(batch) + 1``).

    Returns:
        ``[2, E]``: row 0 indexes ``y``, row 1 ``x``; sorted by query, then point.

    Example:
        >>> x = torch.tensor([[0.0], [1.0], [5.0]])
        >>> radius(x, torch.tensor([[0.6]]), 1.0)
        tensor([[0, 0],
                [0, 1]])
    """
    x, y = _points("x", x), _points("y", y)
    _same_space(x, y)
    if isinstance(r, bool) or not isinstance(r, (int, float)) or not math.isfinite(r) or r < 0:
        raise ValueError(f"'r' must be a finite non-negative number, got {v.describe(r)}")
    max_num_neighbors = _int("max_num_neighbors", max_num_neighbors, 0)
    ptr_x, ptr_y = _batch_ptrs(
        [("batch_x", batch_x, x.size(0)), ("batch_y", batch_y, y.size(0))], batch_size, x.device
    )
    return _impl("radius", x.device, x.dtype)(x, y, float(r), ptr_x, ptr_y, max_num_neighbors)


def nearest(x: Tensor, y: Tensor, batch_x: Tensor | None = None, batch_y: Tensor | None = None) -> Tensor:
    r"""For every point of ``x``, the index of its nearest point of ``y`` (same example).

    :math:`out_i = \arg\min_j \sum_d (x_{i,d} - y_{j,d})^2` over the ``y`` of
    ``x_i``'s example (the smallest index on ties).

    Args:
        x: ``[N, D]`` (or ``[N]``) points to assign.
        y: ``[M, D]`` (or ``[M]``) cluster centres.
        batch_x, batch_y: sorted examples (default: all 0); every example
            holding points of ``x`` must hold points of ``y``.

    Returns:
        ``[N]`` indices into ``y``.

    Example:
        >>> nearest(torch.tensor([[0.0], [0.9], [3.0]]), torch.tensor([[0.0], [2.5]]))
        tensor([0, 0, 1])
    """
    x, y = _points("x", x), _points("y", y)
    _same_space(x, y)
    ptr_x, ptr_y = _batch_ptrs(
        [("batch_x", batch_x, x.size(0)), ("batch_y", batch_y, y.size(0))], None, x.device
    )
    if v.validation_enabled():
        missing = ((ptr_x[1:] > ptr_x[:-1]) & (ptr_y[1:] == ptr_y[:-1])).nonzero()
        if missing.numel():
            raise ValueError(
                f"'batch_y' holds no point of example {int(missing[0])}, which 'batch_x' holds points of"
            )
    return _impl("nearest", x.device, x.dtype)(x, y, ptr_x, ptr_y)


def fps(
    src: Tensor,
    batch: Tensor | None = None,
    ratio: float = 0.5,
    random_start: bool = True,
    batch_size: int | None = None,
) -> Tensor:
    r"""Farthest point sampling (PointNet++), per example.

    Example ``b`` with :math:`n_b` points gets :math:`\lceil ratio \cdot n_b \rceil`
    samples: a start point (random, or its first point), then repeatedly the
    point maximising :math:`\min_{s \in S} \sum_d (p_d - s_d)^2` over the
    samples :math:`S` so far (the first such point on ties; never a sample twice).

    Args:
        src: ``[N, D]`` (or ``[N]``) points.
        batch: ``[N]`` sorted example of each point (default: all 0).
        ratio: sampling ratio in ``(0, 1]``.
        random_start: start at a random point (reproducible under
            :func:`torch.manual_seed`) instead of each example's first point.
        batch_size: number of examples (default ``max(batch) + 1``).

    Returns:
        ``[S]`` indices into ``src``, example by example, in pick order.

    Example:
        >>> fps(torch.tensor([[0.0], [1.0], [10.0], [4.0]]), ratio=0.75, random_start=False)
        tensor([0, 2, 3])
    """
    src = _points("src", src)
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 < ratio <= 1:
        raise ValueError(f"'ratio' must be a number in (0, 1], got {v.describe(ratio)}")
    (ptr,) = _batch_ptrs([("batch", batch, src.size(0))], batch_size, src.device)
    deg = ptr[1:] - ptr[:-1]
    num_samples = torch.minimum((deg.to(torch.float32) * ratio).ceil().long(), deg)
    if random_start:
        draw = torch.rand(deg.numel(), dtype=torch.float64).to(src.device)
        start = torch.minimum((draw * deg).long(), (deg - 1).clamp(min=0))
    else:
        start = torch.zeros_like(deg)
    return _impl("fps", src.device, src.dtype)(src, ptr, num_samples, start)


def graclus(edge_index: Tensor, weight: Tensor | None = None, num_nodes: int | None = None) -> Tensor:
    r"""Greedy graclus matching (Dhillon et al.): clusters of at most two nodes.

    Nodes are visited in random order; an unmatched node ``u`` is paired with
    the unmatched neighbour ``v`` (edge ``u -> v``, ``v != u``) of largest
    ``weight`` (edges with negative weight are never used; without weights, a
    random unmatched neighbour); both get cluster ``min(u, v)``. Nodes left
    unmatched keep their own index. Reproducible under :func:`torch.manual_seed`.

    Args:
        edge_index: ``[2, E]`` edges.
        weight: optional ``[E]`` edge weights.
        num_nodes: number of nodes (default ``edge_index.max() + 1``).

    Returns:
        ``[N]`` cluster of each node (not consecutive).

    Example:
        >>> graclus(torch.tensor([[0, 1], [1, 0]]))
        tensor([0, 0])
    """
    edge_index = v.check_edge_index(edge_index)
    if num_nodes is None:
        num_nodes = int(edge_index.max()) + 1 if edge_index.numel() else 0
    num_nodes = _int("num_nodes", num_nodes, 0)
    v.check_index_range("edge_index", edge_index, num_nodes)
    device = edge_index.device
    if weight is None:  # random keys: the best unmatched neighbour is a uniformly random one
        weight = torch.rand(edge_index.size(1), dtype=torch.float64).to(device)
    else:
        v.check_tensor("weight", weight)
        if weight.dim() != 1 or weight.numel() != edge_index.size(1):
            raise ValueError(f"'weight' must have shape [{edge_index.size(1)}], got {v.describe(weight)}")
        if weight.is_complex():
            raise TypeError(f"'weight' must be real, got {v.describe(weight)}")
        if not weight.is_floating_point():
            weight = weight.to(torch.float64)
        weight = weight.detach().to(device)
    perm = torch.randperm(num_nodes).to(device)
    row, col = edge_index[0].long(), edge_index[1].long()
    loop = row != col
    row, col, weight = row[loop], col[loop], weight[loop]
    order = torch.argsort(row, stable=True)
    col, weight = col[order].contiguous(), weight[order].contiguous()
    rowptr = torch.cat([row.new_zeros(1), torch.bincount(row, minlength=num_nodes).cumsum(0)])
    return _impl("graclus", device, weight.dtype)(rowptr, col, weight, perm)


def grid_cluster(
    pos: Tensor,
    size: float | Sequence[float] | Tensor,
    start: float | Sequence[float] | Tensor | None = None,
    end: float | Sequence[float] | Tensor | None = None,
    batch: Tensor | None = None,
) -> Tensor:
    r"""Voxel id of every point for a regular grid of voxel ``size``.

    .. math::
        c_i = \sum_d \left\lfloor \frac{p_{i,d} - start_d}{size_d} \right\rfloor_0
              \prod_{d' < d} \left(\left\lfloor \frac{end_{d'} - start_{d'}}{size_{d'}}
              \right\rfloor_0 + 1\right)

    where :math:`\lfloor\cdot\rfloor_0` rounds towards zero (as torch_cluster).

    Args:
        pos: ``[N, D]`` (or ``[N]``) positions.
        size: voxel size, one value or one per dimension.
        start: grid origin (default: the smallest coordinates).
        end: grid end (default: the largest coordinates).
        batch: optional ``[N]`` example of each point; appended as one more
            dimension of voxel size 1 so that examples never share a voxel.

    Returns:
        ``[N]`` voxel ids (not consecutive).

    Example:
        >>> grid_cluster(torch.tensor([[0.0, 0.0], [0.4, 0.1], [1.2, 0.0], [0.1, 1.5]]), 1.0)
        tensor([0, 0, 1, 2])
    """
    pos = _points("pos", pos)
    n, dim = pos.shape
    size = _vector("size", size, dim, pos)
    if bool((size <= 0).any()):
        raise ValueError(f"'size' must be positive, got {size.tolist()}")
    start = (pos.amin(0) if n else pos.new_zeros(dim)) if start is None else _vector("start", start, dim, pos)
    end = (pos.amax(0) if n else pos.new_zeros(dim)) if end is None else _vector("end", end, dim, pos)
    if batch is not None:
        v.check_tensor("batch", batch)
        v.check_index_dtype("batch", batch)
        if batch.dim() != 1 or batch.numel() != n:
            raise ValueError(f"'batch' must have shape [{n}], got {v.describe(batch)}")
        last = float(batch.max()) if n else 0.0
        pos = torch.cat([pos, batch.to(pos.device, pos.dtype).unsqueeze(1)], 1).contiguous()
        size = torch.cat([size, size.new_ones(1)])
        start = torch.cat([start, start.new_zeros(1)])
        end = torch.cat([end, end.new_full((1,), last)])
    if bool((end < start).any()):
        raise ValueError(
            f"'end' must not be below 'start', got start={start.tolist()} and end={end.tolist()}"
        )
    cells = ((end - start) / size).double().floor() + 1
    if float(cells.log2().sum()) >= 62:
        raise ValueError(
            f"'size' is too small: the grid would hold more than 2**62 voxels ({cells.tolist()} per axis)"
        )
    return _impl("grid_cluster", pos.device, pos.dtype)(
        pos, size.contiguous(), start.contiguous(), end.contiguous()
    )
