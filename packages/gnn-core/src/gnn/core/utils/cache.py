"""A small cache of values derived from graph tensors (CSR forms, normalizations).

Entries are keyed by the identity and in-place version counter of the input
tensors plus any extra hashable arguments; an entry holds references to its
input tensors, so their identities cannot be reused while it lives, and any
in-place change to an input is a miss. Nothing is cached while tracing with
``torch.compile`` or when an input requires grad (the result would carry a
stale autograd graph).

Example:
    >>> cache = TensorCache(4)
    >>> ei = torch.tensor([[0, 1], [1, 0]])
    >>> cache.get((ei,), ("norm",), lambda: ei.flip(0)) is cache.get((ei,), ("norm",), lambda: None)
    True
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

import torch
from torch import Tensor

T = TypeVar("T")


class TensorCache:
    """An LRU of ``compute()`` results keyed by input tensors (identity + version)."""

    def __init__(self, max_size: int = 8) -> None:
        self._items: OrderedDict[tuple, tuple[tuple[Any, ...], Any]] = OrderedDict()
        self._lock = threading.Lock()
        self.max_size = max_size

    def resize(self, max_size: int) -> None:
        if max_size < 0:
            raise ValueError(f"'max_size' must be non-negative, got {max_size}")
        with self._lock:
            self.max_size = max_size
            while len(self._items) > max_size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def get(
        self, tensors: tuple[Tensor | None, ...], extra: tuple[Hashable, ...], compute: Callable[[], T]
    ) -> T:
        usable = (
            self.max_size > 0
            and not torch.compiler.is_compiling()
            and not any(t is not None and t.requires_grad for t in tensors)
        )
        if not usable:
            return compute()
        key = tuple(None if t is None else (id(t), t._version, t.device) for t in tensors) + tuple(extra)
        with self._lock:
            hit = self._items.get(key)
            if hit is not None and all(a is b for a, b in zip(hit[0], tensors)):
                self._items.move_to_end(key)
                return hit[1]
        value = compute()
        with self._lock:
            self._items[key] = (tensors, value)
            while len(self._items) > self.max_size:
                self._items.popitem(last=False)
        return value
