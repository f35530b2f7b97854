"""Tests of gnn.core.Data: attribute store, sizes, batching contract, validation."""

import copy
import pickle

import pytest
import torch

from gnn.core import Data
from gnn.core.data import Storage


def _graph():
    x = torch.arange(12, dtype=torch.float32).view(4, 3)
    edge_index = torch.tensor([[0, 1, 1, 2, 3], [1, 0, 2, 1, 3]])
    edge_attr = torch.arange(10, dtype=torch.float32).view(5, 2)
    return Data(x=x, edge_index=edge_index, edge_attr=edge_attr, y=torch.tensor([1]))


def test_attribute_access():
    data = _graph()
    assert data.x is data["x"]
    assert "x" in data and "pos" not in data
    assert data.keys() == ["x", "edge_index", "edge_attr", "y"]
    assert [k for k, _ in data.items()] == data.keys()
    assert [k for k, _ in data] == data.keys()
    assert len(data) == 4
    data.name = "g"
    data["weight"] = torch.ones(5)
    assert data.name == "g" and data["weight"].sum().item() == 5.0
    # unset well-known attributes read as None, others raise
    assert data.pos is None and data.batch is None and data.edge_weight is None
    with pytest.raises(AttributeError, match="foo"):
        _ = data.foo
    # setting None removes
    data.name = None
    assert "name" not in data
    del data["weight"]
    assert "weight" not in data
    with pytest.raises(TypeError, match="name"):
        data[0] = 1


def test_sizes():
    data = _graph()
    assert (data.num_nodes, data.num_edges) == (4, 5)
    assert data.num_node_features == 3 and data.num_features == 3
    assert data.num_edge_features == 2
    assert Data(pos=torch.zeros(7, 3)).num_nodes == 7
    assert Data(edge_index=torch.tensor([[0, 5], [1, 2]])).num_nodes == 6
    assert Data(edge_index=torch.zeros(2, 0, dtype=torch.long)).num_nodes == 0
    assert Data().num_nodes is None and Data().num_edges == 0 and Data().num_node_features == 0
    assert Data(x=torch.zeros(5)).num_node_features == 1
    assert Data(edge_attr=torch.zeros(3)).num_edge_features == 1
    explicit = Data(x=torch.zeros(3, 1), num_nodes=8)
    assert explicit.num_nodes == 8 and explicit.keys() == ["x", "num_nodes"]
    explicit.num_nodes = 2
    assert explicit["num_nodes"] == 2


def test_inc_and_cat_dim():
    data = _graph()
    data.face = torch.tensor([[0], [1], [2]])
    data.batch = torch.tensor([0, 0, 2, 1])
    assert data.__inc__("edge_index", data.edge_index) == 4
    assert data.__inc__("face", data.face) == 4
    assert data.__inc__("my_index", None) == 4
    assert data.__inc__("x", data.x) == 0
    assert data.__inc__("batch", data.batch) == 3
    assert data.__cat_dim__("edge_index", data.edge_index) == -1
    assert data.__cat_dim__("face", data.face) == -1
    assert data.__cat_dim__("x", data.x) == 0
    assert data.__cat_dim__("edge_attr", data.edge_attr) == 0


def test_matches_pyg_data():
    pyg = pytest.importorskip("torch_geometric.data")
    torch.manual_seed(0)
    for n, e in [(5, 8), (1, 0), (12, 30)]:
        kwargs = dict(
            x=torch.randn(n, 3),
            edge_index=torch.randint(0, n, (2, e)),
            edge_attr=torch.randn(e, 4),
            y=torch.tensor([2]),
            pos=torch.randn(n, 2),
        )
        ours, theirs = Data(**kwargs), pyg.Data(**kwargs)
        assert ours.keys() == [k for k in ["x", "edge_index", "edge_attr", "y", "pos"]]
        assert set(ours.keys()) == set(theirs.keys())
        assert ours.num_nodes == theirs.num_nodes
        assert ours.num_edges == theirs.num_edges
        assert ours.num_node_features == theirs.num_node_features
        assert ours.num_edge_features == theirs.num_edge_features
        for key in kwargs:
            assert ours.__inc__(key, kwargs[key]) == theirs.__inc__(key, kwargs[key])
            assert ours.__cat_dim__(key, kwargs[key]) == theirs.__cat_dim__(key, kwargs[key])
        assert ours.is_undirected() == theirs.is_undirected()
        assert ours.has_self_loops() == theirs.has_self_loops()
        assert ours.has_isolated_nodes() == theirs.has_isolated_nodes()
        assert repr(ours) == repr(theirs)


