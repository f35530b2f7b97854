"""Pure-torch reference of the one-pass multi-reductions (:mod:`gnn.core.ops.multi`):
each reduction from the single reductions of :mod:`gnn.core.ops.reference`, with the
formulas of PyG's aggregations, and autograd for the backward.

Inputs are validated and flattened by :mod:`gnn.core.ops.multi`: ``src`` is ``[E, P]``,
and a softmax's ``t`` a ``[P]`` tensor.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from .csr import CSR, ptr_to_index
from .reference import scatter

#: variances at most this are treated as zero by ``std`` (PyG's StdAggregation)
STD_EPS = 1e-5
#: the guard of the softmax's denominator (PyG's softmax)
SOFTMAX_EPS = 1e-16


def _std(var: Tensor) -> Tensor:
    out = var.clamp(min=STD_EPS).sqrt()
    return out.masked_fill(out <= math.sqrt(STD_EPS), 0.0)


def segment_multi(
    src: Tensor,
    index: Tensor | None,
    ptr: Tensor | None,
    num_groups: int,
    reductions: tuple,
    scatter: Callable[..., Tensor] = scatter,
) -> Tensor:
    """``[G, R, P]``: the reductions of ``src`` (``[E, P]``) grouped by ``index`` (any order) or
    ``ptr`` (sorted), stacked along dim 1. ``scatter`` computes each single reduction
    (``scatter(src, index, dim, dim_size, reduce)``; default: the pure-torch reference's)."""
    if index is None:
        index = ptr_to_index(ptr, src.size(0))
    index = index.long() if index.dtype != torch.int64 else index
    memo: dict[str, Tensor] = {}

    def once(key: str, compute: Callable[[], Tensor]) -> Tensor:
        if key not in memo:
            memo[key] = compute()
        return memo[key]

    def count() -> Tensor:
        ones = torch.ones(src.size(0), 1, dtype=src.dtype, device=src.device)
        return once("count", lambda: scatter(ones, index, 0, num_groups, "sum").clamp(min=1))

    def total() -> Tensor:
        return once("sum", lambda: scatter(src, index, 0, num_groups, "sum"))

    def var(semi_grad: bool) -> Tensor:
        mean = total() / count()
        if semi_grad:
            with torch.no_grad():
                mean_sq = scatter(src * src, index, 0, num_groups, "sum") / count()
        else:
            mean_sq = once("sum_sq", lambda: scatter(src * src, index, 0, num_groups, "sum")) / count()
        return mean_sq - mean * mean

    outs = []
    for red in reductions:
        if red.name == "sum":
            outs.append(total())
        elif red.name == "mean":
            outs.append(total() / count())
        elif red.name in ("min", "max"):
            outs.append(scatter(src, index, 0, num_groups, red.name))
        elif red.name == "var":
            outs.append(var(red.semi_grad))
        elif red.name == "std":
            outs.append(_std(var(red.semi_grad)))
        elif red.name == "softmax":
            t = red.t.view(1, -1)
            with torch.no_grad() if red.semi_grad else torch.enable_grad():
                scores = src * t
                peak = scatter(scores.detach(), index, 0, num_groups, "max")
                weight = (scores - peak.index_select(0, index)).exp()
                den = scatter(weight, index, 0, num_groups, "sum") + SOFTMAX_EPS
            outs.append(scatter(weight * src, index, 0, num_groups, "sum") / den)
        else:
            raise ValueError(f"unknown reduction {red.name!r}")
    if len(outs) == 1:
        return outs[0].unsqueeze(1)
    return torch.stack(outs, dim=1)


def spmm_multi(csr: CSR, x: Tensor, reductions: tuple) -> Tensor:
    """``[num_rows, R, P]``: the reductions of ``x[col]`` (``x`` is ``[num_cols, P]``) over each row."""
    messages = x.index_select(0, csr.col)
    return segment_multi(messages, csr.row(), None, csr.num_rows, reductions)
