"""Tests of gnn.core.HeteroData and batching of heterogeneous graphs."""

import copy
import pickle

import pytest
import torch

from gnn.core import Batch, HeteroData

WRITES = ("author", "writes", "paper")
CITES = ("paper", "cites", "paper")


def _hetero(n_paper=3, n_author=2, seed=0):
    gen = torch.Generator().manual_seed(seed)
    data = HeteroData()
    data["paper"].x = torch.randn(n_paper, 4, generator=gen)
    data["paper"].y = torch.randint(0, 3, (n_paper,), generator=gen)
    data["author"].x = torch.randn(n_author, 2, generator=gen)
    e = 2 * n_author
    data[WRITES].edge_index = torch.stack(
        [torch.randint(0, n_author, (e,), generator=gen), torch.randint(0, n_paper, (e,), generator=gen)]
    )
    data[WRITES].edge_attr = torch.randn(e, 3, generator=gen)
    data[CITES].edge_index = torch.randint(0, n_paper, (2, n_paper), generator=gen)
    data.label = torch.tensor([seed])
    return data


def test_stores_and_lookup():
    data = _hetero()
    assert data["paper"].x.shape == (3, 4)
    assert data["writes"] is data[WRITES]
    assert data["author", "paper"] is data[WRITES]
    assert data.node_types == ["paper", "author"]
    assert data.edge_types == [WRITES, CITES]
    assert data.metadata() == (["paper", "author"], [WRITES, CITES])
    assert data["label"].tolist() == [0] and data.label.tolist() == [0]
    assert "paper" in data and WRITES in data and "label" in data and "venue" not in data
    assert data[WRITES].edge_type == WRITES and data["paper"].node_type == "paper"
    data["paper", "refs", "paper"].edge_index = torch.tensor([[0], [1]])
    with pytest.raises(ValueError, match="ambiguous"):
        data["paper", "paper"]
    with pytest.raises(TypeError, match="edge type"):
        data["a", 1, "b"]
    with pytest.raises(TypeError, match="indexed"):
        data[0]


def test_dicts_and_sizes():
    data = _hetero()
    assert list(data.x_dict) == ["paper", "author"]
    assert torch.equal(data.x_dict["author"], data["author"].x)
    assert list(data.edge_index_dict) == [WRITES, CITES]
    assert list(data.edge_attr_dict) == [WRITES]
    assert list(data.y_dict) == ["paper"]
    assert data.collect("edge_attr") == {WRITES: data[WRITES].edge_attr}
    assert data.pos_dict == {}
    with pytest.raises(KeyError, match="pos"):
        data.collect("pos")
    assert data.num_nodes == 5 and data.num_nodes_dict == {"paper": 3, "author": 2}
    assert data.num_edges == 4 + 3 and data.num_edges_dict == {WRITES: 4, CITES: 3}
    assert data.num_node_features == {"paper": 4, "author": 2}
    assert data.num_edge_features == {WRITES: 3, CITES: 0}
    assert sorted(data.keys()) == ["edge_attr", "edge_index", "label", "x", "y"]


def test_constructor_forms():
    x = torch.zeros(2, 1)
    ei = torch.tensor([[0], [1]])
    a = HeteroData({"paper": {"x": x}, WRITES: {"edge_index": ei}}, label=3)
    b = HeteroData(paper={"x": x}, author__writes__paper={"edge_index": ei}, label=3)
    for data in (a, b):
        assert data.metadata() == (["paper"], [WRITES]) and data.label == 3
        assert data["paper"].x is x and data[WRITES].edge_index is ei


def test_repr():
    data = _hetero()
    expected = (
        "HeteroData(\n"
        "  label=[1],\n"
        "  paper={\n    x=[3, 4],\n    y=[3],\n  },\n"
        "  author={ x=[2, 2] },\n"
        "  (author, writes, paper)={\n    edge_index=[2, 4],\n    edge_attr=[4, 3],\n  },\n"
        "  (paper, cites, paper)={ edge_index=[2, 3] }\n"
        ")"
    )
    assert repr(data) == expected
    assert repr(HeteroData()) == "HeteroData()"
    pyg = pytest.importorskip("torch_geometric.data")
    theirs = pyg.HeteroData()
    theirs.label = data.label
    for node_type in data.node_types:
        for key, value in data[node_type].items():
            theirs[node_type][key] = value
    for edge_type in data.edge_types:
        for key, value in data[edge_type].items():
            theirs[edge_type][key] = value
    assert repr(data) == repr(theirs)


