"""gnn-aggr's entry point in group ``gnn``: registers its aggregations lazily.

Each component is a ``"module:Class"`` string, so discovery imports nothing;
the registry derives the name from the class name (lower-cased, separators
and the ``Aggregation`` suffix dropped: ``"PowerMeanAggregation"`` ->
``"powermean"``, ``"Set2Set"`` -> ``"set2set"``). The five basic reductions
are registered by gnn-core itself.
"""

from __future__ import annotations

from collections.abc import Callable

from gnn.core.plugins import hookimpl

#: every aggregation gnn-aggr defines, as lazy "module:Class" targets
COMPONENTS = (
    "gnn.aggr.multi:MultiAggregation",
    "gnn.aggr.variance:VarAggregation",
    "gnn.aggr.variance:StdAggregation",
    "gnn.aggr.softmax:SoftmaxAggregation",
    "gnn.aggr.power_mean:PowerMeanAggregation",
    "gnn.aggr.quantile:MedianAggregation",
    "gnn.aggr.quantile:QuantileAggregation",
    "gnn.aggr.rnn:LSTMAggregation",
    "gnn.aggr.rnn:GRUAggregation",
    "gnn.aggr.set2set:Set2Set",
    "gnn.aggr.scaler:DegreeScalerAggregation",
    "gnn.aggr.sort:SortAggregation",
    "gnn.aggr.gmt:GraphMultisetTransformer",
    "gnn.aggr.attention:AttentionalAggregation",
    "gnn.aggr.equilibrium:EquilibriumAggregation",
    "gnn.aggr.mlp:MLPAggregation",
    "gnn.aggr.deep_sets:DeepSetsAggregation",
    "gnn.aggr.set_transformer:SetTransformerAggregation",
    "gnn.aggr.lcm:LCMAggregation",
    "gnn.aggr.vpa:VariancePreservingAggregation",
    "gnn.aggr.patch_transformer:PatchTransformerAggregation",
)


@hookimpl
def gnn_register_aggregations(register: Callable[..., None]) -> None:
    for target in COMPONENTS:
        register(target)
