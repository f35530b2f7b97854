r"""Approximate k-nearest-neighbour search on faiss (``pip install gnn-pool[faiss]``).

For every graph of the mini-batch, the ``k`` points of ``x`` nearest (squared
euclidean distance) to each point of ``y`` are searched in a faiss HNSW
graph (``IndexHNSWFlat``: a navigable small-world graph of the points of
``x``, ``M = 24`` links per point, built with ``efConstruction = 64`` and
searched with ``efSearch = max(64, 4 k)``). Graphs small enough that an
exhaustive search costs at most ``2**24`` distance evaluations are searched
exactly with :func:`gnn.core.ops.knn` instead (exact is then cheaper than
building an index); faiss is needed in either case. faiss builds the HNSW graph with several threads, so the
approximate neighbours may differ slightly from run to run.
"""

from __future__ import annotations

import torch
from torch import Tensor

from gnn.core import ops
from gnn.core import validation as v

from ._utils import check_batch, check_flow, import_faiss, is_sorted, to_graph

__all__ = ["approx_knn", "approx_knn_graph"]

#: a graph is searched exhaustively when (points of x) * (points of y) is at most this
_EXACT_PAIRS = 1 << 24
#: HNSW parameters (links per point, candidate list sizes while building and searching)
_HNSW_M = 24
_HNSW_EF_CONSTRUCTION = 64
_HNSW_EF_SEARCH = 64


def _points(name: str, value: object) -> Tensor:
    v.check_tensor(name, value)
    if value.dim() == 1:
        value = value.unsqueeze(1)
    if value.dim() != 2 or not value.is_floating_point():
        raise ValueError(f"'{name}' must be a floating [N, D] (or [N]) tensor, got {v.describe(value)}")
    return value


def _ptr(batch: Tensor | None, num: int, size: int, device: torch.device) -> Tensor:
    if batch is None:
        return torch.tensor([0] + [num] * size, device=device)
    counts = torch.bincount(batch, minlength=size)[:size]
    return torch.cat([counts.new_zeros(1), counts.cumsum(0)])


def _check_sorted_batch(name: str, batch: Tensor | None, num: int, device: torch.device) -> Tensor | None:
    if batch is None:
        return None
    batch = check_batch(name, batch, num, device)
    if v.validation_enabled() and num:
        if int(batch.min()) < 0:
            raise ValueError(f"'{name}' contains a negative graph index ({int(batch.min())})")
        if not is_sorted(batch):
            raise ValueError(f"'{name}' must be sorted (the points of a graph contiguous, graphs in order)")
    return batch


def _hnsw_search(faiss, x: Tensor, y: Tensor, k: int) -> Tensor:
    """``[M, k]`` approximate neighbours (indices into ``x``, ``-1`` where none) of every row of ``y``."""
    index = faiss.IndexHNSWFlat(x.size(1), _HNSW_M)
    index.hnsw.efConstruction = _HNSW_EF_CONSTRUCTION
    index.add(x.detach().to("cpu", torch.float32).contiguous().numpy())
    index.hnsw.efSearch = max(_HNSW_EF_SEARCH, 4 * k)
    _, found = index.search(y.detach().to("cpu", torch.float32).contiguous().numpy(), k)
    return torch.as_tensor(found).cpu().long()  # numpy, or torch once faiss.contrib.torch_utils ran