def test_repr():
    data = _graph()
    assert repr(data) == "Data(x=[4, 3], edge_index=[2, 5], edge_attr=[5, 2], y=[1])"
    data.name, data.k, data.t = "g", 3, torch.tensor(1.0)
    assert repr(data).endswith("name='g', k=3, t=[])")
    assert repr(Data()) == "Data()"
    nested = Data(x=torch.zeros(2, 2), meta={"a": torch.zeros(3), "b": 1})
    assert repr(nested) == "Data(\n  x=[2, 2],\n  meta={\n    a=[3],\n    b=1,\n  }\n)"


def test_validate_accepts_good_graph():
    assert _graph().validate() is True
    assert Data().validate() is True


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(edge_index=torch.tensor([0, 1, 2])), ValueError, "edge_index"),
        (dict(edge_index=torch.zeros(3, 4, dtype=torch.long)), ValueError, "edge_index"),
        (dict(edge_index=torch.zeros(2, 4)), TypeError, "edge_index"),
        (dict(x=torch.zeros(3, 2), edge_index=torch.tensor([[0, 1], [1, 3]])), ValueError, "edge_index"),
        (dict(x=torch.zeros(3, 2), edge_index=torch.tensor([[0, -1], [1, 2]])), ValueError, "edge_index"),
        (dict(x=torch.zeros(3, 2), pos=torch.zeros(4, 3)), ValueError, "pos"),
        (dict(x=torch.zeros(3, 2), num_nodes=5), ValueError, "num_nodes"),
        (
            dict(x=torch.zeros(3, 2), edge_index=torch.tensor([[0], [1]]), edge_attr=torch.zeros(2, 1)),
            ValueError,
            "edge_attr",
        ),
        (dict(x=[1, 2, 3]), TypeError, "'x'"),
    ],
)
def test_validate_rejects(kwargs, error, match):
    data = Data(**kwargs)
    with pytest.raises(error, match=match):
        data.validate()
    assert data.validate(raise_on_error=False) is False


def test_graph_properties_against_loops():
    gen = torch.Generator().manual_seed(3)
    for trial in range(20):
        n = 6
        edge_index = torch.randint(0, n, (2, int(torch.randint(0, 12, (1,), generator=gen))), generator=gen)
        if trial % 2:
            edge_index = torch.cat([edge_index, edge_index.flip(0)], 1)
        pairs = set(map(tuple, edge_index.t().tolist()))
        data = Data(edge_index=edge_index, num_nodes=n)
        assert data.is_undirected() == all((j, i) in pairs for i, j in pairs)
        assert data.is_directed() != data.is_undirected()
        assert data.has_self_loops() == any(i == j for i, j in pairs)
        touched = {i for i, j in pairs if i != j} | {j for i, j in pairs if i != j}
        assert data.has_isolated_nodes() == (len(touched) < n)


def test_to_clone_apply_copy():
    data = _graph()
    data.meta = {"w": torch.ones(2)}
    assert data.to("cpu") is data and data.cpu() is data
    clone = data.clone()
    clone.x[0, 0] = 100.0
    clone.meta["w"][0] = 5.0
    assert data.x[0, 0] == 0.0 and data.meta["w"][0] == 1.0
    shallow = copy.copy(data)
    shallow.z = torch.zeros(1)
    assert "z" not in data and shallow.x is data.x
    deep = copy.deepcopy(data)
    assert deep.x is not data.x and torch.equal(deep.x, data.x)
    doubled = data.clone().apply(lambda t: t * 2, "x", "meta")
    assert torch.equal(doubled.x, data.x * 2) and torch.equal(doubled.meta["w"], torch.full((2,), 2.0))
    assert torch.equal(doubled.edge_index, data.edge_index)
    as64 = data.clone().apply(lambda t: t.double() if t.is_floating_point() else t)
    assert as64.x.dtype == torch.float64 and as64.edge_index.dtype == torch.long
    restored = pickle.loads(pickle.dumps(data))
    assert restored.keys() == data.keys() and torch.equal(restored.x, data.x)


def test_storage_and_update():
    store = Storage(x=torch.ones(2))
    store.y = 3
    assert store.keys() == ["x", "y"] and store["y"] == 3 and "x" in store
    with pytest.raises(AttributeError, match="z"):
        _ = store.z
    data = Data.from_dict({"x": torch.zeros(2, 1), "k": 4})
    data.update({"k": 5, "m": "a"})
    assert data.k == 5 and data.m == "a" and data.to_dict().keys() == {"x", "k", "m"}
