"""The fx machinery: the Transformer base class (PyG's hooks and signature), the tracing rules
(message-passing layers and aggregations are leaves, containers of layers are traced through,
gnn's Sequential gets named placeholders), and global pooling in to_hetero."""

from __future__ import annotations

import inspect

import pytest
import torch

import gnn.conv as C
from gnn.core import Linear, MeanAggregation, Sequential, SumAggregation
from gnn.hetero import Transformer, to_hetero
from gnn.hetero.fx import symbolic_trace

HOOKS = [
    "placeholder",
    "get_attr",
    "call_message_passing_module",
    "call_global_pooling_module",
    "call_module",
    "call_method",
    "call_function",
    "output",
    "init_submodule",
]


def _params(fn) -> list[tuple[str, object]]:
    return [(p.name, p.default) for p in inspect.signature(fn).parameters.values()]


def test_signatures_match_pyg():
    fx = pytest.importorskip("torch_geometric.nn.fx")
    for name in ["__init__", "transform", *HOOKS, "is_node_level", "is_edge_level", "is_graph_level",
                 "has_node_level_arg", "has_edge_level_arg", "find_by_name", "find_by_target",
                 "replace_all_uses_with"]:  # fmt: skip
        assert _params(getattr(Transformer, name)) == _params(getattr(fx.Transformer, name)), name


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = Linear(-1, 8)
        self.conv = C.SAGEConv(8, 8)
        self.edge_lin = torch.nn.Linear(2, 2)

    def forward(self, x, edge_index, edge_attr):
        h = self.lin(x).relu()
        e = self.edge_lin(edge_attr)
        return self.conv(h, edge_index) + 1, e.sum()


def test_hooks_see_every_node_with_its_level():
    seen: list[tuple[str, str, str]] = []

    class Recorder(Transformer):
        def _record(self, kind, node):
            level = next(lv for lv in ("node", "edge", "graph") if getattr(self, f"is_{lv}_level")(node))
            seen.append((kind, node.name, level))

        def placeholder(self, node, target, name):
            self._record("placeholder", node)

        def call_message_passing_module(self, node, target, name):
            self._record("mp", node)

        def call_module(self, node, target, name):
            self._record("module", node)

        def call_method(self, node, target, name):
            self._record("method", node)

        def call_function(self, node, target, name):
            self._record("function", node)

        def init_submodule(self, module, target):
            seen.append(("init", target, type(module).__name__))
            return module

    gm = Recorder(Net()).transform()
    assert ("placeholder", "x", "node") in seen
    assert ("placeholder", "edge_index", "edge") in seen
    assert ("placeholder", "edge_attr", "edge") in seen
    assert ("module", "lin", "node") in seen and ("module", "edge_lin", "edge") in seen
    assert ("mp", "conv", "node") in seen
    assert ("method", "relu", "node") in seen
    assert ("method", "sum_1", "edge") in seen
    assert ("init", "conv", "SAGEConv") in seen
    assert isinstance(gm, torch.fx.GraphModule)


def test_input_map_levels_and_graph_helpers():
    levels = {}

    class Levels(Transformer):
        def placeholder(self, node, target, name):
            levels[name] = self.is_node_level(node), self.is_edge_level(node)
            assert self.find_by_name(name) is node and self.find_by_target("conv").name == "conv"

    Levels(Net(), input_map={"edge_attr": "node"}).transform()
    assert levels == {"x": (True, False), "edge_index": (False, True), "edge_attr": (True, False)}
    with pytest.raises(ValueError, match="input_map"):
        Transformer(Net(), input_map={"y": "node"})


def test_debug_prints_the_graph(capsys, metadata):
    to_hetero(Net(), metadata, debug=True)
    out = capsys.readouterr().out
    assert "before" in out and "after" in out and "conv" in out


def test_tracing_rules():
    class Block(torch.nn.Module):  # holds a conv: traced through
        def __init__(self):
            super().__init__()
            self.conv = C.GCNConv(4, 4)

        def forward(self, x, edge_index):
            return self.conv(x, edge_index)

    class Plain(torch.nn.Module):  # no conv inside: a leaf
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(4, 4)

        def forward(self, x):
            return self.lin(x) * 2

    class Top(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.block = Block()
            self.plain = Plain()
            self.seq = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU())
            self.pool = MeanAggregation()

        def forward(self, x, edge_index, batch):
            return self.pool(self.seq(self.plain(self.block(x, edge_index))), batch)

    gm = symbolic_trace(Top())
    calls = [n.target for n in gm.graph.nodes if n.op == "call_module"]
    assert calls == ["block.conv", "plain", "seq.0", "seq.1", "pool"]


def test_sequential_root_gets_named_placeholders():
    model = Sequential(
        "x, edge_index, batch=None",
        [(C.SAGEConv(4, 4), "x, edge_index -> x"), (torch.nn.ReLU(), "x -> x")],
    )
    gm = symbolic_trace(model)
    placeholders = [(n.name, n.args) for n in gm.graph.nodes if n.op == "placeholder"]
    assert placeholders == [("x", ()), ("edge_index", ()), ("batch", (None,))]
    x, ei = torch.randn(5, 4), torch.randint(0, 5, (2, 8))
    torch.testing.assert_close(gm(x, ei), model(x, ei))


@pytest.mark.parametrize("aggr", ["sum", "mean"])
def test_global_pooling_matches_pyg(aggr, graph, metadata, parity):
    pyg = pytest.importorskip("torch_geometric.nn")

    def build(conv, pool):
        class Pooled(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = conv((-1, -1), 4)
                self.pool = pool()
                self.lin_out = torch.nn.Linear(4, 2)  # graph level: one module for all types

            def forward(self, x, edge_index, batch):
                # (PyG's to_hetero fails when a pooled value is returned directly)
                return self.lin_out(self.pool(self.conv(x, edge_index).relu(), batch))

        return Pooled()

    data = graph()
    batch = {"paper": torch.tensor([0] * 5 + [1] * 4), "author": torch.tensor([0, 0, 1, 1, 1, 1])}
    ours = to_hetero(build(C.SAGEConv, SumAggregation), metadata, aggr=aggr)
    theirs = pyg.to_hetero(build(pyg.SAGEConv, pyg.aggr.SumAggregation), metadata, aggr=aggr)
    a, b = parity(ours, theirs, data["x"], data["edge_index"], batch)
    assert a.shape == (2, 2)  # graph level: one tensor for all node types
    assert "lin_out.weight" in ours.state_dict()
    torch.testing.assert_close(a, b)
