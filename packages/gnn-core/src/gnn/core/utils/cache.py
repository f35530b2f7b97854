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

T = TypeVar("T")


class TensorCache:
    """An LRU of values keyed by input tensors (identity + in-place version) and extra hashables.

    Args:
        max_size: how many entries to keep (0 disables the cache).
        skip_grad: compute afresh, uncached, when an input requires grad (the
            value would carry a stale autograd graph). ``False`` for explicit
            opt-in caches such as a layer's ``cached=True``.

    Keys may be any objects (a ``torch_sparse.SparseTensor`` too); objects
    without a version counter are matched by identity alone.
    """

    def __init__(self, max_size: int = 8, *, skip_grad: bool = True) -> None:
        self._items: OrderedDict[tuple, tuple[tuple[Any, ...], Any]] = OrderedDict()
        self._lock = threading.Lock()
        self.max_size = max_size
        self.skip_grad = skip_grad

    def __len__(self) -> int:
        return len(self._items)

    # a copied or pickled module starts with an empty cache (and a lock of its own)
    def __getstate__(self) -> dict[str, Any]:
        return {"max_size": self.max_size, "skip_grad": self.skip_grad}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["max_size"], skip_grad=state["skip_grad"])

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

    def _usable(self, keys: tuple[Any, ...]) -> bool:
        if self.max_size <= 0 or torch.compiler.is_compiling():
            return False
        return not (self.skip_grad and any(getattr(k, "requires_grad", False) for k in keys))

    @staticmethod
    def _key(keys: tuple[Any, ...], extra: tuple[Hashable, ...]) -> tuple:
        return tuple(None if k is None else (id(k), getattr(k, "_version", None)) for k in keys) + tuple(
            extra
        )

    def lookup(self, keys: tuple[Any, ...], extra: tuple[Hashable, ...] = ()) -> Any:
        """The value stored for exactly these key objects, or ``None``."""
        if not self._usable(keys):
            return None
        with self._lock:
            hit = self._items.get(self._key(keys, extra))
            if hit is None or not all(a is b for a, b in zip(hit[0], keys)):
                return None
            self._items.move_to_end(self._key(keys, extra))
            return hit[1]

    def store(self, value: T, keys: tuple[Any, ...], extra: tuple[Hashable, ...] = ()) -> T:
        """Keep ``value`` for these key objects (unless the cache is bypassed) and return it."""
        if self._usable(keys):
            with self._lock:
                self._items[self._key(keys, extra)] = (keys, value)
                while len(self._items) > self.max_size:
                    self._items.popitem(last=False)
        return value

    def get(self, tensors: tuple[Any, ...], extra: tuple[Hashable, ...], compute: Callable[[], T]) -> T:
        """The cached value for ``tensors``/``extra``, computing and storing it on a miss."""
        hit = self.lookup(tensors, extra)
        if hit is not None:
            return hit
        return self.store(compute(), tensors, extra)
