"""gnn-core's own plugin: registers the basic reductions by the same
entry-point mechanism third parties use."""

from __future__ import annotations

from collections.abc import Callable

from .plugins import hookimpl

_BASIC = "gnn.core.aggr.basic"


@hookimpl
def gnn_register_aggregations(register: Callable[..., None]) -> None:
    register(f"{_BASIC}:SumAggregation")
    register(f"{_BASIC}:SumAggregation", name="add")
    register(f"{_BASIC}:MeanAggregation")
    register(f"{_BASIC}:MaxAggregation")
    register(f"{_BASIC}:MinAggregation")
    register(f"{_BASIC}:MulAggregation")
