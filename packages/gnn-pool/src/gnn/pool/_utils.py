"""Helpers shared by the pooling functions of gnn-pool (not public API)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from gnn.core import validation as v

FAISS_HINT = "pip install gnn-pool[faiss]"
FLOWS = ("source_to_target", "target_to_source")


def import_faiss() -> Any:
    """The ``faiss`` module, or an ImportError that names the extra to install."""
    try:
        import faiss
    except ImportError as error:  # also raised when sys.modules["faiss"] is None
        raise ImportError(
            f"this feature of gnn-pool needs faiss, which is not installed: {FAISS_HINT} "
            f"(or pip install faiss-cpu) ({error})"
        ) from error
    return faiss


def check_batch(name: str, batch: Any, num: int, device: torch.device) -> Tensor:
    """A ``[num]`` integer vector on ``device`` (the example of every row), as int64."""
    v.check_tensor(name, batch)
    v.check_index_dtype(name, batch)
    if batch.dim() != 1 or batch.numel() != num:
        raise ValueError(f"'{name}' must have shape [{num}] (one entry per node), got {v.describe(batch)}")
    if batch.device != device:
        raise ValueError(f"'{name}' must be on {device} (the device of the features), got {batch.device}")
    return batch.long()


def check_flow(flow: Any) -> str:
    if flow not in FLOWS:
        raise ValueError(f"'flow' must be one of {FLOWS}, got {v.describe(flow)}")
    return flow


def check_size(name: str, value: Any) -> int | None:
    """``None`` or a non-negative int (a 0-d integer tensor is accepted)."""
    if value is None:
        return None
    if isinstance(value, Tensor) and value.numel() == 1 and not value.is_floating_point():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"'{name}' must be an int or None, got {v.describe(value)}")
    if value < 0:
        raise ValueError(f"'{name}' must be non-negative, got {value}")
    return value


def is_sorted(index: Tensor) -> bool:
    """Whether ``index`` is non-decreasing (one pass; a host sync)."""
    return index.numel() < 2 or bool((index[1:] >= index[:-1]).all())


def cap_per_row(row: Tensor, col: Tensor, cap: int) -> tuple[Tensor, Tensor]:
    """Keep the first ``cap`` entries of every row of an edge list grouped by ``row``."""
    if row.numel() == 0:
        return row, col
    start = torch.ones_like(row, dtype=torch.bool)
    start[1:] = row[1:] != row[:-1]
    first = torch.arange(row.numel(), device=row.device)
    first = torch.where(start, first, torch.zeros_like(first)).cummax(0).values
    keep = torch.arange(row.numel(), device=row.device) - first < cap
    return row[keep], col[keep]


def to_graph(edge_index: Tensor, loop: bool, flow: str, cap: int) -> Tensor:
    """A ``[2, E]`` query -> point list (row 0 the queries, grouped) as a graph on the points.

    Self pairs are dropped unless ``loop``; every query keeps at most ``cap``
    pairs (searches without loops ask for one more, in case the query itself
    is among them); ``"source_to_target"`` turns each pair into the edge
    point -> query.
    """
    query, point = edge_index[0], edge_index[1]
    if not loop:
        keep = query != point
        query, point = query[keep], point[keep]
    query, point = cap_per_row(query, point, cap)
    if flow == "source_to_target":
        return torch.stack([point, query])
    return torch.stack([query, point])
