"""Timing helpers shared by the benchmark scripts (imported as ``timing`` from their folder)."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path


def median_ms(fn: Callable[[], object], repeat: int) -> float:
    """Median wall time of ``fn`` in ms over ``repeat`` calls, after one warm-up call."""
    return interleaved_median_ms({"fn": fn}, repeat)["fn"]


def interleaved_median_ms(
    fns: dict[str, Callable[[], object]], repeat: int, clock: Callable[[], float] = time.perf_counter
) -> dict[str, float]:
    """Median time in ms of each function, called in turn (a, b, c, a, b, c, ...), by ``clock``
    (the wall clock; ``time.process_time`` for the process's CPU time).

    Interleaving makes a change of machine load during the run affect every contender alike;
    each function runs once first as a warm-up (caches, allocator, lazy imports).
    """
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {key: [] for key in fns}
    for _ in range(repeat):
        for key, fn in fns.items():
            t0 = clock()
            fn()
            times[key].append(clock() - t0)
    return {key: statistics.median(values) * 1e3 for key, values in times.items()}


#: appended to a script's set-up code by :func:`peak_rss_mb`: reset the high-water mark (VmHWM) by
#: writing 5 to /proc/self/clear_refs, then run once and report the peak above the state before
_MEASURE = """
def _status(key):
    with open('/proc/self/status') as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith(key))
{trim}
with open('/proc/self/clear_refs', 'w') as fh:
    fh.write('5')
_before = _status('VmRSS:')
run()
print((_status('VmHWM:') - _before) / 1024)
"""


def peak_rss_mb(
    setup: str, *, trim: bool = False, mmap_threshold: bool = False, env: dict[str, str] | None = None
) -> float:
    """Extra peak RSS (MB) of one call of ``run`` in a fresh Linux process.

    ``setup`` is Python source (the benchmarks folder is on ``sys.path``) that builds the inputs,
    defines ``run`` and calls it for its warm-ups. Then the high-water mark is reset and one more
    ``run()`` is measured. ``trim``: ``malloc_trim(0)`` first (freed memory leaves RSS);
    ``mmap_threshold``: glibc's mmap threshold fixed at 64 KiB, so that every large block returns
    to the OS when freed and the high-water mark follows the live tensors (by default the threshold
    grows after the warm-up and freed blocks stay resident). ``env``: the child's environment
    (default: this process's).
    """
    trim_code = "import ctypes\nctypes.CDLL('libc.so.6').malloc_trim(0)" if trim else ""
    code = (
        f"import sys\nsys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        + textwrap.dedent(setup)
        + _MEASURE.format(trim=trim_code)
    )
    child_env = dict(os.environ if env is None else env)
    if mmap_threshold:
        child_env["MALLOC_MMAP_THRESHOLD_"] = "65536"
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=child_env
    )
    return float(res.stdout.strip().splitlines()[-1])