def test_to_clone_copy_pickle():
    data = _hetero()
    assert data.to("cpu") is data
    clone = data.clone()
    clone["paper"].x[0, 0] = 123.0
    assert data["paper"].x[0, 0] != 123.0
    shallow = copy.copy(data)
    shallow["paper"].z = torch.zeros(1)
    assert "z" not in data["paper"] and shallow["author"].x is data["author"].x
    halved = data.clone().apply(lambda t: t / 2 if t.is_floating_point() else t)
    assert torch.equal(halved[WRITES].edge_attr, data[WRITES].edge_attr / 2)
    assert torch.equal(halved[WRITES].edge_index, data[WRITES].edge_index)
    restored = pickle.loads(pickle.dumps(data))
    assert restored.metadata() == data.metadata() and torch.equal(restored["paper"].x, data["paper"].x)


def test_validate():
    assert _hetero().validate()
    bad = _hetero()
    bad[WRITES].edge_index = torch.tensor([[0, 2], [0, 0]])  # only 2 authors
    with pytest.raises(ValueError, match=r"edge_index\[0\].*'author'"):
        bad.validate()
    bad = _hetero()
    bad[CITES].edge_index = torch.tensor([[0], [3]])
    with pytest.raises(ValueError, match=r"edge_index\[1\]"):
        bad.validate()
    bad = _hetero()
    bad[WRITES].edge_index = torch.zeros(3, 4, dtype=torch.long)
    with pytest.raises(ValueError, match="edge_index"):
        bad.validate()
    bad = _hetero()
    bad["venue", "hosts", "paper"].edge_index = torch.tensor([[0], [0]])
    with pytest.raises(ValueError, match="venue"):
        bad.validate()
    bad = _hetero()
    bad[WRITES].edge_attr = torch.zeros(1, 3)
    with pytest.raises(ValueError, match="edge_attr"):
        bad.validate()
    bad = _hetero()
    bad["paper"].pos = torch.zeros(5, 2)
    with pytest.raises(ValueError, match="paper.pos"):
        bad.validate()
    assert bad.validate(raise_on_error=False) is False
    # the same per-store checks as Data: num_nodes sign, edge_weight rows, the tensor type
    bad = _hetero()
    bad["venue"].num_nodes = -1
    with pytest.raises(ValueError, match="'venue.num_nodes' must be non-negative"):
        bad.validate()
    bad = _hetero()
    bad[WRITES].edge_weight = torch.ones(len(bad[WRITES].edge_index[0]) + 1)
    with pytest.raises(ValueError, match=r"'\('author', 'writes', 'paper'\).edge_weight' must have one row"):
        bad.validate()
    bad = _hetero()
    bad["author"].x = [[0.0]] * 2
    with pytest.raises(TypeError, match="author.x"):
        bad.validate()


def test_tensor_methods_are_shared_with_data():
    from gnn.core.data import Data
    from gnn.core.data.container import GraphContainer

    for cls in (Data, HeteroData):
        assert issubclass(cls, GraphContainer)
        for name in ("to", "cpu", "contiguous", "detach", "validate", "__deepcopy__"):
            assert name not in vars(cls), f"{cls.__name__}.{name} repeats GraphContainer's"
    data = _hetero()
    data["paper"].x.requires_grad_(True)
    x = data["paper"].x
    assert data.detach() is data and not data["paper"].x.requires_grad
    assert data.to("cpu", "x") is data and data.contiguous() is data and data.cpu() is data
    assert torch.equal(data["paper"].x, x.detach())
    deep = copy.deepcopy(data)
    assert torch.equal(deep["paper"].x, data["paper"].x) and deep["paper"].x is not data["paper"].x


def test_inc():
    data = _hetero()
    assert data.__inc__("edge_index", data[WRITES].edge_index, data[WRITES]).tolist() == [[2], [3]]
    assert data.__inc__("edge_index", data[CITES].edge_index, data[CITES]).tolist() == [[3], [3]]
    assert data.__inc__("x", data["paper"].x, data["paper"]) == 0
    assert data.__cat_dim__("edge_index", None, data[WRITES]) == -1


