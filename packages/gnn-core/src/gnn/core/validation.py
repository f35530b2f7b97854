"""Input validation shared by every public entry point.

Every check raises ``ValueError`` or ``TypeError`` naming the argument, the
expected form and what was given.  Checks cost at most O(E) and can be
switched off on hot paths with :func:`set_validation`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import Tensor

from .cache import memo

_ENABLED = True


def set_validation(enabled: bool) -> None:
    """Turn input validation on or off globally (default: on)."""
    global _ENABLED
    _ENABLED = bool(enabled)


def validation_enabled() -> bool:
    """Whether checks run (never under ``torch.compile`` tracing, where
    data-dependent checks would graph-break)."""
    if not _ENABLED:
        return False
    return not torch.compiler.is_compiling()


@contextlib.contextmanager
def validation(enabled: bool) -> Iterator[None]:
    """Context manager that sets validation on or off temporarily."""
    global _ENABLED
    old = _ENABLED
    _ENABLED = bool(enabled)
    try:
        yield
    finally:
        _ENABLED = old


class IndexRangeError(ValueError, IndexError):
    """An index outside its valid range.

    Both a ``ValueError`` (gnn's convention for bad input) and an
    ``IndexError`` (what PyG users catch for out-of-range node indices).
    """


def describe(obj: object) -> str:
    """Short description of a value for error messages."""
    if isinstance(obj, Tensor):
        return f"a {obj.dtype} tensor of shape {list(obj.shape)}"
    return f"{type(obj).__name__} {obj!r}"[:200]


def check_int(name: str, value: object, low: int) -> int:
    """``value`` checked as a Python ``int`` (not ``bool``) of at least ``low``, and returned.

    Raises ``TypeError`` for another type and ``ValueError`` below ``low``, naming ``name``.

    Example:
        >>> check_int("num_nodes", 5, 1)
        5
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"'{name}' must be an int, got {describe(value)}")
    if value < low:
        raise ValueError(f"'{name}' must be at least {low}, got {value}")
    return value


def check_tensor(name: str, value: object) -> Tensor:
    if not isinstance(value, Tensor):
        raise TypeError(f"'{name}' must be a torch.Tensor, got {describe(value)}")
    return value


def check_index_dtype(name: str, value: Tensor) -> None:
    if value.dtype not in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8):
        raise TypeError(f"'{name}' must be an integer tensor, got {describe(value)}")


def check_edge_index(edge_index: object, name: str = "edge_index") -> Tensor:
    """Check that ``edge_index`` is a ``[2, E]`` integer tensor."""
    t = check_tensor(name, edge_index)
    if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        raise TypeError(f"'{name}' must be an integer tensor of shape [2, E], got {describe(t)}")
    check_index_dtype(name, t)
    if t.dim() != 2 or t.size(0) != 2:
        raise ValueError(f"'{name}' must have shape [2, E], got {describe(t)}")
    return t


def _bounds(index: Tensor) -> tuple[int, int]:
    lo, hi = torch.aminmax(index)
    return int(lo), int(hi)


def check_index_range(name: str, index: Tensor, upper: int, what: str = "nodes") -> None:
    """Check ``0 <= index < upper`` (one pass over ``index``, remembered for this tensor in the
    per-graph cache: a graph's index is scanned once)."""
    if not validation_enabled() or index.numel() == 0:
        return
    lo, hi = memo(index, "bounds_all", lambda: _bounds(index))
    if lo < 0:
        raise IndexRangeError(f"'{name}' contains a negative index ({lo}); indices must lie in [0, {upper})")
    if hi >= upper:
        raise IndexRangeError(
            f"'{name}' contains index {hi}, out of range for {upper} {what}; indices must lie in [0, {upper})"
        )


def _row_bounds(edge_index: Tensor) -> tuple[tuple[int, int], tuple[int, int]]:
    lo, hi = torch.aminmax(edge_index, dim=1)
    lo, hi = lo.tolist(), hi.tolist()
    return (lo[0], hi[0]), (lo[1], hi[1])


def check_edge_index_side(edge_index: Tensor, side: int, upper: object) -> None:
    """Check ``0 <= edge_index[side] < upper`` (one O(E) scan per graph, kept in the per-graph cache).

    Raises :class:`IndexRangeError` (a ``ValueError`` and an ``IndexError``) naming
    ``edge_index[side]``.
    """
    if not validation_enabled() or edge_index.numel() == 0:
        return
    lo, hi = memo(edge_index, "bounds", lambda: _row_bounds(edge_index))[side]
    if lo < 0 or hi >= upper:  # let the shared check word the error
        check_index_range(f"edge_index[{side}]", edge_index[side], upper)


def vouch_in_range(edge_index: Tensor, size0: object, size1: object) -> None:
    """Record that ``edge_index`` (built by gnn from a checked graph) indexes ``size0`` and
    ``size1`` nodes, so that its range is never scanned: a graph derived from a checked one
    (self loops added, normalized) costs no second check."""
    if type(size0) is int and type(size1) is int:  # never a symbolic size: that would specialize it
        memo(edge_index, "bounds", lambda: ((0, size0 - 1), (0, size1 - 1)))


def check_edge_index_sides(edge_index: Tensor, size0: object, size1: object) -> None:
    """Check ``edge_index[0] < size0`` and ``edge_index[1] < size1`` (``None``: unchecked), with one
    lookup of the per-graph cache."""
    if not validation_enabled() or edge_index.numel() == 0:
        return
    bounds = memo(edge_index, "bounds", lambda: _row_bounds(edge_index))
    for side, upper in ((0, size0), (1, size1)):
        if upper is not None:
            lo, hi = bounds[side]
            if lo < 0 or hi >= upper:
                check_index_range(f"edge_index[{side}]", edge_index[side], upper)


def check_edge_index_nodes(edge_index: Tensor, num_nodes: object) -> None:
    """Check that both rows of ``edge_index`` index ``num_nodes`` nodes (once per graph, cached)."""
    check_edge_index_sides(edge_index, num_nodes, num_nodes)


def check_per_entry(name: str, t: Tensor, length: int, what: str) -> None:
    """Check that ``t`` is 1-D with ``length`` entries, one per ``what`` (e.g. ``"edge"``,
    ``"row of 'weight'"``)."""
    if t.dim() != 1 or t.numel() != length:
        raise ValueError(f"'{name}' must be 1-D with one entry per {what} ({length}), got {describe(t)}")


def check_ptr(name: str, ptr: Tensor, size: int | None = None) -> None:
    """Check that ``ptr`` is a 1-D monotone integer tensor (ending at ``size``)."""
    check_tensor(name, ptr)
    check_index_dtype(name, ptr)
    if ptr.dim() != 1 or ptr.numel() == 0:
        raise ValueError(f"'{name}' must be a non-empty 1-D tensor, got {describe(ptr)}")
    if not validation_enabled():
        return
    if int(ptr[0]) != 0:
        raise ValueError(f"'{name}' must start at 0, got {int(ptr[0])}")
    if ptr.numel() > 1 and bool((ptr[1:] < ptr[:-1]).any()):
        raise ValueError(f"'{name}' must be monotonically non-decreasing")
    if size is not None and int(ptr[-1]) != size:
        raise ValueError(f"'{name}' must end at the number of elements ({size}), got {int(ptr[-1])}")
