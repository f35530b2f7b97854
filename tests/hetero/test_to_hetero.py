"""to_hetero: six model shapes against PyG's to_hetero (strict state_dict load, same outputs per
node type), the aggregations, lazy channels, and the errors that name a node or edge type."""

from __future__ import annotations

import operator
import warnings
from types import SimpleNamespace

import pytest
import torch

import gnn.conv as C
from gnn.core import HeteroData, Linear, Sequential
from gnn.hetero import to_hetero


def _ours() -> SimpleNamespace:
    return SimpleNamespace(
        SAGEConv=C.SAGEConv, GATConv=C.GATConv, GraphConv=C.GraphConv, BatchNorm=C.BatchNorm, Linear=Linear,
        Sequential=Sequential,
    )  # fmt: skip


def _pyg() -> SimpleNamespace:
    pyg = pytest.importorskip("torch_geometric.nn")
    return SimpleNamespace(
        SAGEConv=pyg.SAGEConv, GATConv=pyg.GATConv, GraphConv=pyg.GraphConv, BatchNorm=pyg.BatchNorm,
        Linear=pyg.Linear, Sequential=pyg.Sequential,
    )  # fmt: skip


# -- the six model shapes ---------------------------------------------------------------------
def two_layer_sage(L: SimpleNamespace) -> torch.nn.Module:
    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = L.SAGEConv((-1, -1), 8)
            self.conv2 = L.SAGEConv((8, 8), 4)

        def forward(self, x, edge_index):
            x = self.conv1(x, edge_index).relu()
            return self.conv2(x, edge_index)

    return Net()


def gat_no_loops(L: SimpleNamespace) -> torch.nn.Module:
    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = L.GATConv((-1, -1), 4, heads=2, add_self_loops=False)
            self.conv2 = L.GATConv((-1, -1), 3, heads=1, add_self_loops=False)

        def forward(self, x, edge_index):
            x = torch.nn.functional.elu(self.conv1(x, edge_index))
            return self.conv2(x, edge_index)

    return Net()


def skip_and_linear(L: SimpleNamespace) -> torch.nn.Module:
    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin_in = L.Linear(-1, 8)
            self.conv1 = L.GraphConv((8, 8), 8)
            self.conv2 = L.SAGEConv((8, 8), 8)
            self.lin_out = torch.nn.Linear(16, 3)

        def forward(self, x, edge_index):
            x = self.lin_in(x).relu()
            h = self.conv1(x, edge_index).tanh()
            x = x + h  # skip connection
            h = self.conv2(x, edge_index)
            out = torch.cat([x, h], dim=-1)
            return self.lin_out(out).log_softmax(dim=-1)

    return Net()


class Cat(torch.nn.Module):
    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.cat([a, b], dim=-1)


