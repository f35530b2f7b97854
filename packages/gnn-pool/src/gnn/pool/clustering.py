"""Clusterings that feed :func:`gnn.pool.max_pool` / :func:`gnn.pool.avg_pool`: graclus and voxel grids."""

from __future__ import annotations

from torch import Tensor

from gnn.core import ops

__all__ = ["graclus", "voxel_grid"]


def graclus(edge_index: Tensor, weight: Tensor | None = None, num_nodes: int | None = None) -> Tensor:
    r"""Greedy graclus matching (Dhillon et al., 2007): clusters of one or two nodes.

    Nodes are visited in random order; an unmatched node :math:`u` is paired
    with its unmatched neighbour :math:`v` (edge :math:`u \to v`, :math:`v \ne u`)
    of largest ``weight`` (a random one without weights); both get cluster
    :math:`\min(u, v)`, a node left alone keeps its own index. Reproducible
    under :func:`torch.manual_seed`. Runs :func:`gnn.core.ops.graclus`.

    Args:
        edge_index: ``[2, E]`` edges (give both directions of an undirected graph).
        weight: optional ``[E]`` edge weights (edges of negative weight are never matched).
        num_nodes: number of nodes (default ``edge_index.max() + 1``).

    Returns:
        ``[N]`` cluster of every node (not consecutive; :func:`gnn.pool.max_pool`
        renumbers them).

    Example:
        >>> graclus(torch.tensor([[0, 1, 2], [1, 0, 2]]))
        tensor([0, 0, 2])
    """
    return ops.graclus(edge_index, weight, num_nodes)


def voxel_grid(
    pos: Tensor,
    size: float | list[float] | Tensor,
    batch: Tensor | None = None,
    start: float | list[float] | Tensor | None = None,
    end: float | list[float] | Tensor | None = None,
) -> Tensor:
    r"""Voxel grid clustering: points in the same voxel of a regular grid (and the same graph) share a cluster.

    .. math::
        c_i = \sum_d \left\lfloor \frac{p_{i,d} - start_d}{size_d} \right\rfloor
              \prod_{d' < d} \left(\left\lfloor \frac{end_{d'} - start_{d'}}{size_{d'}} \right\rfloor + 1\right)

    with the graph index appended to the coordinates as one more dimension of
    voxel size 1. Runs :func:`gnn.core.ops.grid_cluster`.

    Args:
        pos: ``[N, d]`` (or ``[N]``) positions.
        size: voxel size, one value or one per dimension.
        batch: optional ``[N]`` graph of every point.
        start: grid origin (default: the smallest coordinates).
        end: grid end (default: the largest coordinates).

    Returns:
        ``[N]`` voxel id of every point (not consecutive).

    Example:
        >>> voxel_grid(torch.tensor([[0.0, 0.0], [0.4, 0.1], [1.2, 0.0], [0.1, 1.5]]), 1.0)
        tensor([0, 0, 1, 2])
    """
    return ops.grid_cluster(pos, size, start, end, batch)
