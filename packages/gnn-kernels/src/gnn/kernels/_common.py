"""Definitions the kernels' Python modules share (no imports of the others, so none of them
imports in a circle): the reduction codes of ``csrc/reduce.h`` and the row-layout helper."""

from __future__ import annotations

from torch import Tensor

# reduction codes of scatter_reduce/segment_reduce (csrc/reduce.h)
REDUCE_SUM, REDUCE_MEAN, REDUCE_MAX, REDUCE_MIN, REDUCE_MUL = range(5)
_REDUCE_CODES = {
    "sum": REDUCE_SUM,
    "add": REDUCE_SUM,
    "mean": REDUCE_MEAN,
    "max": REDUCE_MAX,
    "min": REDUCE_MIN,
    "mul": REDUCE_MUL,
}


def contiguous_rows(t: Tensor) -> Tensor:
    """``t`` with each row contiguous, keeping its row stride (a column block of a wider
    tensor stays a view) and a broadcast along rows (stride 0) broadcast. Only the CPU
    kernels read strided rows."""
    if t.device.type != "cpu":
        return t.contiguous()
    if t.dim() > 1 and t.size(0) > 1 and t.stride(0) == 0:
        return t[:1].contiguous().expand(t.shape)
    inner = t[0] if t.dim() > 1 and t.size(0) > 0 else t
    return t if inner.is_contiguous() else t.contiguous()