def sequential(L: SimpleNamespace) -> torch.nn.Module:
    """gnn's Sequential; on the PyG side the same children in a plain module (PyG 2.8's to_hetero
    cannot trace PyG's Sequential, whose forward takes ``*args``)."""
    children = [L.SAGEConv((-1, -1), 8), torch.nn.ReLU(), L.SAGEConv((8, 8), 8), Cat(), L.Linear(-1, 3)]
    if L.Sequential is Sequential:
        headers = ["x, edge_index -> x1", "x1 -> x1", "x1, edge_index -> x2", "x1, x2 -> x", "x -> x"]
        return Sequential("x, edge_index", list(zip(children, headers)))

    class Equivalent(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            for i, child in enumerate(children):
                self.add_module(f"module_{i}", child)

        def forward(self, x, edge_index):
            x1 = self.module_1(self.module_0(x, edge_index))
            x2 = self.module_2(x1, edge_index)
            return self.module_4(self.module_3(x1, x2))

    return Equivalent()


def norm_and_dropout(L: SimpleNamespace) -> torch.nn.Module:
    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = L.SAGEConv((-1, -1), 8)
            self.norm = L.BatchNorm(8)
            self.dropout = torch.nn.Dropout(0.3)
            self.conv2 = L.SAGEConv((8, 8), 4)

        def forward(self, x, edge_index):
            x = self.dropout(self.norm(self.conv1(x, edge_index)).relu())
            return self.conv2(x, edge_index)

    return Net()


def with_edge_attr(L: SimpleNamespace) -> torch.nn.Module:
    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.edge_lin = L.Linear(-1, 4)  # an edge-level module: one copy per edge type
            self.conv1 = L.GATConv((-1, -1), 6, heads=1, edge_dim=4, add_self_loops=False)
            self.conv2 = L.GATConv((6, 6), 3, heads=2, concat=False, edge_dim=4, add_self_loops=False)

        def forward(self, x, edge_index, edge_attr):
            edge_attr = self.edge_lin(edge_attr).relu()
            x = self.conv1(x, edge_index, edge_attr).relu()
            return self.conv2(x, edge_index, edge_attr)

    return Net()


SHAPES = [two_layer_sage, gat_no_loops, skip_and_linear, sequential, norm_and_dropout, with_edge_attr]


def _inputs(graph, shape) -> tuple:
    data = graph(edge_dim=2 if shape is with_edge_attr else None)
    if shape is with_edge_attr:
        return data["x"], data["edge_index"], data["edge_attr"]
    return data["x"], data["edge_index"]


@pytest.mark.parametrize("shape", SHAPES, ids=[s.__name__ for s in SHAPES])
def test_matches_pyg_after_strict_load(shape, graph, metadata, parity, close):
    L_pyg = _pyg()
    pyg = pytest.importorskip("torch_geometric.nn")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = to_hetero(shape(_ours()), metadata)
        theirs = pyg.to_hetero(shape(L_pyg), metadata)
    assert sorted(ours.state_dict()) == sorted(theirs.state_dict())
    inputs = _inputs(graph, shape)
    a, b = parity(ours, theirs, *inputs)
    close(a, b)
    # gradients reach every per-type copy like PyG's
    sum(out.sum() for out in a.values()).backward()
    sum(out.sum() for out in b.values()).backward()
    grads_a = {k: p.grad for k, p in ours.named_parameters()}
    for k, p in theirs.named_parameters():
        if p.grad is None:
            assert grads_a[k] is None or bool((grads_a[k] == 0).all()), k
        else:
            torch.testing.assert_close(grads_a[k], p.grad, atol=1e-9, rtol=1e-7)


def test_training_mode_with_dropout_and_batch_norm_matches_pyg(graph, metadata, parity, close):
    pyg = pytest.importorskip("torch_geometric.nn")
    ours = to_hetero(norm_and_dropout(_ours()), metadata)
    theirs = pyg.to_hetero(norm_and_dropout(_pyg()), metadata)
    a, b = parity(ours, theirs, *_inputs(graph, norm_and_dropout), train=True)
    close(a, b)  # same seed: the same dropout masks per node type; batch statistics per type
    for key in ("norm.paper.module.running_mean", "norm.author.module.running_var"):
        torch.testing.assert_close(ours.state_dict()[key], theirs.state_dict()[key])


@pytest.mark.parametrize("aggr", ["sum", "mean", "max", "min", "mul"])
def test_aggregations_match_pyg(aggr, graph, metadata, parity, close):
    pyg = pytest.importorskip("torch_geometric.nn")
    ours = to_hetero(two_layer_sage(_ours()), metadata, aggr=aggr)
    theirs = pyg.to_hetero(two_layer_sage(_pyg()), metadata, aggr=aggr)
    a, b = parity(ours, theirs, *_inputs(graph, two_layer_sage))
    close(a, b)


def _manual_sage(model, x, ei, metadata, aggr):
    """The to_hetero formula written out: per edge type conv, combined per destination."""
    out = {}
    for layer in ("conv1", "conv2"):
        per_dst: dict[str, list[torch.Tensor]] = {}
        for src, rel, dst in metadata[1]:
            conv = getattr(model, layer)[f"{src}__{rel}__{dst}"]
            arg = x[src] if src == dst else (x[src], x[dst])
            per_dst.setdefault(dst, []).append(conv(arg, ei[(src, rel, dst)]))
        out = {}
        for t, outs in per_dst.items():
            stacked = torch.stack(outs)
            out[t] = {
                "sum": stacked.sum(0), "mean": stacked.mean(0), "max": stacked.max(0)[0],
                "min": stacked.min(0)[0], "mul": stacked.prod(0),
            }[aggr]  # fmt: skip
        x = {t: h.relu() for t, h in out.items()} if layer == "conv1" else out
    return out


@pytest.mark.parametrize("aggr", ["sum", "mean", "max", "min", "mul"])
def test_aggregation_against_the_formula(aggr, graph, metadata, close):
    data = graph()
    model = to_hetero(two_layer_sage(_ours()), metadata, aggr=aggr).double()
    out = model(data["x"], data["edge_index"])
    close(out, _manual_sage(model, data["x"], data["edge_index"], metadata, aggr))


def test_module_dict_keys_and_per_type_copies(metadata):
    model = to_hetero(skip_and_linear(_ours()), metadata)
    assert sorted(model.conv1.keys()) == sorted(f"{s}__{r}__{d}" for s, r, d in metadata[1])
    assert sorted(model.lin_in.keys()) == ["author", "paper"]
    # the copies are independent and re-initialized
    w = [model.lin_out[t].weight for t in ("paper", "author")]
    assert w[0] is not w[1] and not torch.equal(w[0], w[1])


def test_lazy_channels_are_inferred_per_type(graph, metadata):
    data = graph()
    model = to_hetero(two_layer_sage(_ours()), metadata).double()
    model(data["x"], data["edge_index"])
    assert model.conv1["author__writes__paper"].lin_l.weight.shape == (8, 3)
    assert model.conv1["author__writes__paper"].lin_r.weight.shape == (8, 5)
    assert model.conv1["paper__rev_writes__author"].lin_l.weight.shape == (8, 5)


def test_nested_module_with_message_passing_is_rewritten_inside(graph, metadata, close):
    class Block(torch.nn.Module):
        def __init__(self, channels):
            super().__init__()
            self.conv = C.SAGEConv((-1, -1), channels)
            self.lin = Linear(-1, channels)

        def forward(self, x, edge_index):
            return self.conv(x, edge_index).relu() + self.lin(x)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.block = Block(6)
            self.convs = torch.nn.ModuleList([C.SAGEConv((6, 6), 6), C.SAGEConv((6, 6), 3)])

        def forward(self, x, edge_index):
            x = self.block(x, edge_index)
            for conv in self.convs:
                x = conv(x, edge_index)
            return x

    data = graph()
    x, ei = data["x"], data["edge_index"]
    model = to_hetero(Net(), metadata).double()
    out = model(x, ei)
    assert "block.conv.paper__cites__paper.lin_l.weight" in model.state_dict()
    assert "convs.1.author__knows__author.lin_l.weight" in model.state_dict()

    def rel(layer, src, rel_, dst, h):
        return layer[f"{src}__{rel_}__{dst}"](
            h[src] if src == dst else (h[src], h[dst]), ei[(src, rel_, dst)]
        )

    h = {}
    for t in metadata[0]:
        msgs = sum(rel(model.block.conv, *e, x) for e in metadata[1] if e[2] == t)
        h[t] = msgs.relu() + model.block.lin[t](x[t])
    for layer in model.convs:
        h = {t: sum(rel(layer, *e, h) for e in metadata[1] if e[2] == t) for t in metadata[0]}
    close(out, h)


def test_functions_methods_and_graph_level_values(graph, metadata):
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = C.SAGEConv((-1, -1), 4)
            self.scale = torch.nn.Parameter(torch.tensor(2.0))  # read directly: shared by all types

        def forward(self, x, edge_index):
            h = self.conv(x, edge_index)
            h = operator.mul(h, self.scale).view(-1, 2, 2).sum(dim=1)
            return torch.sigmoid(h), 7

    data = graph()
    model = to_hetero(Net(), metadata).double()
    out, seven = model(data["x"], data["edge_index"])
    assert seven == 7
    assert set(out) == {"paper", "author"} and out["paper"].shape == (9, 2)
    assert "scale" in model.state_dict()


def test_accepts_heterodata_and_its_metadata(graph):
    data = HeteroData()
    g = graph()
    for t, x in g["x"].items():
        data[t].x = x
    for e, ei in g["edge_index"].items():
        data[e].edge_index = ei
    a = to_hetero(two_layer_sage(_ours()), data.metadata())
    b = to_hetero(two_layer_sage(_ours()), data)  # the object itself: its metadata()
    out = a.double()(data.x_dict, data.edge_index_dict)
    assert set(out) == {"paper", "author"}
    assert sorted(b.state_dict()) == sorted(a.state_dict())


def test_input_map_overrides_levels(graph, metadata):
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = C.SAGEConv((-1, -1), 4)

        def forward(self, feats, graph):
            return self.conv(feats, graph)

    data = graph()
    model = to_hetero(Net(), metadata, input_map={"feats": "node", "graph": "edge"}).double()
    assert set(model(data["x"], data["edge_index"])) == {"paper", "author"}
    with pytest.raises(ValueError, match="input_map"):
        to_hetero(Net(), metadata, input_map={"x": "node"})
    with pytest.raises(ValueError, match="input_map"):
        to_hetero(Net(), metadata, input_map={"feats": "nodes"})


# -- missing, isolated and empty types --------------------------------------------------------------
def test_missing_node_type_in_input_names_it(graph, metadata):
    data = graph()
    model = to_hetero(two_layer_sage(_ours()), metadata).double()
    x = {"paper": data["x"]["paper"]}
    with pytest.raises(ValueError, match="'x'.*node type 'author'"):
        model(x, data["edge_index"])


def test_missing_edge_type_in_input_names_it(graph, metadata):
    data = graph()
    model = to_hetero(two_layer_sage(_ours()), metadata).double()
    ei = dict(data["edge_index"])
    del ei[("author", "writes", "paper")]
    with pytest.raises(ValueError, match=r"'edge_index'.*edge type \('author', 'writes', 'paper'\)"):
        model(data["x"], ei)


def test_input_that_is_not_a_dict_is_named(graph, metadata):
    data = graph()
    model = to_hetero(two_layer_sage(_ours()), metadata)
    with pytest.raises(TypeError, match="'x' must be a dict"):
        model(data["x"]["paper"], data["edge_index"])


def test_partial_edge_attr_dict_gives_none_for_missing_types(graph, metadata):
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = C.GATConv((-1, -1), 4, edge_dim=2, add_self_loops=False)

        def forward(self, x, edge_index, edge_attr=None):
            return self.conv(x, edge_index, edge_attr)

    data = graph(edge_dim=2)
    model = to_hetero(Net(), metadata).double()
    partial = {("paper", "cites", "paper"): data["edge_attr"][("paper", "cites", "paper")]}
    out = model(data["x"], data["edge_index"], partial)
    assert out["paper"].shape == (9, 4)
    assert set(model(data["x"], data["edge_index"])) == {"paper", "author"}  # the dict omitted


def test_empty_edge_type_and_empty_node_type(metadata, graph, parity, close):
    pyg = pytest.importorskip("torch_geometric.nn")
    data = graph(sizes={"paper": 9, "author": 0})  # no authors: their edge types are empty
    assert data["edge_index"][("author", "writes", "paper")].shape == (2, 0)
    ours = to_hetero(two_layer_sage(_ours()), metadata)
    theirs = pyg.to_hetero(two_layer_sage(_pyg()), metadata)
    a, b = parity(ours, theirs, data["x"], data["edge_index"])
    close(a, b)
    assert a["author"].shape == (0, 4)


def test_node_type_without_incoming_edges(graph):
    metadata = (["paper", "author"], [("author", "writes", "paper"), ("paper", "cites", "paper")])
    with pytest.warns(UserWarning, match="author"):
        one = to_hetero(_one_layer(), metadata)
    data = graph(edge_types=metadata[1])
    out = one.double()(data["x"], data["edge_index"])
    assert out["author"] is None and out["paper"].shape == (9, 4)  # as PyG: no representation
    with pytest.warns(UserWarning), pytest.raises(ValueError, match="node type 'author'.*destination"):
        to_hetero(two_layer_sage(_ours()), metadata)


def _one_layer() -> torch.nn.Module:
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = C.SAGEConv((-1, -1), 4)

        def forward(self, x, edge_index):
            return self.conv(x, edge_index)

    return Net()


def test_isolated_node_type_in_metadata(graph):
    metadata = (["paper", "author", "venue"], [("paper", "cites", "paper"), ("author", "writes", "paper")])
    with pytest.warns(UserWarning, match="venue"):
        model = to_hetero(_one_layer(), metadata)
    data = graph(edge_types=metadata[1])
    x = dict(data["x"], venue=torch.randn(2, 3, dtype=torch.float64))
    out = model.double()(x, data["edge_index"])
    assert out["venue"] is None and out["author"] is None


# -- construction errors --------------------------------------------------------------------------
def test_bad_arguments(metadata):
    with pytest.raises(ValueError, match="aggr"):
        to_hetero(two_layer_sage(_ours()), metadata, aggr="median")
    with pytest.raises(TypeError, match="metadata"):
        to_hetero(two_layer_sage(_ours()), ["paper"])
    with pytest.raises(ValueError, match="'venue'"):
        to_hetero(two_layer_sage(_ours()), (["paper"], [("paper", "at", "venue")]))
    with pytest.raises(ValueError, match="at least one"):
        to_hetero(two_layer_sage(_ours()), (["paper"], []))
    with pytest.raises(TypeError, match="module"):
        to_hetero("not a model", metadata)


def test_self_loops_on_bipartite_edge_types_are_refused(metadata):
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = C.GATConv((-1, -1), 4)  # add_self_loops=True

        def forward(self, x, edge_index):
            return self.conv(x, edge_index)

    with pytest.raises(ValueError, match="add_self_loops"):
        to_hetero(Net(), metadata)


def test_data_dependent_control_flow_gives_a_clear_error(metadata):
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = C.SAGEConv((-1, -1), 4)

        def forward(self, x, edge_index):
            if x.sum() > 0:
                x = x + 1
            return self.conv(x, edge_index)

    with pytest.raises(RuntimeError, match="control flow"):
        to_hetero(Net(), metadata)


def test_invalid_type_names_warn():
    with pytest.warns(UserWarning, match="invalid characters"):
        to_hetero(_one_layer(), (["pa-per"], [("pa-per", "cites", "pa-per")]))
