"""Input checks shared by the selection pools (errors name the argument, the expected form and what came)."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from gnn.core import validation as v


def check_features(x: Any, name: str = "x") -> Tensor:
    """``x`` is a ``[N]`` or ``[N, F]`` floating tensor; returns it as ``[N, F]``."""
    v.check_tensor(name, x)
    if x.dim() not in (1, 2) or not (x.is_floating_point() or x.is_complex()):
        raise ValueError(f"'{name}' must be a floating tensor of shape [N, F] (or [N]), got {v.describe(x)}")
    return x.view(-1, 1) if x.dim() == 1 else x


def check_edges(edge_index: Any, num_nodes: int, name: str = "edge_index") -> Tensor:
    """``edge_index`` is a ``[2, E]`` integer tensor with indices in ``[0, num_nodes)``."""
    v.check_edge_index(edge_index, name)
    v.check_index_range(name, edge_index, num_nodes)
    return edge_index


def check_edge_values(value: Any, num_edges: int, name: str) -> Tensor | None:
    """``value`` is ``None`` or a tensor with one row per edge."""
    if value is None:
        return None
    v.check_tensor(name, value)
    if value.dim() == 0 or value.size(0) != num_edges:
        raise ValueError(f"'{name}' must have one row per edge ({num_edges}), got {v.describe(value)}")
    return value


def check_batch(batch: Any, num_nodes: int, device: torch.device, name: str = "batch") -> Tensor:
    """``batch`` (``None``: one graph) as an int64 ``[N]`` tensor of non-negative graph indices."""
    if batch is None:
        return torch.zeros(num_nodes, dtype=torch.long, device=device)
    v.check_tensor(name, batch)
    v.check_index_dtype(name, batch)
    v.check_per_entry(name, batch, num_nodes, "node")
    if v.validation_enabled() and batch.numel() and int(batch.min()) < 0:
        raise v.IndexRangeError(f"'{name}' contains a negative graph index ({int(batch.min())})")
    return batch.long()


def check_node_values(value: Any, num_nodes: int, name: str) -> Tensor | None:
    """``value`` is ``None`` or a tensor with one row per node."""
    if value is None:
        return None
    v.check_tensor(name, value)
    if value.dim() == 0 or value.size(0) != num_nodes:
        raise ValueError(f"'{name}' must have one row per node ({num_nodes}), got {v.describe(value)}")
    return value


def check_probability(value: Any, name: str) -> float:
    """A dropout probability in ``[0, 1]``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"'{name}' must be a probability in [0, 1], got {v.describe(value)}")
    return float(value)


def check_real(value: Any, name: str, *, optional: bool = False) -> Any:
    """A finite real number (``None`` allowed when ``optional``)."""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        kind = "a finite number or None" if optional else "a finite number"
        raise ValueError(f"'{name}' must be {kind}, got {v.describe(value)}")
    return value


def check_channels(value: Any, name: str, minimum: int = 1) -> int:
    """A positive int (a channel count, a number of heads or clusters)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"'{name}' must be an int >= {minimum}, got {v.describe(value)}")
    return value
