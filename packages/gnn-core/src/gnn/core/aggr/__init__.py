"""The :class:`Aggregation` base class and the basic reductions of gnn-core."""

from .base import Aggregation
from .basic import (
    MaxAggregation,
    MeanAggregation,
    MinAggregation,
    MulAggregation,
    SumAggregation,
    fused_reduction,
)

__all__ = [
    "Aggregation",
    "MaxAggregation",
    "MeanAggregation",
    "MinAggregation",
    "MulAggregation",
    "SumAggregation",
    "fused_reduction",
]
