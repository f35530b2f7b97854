"""Timing helpers shared by the benchmark scripts (imported as ``timing`` from their folder)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def median_ms(fn: Callable[[], object], repeat: int) -> float:
    """Median wall time of ``fn`` in ms over ``repeat`` calls, after one warm-up call."""
    return interleaved_median_ms({"fn": fn}, repeat)["fn"]


def interleaved_median_ms(fns: dict[str, Callable[[], object]], repeat: int) -> dict[str, float]:
    """Median wall time in ms of each function, called in turn (a, b, c, a, b, c, ...).

    Interleaving makes a change of machine load during the run affect every contender alike;
    each function runs once first as a warm-up (caches, allocator, lazy imports).
    """
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {key: [] for key in fns}
    for _ in range(repeat):
        for key, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[key].append(time.perf_counter() - t0)
    return {key: statistics.median(values) * 1e3 for key, values in times.items()}
