"""HeteroConv against PyG (every aggregation, keyword dicts, mixed layers) and against the
per-edge-type loop it stands for."""

from __future__ import annotations

import warnings

import pytest
import torch

import gnn.conv as C
from gnn.hetero import HeteroConv

AGGRS = ["sum", "mean", "min", "max", "cat", None]


def _convs(lib, metadata):
    return {
        metadata[1][0]: lib.GCNConv(-1, 4),
        metadata[1][1]: lib.SAGEConv((-1, -1), 4),
        metadata[1][2]: lib.GATConv((-1, -1), 4, add_self_loops=False),
        metadata[1][3]: lib.GraphConv(-1, 4),
    }


@pytest.mark.parametrize("aggr", AGGRS)
def test_matches_pyg(aggr, graph, metadata, parity, close):
    pyg = pytest.importorskip("torch_geometric.nn")
    data = graph()
    ours = HeteroConv(_convs(C, metadata), aggr=aggr)
    theirs = pyg.HeteroConv(_convs(pyg, metadata), aggr=aggr)
    assert repr(ours) == repr(theirs)
    assert sorted(ours.state_dict()) == sorted(theirs.state_dict())
    a, b = parity(ours, theirs, data["x"], data["edge_index"])
    close(a, b)


def test_keyword_dicts_match_pyg(graph, metadata, parity, close):
    pyg = pytest.importorskip("torch_geometric.nn")
    data = graph(edge_dim=3)

    def convs(lib):
        return {e: lib.GATConv((-1, -1), 4, edge_dim=3, add_self_loops=False) for e in metadata[1]}

    a, b = parity(
        HeteroConv(convs(C)), pyg.HeteroConv(convs(pyg)), data["x"], data["edge_index"],
        edge_attr_dict=data["edge_attr"],
    )  # fmt: skip
    close(a, b)


def test_is_the_per_edge_type_loop(graph, metadata, close):
    data = graph()
    conv = HeteroConv({e: C.SAGEConv((-1, -1), 4) for e in metadata[1]}, aggr="sum").double()
    out = conv(data["x"], data["edge_index"])
    expected: dict[str, torch.Tensor] = {}
    for (src, rel, dst), ei in data["edge_index"].items():
        layer = conv.convs[(src, rel, dst)]
        res = layer(data["x"][src] if src == dst else (data["x"][src], data["x"][dst]), ei)
        expected[dst] = expected[dst] + res if dst in expected else res
    close(out, expected)


def test_edge_types_without_input_are_skipped(graph, metadata):
    data = graph()
    conv = HeteroConv({e: C.SAGEConv((-1, -1), 4) for e in metadata[1]}).double()
    partial = {e: ei for e, ei in data["edge_index"].items() if e[2] == "paper"}
    assert set(conv(data["x"], partial)) == {"paper"}


def test_state_dict_keys_and_tuple_keys(metadata):
    conv = HeteroConv({e: C.SAGEConv(4, 4) for e in metadata[1]})
    assert "convs.<author___writes___paper>.lin_l.weight" in conv.state_dict()
    assert conv.convs[("author", "writes", "paper")] is conv.convs["<author___writes___paper>"]
    assert sorted(conv.convs.keys()) == sorted(metadata[1])


def test_errors(metadata, graph):
    data = graph()
    with pytest.raises(ValueError, match="add_self_loops"):
        HeteroConv({("author", "writes", "paper"): C.GATConv((-1, -1), 4)})
    with pytest.raises(ValueError, match="aggr"):
        HeteroConv({metadata[1][0]: C.SAGEConv(4, 4)}, aggr="median")
    with pytest.raises(TypeError, match="keys of 'convs'"):
        HeteroConv({"paper": C.SAGEConv(4, 4)})
    conv = HeteroConv({metadata[1][0]: C.SAGEConv(-1, 4)}).double()
    with pytest.raises(ValueError, match="_dict"):
        conv(data["x"], data["edge_index"], edge_attr=data["x"])
    with pytest.raises(TypeError, match="positional argument 0"):
        conv(data["x"]["paper"], data["edge_index"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        HeteroConv({("author", "writes", "paper"): C.SAGEConv(4, 4)})
    assert any("author" in str(w.message) for w in caught)
