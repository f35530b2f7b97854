"""Helpers shared by the convolution layers of gnn-conv (not public API)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from gnn.core import validation as v
from gnn.core.utils.cache import TensorCache
from gnn.core.utils.normalization import gcn_norm


def check_in_channels(x: Any, in_channels: int | tuple[int, int], name: str = "x") -> None:
    """Check that node features match the layer's ``in_channels``.

    Args:
        x: a ``[N, F]`` tensor or a bipartite pair ``(x_src, x_dst)`` (either
            side may be ``None``).
        in_channels: the expected feature size; ``-1`` (lazy) skips the check.
            A pair ``(F_src, F_dst)`` checks each side of a bipartite ``x``
            (and ``F_src`` for a single tensor).
        name: the argument name used in the error message.

    Raises:
        TypeError: ``x`` is not a tensor (or pair of tensors).
        ValueError: the last dimension differs from ``in_channels``.

    Example:
        >>> check_in_channels(torch.randn(4, 16), 16)
        >>> check_in_channels((torch.randn(4, 16), torch.randn(2, 8)), (16, 8))
    """
    if isinstance(x, (tuple, list)):
        if len(x) != 2:
            raise ValueError(f"'{name}' must be a tensor or a pair (x_src, x_dst), got {len(x)} items")
        sizes = tuple(in_channels) if isinstance(in_channels, (tuple, list)) else (in_channels, in_channels)
        for k, (part, size) in enumerate(zip(x, sizes)):
            if part is not None:
                _check_one(part, size, f"{name}[{k}]")
        return
    size = in_channels[0] if isinstance(in_channels, (tuple, list)) else in_channels
    _check_one(x, size, name)


def _check_one(x: Any, size: int, name: str) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"'{name}' must be a torch.Tensor, got {v.describe(x)}")
    if size is None or size < 0:
        return
    if x.dim() == 0 or x.size(-1) != size:
        raise ValueError(
            f"'{name}' must have {size} features (in_channels) in its last dimension, got {v.describe(x)}"
        )


def check_edge_attr(
    edge_attr: Any,
    edges: Any,
    name: str = "edge_attr",
    *,
    features: int | None = None,
    why: str = "",
    allow_vector: bool = True,
) -> Tensor | None:
    """Check per-edge features: ``None`` or a ``[E]`` / ``[E, features]`` tensor.

    Args:
        edge_attr: the value to check (``None`` passes).
        edges: the number of edges ``E``, or the layer's graph argument: a
            ``[2, E]`` ``edge_index`` gives ``E``; a sparse adjacency (whose
            values were read as edges elsewhere) skips the row check.
        name: the argument name used in error messages.
        features: the expected size of the last dimension (``None``: any).
            A 1-D ``edge_attr`` counts as one feature when ``allow_vector``.
        why: where ``features`` comes from, shown in the error (``"edge_dim"``).
        allow_vector: whether a 1-D ``edge_attr`` may stand for one feature.

    Returns:
        ``edge_attr`` unchanged.

    Raises:
        TypeError: ``edge_attr`` is neither ``None`` nor a tensor.
        ValueError: wrong number of rows or features.

    Example:
        >>> check_edge_attr(torch.randn(5, 3), torch.zeros(2, 5, dtype=torch.long), features=3, why="edge_dim")
    """
    if edge_attr is None:
        return None
    if not isinstance(edge_attr, Tensor):
        raise TypeError(f"'{name}' must be a torch.Tensor or None, got {v.describe(edge_attr)}")
    num_edges = _num_edges(edges)
    if edge_attr.dim() == 0 or (num_edges is not None and edge_attr.size(0) != num_edges):
        expected = f" of 'edge_index' ({num_edges})" if num_edges is not None else ""
        raise ValueError(f"'{name}' must have one row per edge{expected}, got {v.describe(edge_attr)}")
    if features is not None:
        found = edge_attr.size(-1) if edge_attr.dim() > 1 else (1 if allow_vector else None)
        if found != features:
            reason = f" ({why})" if why else ""
            raise ValueError(f"'{name}' must have {features} features{reason}, got {v.describe(edge_attr)}")
    return edge_attr


def _num_edges(edges: Any) -> int | None:
    """``E`` of an int or a dense ``[2, E]`` ``edge_index``; ``None`` for anything else.

    A sparse adjacency, or a malformed ``edge_index`` that ``MessagePassing`` reports by name, gives ``None``.
    """
    if isinstance(edges, int):
        return edges
    if (
        isinstance(edges, Tensor)
        and edges.layout == torch.strided
        and edges.dim() == 2
        and edges.size(0) == 2
    ):
        return edges.size(1)
    return None


def pair(x: Any) -> tuple[Any, Any]:
    """``x`` as a bipartite pair ``(x_src, x_dst)``: a single tensor serves as both."""
    if isinstance(x, (tuple, list)):
        if len(x) != 2:
            raise ValueError(f"'x' must be a tensor or a pair (x_src, x_dst), got {len(x)} items")
        return x[0], x[1]
    return x, x


class GraphCache:
    """A one-slot cache of a value derived from a graph, for layers' ``cached=True``.

    A :class:`gnn.core.utils.cache.TensorCache` of size one that also caches
    values computed from inputs that require grad (``cached=True`` is an
    explicit promise that the graph is static). A value is reused only for
    the very key objects it was computed from; an in-place change misses; it
    is bypassed while ``torch.compile`` traces, and is not part of the
    module's ``state_dict``.

    Example:
        >>> cache = GraphCache()
        >>> value = cache.get(edge_index)
        >>> if value is None:
        ...     value = cache.put(compute(edge_index), edge_index)
    """

    def __init__(self) -> None:
        self._slot = TensorCache(1, skip_grad=False)

    def get(self, *keys: Any) -> Any:
        """The cached value for these key objects, or ``None``."""
        return self._slot.lookup(keys)

    def put(self, value: Any, *keys: Any) -> Any:
        """Store ``value`` for these key objects and return it."""
        return self._slot.store(value, keys)

    def clear(self) -> None:
        """Forget the cached value."""
        self._slot.clear()

    def __bool__(self) -> bool:
        return len(self._slot) > 0


def cached_gcn_norm(
    cache: GraphCache | None,
    edge_index: Any,
    edge_weight: Tensor | None,
    num_nodes: int,
    improved: bool,
    add_self_loops: bool,
    flow: str,
    dtype: torch.dtype,
) -> tuple[Any, Tensor | None]:
    """:func:`gnn.core.utils.gcn_norm` of the graph, reused from ``cache`` for the same inputs.

    ``cache`` is the layer's :class:`GraphCache` when it was built with
    ``cached=True``, else ``None`` (normalize on every call). The result is
    ``(edge_index, edge_weight)``, or ``(adj_t, None)`` for a sparse input.
    """
    if cache is not None:
        hit = cache.get(edge_index, edge_weight)
        if hit is not None:
            return hit
    out = gcn_norm(edge_index, edge_weight, num_nodes, improved, add_self_loops, flow, dtype)
    return cache.put(out, edge_index, edge_weight) if cache is not None else out


def edge_list(edge_index: Any, edge_weight: Tensor | None) -> tuple[Tensor, Tensor | None]:
    """``(edge_index, edge_weight)`` of an ``edge_index`` or a sparse ``adj_t``.

    For a sparse input the adjacency's values become the weights (and any
    given ``edge_weight`` is ignored); an ``edge_index`` is validated.
    """
    from gnn.core.utils.sparse import is_sparse, to_edge_index

    if is_sparse(edge_index):
        return to_edge_index(edge_index)
    if not isinstance(edge_index, Tensor):
        raise TypeError(
            "'edge_index' must be a [2, E] integer tensor, a torch.sparse adjacency or a "
            f"torch_sparse.SparseTensor, got {type(edge_index).__name__}"
        )
    v.check_edge_index(edge_index)
    if edge_weight is not None:
        v.check_tensor("edge_weight", edge_weight)
        if edge_weight.dim() != 1 or edge_weight.numel() != edge_index.size(1):
            raise ValueError(
                f"'edge_weight' must have shape [{edge_index.size(1)}] (one weight per edge), "
                f"got {v.describe(edge_weight)}"
            )
    return edge_index, edge_weight


def weighted_message(x_j: Tensor, edge_weight: Tensor | None) -> Tensor:
    """``edge_weight * x_j`` (or ``x_j`` without weights): the fused message."""
    return x_j if edge_weight is None else edge_weight.view(-1, 1) * x_j
