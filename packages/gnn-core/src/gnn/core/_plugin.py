"""gnn-core's own plugin: registers the basic reductions, and the torch-scatter /
torch-sparse adapters when those are installed, by the same entry-point
mechanism third parties use."""

from __future__ import annotations

from collections.abc import Callable
from importlib.util import find_spec

from .hooks import hookimpl

_BASIC = "gnn.core.aggr.basic"


@hookimpl
def gnn_register_aggregations(register: Callable[..., None]) -> None:
    register(f"{_BASIC}:SumAggregation")
    register(f"{_BASIC}:SumAggregation", name="add")
    register(f"{_BASIC}:MeanAggregation")
    register(f"{_BASIC}:MaxAggregation")
    register(f"{_BASIC}:MinAggregation")
    register(f"{_BASIC}:MulAggregation")


@hookimpl
def gnn_register_kernels(register: Callable[..., None]) -> None:
    # find_spec imports nothing; the adapters import their library when first used
    if find_spec("torch_scatter") is not None:
        register("gnn.core.ops.adapters:TorchScatterBackend", name="torch_scatter", priority=5)
    if find_spec("torch_sparse") is not None:
        register("gnn.core.ops.adapters:TorchSparseBackend", name="torch_sparse", priority=4)
