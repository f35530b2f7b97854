"""Every aggregation name of gnn-aggr: importable from gnn.aggr and resolvable through the registry."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

import gnn.aggr
from gnn.core import aggr as core_aggr
from gnn.core import registry
from gnn.core.aggr import Aggregation

ALL_26 = [
    "MultiAggregation", "SumAggregation", "MeanAggregation", "MaxAggregation", "MinAggregation",
    "MulAggregation", "VarAggregation", "StdAggregation", "SoftmaxAggregation", "PowerMeanAggregation",
    "MedianAggregation", "QuantileAggregation", "LSTMAggregation", "GRUAggregation", "Set2Set",
    "DegreeScalerAggregation", "SortAggregation", "GraphMultisetTransformer", "AttentionalAggregation",
    "EquilibriumAggregation", "MLPAggregation", "DeepSetsAggregation", "SetTransformerAggregation",
    "LCMAggregation", "VariancePreservingAggregation", "PatchTransformerAggregation",
]  # fmt: skip

BASIC = {"sum": "SumAggregation", "mean": "MeanAggregation", "max": "MaxAggregation",
         "min": "MinAggregation", "mul": "MulAggregation"}  # fmt: skip

# short name -> (class name, module, constructor arguments) for the classes of this part
OURS = {
    "multi": ("MultiAggregation", "multi", (["mean", "max"],), {}),
    "var": ("VarAggregation", "variance", (), {}),
    "std": ("StdAggregation", "variance", (), {}),
    "softmax": ("SoftmaxAggregation", "softmax", (), {"t": 2.0}),
    "powermean": ("PowerMeanAggregation", "power_mean", (), {"p": 2.0}),
    "median": ("MedianAggregation", "quantile", (), {}),
    "quantile": ("QuantileAggregation", "quantile", (0.25,), {}),
    "degreescaler": ("DegreeScalerAggregation", "scaler", ("mean", "linear", torch.tensor([0, 2])), {}),
    "attentional": ("AttentionalAggregation", "attention", (torch.nn.Linear(2, 1),), {}),
    "equilibrium": ("EquilibriumAggregation", "equilibrium", (2, 3, [4]), {}),
    "lcm": ("LCMAggregation", "lcm", (2, 3), {}),
    "variancepreserving": ("VariancePreservingAggregation", "vpa", (), {}),
}

# aggregations of the other part: only their registration is checked here
OTHERS = {
    "lstm": "gnn.aggr.rnn:LSTMAggregation",
    "gru": "gnn.aggr.rnn:GRUAggregation",
    "set2set": "gnn.aggr.set2set:Set2Set",
    "sort": "gnn.aggr.sort:SortAggregation",
    "graphmultisettransformer": "gnn.aggr.gmt:GraphMultisetTransformer",
    "mlp": "gnn.aggr.mlp:MLPAggregation",
    "deepsets": "gnn.aggr.deep_sets:DeepSetsAggregation",
    "settransformer": "gnn.aggr.set_transformer:SetTransformerAggregation",
    "patchtransformer": "gnn.aggr.patch_transformer:PatchTransformerAggregation",
}


def test_all_names_are_exported():
    assert set(ALL_26) <= set(gnn.aggr.__all__)
    assert set(gnn.aggr.__all__) == set(ALL_26) | {"Aggregation"}
    assert set(ALL_26) <= set(dir(gnn.aggr))
    assert gnn.aggr.Aggregation is Aggregation
    for name in BASIC.values():  # gnn-core's classes, not copies
        assert getattr(gnn.aggr, name) is getattr(core_aggr, name)
    for cls_name, module, _, _ in OURS.values():
        cls = getattr(gnn.aggr, cls_name)
        assert cls.__module__ == f"gnn.aggr.{module}" and issubclass(cls, Aggregation)
    with pytest.raises(AttributeError, match="no attribute 'NoSuchAggregation'"):
        gnn.aggr.NoSuchAggregation  # noqa: B018


@pytest.mark.parametrize("short", sorted(OURS))
def test_our_names_resolve_by_short_and_long_name(short):
    cls_name, module, args, kwargs = OURS[short]
    cls = getattr(gnn.aggr, cls_name)
    entry = registry.aggregations.find(short)
    assert entry.target == f"gnn.aggr.{module}:{cls_name}" and entry.dist == "gnn-aggr"
    for query in (short, cls_name, cls_name.lower(), short.upper(), f"gnn-aggr:{short}"):
        assert registry.aggregations.lookup(query) is cls
        assert type(registry.aggregations.resolve(query, *args, **kwargs)) is cls
    instance = cls(*args, **kwargs)
    assert registry.aggregations.resolve(instance) is instance
    assert type(registry.aggregations.resolve(cls, *args, **kwargs)) is cls


@pytest.mark.parametrize("short", sorted(OTHERS))
def test_other_part_names_are_registered_lazily(short):
    target = OTHERS[short]
    cls_name = target.rpartition(":")[2]
    for query in (short, cls_name, cls_name.lower()):
        entry = registry.aggregations.find(query)
        assert entry.target == target and entry.dist == "gnn-aggr"
    assert gnn.aggr._EXPORTS[cls_name] == target.partition(":")[0]


def test_pyg_spellings_and_basic_reductions():
    for query, cls_name in [("power_mean", "PowerMeanAggregation"), ("PowerMean", "PowerMeanAggregation"),
                            ("softmax_aggregation", "SoftmaxAggregation"),
                            ("degree_scaler", "DegreeScalerAggregation"),
                            ("variance_preserving", "VariancePreservingAggregation"),
                            ("deep_sets", "DeepSetsAggregation"), ("set_transformer", "SetTransformerAggregation"),
                            ("Set2Set", "Set2Set"), ("GraphMultisetTransformer", "GraphMultisetTransformer")]:  # fmt: skip
        assert registry.aggregations.find(query).target.endswith(":" + cls_name)
    for short, cls_name in BASIC.items():
        entries = registry.aggregations.entries(short)
        assert [e.dist for e in entries] == ["gnn-core"]  # registered once, by gnn-core
        assert registry.aggregations.lookup(short) is getattr(gnn.aggr, cls_name)
    assert registry.aggregations.lookup("add") is gnn.aggr.SumAggregation
    names = set(registry.aggregations)
    assert set(OURS) | set(OTHERS) | set(BASIC) | {"add"} <= names


def test_list_resolves_to_multi_and_unknown_names_fail():
    multi = registry.aggregations.resolve(["mean", "std", gnn.aggr.MedianAggregation()])
    assert isinstance(multi, gnn.aggr.MultiAggregation)
    assert [type(a).__name__ for a in multi.aggrs] == [
        "MeanAggregation",
        "StdAggregation",
        "MedianAggregation",
    ]
    with pytest.raises(ValueError, match="unknown aggregations name 'medain'.*'median'"):
        registry.aggregations.resolve("medain")


def test_discovery_imports_no_aggregation_module():
    code = (
        "import sys, gnn.aggr\n"
        "from gnn.core import registry\n"
        "assert 'multi' in registry.aggregations and 'lstm' in registry.aggregations\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('gnn.aggr.') and m != 'gnn.aggr._plugin')\n"
        "assert not loaded, loaded\n"
        "registry.aggregations.resolve('median')\n"
        "assert 'gnn.aggr.quantile' in sys.modules and 'gnn.aggr.multi' not in sys.modules\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("short", sorted(OURS))
def test_int32_index_no_elements_non_contiguous_and_low_precision(short):
    import copy

    cls_name, _, args, kwargs = OURS[short]
    torch.manual_seed(0)
    aggr = registry.aggregations.resolve(short, *args, **kwargs)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 7, generator=g).t()  # [7, 2], not contiguous
    index = torch.tensor([0, 0, 1, 1, 1, 3, 3])
    expected = aggr(x.contiguous(), index, dim_size=5)
    assert expected.shape[0] == 5 and torch.isfinite(expected).all()
    torch.testing.assert_close(aggr(x, index, dim_size=5), expected)
    torch.testing.assert_close(aggr(x, index.int(), dim_size=5), expected)
    empty = aggr(torch.zeros(0, 2), torch.zeros(0, dtype=torch.long), dim_size=3)
    assert empty.shape == (3,) + expected.shape[1:] and torch.isfinite(empty).all()
    for dtype, tol in ((torch.float64, 1e-5), (torch.bfloat16, 0.05)):
        out = copy.deepcopy(aggr).to(dtype)(x.to(dtype), index, dim_size=5)
        assert out.dtype == dtype, cls_name
        torch.testing.assert_close(out.float(), expected, atol=tol, rtol=tol)


@pytest.mark.parametrize("short", sorted(OURS))
def test_signatures_match_pyg(short):
    import inspect

    pyg_aggr = pytest.importorskip("torch_geometric.nn.aggr")
    cls_name = OURS[short][0]
    ours, theirs = getattr(gnn.aggr, cls_name), getattr(pyg_aggr, cls_name)

    def params(fn):
        return [(p.name, p.default, p.kind) for p in inspect.signature(fn).parameters.values()]

    assert params(ours.__init__) == params(theirs.__init__)
    assert params(ours.forward) == params(theirs.forward)
