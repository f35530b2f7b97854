"""The plugin module named by the entry point ``example`` in group ``gnn``.

gnn calls the hooks below once, on first use of a registry. The aggregation
is registered eagerly (the class itself); the convolution lazily (a
``"module:attr"`` string), so discovery does not import
:mod:`gnn_example_plugin.conv`.
"""

from __future__ import annotations

from collections.abc import Callable

from gnn.core import hookimpl

from .aggr import LogSumExpAggregation


@hookimpl
def gnn_register_aggregations(register: Callable[..., None]) -> None:
    register(LogSumExpAggregation)  # name "logsumexp"


@hookimpl
def gnn_register_convs(register: Callable[..., None]) -> None:
    register("gnn_example_plugin.conv:HiddenMeanConv")  # name "hiddenmean"
