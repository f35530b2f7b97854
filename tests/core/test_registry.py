"""Registry resolution rules (see the README of gnn-core) on a registry filled by hand."""

from __future__ import annotations

import pytest
import torch

from gnn.core import MeanAggregation, SumAggregation, registry
from gnn.core.plugins import MalformedComponent
from gnn.core.registry import Registry, normalize


class HiddenMeanConv(torch.nn.Module):
    def __init__(self, a=1, b=2):
        super().__init__()
        self.a, self.b = a, b


def make_registry() -> Registry:
    reg = Registry("convs", suffixes=("conv",), base="torch.nn:Module")
    reg._all = lambda: reg._entries  # no plugin discovery for this hand-filled registry
    return reg


def add(reg, obj, name=None, dist="gnn-conv", version="0.1.0"):
    return reg.add(reg.make_entry(obj, name, {}, dist, version))


def test_normalize():
    assert normalize("LogSumExpAggregation", ("aggregation",)) == "logsumexp"
    assert normalize("GCNConv", ("conv",)) == "gcn"
    assert normalize("batch_norm", ("norm",)) == "batch"
    assert normalize("Set2Set", ("aggregation",)) == "set2set"
    assert normalize("Conv", ("conv",)) == "conv"  # never strips to nothing


def test_lazy_string_names_and_resolution():
    reg = make_registry()
    add(reg, f"{__name__}:HiddenMeanConv")
    entry = reg.find("hiddenmean")
    assert entry.is_lazy and entry.name == "hiddenmean"
    for query in ("hiddenmean", "HiddenMeanConv", "hidden_mean", "HIDDENMEANCONV"):
        conv = reg.resolve(query, 3, b=4)
        assert isinstance(conv, HiddenMeanConv) and (conv.a, conv.b) == (3, 4)
    instance = HiddenMeanConv()
    assert reg.resolve(instance) is instance
    assert isinstance(reg.resolve(HiddenMeanConv, 5), HiddenMeanConv)
    assert reg["hiddenmean"] is HiddenMeanConv
    assert "HiddenMeanConv" in reg and "nope" not in reg
    assert list(reg) == ["hiddenmean"] and len(reg) == 1


def test_unknown_name_lists_close_matches():
    reg = make_registry()
    add(reg, HiddenMeanConv)
    with pytest.raises(ValueError, match="did you mean 'hiddenmean'"):
        reg.find("hiddenmeen")
    with pytest.raises(KeyError):
        reg["zzz"]


def test_reserved_names_and_dist_selection():
    reg = make_registry()
    add(reg, HiddenMeanConv, name="gcn", dist="gnn-conv")

    class Other(torch.nn.Module):
        pass

    message = add(reg, Other, name="gcn", dist="my-plugin")
    assert "reserved" in message and "my-plugin:gcn" in message
    assert reg.lookup("gcn") is HiddenMeanConv
    assert reg.lookup("my-plugin:gcn") is Other
    assert reg.lookup("gnn-conv:gcn") is HiddenMeanConv


def test_two_plugins_same_new_name_never_resolve_silently():
    reg = make_registry()

    class A(torch.nn.Module):
        pass

    class B(torch.nn.Module):
        pass

    assert add(reg, A, name="fancy", dist="plugin-a") is None
    assert add(reg, B, name="fancy", dist="plugin-b") is None
    with pytest.raises(ValueError, match="plugin-a.*plugin-b"):
        reg.lookup("fancy")
    assert reg.lookup("plugin-a:fancy") is A
    assert reg.lookup("plugin-b:fancy") is B
    with pytest.raises(ValueError, match="no convs 'fancy' registered by distribution 'plugin-c'"):
        reg.lookup("plugin-c:fancy")


@pytest.mark.parametrize(
    "obj, name",
    [(42, None), ("no_colon", None), ("mod:", None), (HiddenMeanConv, ""), (HiddenMeanConv, "a:b")],
)
def test_malformed_components_are_rejected(obj, name):
    with pytest.raises(MalformedComponent):
        make_registry().make_entry(obj, name, {}, "x", "1")


def test_core_reductions_are_registered_through_the_entry_point():
    assert isinstance(registry.aggregations.resolve("sum"), SumAggregation)
    assert isinstance(registry.aggregations.resolve("add"), SumAggregation)
    assert isinstance(registry.aggregations.resolve("MeanAggregation"), MeanAggregation)
    entry = registry.aggregations.find("mean")
    assert entry.dist == "gnn-core" and entry.is_lazy
    with pytest.raises(ValueError, match="unknown aggregations name 'meen'.*'mean'"):
        registry.aggregations.resolve("meen")


@pytest.mark.parametrize(
    "setting, disabled",
    [
        ("gnn-core", True),
        ("GNN_Core", True),
        ("gnn.core", True),
        (" other , Gnn--_core ", True),
        ("core", True),  # the entry point's own name
        ("Core", True),  # entry-point names are normalized like distribution names (PEP 503)
        ("co_re", False),  # ... which keeps letters apart
        ("gnn-cor", False),
    ],
)
def test_disable_plugins_normalizes_distribution_and_entry_point_names(monkeypatch, setting, disabled):
    from gnn.core import plugins

    monkeypatch.setenv("GNN_DISABLE_PLUGINS", setting)
    plugins._reset_for_tests()
    try:
        status = {p.dist: p.status for p in plugins.plugins()}
        assert status["gnn-core"] == ("disabled" if disabled else "ok")
        assert ("mean" in registry.aggregations) is not disabled
    finally:
        monkeypatch.delenv("GNN_DISABLE_PLUGINS")
        plugins._reset_for_tests()
    assert "mean" in registry.aggregations
