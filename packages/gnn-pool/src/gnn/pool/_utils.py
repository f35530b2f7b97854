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


def cap_per_row(pairs: Tensor, cap: int, num_rows: int) -> Tensor:
    """Keep the first ``cap`` entries of every row of a ``[2, E]`` list grouped by ``pairs[0]``."""
    if pairs.size(1) == 0:
        return pairs
    counts = torch.bincount(pairs[0], minlength=num_rows)
    first = torch.cumsum(counts, 0) - counts
    rank = torch.arange(pairs.size(1), device=pairs.device) - first[pairs[0]]
    return pairs[:, rank < cap]


def to_graph(pairs: Tensor, loop: bool, flow: str, cap: int, num_queries: int) -> Tensor:
    """A ``[2, E]`` query -> point list (row 0 the queries, grouped) as a graph on the points.

    The search asked for at most ``cap`` points per query with ``loop``, else
    for ``cap + 1`` (the query itself is usually among them): self pairs are
    then dropped, and a query that lost none (duplicate points can push the
    query itself out of its ``cap + 1`` results) keeps its first ``cap``.
    ``"source_to_target"`` turns each pair into the edge point -> query.
    """
    rows = (1, 0) if flow == "source_to_target" else (0, 1)
    if loop:
        return pairs[list(rows)]
    keep = (pairs[0] != pairs[1]).nonzero().flatten()
    if pairs.size(1) - keep.numel() != num_queries:  # some query kept cap + 1 points
        return cap_per_row(pairs[:, keep], cap, num_queries)[list(rows)]
    out = pairs.new_empty(2, keep.numel())
    for i, row in enumerate(rows):  # gather straight into the result, in the flow's row order
        torch.index_select(pairs[row], 0, keep, out=out[i])
    return out
