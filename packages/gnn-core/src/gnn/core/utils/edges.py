"""Edge-list utilities (self loops, degrees, coalescing)."""

from __future__ import annotations

import torch
from torch import Tensor

from .. import ops
from .. import validation as v


def maybe_num_nodes(edge_index: Tensor, num_nodes: int | None = None) -> int:
    """``num_nodes`` if given, else ``edge_index.max() + 1`` (0 for no edges)."""
    if num_nodes is not None:
        # a symbolic size (torch.compile / torch.export) stays symbolic: int() would specialize it
        return num_nodes if isinstance(num_nodes, (int, torch.SymInt)) else int(num_nodes)
    if edge_index.numel() == 0:
        return 0
    return int(edge_index.max()) + 1


def degree(index: Tensor, num_nodes: int | None = None, dtype: torch.dtype | None = None) -> Tensor:
    """``[N]`` number of occurrences of each node in the 1-D ``index``."""
    v.check_tensor("index", index)
    if index.dim() != 1:
        raise ValueError(f"'index' must be 1-D, got {v.describe(index)}")
    n = maybe_num_nodes(index, num_nodes)
    ones = torch.ones(index.numel(), dtype=dtype or torch.float32, device=index.device)
    return ops.scatter(ones, index, 0, n, "sum")


def contains_self_loops(edge_index: Tensor) -> bool:
    """Whether any edge connects a node to itself."""
    return bool((edge_index[0] == edge_index[1]).any())


def remove_self_loops(edge_index: Tensor, edge_attr: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
    """Drop every edge ``(i, i)`` (and its ``edge_attr`` row)."""
    v.check_edge_index(edge_index)
    mask = edge_index[0] != edge_index[1]
    return edge_index[:, mask], None if edge_attr is None else edge_attr[mask]


def _loop_attr(
    edge_index: Tensor, edge_attr: Tensor, fill_value: float | Tensor | str | None, num_nodes: int
) -> Tensor:
    """Attributes of the new self loops for :func:`add_self_loops`."""
    if fill_value is None:
        return edge_attr.new_ones((num_nodes,) + edge_attr.shape[1:])
    if isinstance(fill_value, str):
        return ops.scatter(edge_attr, edge_index[1], 0, num_nodes, fill_value)
    if isinstance(fill_value, Tensor):
        fill = fill_value.to(device=edge_attr.device, dtype=edge_attr.dtype)
        if fill.dim() == edge_attr.dim() - 1:
            fill = fill.unsqueeze(0)
        return fill.expand((num_nodes,) + edge_attr.shape[1:]).clone()
    return edge_attr.new_full((num_nodes,) + edge_attr.shape[1:], float(fill_value))


def add_self_loops(
    edge_index: Tensor,
    edge_attr: Tensor | None = None,
    fill_value: float | Tensor | str | None = None,
    num_nodes: int | None = None,
) -> tuple[Tensor, Tensor | None]:
    """Append an edge ``(i, i)`` for every node.

    ``fill_value`` sets the new loops' ``edge_attr``: a number, a tensor, or
    a reduction (``"mean"``, ``"add"``, ...) of each node's incoming
    attributes; default 1.
    """
    v.check_edge_index(edge_index)
    n = maybe_num_nodes(edge_index, num_nodes)
    loop = torch.arange(n, device=edge_index.device, dtype=edge_index.dtype)
    new_index = torch.cat([edge_index, loop.unsqueeze(0).expand(2, -1)], dim=1)
    if edge_attr is None:
        return new_index, None
    return new_index, torch.cat([edge_attr, _loop_attr(edge_index, edge_attr, fill_value, n)], dim=0)


def add_remaining_self_loops(
    edge_index: Tensor,
    edge_attr: Tensor | None = None,
    fill_value: float | Tensor | str | None = None,
    num_nodes: int | None = None,
) -> tuple[Tensor, Tensor | None]:
    """Add ``(i, i)`` for every node that has no self loop yet.

    Existing self loops are kept (moved to the end, one per node) with their
    attributes; new ones get ``fill_value`` (default 1).
    """
    v.check_edge_index(edge_index)
    n = maybe_num_nodes(edge_index, num_nodes)
    is_loop = edge_index[0] == edge_index[1]
    keep = ~is_loop
    loop = torch.arange(n, device=edge_index.device, dtype=edge_index.dtype)
    new_index = torch.cat([edge_index[:, keep], loop.unsqueeze(0).expand(2, -1)], dim=1)
    if edge_attr is None:
        return new_index, None
    loop_attr = _loop_attr(edge_index, edge_attr, fill_value, n)
    loop_nodes = edge_index[0, is_loop].long()
    loop_attr[loop_nodes] = edge_attr[is_loop]
    return new_index, torch.cat([edge_attr[keep], loop_attr], dim=0)


def sort_edge_index(
    edge_index: Tensor,
    edge_attr: Tensor | None = None,
    num_nodes: int | None = None,
    sort_by_row: bool = True,
) -> tuple[Tensor, Tensor | None]:
    """Sort edges lexicographically by (row, col) (or (col, row))."""
    v.check_edge_index(edge_index)
    n = maybe_num_nodes(edge_index, num_nodes)
    first, second = (edge_index[0], edge_index[1]) if sort_by_row else (edge_index[1], edge_index[0])
    perm = torch.argsort(first.long() * n + second.long(), stable=True)
    return edge_index[:, perm], None if edge_attr is None else edge_attr[perm]


def coalesce(
    edge_index: Tensor,
    edge_attr: Tensor | None = None,
    num_nodes: int | None = None,
    reduce: str = "sum",
    sort_by_row: bool = True,
) -> tuple[Tensor, Tensor | None]:
    """Sort edges and merge duplicates, reducing their ``edge_attr`` with ``reduce``."""
    v.check_edge_index(edge_index)
    n = maybe_num_nodes(edge_index, num_nodes)
    first, second = (edge_index[0], edge_index[1]) if sort_by_row else (edge_index[1], edge_index[0])
    key = first.long() * max(n, 1) + second.long()
    unique, inverse = torch.unique(key, sorted=True, return_inverse=True)
    a, b = unique // max(n, 1), unique % max(n, 1)
    out = torch.stack([a, b] if sort_by_row else [b, a]).to(edge_index.dtype)
    if edge_attr is None:
        return out, None
    return out, ops.scatter(edge_attr, inverse, 0, unique.numel(), reduce)


def to_undirected(
    edge_index: Tensor, edge_attr: Tensor | None = None, num_nodes: int | None = None, reduce: str = "sum"
) -> tuple[Tensor, Tensor | None]:
    """Add the reverse of every edge, then :func:`coalesce`."""
    v.check_edge_index(edge_index)
    both = torch.cat([edge_index, edge_index.flip(0)], dim=1)
    attr = None if edge_attr is None else torch.cat([edge_attr, edge_attr], dim=0)
    return coalesce(both, attr, num_nodes, reduce)
