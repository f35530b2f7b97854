"""gnn-aggr: every aggregation operator of the reference, importable from ``gnn.aggr``.

Names resolve lazily (PEP 562): importing ``gnn.aggr`` imports no
aggregation module until one of its names is used. The five basic
reductions (sum, mean, max, min, mul) and the :class:`Aggregation` base class
are gnn-core's, re-exported here.

Example:
    >>> from gnn.aggr import MedianAggregation, MultiAggregation
    >>> aggr = MultiAggregation(["mean", MedianAggregation()])
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_CORE = "gnn.core.aggr"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "Aggregation": _CORE,
    "SumAggregation": _CORE,
    "MeanAggregation": _CORE,
    "MaxAggregation": _CORE,
    "MinAggregation": _CORE,
    "MulAggregation": _CORE,
    "MultiAggregation": "gnn.aggr.multi",
    "VarAggregation": "gnn.aggr.variance",
    "StdAggregation": "gnn.aggr.variance",
    "SoftmaxAggregation": "gnn.aggr.softmax",
    "PowerMeanAggregation": "gnn.aggr.power_mean",
    "MedianAggregation": "gnn.aggr.quantile",
    "QuantileAggregation": "gnn.aggr.quantile",
    "LSTMAggregation": "gnn.aggr.rnn",
    "GRUAggregation": "gnn.aggr.rnn",
    "Set2Set": "gnn.aggr.set2set",
    "DegreeScalerAggregation": "gnn.aggr.scaler",
    "SortAggregation": "gnn.aggr.sort",
    "GraphMultisetTransformer": "gnn.aggr.gmt",
    "AttentionalAggregation": "gnn.aggr.attention",
    "EquilibriumAggregation": "gnn.aggr.equilibrium",
    "MLPAggregation": "gnn.aggr.mlp",
    "DeepSetsAggregation": "gnn.aggr.deep_sets",
    "SetTransformerAggregation": "gnn.aggr.set_transformer",
    "LCMAggregation": "gnn.aggr.lcm",
    "VariancePreservingAggregation": "gnn.aggr.vpa",
    "PatchTransformerAggregation": "gnn.aggr.patch_transformer",
}

__all__ = [
    "Aggregation",
    "MultiAggregation",
    "SumAggregation",
    "MeanAggregation",
    "MaxAggregation",
    "MinAggregation",
    "MulAggregation",
    "VarAggregation",
    "StdAggregation",
    "SoftmaxAggregation",
    "PowerMeanAggregation",
    "MedianAggregation",
    "QuantileAggregation",
    "LSTMAggregation",
    "GRUAggregation",
    "Set2Set",
    "DegreeScalerAggregation",
    "SortAggregation",
    "GraphMultisetTransformer",
    "AttentionalAggregation",
    "EquilibriumAggregation",
    "MLPAggregation",
    "DeepSetsAggregation",
    "SetTransformerAggregation",
    "LCMAggregation",
    "VariancePreservingAggregation",
    "PatchTransformerAggregation",
]

if TYPE_CHECKING:  # pragma: no cover
    from gnn.core.aggr import (
        Aggregation,
        MaxAggregation,
        MeanAggregation,
        MinAggregation,
        MulAggregation,
        SumAggregation,
    )

    from .attention import AttentionalAggregation
    from .deep_sets import DeepSetsAggregation
    from .equilibrium import EquilibriumAggregation
    from .gmt import GraphMultisetTransformer
    from .lcm import LCMAggregation
    from .mlp import MLPAggregation
    from .multi import MultiAggregation
    from .patch_transformer import PatchTransformerAggregation
    from .power_mean import PowerMeanAggregation
    from .quantile import MedianAggregation, QuantileAggregation
    from .rnn import GRUAggregation, LSTMAggregation
    from .scaler import DegreeScalerAggregation
    from .set2set import Set2Set
    from .set_transformer import SetTransformerAggregation
    from .softmax import SoftmaxAggregation
    from .sort import SortAggregation
    from .variance import StdAggregation, VarAggregation
    from .vpa import VariancePreservingAggregation


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'gnn.aggr' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
