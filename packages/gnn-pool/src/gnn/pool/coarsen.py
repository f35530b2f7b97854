r"""Cluster pooling: coarsen a graph given a cluster of every node.

Given ``cluster`` (:math:`c_i`, any integers), the clusters are renumbered
:math:`0, \dots, C - 1` in increasing order of :math:`c`; node ``i`` goes to
the new node :math:`\hat c_i`, and

* features: :math:`x'_k = \max_{i: \hat c_i = k} x_i` (:func:`max_pool`) or the mean (:func:`avg_pool`),
* positions: :math:`pos'_k = \operatorname{mean}_{i: \hat c_i = k} pos_i`,
* edges: every edge :math:`(i, j)` becomes :math:`(\hat c_i, \hat c_j)`; self
  loops are dropped, duplicates merged (their ``edge_attr`` added up), edges
  sorted by (row, column),
* ``batch``: the graph of each cluster (clusters must not span graphs).

``data`` is :class:`gnn.core.Data` / :class:`gnn.core.Batch` or any object
with the attributes ``x``, ``edge_index``, ``edge_attr``, ``pos`` and
``batch`` (missing ones count as ``None``), such as PyG's ``Data``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from gnn.core import Batch, ops
from gnn.core import validation as v
from gnn.core.utils import add_self_loops, coalesce, remove_self_loops

from ._utils import check_batch, check_flow, check_size

__all__ = [
    "max_pool",
    "avg_pool",
    "max_pool_x",
    "avg_pool_x",
    "max_pool_neighbor_x",
    "avg_pool_neighbor_x",
]


def _get(data: Any, key: str) -> Any:
    return getattr(data, key, None)


def _check_cluster(cluster: Any, num: int | None) -> Tensor:
    v.check_tensor("cluster", cluster)
    v.check_index_dtype("cluster", cluster)
    if cluster.dim() != 1 or (num is not None and cluster.numel() != num):
        expected = "N" if num is None else str(num)
        raise ValueError(
            f"'cluster' must have shape [{expected}] (one cluster per node), got {v.describe(cluster)}"
        )
    return cluster.long()


def _num_nodes(data: Any) -> int | None:
    for key in ("x", "pos", "batch"):
        value = _get(data, key)
        if isinstance(value, Tensor) and value.dim() > 0:
            return value.size(0)
    return None


def _consecutive(cluster: Tensor) -> tuple[Tensor, Tensor]:
    """``(new cluster [N] in [0, C), first node of every cluster [C])``."""
    unique, inverse = torch.unique(cluster, sorted=True, return_inverse=True)
    nodes = torch.arange(cluster.numel(), device=cluster.device)
    first = ops.scatter(nodes, inverse, 0, unique.numel(), "min")
    return inverse, first


def _pool_edges(
    cluster: Tensor, num_clusters: int, edge_index: Tensor | None, edge_attr: Tensor | None
) -> tuple[Tensor | None, Tensor | None]:
    if edge_index is None:
        return None, None
    v.check_edge_index(edge_index)
    v.check_index_range("edge_index", edge_index, cluster.numel())
    edges = cluster[edge_index.long()]
    edges, edge_attr = remove_self_loops(edges, edge_attr)
    return coalesce(edges, edge_attr, num_clusters, reduce="sum")


def _pool(reduce: str, cluster: Tensor, data: Any, transform: Callable | None) -> Any:
    cluster = _check_cluster(cluster, _num_nodes(data))
    cluster, first = _consecutive(cluster)
    num = first.numel()
    x, pos, batch = _get(data, "x"), _get(data, "pos"), _get(data, "batch")
    if x is not None:
        v.check_tensor("data.x", x)
        x = ops.scatter(x, cluster, 0, num, reduce)
    if pos is not None:
        v.check_tensor("data.pos", pos)
        pos = ops.scatter(pos, cluster, 0, num, "mean")
    if batch is not None:
        batch = check_batch("data.batch", batch, cluster.numel(), cluster.device)[first]
    edge_index, edge_attr = _pool_edges(cluster, num, _get(data, "edge_index"), _get(data, "edge_attr"))
    out = Batch(batch=batch, x=x, edge_index=edge_index, edge_attr=edge_attr, pos=pos)
    return out if transform is None else transform(out)


def max_pool(cluster: Tensor, data: Any, transform: Callable | None = None) -> Batch:
    r"""Coarsen ``data``: every cluster becomes one node with the channel-wise maximum of its features.

    .. math::
        x'_k = \max_{i: \hat c_i = k} x_i, \quad pos'_k = \operatorname{mean}_{i: \hat c_i = k} pos_i

    edges :math:`(\hat c_i, \hat c_j)` without self loops, duplicates merged
    (``edge_attr`` summed); see the module docstring.

    Args:
        cluster: ``[N]`` cluster of every node (any integers).
        data: the graph (``x``, ``edge_index``, ``edge_attr``, ``pos``, ``batch``).
        transform: optional function applied to the coarsened graph.

    Returns:
        a :class:`gnn.core.Batch` with ``x`` ``[C, F]``, ``edge_index``,
        ``edge_attr``, ``pos`` ``[C, d]`` and ``batch`` ``[C]`` (those that
        ``data`` has).

    Example:
        >>> data = Data(x=torch.tensor([[1.0], [3.0], [2.0]]), edge_index=torch.tensor([[0, 1], [2, 2]]))
        >>> out = max_pool(torch.tensor([0, 0, 1]), data)
        >>> out.x.view(-1), out.edge_index
        (tensor([3., 2.]), tensor([[0],
                [1]]))
    """
    return _pool("max", cluster, data, transform)


def avg_pool(cluster: Tensor, data: Any, transform: Callable | None = None) -> Batch:
    r"""Coarsen ``data``: every cluster becomes one node with the mean of its features.

    .. math::
        x'_k = \operatorname{mean}_{i: \hat c_i = k} x_i, \quad pos'_k = \operatorname{mean}_{i: \hat c_i = k} pos_i

    Edges as in :func:`max_pool`.

    Args:
        cluster: ``[N]`` cluster of every node (any integers).
        data: the graph (``x``, ``edge_index``, ``edge_attr``, ``pos``, ``batch``).
        transform: optional function applied to the coarsened graph.

    Returns:
        a :class:`gnn.core.Batch` (see :func:`max_pool`).

    Example:
        >>> data = Data(x=torch.tensor([[1.0], [3.0], [2.0]]))
        >>> avg_pool(torch.tensor([4, 4, 1]), data).x.view(-1)
        tensor([2., 2.])
    """
    return _pool("mean", cluster, data, transform)


def _pool_x(
    reduce: str, cluster: Tensor, x: Tensor, batch: Tensor | None, batch_size: int | None, size: int | None
) -> tuple[Tensor, Tensor | None]:
    v.check_tensor("x", x)
    if x.dim() == 0:
        raise ValueError(f"'x' must have at least one dimension (the nodes), got {v.describe(x)}")
    cluster = _check_cluster(cluster, x.size(0))
    if batch is not None:
        batch = check_batch("batch", batch, x.size(0), x.device)
    batch_size, size = check_size("batch_size", batch_size), check_size("size", size)
    if size is not None:  # clusters already numbered densely per example: [B * size, F]
        if batch_size is None:
            batch_size = int(batch.max()) + 1 if batch is not None and batch.numel() else 1
        return ops.scatter(x, cluster, 0, batch_size * size, reduce), None
    cluster, first = _consecutive(cluster)
    out = ops.scatter(x, cluster, 0, first.numel(), reduce)
    return out, None if batch is None else batch[first]


def max_pool_x(
    cluster: Tensor, x: Tensor, batch: Tensor, batch_size: int | None = None, size: int | None = None
) -> tuple[Tensor, Tensor | None]:
    r"""Channel-wise maximum of the features of every cluster: :math:`x'_k = \max_{i: \hat c_i = k} x_i`.

    Args:
        cluster: ``[N]`` cluster of every node. Without ``size``, any
            integers (renumbered :math:`0, \dots, C-1` in increasing order);
            with ``size``, cluster ids in ``[0, batch_size * size)``.
        x: ``[N, F]`` node features.
        batch: ``[N]`` graph of every node (``None``: one graph).
        batch_size: number of graphs (default ``batch.max() + 1``), used with ``size``.
        size: the most clusters of one graph; gives a dense ``[batch_size * size, F]``
            result (empty clusters 0).

    Returns:
        ``(x' [C, F], batch' [C])``, or ``(x' [batch_size * size, F], None)`` with ``size``.

    Example:
        >>> x = torch.tensor([[1.0], [3.0], [2.0]])
        >>> max_pool_x(torch.tensor([7, 7, 2]), x, torch.tensor([0, 0, 0]))
        (tensor([[2.],
                [3.]]), tensor([0, 0]))
    """
    return _pool_x("max", cluster, x, batch, batch_size, size)


def avg_pool_x(
    cluster: Tensor, x: Tensor, batch: Tensor, batch_size: int | None = None, size: int | None = None
) -> tuple[Tensor, Tensor | None]:
    r"""Mean of the features of every cluster: :math:`x'_k = \operatorname{mean}_{i: \hat c_i = k} x_i`.

    Arguments and results as :func:`max_pool_x`.

    Example:
        >>> x = torch.tensor([[1.0], [3.0], [2.0]])
        >>> avg_pool_x(torch.tensor([7, 7, 2]), x, torch.tensor([0, 0, 0]))
        (tensor([[2.],
                [2.]]), tensor([0, 0]))
    """
    return _pool_x("mean", cluster, x, batch, batch_size, size)


def _pool_neighbors(reduce: str, data: Any, flow: str) -> Any:
    flow = check_flow(flow)
    x, edge_index = _get(data, "x"), _get(data, "edge_index")
    v.check_tensor("data.x", x)
    v.check_edge_index(edge_index, "data.edge_index")
    num = x.size(0)
    v.check_index_range("data.edge_index", edge_index, num)
    edge_index, _ = add_self_loops(edge_index.long(), num_nodes=num)
    src, dst = (
        (edge_index[0], edge_index[1]) if flow == "source_to_target" else (edge_index[1], edge_index[0])
    )
    csr = ops.from_coo(dst, src, num, num)
    data.x = ops.spmm(csr, x, None, reduce)
    return data


def max_pool_neighbor_x(data: Any, flow: str | None = "source_to_target") -> Any:
    r"""Replace every node's features by the channel-wise maximum over itself and its neighbours.

    .. math::
        x'_i = \max\left(x_i, \max_{j \in \mathcal{N}(i)} x_j\right)

    with :math:`\mathcal{N}(i)` the sources of the edges into ``i``
    (``flow="source_to_target"``) or the targets of the edges out of ``i``
    (``"target_to_source"``). Writes ``data.x`` and returns ``data``.

    Example:
        >>> data = Data(x=torch.tensor([[1.0], [3.0], [2.0]]), edge_index=torch.tensor([[1], [0]]))
        >>> max_pool_neighbor_x(data).x.view(-1)
        tensor([3., 3., 2.])
    """
    return _pool_neighbors("max", data, flow)


def avg_pool_neighbor_x(data: Any, flow: str | None = "source_to_target") -> Any:
    r"""Replace every node's features by the mean over itself and its neighbours.

    .. math::
        x'_i = \frac{1}{1 + |\mathcal{N}(i)|}\left(x_i + \sum_{j \in \mathcal{N}(i)} x_j\right)

    (:math:`\mathcal{N}(i)` as in :func:`max_pool_neighbor_x`, duplicate edges
    and existing self loops counted as often as they occur). Writes ``data.x``
    and returns ``data``.

    Example:
        >>> data = Data(x=torch.tensor([[1.0], [3.0], [2.0]]), edge_index=torch.tensor([[1], [0]]))
        >>> avg_pool_neighbor_x(data).x.view(-1)
        tensor([2., 3., 2.])
    """
    return _pool_neighbors("mean", data, flow)
