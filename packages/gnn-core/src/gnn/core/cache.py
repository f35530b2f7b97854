"""The per-graph cache: values derived from a graph tensor, computed once per graph.

A static graph is used by many layer calls; whatever gnn derives from it (its
CSR form, the range check of its indices, GCN's normalization, the graph with
self loops added, a sort permutation) is computed once and kept with the
tensor it came from. One cache serves every kind of derived value:

* entries are keyed by the tensor's identity *and* its in-place version
  counter, so an in-place change (``edge_index[0, 3] = 7``) is a miss;
* an entry lives while its tensor lives (a weak reference) and the cache keeps
  the last :data:`DEFAULT_SIZE` graphs, so per-batch graphs do not pile up;
* nothing is cached while ``torch.compile``/``torch.export`` trace, nor a
  value computed from an input that requires grad (it would carry a stale
  autograd graph).

Example:
    >>> ei = torch.tensor([[0, 1], [1, 0]])
    >>> flipped = memo(ei, "flip", lambda: ei.flip(0))
    >>> memo(ei, "flip", lambda: None) is flipped
    True
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

import torch
from torch import Tensor

__all__ = ["DEFAULT_SIZE", "clear", "facts", "memo", "resize"]

T = TypeVar("T")

#: how many graph tensors the cache keeps facts for
DEFAULT_SIZE = 32

_lock = threading.RLock()  # re-entrant: dropping an entry can run another entry's weakref callback
_entries: OrderedDict[int, tuple[weakref.ref, int, dict]] = OrderedDict()
_max_size = DEFAULT_SIZE


def _forget(key: int, ref: weakref.ref, entries: OrderedDict = _entries, lock: Any = _lock) -> None:
    """Drop the entry of a tensor that died (``entries``/``lock`` bound early: this may run at exit)."""
    with lock:
        entry = entries.get(key)
        if entry is not None and entry[0] is ref:
            del entries[key]


def facts(t: Tensor) -> dict | None:
    """The dict of values cached for the tensor ``t`` (created on first use), or ``None``
    when nothing may be cached now (tracing, cache size 0, ``t`` requires grad).

    The dict is reset when ``t`` was changed in place since it was created.
    """
    if _max_size == 0 or t.requires_grad or torch.compiler.is_compiling():
        return None
    key = id(t)
    version = t._version
    entry = _entries.get(key)
    if entry is not None and entry[1] == version and entry[0]() is t:
        return entry[2]  # (a hit does not reorder: the LRU order is by first use, cheap and enough)
    with _lock:
        ref = weakref.ref(t, lambda r, key=key, forget=_forget: forget(key, r))
        table: dict = {}
        _entries[key] = (ref, version, table)
        _entries.move_to_end(key)
        while len(_entries) > _max_size:
            _entries.popitem(last=False)
    return table


def _version_of(t: Any) -> Any:
    return None if t is None else (id(t), getattr(t, "_version", None))


def memo(t: Tensor, key: Hashable, compute: Callable[[], T], *also: Any) -> T:
    """``compute()``, cached among the facts of ``t`` under ``key``.

    Args:
        t: the graph tensor the value is derived from.
        key: what the value is (plus any plain arguments it depends on).
        compute: computes the value on a miss.
        *also: further tensors (or ``None``) the value depends on; the cached value
            is reused only for these very objects, unchanged in place, and is not
            cached when one of them requires grad.
    """
    table = facts(t)
    if table is None:
        return compute()
    if not also:  # the common case: a value of the graph alone
        hit = table.get(key)
        if hit is not None:
            return hit[2]
        value = compute()
        table[key] = ((), (), value)
        return value
    for a in also:
        if a is not None and a.requires_grad:
            return compute()
    stamp = tuple(_version_of(a) for a in also)
    hit = table.get(key)
    if hit is not None and hit[0] == stamp and all(a is b for a, b in zip(hit[1], also)):
        return hit[2]
    value = compute()
    table[key] = (stamp, also, value)
    return value


def resize(size: int) -> None:
    """How many graph tensors the cache keeps (0 disables it)."""
    global _max_size
    if size < 0:
        raise ValueError(f"'size' must be non-negative, got {size}")
    with _lock:
        _max_size = size
        while len(_entries) > size:
            _entries.popitem(last=False)


def clear() -> None:
    """Forget every cached value."""
    with _lock:
        _entries.clear()
