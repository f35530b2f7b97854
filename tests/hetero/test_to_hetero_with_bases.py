"""to_hetero_with_bases against PyG (strict state_dict load, same outputs) and against the basis
formula written out; feature alignment, errors, and what PyG cannot do (per-head messages)."""

from __future__ import annotations

import warnings

import pytest
import torch

import gnn.conv as C
from gnn.core import Linear
from gnn.hetero import to_hetero_with_bases
from gnn.hetero.to_hetero_with_bases import HeteroBasisConv, LinearAlign


def _net(conv_cls, lin_cls, first_in):
    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = conv_cls(first_in, 8)
            self.conv2 = conv_cls(8, 8)
            self.lin = lin_cls(8, 3)

        def forward(self, x, edge_index):
            x = self.conv1(x, edge_index).relu()
            x = self.conv2(x, edge_index).relu()
            return self.lin(x)

    return Net()


@pytest.mark.parametrize("conv", ["SAGEConv", "GraphConv", "GINConv"])
@pytest.mark.parametrize("num_bases", [1, 3])
def test_matches_pyg_after_strict_load(conv, num_bases, graph, metadata, parity, close):
    pyg = pytest.importorskip("torch_geometric.nn")

    def build(lib, lin):
        if conv == "GINConv":
            return _net(lambda i, o: lib.GINConv(torch.nn.Linear(i, o)), lin, 16)
        return _net(getattr(lib, conv), lin, 16)

    data = graph()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = to_hetero_with_bases(build(C, Linear), metadata, num_bases, in_channels={"x": 16})
        theirs = pyg.to_hetero_with_bases(build(pyg, pyg.Linear), metadata, num_bases, in_channels={"x": 16})
    a, b = parity(ours, theirs, data["x"], data["edge_index"])
    assert isinstance(ours.conv1, HeteroBasisConv) and isinstance(ours.align_lin__x, LinearAlign)
    assert repr(ours.conv1) == repr(theirs.conv1) and repr(ours.align_lin__x) == repr(theirs.align_lin__x)
    close(a, b)


def test_the_basis_formula(graph, metadata, close):
    """out_v = sum_b conv_b with every message of an edge of type r scaled by a[b, r], written
    out with explicit per-edge messages."""
    data = graph()

    class One(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = C.GraphConv(4, 3, aggr="add")

        def forward(self, x, edge_index):
            return self.conv(x, edge_index)

    x = {"paper": data["x"]["paper"][:, :4], "author": torch.randn(6, 4, dtype=torch.float64)}
    model = to_hetero_with_bases(One(), metadata, num_bases=2).double()
    out = model(x, data["edge_index"])

    offsets = {"paper": 0, "author": 9}
    xs = torch.cat([x["paper"], x["author"]])
    expected = torch.zeros(15, 3, dtype=torch.float64)
    for conv in model.conv.convs:
        agg = torch.zeros(15, 4, dtype=torch.float64)
        for r, (src, rel, dst) in enumerate(metadata[1]):
            ei = data["edge_index"][(src, rel, dst)]
            weight = conv.edge_type_weight[0, r]
            agg.index_add_(0, ei[1] + offsets[dst], weight * xs[ei[0] + offsets[src]])
        expected += conv.lin_rel(agg) + conv.lin_root(xs)
    close(out, {"paper": expected[:9], "author": expected[9:]})


def test_per_head_messages_are_weighted_along_the_edge_dimension(graph, metadata):
    """GAT's messages are [E, H, C]; PyG's hook weighs dimension -2 (the heads) and fails, gnn
    weighs the layer's node dimension."""
    data = graph()

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = C.GATConv(16, 4, heads=2, add_self_loops=False)

        def forward(self, x, edge_index):
            return self.conv(x, edge_index)

    model = to_hetero_with_bases(Net(), metadata, num_bases=2, in_channels={"x": 16}).double()
    out = model(data["x"], data["edge_index"])
    assert out["paper"].shape == (9, 8) and out["author"].shape == (6, 8)
    # basis 0 weighs every message by 1, basis 1 by 0: the result is basis 0 on the whole graph
    # plus basis 1's bias
    with torch.no_grad():
        model.conv.convs[0].edge_type_weight.fill_(1.0)
        model.conv.convs[1].edge_type_weight.zero_()
    plain = C.GATConv(16, 4, heads=2, add_self_loops=False).double()
    state = {k: t for k, t in model.conv.convs[0].state_dict().items() if k != "edge_type_weight"}
    plain.load_state_dict(state)
    xs = torch.cat([model.align_lin__x.lins[t](data["x"][t]) for t in ("paper", "author")])
    offsets = {"paper": 0, "author": 9}
    ei = torch.cat(
        [e + torch.tensor([[offsets[s]], [offsets[d]]]) for (s, _, d), e in data["edge_index"].items()], dim=1
    )
    expected = plain(xs, ei) + model.conv.convs[1].bias
    out = model(data["x"], data["edge_index"])
    torch.testing.assert_close(torch.cat([out["paper"], out["author"]]), expected)


def test_edge_level_tensors_and_int32_edge_index(graph, metadata):
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = C.GATConv(5, 4, edge_dim=2, add_self_loops=False)

        def forward(self, x, edge_index, edge_attr):
            return self.conv(x, edge_index, edge_attr)

    data = graph(features={"paper": 5, "author": 5}, edge_dim=2)
    model = to_hetero_with_bases(Net(), metadata, num_bases=2).double()
    out = model(data["x"], data["edge_index"], data["edge_attr"])
    ei32 = {k: v.int() for k, v in data["edge_index"].items()}
    out32 = model(data["x"], ei32, data["edge_attr"])
    torch.testing.assert_close(out32["paper"], out["paper"])


def test_missing_types_and_bad_arguments(graph, metadata):
    data = graph(features={"paper": 5, "author": 5})
    model = to_hetero_with_bases(_net(C.SAGEConv, Linear, 5), metadata, num_bases=2).double()
    with pytest.raises(ValueError, match="'x'.*node type 'author'"):
        model({"paper": data["x"]["paper"]}, data["edge_index"])
    ei = dict(data["edge_index"])
    del ei[("paper", "cites", "paper")]
    with pytest.raises(ValueError, match=r"'edge_index'.*\('paper', 'cites', 'paper'\)"):
        model(data["x"], ei)
    with pytest.raises(ValueError, match="num_bases"):
        to_hetero_with_bases(_net(C.SAGEConv, Linear, 5), metadata, num_bases=0)
    with pytest.raises(ValueError, match="in_channels"):
        to_hetero_with_bases(_net(C.SAGEConv, Linear, 5), metadata, num_bases=2, in_channels={"h": 4})


def test_self_loops_raise_a_clear_error(graph, metadata):
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = C.GCNConv(5, 4)  # adds self loops: more messages than edges

        def forward(self, x, edge_index):
            return self.conv(x, edge_index)

    data = graph(features={"paper": 5, "author": 5})
    model = to_hetero_with_bases(Net(), metadata, num_bases=2).double()
    with pytest.raises(ValueError, match="self-loops"):
        model(data["x"], data["edge_index"])
