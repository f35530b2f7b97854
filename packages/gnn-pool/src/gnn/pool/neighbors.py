r"""Neighbour search on point sets: ``knn``, ``radius``, ``nearest``, their graph forms, ``fps``.

All of them run :mod:`gnn.core.ops` (``ops.knn``, ``ops.radius``,
``ops.nearest``, ``ops.fps``: compiled kernels when gnn-kernels is
installed, else pure torch). Distances are squared euclidean distances
:math:`\sum_d (y_d - x_d)^2` (or the cosine distance for ``knn(cosine=True)``);
equally distant points are ordered by index, so results are deterministic.

Mini-batches: ``batch`` / ``batch_x`` / ``batch_y`` (sorted) give the graph
of every point; points only match within their graph.

``knn``, ``radius`` and ``nearest`` are :func:`gnn.core.ops.knn`,
:func:`gnn.core.ops.radius` and :func:`gnn.core.ops.nearest` themselves (the
same signatures as PyG's).
"""

from __future__ import annotations

from torch import Tensor

from gnn.core import ops
from gnn.core import validation as v
from gnn.core.ops import knn, nearest, radius

from ._utils import check_batch, check_flow, is_sorted, to_graph

__all__ = ["knn", "knn_graph", "radius", "radius_graph", "nearest", "fps"]


def _check_graph_batch(x: Tensor, batch: Tensor | None) -> Tensor | None:
    v.check_tensor("x", x)
    if batch is None:
        return None
    num = x.size(0) if x.dim() else 0
    batch = check_batch("batch", batch, num, x.device)
    if v.validation_enabled() and not is_sorted(batch):
        raise ValueError("'batch' must be sorted (the points of a graph contiguous, graphs in order)")
    return batch


def knn_graph(
    x: Tensor,
    k: int,
    batch: Tensor | None = None,
    loop: bool = False,
    flow: str = "source_to_target",
    cosine: bool = False,
    num_workers: int = 1,
    batch_size: int | None = None,
) -> Tensor:
    r"""The ``k``-nearest-neighbour graph of a point set.

    Every point :math:`i` is joined to the :math:`k` points :math:`j` of its
    graph with the smallest :math:`\sum_d (x_{i,d} - x_{j,d})^2` (the cosine
    distance with ``cosine=True``), itself excluded unless ``loop``.
    ``flow="source_to_target"`` gives the edges :math:`j \to i` (messages flow
    from the neighbours into :math:`i`, ``edge_index[1]`` is the query),
    ``"target_to_source"`` the edges :math:`i \to j`.

    Args:
        x: ``[N, D]`` (or ``[N]``) points.
        k: neighbours per point.
        batch: ``[N]`` sorted graph of every point (default: one graph).
        loop: keep every point among its own neighbours (a point is its own
            nearest neighbour, so it then takes one of the ``k`` places).
        flow: ``"source_to_target"`` or ``"target_to_source"``.
        cosine: use the cosine distance.
        num_workers: accepted for PyG compatibility (torch's threads are used).
        batch_size: number of graphs (default ``batch.max() + 1``).

    Returns:
        ``[2, N * k]`` edges (fewer for graphs of at most ``k`` points),
        grouped by query point, neighbours by increasing distance.

    Example:
        >>> x = torch.tensor([[0.0], [1.0], [3.0]])
        >>> knn_graph(x, k=1)
        tensor([[1, 0, 1],
                [0, 1, 2]])
    """
    batch = _check_graph_batch(x, batch)
    k = v.check_int("k", k, 1)
    flow = check_flow(flow)
    pairs = ops.knn(x, x, k if loop else k + 1, batch, batch, cosine, num_workers, batch_size)
    return to_graph(pairs, bool(loop), flow, k, x.size(0) if x.dim() else 0)


def radius_graph(
    x: Tensor,
    r: float,
    batch: Tensor | None = None,
    loop: bool = False,
    max_num_neighbors: int = 32,
    flow: str = "source_to_target",
    num_workers: int = 1,
    batch_size: int | None = None,
) -> Tensor:
    r"""The graph joining every pair of points of a graph closer than ``r``.

    Edges join :math:`i` and :math:`j \ne i` (and :math:`i` itself with
    ``loop``) when :math:`\sum_d (x_{i,d} - x_{j,d})^2 < r^2`; a point keeps at
    most ``max_num_neighbors`` of them, those of smallest index.
    ``flow="source_to_target"`` gives :math:`j \to i`, ``"target_to_source"``
    :math:`i \to j`.

    Args:
        x: ``[N, D]`` (or ``[N]``) points.
        r: the radius.
        batch: ``[N]`` sorted graph of every point (default: one graph).
        loop: add a self loop to every point.
        max_num_neighbors: most neighbours per point.
        flow: ``"source_to_target"`` or ``"target_to_source"``.
        num_workers: accepted for PyG compatibility.
        batch_size: number of graphs (default ``batch.max() + 1``).

    Returns:
        ``[2, E]`` edges grouped by query point (``edge_index[1]`` with
        ``"source_to_target"``), neighbours in increasing index.

    Example:
        >>> x = torch.tensor([[0.0], [1.0], [3.0]])
        >>> radius_graph(x, r=1.5)
        tensor([[1, 0],
                [0, 1]])
    """
    batch = _check_graph_batch(x, batch)
    max_num_neighbors = v.check_int("max_num_neighbors", max_num_neighbors, 0)
    flow = check_flow(flow)
    wanted = max_num_neighbors if loop else max_num_neighbors + 1
    pairs = ops.radius(x, x, r, batch, batch, wanted, num_workers, batch_size)
    return to_graph(pairs, bool(loop), flow, max_num_neighbors, x.size(0) if x.dim() else 0)


def fps(
    x: Tensor,
    batch: Tensor | None = None,
    ratio: float = 0.5,
    random_start: bool = True,
    batch_size: int | None = None,
) -> Tensor:
    r"""Farthest point sampling (PointNet++): :math:`\lceil ratio \cdot N_g \rceil` points of every graph.

    Starting from a random point (or the graph's first one), it repeatedly
    picks the point maximising :math:`\min_{s \in S} \sum_d (x_d - s_d)^2` over
    the points :math:`S` picked so far. Runs :func:`gnn.core.ops.fps`;
    reproducible under :func:`torch.manual_seed`.

    Args:
        x: ``[N, D]`` (or ``[N]``) points.
        batch: ``[N]`` sorted graph of every point (default: one graph).
        ratio: sampling ratio in ``(0, 1]``.
        random_start: start at a random point instead of each graph's first.
        batch_size: number of graphs (default ``batch.max() + 1``).

    Returns:
        ``[S]`` indices into ``x``, graph by graph, in pick order.

    Example:
        >>> fps(torch.tensor([[0.0], [1.0], [10.0], [4.0]]), ratio=0.75, random_start=False)
        tensor([0, 2, 3])
    """
    return ops.fps(x, batch, ratio, random_start, batch_size)
