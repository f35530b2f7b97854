"""Pure-torch references of the geometric ops (:mod:`gnn.core.ops.geometry`).

They take validated inputs (examples as offsets ``ptr [B + 1]``, random
choices already drawn) and are the correctness reference of compiled
backends, which implement the same signatures. Distances are squared
euclidean distances added in order, ties broken by the smaller index.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch import Tensor

from .csr import ptr_to_index

__all__ = [
    "knn_reference",
    "radius_reference",
    "nearest_reference",
    "fps_reference",
    "graclus_reference",
    "grid_cluster_reference",
    "REFERENCES",
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


REFERENCES = {
    "knn": knn_reference,
    "radius": radius_reference,
    "nearest": nearest_reference,
    "fps": fps_reference,
    "graclus": graclus_reference,
    "grid_cluster": grid_cluster_reference,
}
