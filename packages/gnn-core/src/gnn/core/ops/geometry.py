"""Geometric ops on point sets: nearest neighbours, radius graphs, farthest
point sampling and clustering.

The public functions (:func:`knn`, :func:`radius`, :func:`nearest`,
:func:`fps`, :func:`graclus`, :func:`grid_cluster`) follow torch_cluster's
semantics and PyG's argument names. They validate their inputs, draw the
random choices (so that results are reproducible under
:func:`torch.manual_seed` on every backend), then run the best backend that
supports the call (:func:`gnn.core.ops.backends.select`); the pure-torch
``*_reference`` functions below run otherwise and are the correctness
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
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import Tensor

from .. import validation as v
from . import backends
from .csr import ptr_to_index

__all__ = [
    "knn",
    "radius",
    "nearest",
    "fps",
    "graclus",
    "grid_cluster",
    "knn_reference",
    "radius_reference",
    "nearest_reference",
    "fps_reference",
    "graclus_reference",
    "grid_cluster_reference",
]

#: pairwise distances the references hold at once (16 MiB in float32)
_BLOCK = 1 << 22
#: extra knn candidates whose exact distances are compared
_MARGIN = 8


# -- pure-torch references (validated inputs, CSR-style offsets) -----------------------------------
def _blocks(ptr_x: Tensor, ptr_y: Tensor, budget: int = _BLOCK) -> Iterator[tuple[int, int, int, int]]:
    """``(y0, y1, x0, x1)``: query rows and the point rows they may match, about ``budget`` pairs each.

    Whole consecutive examples are merged while they fit; an example too big
    for one block is split along its queries.
    """
    px, py = ptr_x.tolist(), ptr_y.tolist()
    b, num = 0, len(px) - 1
    while b < num:
        ny, nx = py[b + 1] - py[b], px[b + 1] - px[b]
        if ny * nx > budget:
            rows = max(1, budget // nx)
            for y0 in range(py[b], py[b + 1], rows):
                yield y0, min(y0 + rows, py[b + 1]), px[b], px[b + 1]
            b += 1
            continue
        e = b + 1
        while e < num and (py[e + 1] - py[b]) * (px[e + 1] - px[b]) <= budget:
            e += 1
        yield py[b], py[e], px[b], px[e]
        b = e


def _centered(x: Tensor, y: Tensor, ptr_x: Tensor, batch_x: Tensor, batch_y: Tensor) -> tuple[Tensor, Tensor]:
    """``x`` and ``y`` moved by the centroid of each example's ``x`` (distances are unchanged)."""
    num = ptr_x.numel() - 1
    total = x.new_zeros(num, x.size(1)).index_add_(0, batch_x, x)
    center = total / (ptr_x[1:] - ptr_x[:-1]).clamp(min=1).to(x.dtype).unsqueeze(1)
    return x - center[batch_x], y - center[batch_y]


def _sum_last(t: Tensor) -> Tensor:
    """Sum over the last dimension, adding in order (as the compiled kernels do, bit for bit)."""
    out = t[..., 0].clone()
    for d in range(1, t.size(-1)):
        out += t[..., d]
    return out


def _sq_dist(a: Tensor, b: Tensor) -> Tensor:
    """``sum_d (a_d - b_d)^2`` over the last dimension (broadcasting), added in order."""
    diff = a - b
    return _sum_last(diff * diff)


def _cosine_key(dot: Tensor, pts_sq: Tensor) -> Tensor:
    r"""``-(y.x / |x|^2) |y.x|``: for one query ``y`` it orders the points like
    :math:`1 - \cos(y, x)` (it is :math:`-\cos|\cos| \, |y|^2`), using only
    correctly rounded operations (no square root), so every backend agrees bit for bit.
    Zero vectors get 0 (similarity 0)."""
    return torch.where(pts_sq > 0, -(dot / pts_sq) * dot.abs(), torch.zeros_like(dot))