def test_batch_against_loop_reference():
    graphs = [_hetero(3, 2, 0), _hetero(1, 4, 1), _hetero(2, 1, 2)]
    batch = Batch.from_data_list(graphs, follow_batch=["edge_attr"])
    assert isinstance(batch, HeteroData) and type(batch).__name__ == "HeteroDataBatch"
    assert batch.num_graphs == 3 and batch.metadata() == graphs[0].metadata()
    for node_type in ("paper", "author"):
        counts = [g[node_type].num_nodes for g in graphs]
        assert batch[node_type].batch.tolist() == sum(([i] * c for i, c in enumerate(counts)), [])
        assert batch[node_type].ptr.tolist() == [0, counts[0], counts[0] + counts[1], sum(counts)]
        assert torch.equal(batch[node_type].x, torch.cat([g[node_type].x for g in graphs]))
    for src, rel, dst in (WRITES, CITES):
        rows, cols, off_src, off_dst = [], [], 0, 0
        for g in graphs:
            for i, j in g[src, rel, dst].edge_index.t().tolist():
                rows.append(i + off_src)
                cols.append(j + off_dst)
            off_src += g[src].num_nodes
            off_dst += g[dst].num_nodes
        assert batch[src, rel, dst].edge_index.tolist() == [rows, cols]
    assert torch.equal(batch["paper"].y, torch.cat([g["paper"].y for g in graphs]))
    assert torch.equal(batch[WRITES].edge_attr, torch.cat([g[WRITES].edge_attr for g in graphs]))
    assert batch[WRITES].edge_attr_batch.tolist() == [0] * 4 + [1] * 8 + [2] * 2
    assert batch.label.tolist() == [0, 1, 2]
    assert batch.validate()
    for got, want in zip(batch.to_data_list(), graphs):
        _assert_same_hetero(got, want)
    _assert_same_hetero(batch[-1], graphs[2])
    _assert_same_hetero(pickle.loads(pickle.dumps(batch))[1], graphs[1])


def _assert_same_hetero(a, b, check_global=True):
    assert type(a) is type(b)
    assert a.metadata() == b.metadata()
    stores = [(t, a[t], b[t]) for t in a.node_types + a.edge_types]
    if check_global:
        stores.append((None, a._global_store, b._global_store))
    for name, sa, sb in stores:
        assert sorted(sa.keys()) == sorted(sb.keys()), name
        for key in sa.keys():
            assert torch.equal(sa[key], sb[key]), (name, key)


def _to_pyg(pyg, data):
    out = pyg.HeteroData()
    for node_type in data.node_types:
        for key, value in data[node_type].items():
            out[node_type][key] = value
    for edge_type in data.edge_types:
        for key, value in data[edge_type].items():
            out[edge_type][key] = value
    return out


def test_batch_matches_pyg():
    pyg = pytest.importorskip("torch_geometric.data")
    graphs = [_hetero(3, 2, 0), _hetero(1, 4, 1), _hetero(2, 1, 2)]
    for data in graphs:
        del data["label"]
    theirs_in = [_to_pyg(pyg, g) for g in graphs]
    ours = Batch.from_data_list(graphs)
    theirs = pyg.Batch.from_data_list(theirs_in)
    assert repr(ours) == repr(theirs)
    for type_ in ours.node_types + ours.edge_types:
        assert sorted(ours[type_].keys()) == sorted(theirs[type_].keys())
        for key in theirs[type_].keys():
            assert torch.equal(ours[type_][key], theirs[type_][key]), (type_, key)
    # PyG HeteroData objects, alone or mixed with ours
    for mixed in (theirs_in, [graphs[0], theirs_in[1], graphs[2]]):
        again = Batch.from_data_list(mixed)
        assert type(again).__name__ == "HeteroDataBatch"
        for type_ in ours.node_types + ours.edge_types:
            for key in theirs[type_].keys():
                assert torch.equal(again[type_][key], theirs[type_][key]), (type_, key)
        for got, want in zip(again.to_data_list(), graphs):
            _assert_same_hetero(got, want)
    # graph-level attributes of PyG objects are collated too
    theirs_in[1].label = torch.tensor([7])
    graphs[0].label, graphs[2].label = torch.tensor([5]), torch.tensor([9])
    mixed = Batch.from_data_list([graphs[0], theirs_in[1], graphs[2]])
    assert mixed.label.tolist() == [5, 7, 9] and mixed[1].label.tolist() == [7]


def test_batch_bad_input():
    a, b = _hetero(), _hetero()
    b["venue"].x = torch.zeros(1, 1)
    with pytest.raises(ValueError, match=r"data_list\[1\].*venue"):
        Batch.from_data_list([a, b])
    b = _hetero()
    b["paper"].extra = torch.zeros(3)
    with pytest.raises(ValueError, match=r"data_list\[1\].*'paper'.*extra"):
        Batch.from_data_list([a, b])
    from gnn.core import Data

    with pytest.raises(TypeError, match="mixes"):
        Batch.from_data_list([a, Data(x=torch.zeros(1, 1))])
