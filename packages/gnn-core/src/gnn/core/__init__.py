"""gnn-core: the shared foundation of gnn.

Holds :class:`MessagePassing`, the :class:`Aggregation` base class with the
basic reductions, the ops layer (:mod:`gnn.core.ops`), the registries and the
plugin manager, dense helpers (:class:`Linear`, :class:`HeteroLinear`,
:class:`HeteroDictLinear`, :class:`Sequential`, :func:`summary`) and light
graph containers (:class:`Data`, :class:`Batch`, :class:`HeteroData`).

Importing this package is cheap: names are resolved on first access
(PEP 562), and no plugin is loaded until a registry is first used.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it (relative to gnn.core)
_EXPORTS: dict[str, str] = {
    "MessagePassing": ".message_passing",
    "Aggregation": ".aggr.base",
    "SumAggregation": ".aggr.basic",
    "MeanAggregation": ".aggr.basic",
    "MaxAggregation": ".aggr.basic",
    "MinAggregation": ".aggr.basic",
    "MulAggregation": ".aggr.basic",
    "hookimpl": ".plugins",
    "PluginWarning": ".plugins",
    "set_validation": ".validation",
    "validation_enabled": ".validation",
    "IndexRangeError": ".validation",
    "Linear": ".nn.linear",
    "HeteroLinear": ".nn.hetero_linear",
    "HeteroDictLinear": ".nn.hetero_linear",
    "Sequential": ".nn.sequential",
    "MLP": ".nn.mlp",
    "summary": ".nn.summary",
    "Data": ".data.data",
    "Batch": ".data.batch",
    "HeteroData": ".data.hetero_data",
}
_SUBMODULES = {
    "ops",
    "utils",
    "registry",
    "plugins",
    "aggr",
    "nn",
    "data",
    "validation",
    "plans",
    "graph",
    "cache",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is not None:
        value = getattr(importlib.import_module(module, __name__), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return importlib.import_module("." + name, __name__)
    raise AttributeError(f"module 'gnn.core' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS) | _SUBMODULES)