def _exact(y: Tensor, pts: Tensor, cosine: bool, pts_sq: Tensor | None) -> Tensor:
    """Distances (cosine: ranking keys) of ``y [r, D]`` to ``pts [r, c, D]``, summed over ``D`` in order."""
    if cosine:
        return _cosine_key(_sum_last(y.unsqueeze(1) * pts), pts_sq)
    return _sq_dist(y.unsqueeze(1), pts)


def _rank(
    y: Tensor, x: Tensor, cand: Tensor, valid: Tensor, k: int, cosine: bool, x_sq: Tensor | None
) -> Tensor:
    """The ``k`` candidates of each row with smallest (distance, index); ``-1`` past the valid ones."""
    cand, order = cand.sort(dim=1)
    valid = valid.gather(1, order)
    dist = _exact(y, x[cand], cosine, None if x_sq is None else x_sq[cand])
    dist = dist.masked_fill(~valid, math.inf)
    order = dist.sort(dim=1, stable=True).indices
    order = order.gather(1, (~valid.gather(1, order)).to(torch.uint8).sort(dim=1, stable=True).indices)
    cand, valid = cand.gather(1, order)[:, :k], valid.gather(1, order)[:, :k]
    return cand.masked_fill(~valid, -1)


def knn_reference(x: Tensor, y: Tensor, k: int, ptr_x: Tensor, ptr_y: Tensor, cosine: bool) -> Tensor:
    """Pure-torch :func:`knn` on offsets ``ptr_x``/``ptr_y`` (``[B + 1]``); returns ``[2, E]``.

    Distances of a block of queries are first estimated with one matrix
    product; the candidates are then ranked with exact distances, with enough
    candidates that the result equals an exhaustive search (rows where the
    estimate cannot guarantee that are searched exhaustively).
    """
    m, n, dim = y.size(0), x.size(0), x.size(1)
    col = torch.full((m, k), -1, dtype=torch.long, device=y.device)
    if m and n:
        batch_x, batch_y = ptr_to_index(ptr_x, n), ptr_to_index(ptr_y, m)
        if cosine:  # ranking keys need the exact squared norms; no centring
            xc, yc = x, y
            x_sq, y_sq = _sum_last(x * x), _sum_last(y * y)
        else:
            xc, yc = _centered(x, y, ptr_x, batch_x, batch_y)
            x_sq, y_sq = (xc * xc).sum(1), (yc * yc).sum(1)
        eps = torch.finfo(x.dtype).eps * 4 * (dim + 2)
        for y0, y1, x0, x1 in _blocks(ptr_x, ptr_y):
            if y0 == y1 or x0 == x1:
                continue
            yb, xb = y[y0:y1], x[x0:x1]
            if cosine:
                approx = _cosine_key(yb @ xb.T, x_sq[None, x0:x1])
                tol = eps * y_sq[y0:y1]
            else:
                approx = torch.addmm(x_sq[None, x0:x1], yc[y0:y1], xc[x0:x1].T, alpha=-2)
                approx += y_sq[y0:y1, None]
                tol = eps * (y_sq[y0:y1] + x_sq[x0:x1].max())
            by, bx = batch_y[y0:y1], batch_x[x0:x1]
            mixed = bool(by[0] != by[-1]) or bool(bx[0] != bx[-1])
            if mixed:
                approx.masked_fill_(by.unsqueeze(1) != bx.unsqueeze(0), math.inf)
            kk = min(k + _MARGIN, x1 - x0)
            vals, cand = approx.topk(kk, dim=1, largest=False)
            valid = by.unsqueeze(1) == bx[cand] if mixed else torch.ones_like(cand, dtype=torch.bool)
            xs = x_sq[x0:x1] if cosine else None
            out = _rank(yb, xb, cand, valid, k, cosine, xs)
            col[y0:y1, : out.size(1)] = torch.where(out >= 0, out + x0, out)
            if kk == x1 - x0:
                continue
            kth = vals[:, min(k, kk) - 1]
            redo = ~((vals[:, -1] > kth + 2 * tol) | torch.isinf(kth))
            rows = redo.nonzero().flatten()
            step = max(1, _BLOCK // ((x1 - x0) * dim))
            for r0 in range(0, rows.numel(), step):  # ties or cancellation: exhaustive search
                r = rows[r0 : r0 + step]
                cand = torch.arange(x1 - x0, device=x.device).expand(r.numel(), -1)
                valid = by[r].unsqueeze(1) == bx.unsqueeze(0)
                out = _rank(yb[r], xb, cand, valid, k, cosine, xs)
                col[y0 + r, : out.size(1)] = torch.where(out >= 0, out + x0, out)
    row = torch.arange(m, device=y.device).repeat_interleave(k)
    col = col.flatten()
    keep = col >= 0
    return torch.stack([row[keep], col[keep]])


def radius_reference(
    x: Tensor, y: Tensor, r: float, ptr_x: Tensor, ptr_y: Tensor, max_num_neighbors: int
) -> Tensor:
    """Pure-torch :func:`radius` on offsets ``ptr_x``/``ptr_y``; returns ``[2, E]`` sorted by (query, point)."""
    m, n, dim = y.size(0), x.size(0), x.size(1)
    rows: list[Tensor] = []
    cols: list[Tensor] = []
    r2 = float(torch.tensor(r * r, dtype=x.dtype))
    if m and n and max_num_neighbors > 0:
        batch_x, batch_y = ptr_to_index(ptr_x, n), ptr_to_index(ptr_y, m)
        xc, yc = _centered(x, y, ptr_x, batch_x, batch_y)
        x_sq, y_sq = (xc * xc).sum(1), (yc * yc).sum(1)
        eps = torch.finfo(x.dtype).eps * 4 * (dim + 2)
        for y0, y1, x0, x1 in _blocks(ptr_x, ptr_y):
            if y0 == y1 or x0 == x1:
                continue
            approx = torch.addmm(x_sq[None, x0:x1], yc[y0:y1], xc[x0:x1].T, alpha=-2)
            approx += y_sq[y0:y1, None]
            tol = eps * (y_sq[y0:y1] + x_sq[x0:x1].max())
            near = approx <= (r2 + tol).unsqueeze(1)
            near &= batch_y[y0:y1].unsqueeze(1) == batch_x[x0:x1].unsqueeze(0)
            qi, pi = near.nonzero(as_tuple=True)  # row-major: by query, then point
            dist = _sq_dist(y[y0 + qi], x[x0 + pi])
            inside = dist < r2
            qi, pi = qi[inside], pi[inside]
            counts = torch.bincount(qi, minlength=y1 - y0)
            first = counts.cumsum(0) - counts
            rank = torch.arange(qi.numel(), device=qi.device) - first[qi]
            keep = rank < max_num_neighbors
            rows.append(qi[keep] + y0)
            cols.append(pi[keep] + x0)
    if not rows:
        return torch.empty(2, 0, dtype=torch.long, device=y.device)
    return torch.stack([torch.cat(rows), torch.cat(cols)])


def nearest_reference(x: Tensor, y: Tensor, ptr_x: Tensor, ptr_y: Tensor) -> Tensor:
    """Pure-torch :func:`nearest`: for every row of ``x`` the index of its nearest row of ``y``."""
    return knn_reference(y, x, 1, ptr_y, ptr_x, False)[1]


def fps_reference(src: Tensor, ptr: Tensor, num_samples: Tensor, start: Tensor) -> Tensor:
    """Pure-torch :func:`fps` given each example's sample count and start offset.

    Examples of similar sizes are sampled together in a padded ``[B, n_max]``
    layout: each step updates every point's squared distance to its example's
    latest pick and picks the first point of largest distance (picked points
    have distance ``-1``, padding ``-inf``).
    """
    num = ptr.numel() - 1
    counts = (ptr[1:] - ptr[:-1]).tolist()
    wanted = num_samples.tolist()
    starts = start.tolist()
    out = []
    order = sorted(range(num), key=lambda b: counts[b])
    group: list[int] = []
    picks: dict[int, Tensor] = {}
    for pos, b in enumerate(order):  # groups of examples whose padding costs at most their size
        group.append(b)
        last = pos + 1 == num
        if last or counts[order[pos + 1]] * (len(group) + 1) > 2 * sum(counts[e] for e in group) + 1024:
            picks.update(_fps_group(src, ptr, group, counts, wanted, starts))
            group = []
    for b in range(num):
        if wanted[b]:
            out.append(picks[b])
    if not out:
        return torch.empty(0, dtype=torch.long, device=src.device)
    return torch.cat(out)


def _fps_group(
    src: Tensor, ptr: Tensor, group: list[int], counts: list[int], wanted: list[int], starts: list[int]
) -> dict[int, Tensor]:
    group = [b for b in group if wanted[b] > 0]
    if not group:
        return {}
    size, device = max(counts[b] for b in group), src.device
    rows = torch.tensor(group, device=device)
    first = ptr[rows]
    lengths = torch.tensor([counts[b] for b in group], device=device)
    arange = torch.arange(size, device=device)
    inside = arange.unsqueeze(0) < lengths.unsqueeze(1)  # [G, size]
    index = (first.unsqueeze(1) + arange.unsqueeze(0)).masked_fill(~inside, 0)
    pts = src[index]  # [G, size, D]
    dist = torch.full((len(group), size), math.inf, dtype=src.dtype, device=device).masked_fill(
        ~inside, -math.inf
    )
    steps = max(wanted[b] for b in group)
    chosen = torch.empty(len(group), steps, dtype=torch.long, device=device)
    every = torch.arange(len(group), device=device)
    pick = torch.tensor([starts[b] for b in group], device=device)
    for i in range(steps):
        chosen[:, i] = pick
        dist[every, pick] = -1
        if i + 1 == steps:
            break
        d = _sq_dist(pts, pts[every, pick].unsqueeze(1))
        dist = torch.where(dist < 0, dist, torch.minimum(dist, d))
        pick = dist.argmax(dim=1)  # the first of the largest
    chosen += first.unsqueeze(1)
    return {b: chosen[g, : wanted[b]] for g, b in enumerate(group)}


def graclus_reference(rowptr: Tensor, col: Tensor, weight: Tensor, perm: Tensor) -> Tensor:
    """Pure-torch :func:`graclus` on a CSR graph, visiting the nodes in the order ``perm``.

    Node ``u`` (if still unmatched) is paired with its unmatched neighbour
    ``v != u`` of largest ``weight >= 0`` (the first on ties); both get
    ``min(u, v)``; a node without such a neighbour keeps its own index.
    """
    ptr, cols, w = rowptr.tolist(), col.tolist(), weight.tolist()
    cluster = [-1] * (len(ptr) - 1)
    for u in perm.tolist():
        if cluster[u] >= 0:
            continue
        mate, best = -1, 0.0
        for e in range(ptr[u], ptr[u + 1]):
            c = cols[e]
            if c == u or cluster[c] >= 0 or not w[e] >= 0:
                continue
            if mate < 0 or w[e] > best:
                mate, best = c, w[e]
        if mate < 0:
            cluster[u] = u
        else:
            cluster[u] = cluster[mate] = min(u, mate)
    return torch.tensor(cluster, dtype=torch.long, device=rowptr.device)


def grid_cluster_reference(pos: Tensor, size: Tensor, start: Tensor, end: Tensor) -> Tensor:
    """Pure-torch :func:`grid_cluster` (all of ``size``/``start``/``end`` given as ``[D]`` tensors)."""
    cells = ((end - start) / size).long() + 1
    stride = torch.cat([cells.new_ones(1), cells.cumprod(0)[:-1]])
    return (((pos - start) / size).long() * stride).sum(1)


_REFERENCES = {
    "knn": knn_reference,
    "radius": radius_reference,
    "nearest": nearest_reference,
    "fps": fps_reference,
    "graclus": graclus_reference,
    "grid_cluster": grid_cluster_reference,
}


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
