"""Helpers shared by gnn-models' modules (package-private)."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

import torch
from torch import Tensor

from gnn.core import validation as v

T = TypeVar("T")


def check_index_vector(name: str, value: object, upper: int | None = None, size: int | None = None) -> Tensor:
    """``value`` checked as a 1-D integer tensor (of ``size`` entries, in ``[0, upper)``)."""
    t = v.check_tensor(name, value)
    if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        raise TypeError(f"'{name}' must be an integer tensor, got {v.describe(t)}")
    v.check_index_dtype(name, t)
    if t.dim() != 1:
        raise ValueError(f"'{name}' must be a 1-D tensor of indices, got {v.describe(t)}")
    if size is not None and t.numel() != size:
        raise ValueError(f"'{name}' must have {size} entries, got {v.describe(t)}")
    if upper is not None:
        v.check_index_range(name, t, upper)
    return t


def check_int(name: str, value: object, low: int) -> int:
    """``value`` checked as an ``int >= low``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"'{name}' must be an int, got {v.describe(value)}")
    if value < low:
        raise ValueError(f"'{name}' must be at least {low}, got {value}")
    return value


def require(extra: str, module: str, feature: str) -> Any:
    """Import the optional ``module`` or raise an ImportError naming the extra that installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ImportError(
            f"{feature} needs the optional package '{module}': install it with "
            f"`pip install gnn-models[{extra}]`"
        ) from error


class _TextProgress:
    """A minimal progress display on stderr (used when tqdm is not installed)."""

    def __init__(self, iterable: Iterable[T], total: int, desc: str) -> None:
        self.iterable, self.total, self.desc = iterable, total, desc

    def __iter__(self) -> Iterator[T]:
        step = max(1, self.total // 10)
        done = 0
        for item in self.iterable:
            yield item
            done += 1
            if done % step == 0 or done == self.total:
                print(f"\r{self.desc}: {done}/{self.total} ({100 * done // max(self.total, 1)}%)",
                      end="" if done < self.total else "\n", file=sys.stderr, flush=True)  # fmt: skip


def progress(iterable: Iterable[T], total: int, desc: str = "") -> Iterable[T]:
    """``iterable`` with a progress bar: tqdm's when tqdm is installed, else a short text one."""
    try:
        from tqdm import tqdm  # type: ignore[import-untyped]
    except ImportError:
        return _TextProgress(iterable, total, desc or "progress")
    return tqdm(iterable, total=total, desc=desc or None)