def approx_knn(
    x: Tensor,
    y: Tensor,
    k: int,
    batch_x: Tensor | None = None,
    batch_y: Tensor | None = None,
) -> Tensor:
    r"""For every point of ``y``, (approximately) the ``k`` nearest points of ``x`` in the same graph.

    Distances :math:`\sum_d (y_{i,d} - x_{j,d})^2`; see the module docstring
    for the search (faiss HNSW, exact for small graphs).

    Args:
        x: ``[N, D]`` (or ``[N]``) points searched.
        y: ``[M, D]`` (or ``[M]``) query points.
        k: neighbours per query.
        batch_x: ``[N]`` sorted graph of every point of ``x`` (default: one graph).
        batch_y: ``[M]`` sorted graph of every point of ``y`` (default: one graph).

    Returns:
        ``[2, E]``: row 0 indexes ``y``, row 1 ``x``; grouped by query (in
        order), neighbours by increasing distance; ``E = M k`` when every
        graph of ``x`` holds at least ``k`` points.

    Example:
        >>> x = torch.tensor([[0.0], [1.0], [5.0]])
        >>> approx_knn(x, torch.tensor([[0.9]]), 2)
        tensor([[0, 0],
                [1, 0]])
    """
    x, y = _points("x", x), _points("y", y)
    if x.size(1) != y.size(1):
        raise ValueError(f"'x' and 'y' must have the same number of columns, got {x.size(1)} and {y.size(1)}")
    if y.device != x.device:
        raise ValueError(f"'x' and 'y' must be on the same device, got {x.device} and {y.device}")
    if isinstance(k, bool) or not isinstance(k, int):
        raise TypeError(f"'k' must be an int, got {v.describe(k)}")
    if k < 1:
        raise ValueError(f"'k' must be at least 1, got {k}")
    faiss = import_faiss()
    device = x.device
    batch_x = _check_sorted_batch("batch_x", batch_x, x.size(0), device)
    batch_y = _check_sorted_batch("batch_y", batch_y, y.size(0), device)
    size = 1
    for batch in (batch_x, batch_y):
        if batch is not None and batch.numel():
            size = max(size, int(batch[-1]) + 1)
    ptr_x = _ptr(batch_x, x.size(0), size, device).tolist()
    ptr_y = _ptr(batch_y, y.size(0), size, device).tolist()
    sizes = [(ptr_x[b + 1] - ptr_x[b], ptr_y[b + 1] - ptr_y[b]) for b in range(size)]
    large = [b for b, (n, m) in enumerate(sizes) if n * m > _EXACT_PAIRS]
    if not large:
        return ops.knn(x, y, k, batch_x, batch_y, batch_size=size)

    rows: list[Tensor] = []
    cols: list[Tensor] = []
    small_x = torch.ones(x.size(0), dtype=torch.bool, device=device)
    small_y = torch.ones(y.size(0), dtype=torch.bool, device=device)
    for b in large:
        small_x[ptr_x[b] : ptr_x[b + 1]] = False
        small_y[ptr_y[b] : ptr_y[b + 1]] = False
    if bool(small_y.any()):  # the small graphs together, exactly
        keep_x, keep_y = small_x.nonzero().flatten(), small_y.nonzero().flatten()
        pairs = ops.knn(
            x[keep_x],
            y[keep_y],
            k,
            None if batch_x is None else batch_x[keep_x],
            None if batch_y is None else batch_y[keep_y],
            batch_size=size,
        )
        rows.append(keep_y[pairs[0]])
        cols.append(keep_x[pairs[1]])
    for b in large:
        (x0, x1), (y0, y1) = (ptr_x[b], ptr_x[b + 1]), (ptr_y[b], ptr_y[b + 1])
        found = _hnsw_search(faiss, x[x0:x1], y[y0:y1], min(k, x1 - x0)).to(device)
        query = torch.arange(y0, y1, device=device).view(-1, 1).expand_as(found)
        hit = found >= 0
        rows.append(query[hit])
        cols.append(found[hit] + x0)
    row, col = torch.cat(rows), torch.cat(cols)
    order = torch.argsort(row, stable=True)  # grouped by query, each keeping its neighbour order
    return torch.stack([row[order], col[order]])


def approx_knn_graph(
    x: Tensor,
    k: int,
    batch: Tensor | None = None,
    loop: bool = False,
    flow: str = "source_to_target",
) -> Tensor:
    r"""The (approximate) ``k``-nearest-neighbour graph of a point set (see :func:`approx_knn`).

    Every point :math:`i` is joined to (approximately) its ``k`` nearest
    points :math:`j` of the same graph, itself excluded unless ``loop``;
    ``flow="source_to_target"`` gives the edges :math:`j \to i`,
    ``"target_to_source"`` the edges :math:`i \to j`.

    Args:
        x: ``[N, D]`` (or ``[N]``) points.
        k: neighbours per point.
        batch: ``[N]`` sorted graph of every point (default: one graph).
        loop: keep every point among its own neighbours.
        flow: ``"source_to_target"`` or ``"target_to_source"``.

    Returns:
        ``[2, E]`` edges grouped by query point.

    Example:
        >>> x = torch.tensor([[0.0], [1.0], [3.0]])
        >>> approx_knn_graph(x, k=1)
        tensor([[1, 0, 1],
                [0, 1, 2]])
    """
    flow = check_flow(flow)
    if isinstance(k, bool) or not isinstance(k, int):
        raise TypeError(f"'k' must be an int, got {v.describe(k)}")
    if k < 1:
        raise ValueError(f"'k' must be at least 1, got {k}")
    if batch is not None:
        v.check_tensor("x", x)
        batch = _check_sorted_batch("batch", batch, x.size(0) if x.dim() else 0, x.device)
    pairs = approx_knn(x, x, k if loop else k + 1, batch, batch)
    return to_graph(pairs, bool(loop), flow, k, x.size(0) if x.dim() else 0)
