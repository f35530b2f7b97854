"""Tests of gnn.core.Batch: collation numbers, round trips, PyG parity, errors."""

import copy
import pickle

import pytest
import torch

from gnn.core import Batch, Data


def _random_graphs(num_graphs=4, seed=0, dtype=torch.long):
    gen = torch.Generator().manual_seed(seed)
    graphs = []
    for g in range(num_graphs):
        n = int(torch.randint(1, 7, (1,), generator=gen))
        e = int(torch.randint(0, 10, (1,), generator=gen))
        graphs.append(
            Data(
                x=torch.randn(n, 3, generator=gen),
                edge_index=torch.randint(0, n, (2, e), generator=gen).to(dtype),
                edge_attr=torch.randn(e, 2, generator=gen),
                y=torch.tensor([g % 2]),
                pos=torch.randn(n, 2, generator=gen),
            )
        )
    return graphs


def _assert_same_data(a, b, ordered=True):
    assert type(a) is type(b)
    assert a.keys() == b.keys() if ordered else sorted(a.keys()) == sorted(b.keys())
    for key in a.keys():
        va, vb = a[key], b[key]
        if isinstance(va, torch.Tensor):
            assert va.dtype == vb.dtype and va.shape == vb.shape, key
            assert torch.equal(va, vb), key
        else:
            assert type(va) is type(vb) and va == vb, key


def test_collation_against_loop_reference():
    graphs = _random_graphs(5)
    batch = Batch.from_data_list(graphs)
    offset, rows, cols, batch_vec, ptr = 0, [], [], [], [0]
    for g, data in enumerate(graphs):
        for i, j in data.edge_index.t().tolist():
            rows.append(i + offset)
            cols.append(j + offset)
        batch_vec += [g] * data.num_nodes
        offset += data.num_nodes
        ptr.append(offset)
    assert batch.edge_index.tolist() == [rows, cols]
    assert batch.batch.tolist() == batch_vec and batch.ptr.tolist() == ptr
    assert torch.equal(batch.x, torch.cat([d.x for d in graphs]))
    assert torch.equal(batch.edge_attr, torch.cat([d.edge_attr for d in graphs]))
    assert batch.y.tolist() == [g % 2 for g in range(5)]
    assert batch.num_graphs == 5 == len(batch) == batch.batch_size
    assert batch.num_nodes == offset and batch.num_edges == len(rows)
    assert isinstance(batch, Batch) and isinstance(batch, Data)
    assert repr(batch).startswith("DataBatch(x=[")
    assert batch.validate()


def test_matches_pyg_batch():
    pyg = pytest.importorskip("torch_geometric.data")
    graphs = _random_graphs(6, seed=1)
    theirs_in = [pyg.Data(**d.to_dict()) for d in graphs]
    ours = Batch.from_data_list(graphs, follow_batch=["edge_attr", "y"])
    theirs = pyg.Batch.from_data_list(theirs_in, follow_batch=["edge_attr", "y"])
    assert set(ours.keys()) == set(theirs.keys())
    for key in theirs.keys():
        assert torch.equal(ours[key], theirs[key]), key
    assert ours.num_graphs == theirs.num_graphs
    assert repr(ours) == repr(theirs)
    # PyG objects (alone or mixed with ours) collate to the same tensors
    for mixed in (theirs_in, [graphs[0], *theirs_in[1:3], graphs[3], *theirs_in[4:]]):
        again = Batch.from_data_list(mixed, follow_batch=["edge_attr", "y"])
        assert type(again).__name__ == "DataBatch"
        for key in theirs.keys():
            assert torch.equal(again[key], theirs[key]), key
        for got, want in zip(again.to_data_list(), graphs):
            _assert_same_data(got, want, ordered=False)


def test_round_trip_exact():
    graphs = _random_graphs(4, seed=2, dtype=torch.int32)
    for g, data in enumerate(graphs):
        data.name = f"graph{g}"
        data.count = g * 10
        data.ratio = g / 4
        data.flag = bool(g % 2)
        data.scalar = torch.tensor(float(g))
        data.face = torch.randint(0, data.num_nodes, (3, 2), dtype=torch.long)
        data.meta = {"g": g}
    batch = Batch.from_data_list(graphs)
    assert batch.edge_index.dtype == torch.int32
    assert batch.name == [f"graph{g}" for g in range(4)]
    assert batch.count.tolist() == [0, 10, 20, 30]
    assert batch.scalar.tolist() == [0.0, 1.0, 2.0, 3.0]
    offsets = batch.ptr[:-1].tolist()
    assert torch.equal(batch.face, torch.cat([d.face + o for d, o in zip(graphs, offsets)], dim=1))
    for got, want in zip(batch.to_data_list(), graphs):
        _assert_same_data(got, want)
    for g in range(4):
        _assert_same_data(batch.get_example(g), graphs[g])
        _assert_same_data(batch[g], graphs[g])
        _assert_same_data(batch[g - 4], graphs[g])


def test_follow_batch_and_exclude_keys():
    graphs = _random_graphs(3, seed=4)
    for data in graphs:
        data.extra = torch.ones(2)
    batch = Batch.from_data_list(graphs, follow_batch=["edge_attr", "extra"], exclude_keys=["pos"])
    assert "pos" not in batch
    sizes = [d.num_edges for d in graphs]
    assert batch.edge_attr_batch.tolist() == sum(([g] * s for g, s in enumerate(sizes)), [])
    assert batch.edge_attr_ptr.tolist() == [0, sizes[0], sizes[0] + sizes[1], sum(sizes)]
    assert batch.extra_batch.tolist() == [0, 0, 1, 1, 2, 2]
    assert "x_batch" not in batch
    for got, want in zip(batch.to_data_list(), graphs):
        assert "pos" not in got and "extra_batch" not in got and "batch" not in got
        assert torch.equal(got.extra, want.extra)


def test_explicit_num_nodes_summed_and_restored():
    a = Data(edge_index=torch.zeros(2, 0, dtype=torch.long), num_nodes=3)
    b = Data(edge_index=torch.tensor([[0], [1]]), num_nodes=4)
    batch = Batch.from_data_list([a, b])
    assert batch.num_nodes == 7 and batch.ptr.tolist() == [0, 3, 7]
    assert batch.edge_index.tolist() == [[3], [4]]
    assert [d.num_nodes for d in batch.to_data_list()] == [3, 4]


class PairData(Data):
    """Two graphs per example: 's' and 't' index their own node sets; 'label' is stacked."""

    def __inc__(self, key, value, *args, **kwargs):
        if key == "edge_index_s":
            return self.x_s.size(0)
        if key == "edge_index_t":
            return self.x_t.size(0)
        return super().__inc__(key, value, *args, **kwargs)

    def __cat_dim__(self, key, value, *args, **kwargs):
        if key == "label":
            return None
        return super().__cat_dim__(key, value, *args, **kwargs)


def test_custom_subclass_inc_and_cat_dim():
    pairs = []
    for n_s, n_t in [(2, 3), (4, 1), (3, 3)]:
        pairs.append(
            PairData(
                x_s=torch.randn(n_s, 2),
                edge_index_s=torch.tensor([[0, n_s - 1], [n_s - 1, 0]]),
                x_t=torch.randn(n_t, 2),
                edge_index_t=torch.tensor([[n_t - 1], [0]]),
                label=torch.tensor([1.0, float(n_s)]),
            )
        )
    batch = Batch.from_data_list(pairs, follow_batch=["x_s", "x_t"])
    assert isinstance(batch, PairData) and type(batch).__name__ == "PairDataBatch"
    assert batch.edge_index_s.tolist() == [[0, 1, 2, 5, 6, 8], [1, 0, 5, 2, 8, 6]]
    assert batch.edge_index_t.tolist() == [[2, 3, 6], [0, 3, 4]]
    assert batch.label.shape == (3, 2) and batch.label[:, 1].tolist() == [2.0, 4.0, 3.0]
    assert batch.x_s_batch.tolist() == [0, 0, 1, 1, 1, 1, 2, 2, 2]
    assert batch.x_t_ptr.tolist() == [0, 3, 4, 7]
    for got, want in zip(batch.to_data_list(), pairs):
        _assert_same_data(got, want)
    restored = pickle.loads(pickle.dumps(batch))
    assert type(restored) is type(batch)
    _assert_same_data(restored.get_example(1), pairs[1])
    pyg = pytest.importorskip("torch_geometric.data")

    class PygPair(pyg.Data):
        def __inc__(self, key, value, *args, **kwargs):
            if key in ("edge_index_s", "edge_index_t"):
                return self[f"x_{key[-1]}"].size(0)
            return super().__inc__(key, value, *args, **kwargs)

        def __cat_dim__(self, key, value, *args, **kwargs):
            return None if key == "label" else super().__cat_dim__(key, value, *args, **kwargs)

    theirs = pyg.Batch.from_data_list([PygPair(**p.to_dict()) for p in pairs], follow_batch=["x_s", "x_t"])
    for key in theirs.keys():
        assert torch.equal(batch[key], theirs[key]), key


def test_index_select_and_getitem():
    graphs = _random_graphs(5, seed=5)
    batch = Batch.from_data_list(graphs)

    def same(selected, indices):
        assert len(selected) == len(indices)
        for got, i in zip(selected, indices):
            _assert_same_data(got, graphs[i])

    same(batch[1:4], [1, 2, 3])
    same(batch[::-2], [4, 2, 0])
    same(batch[[3, 0, 3]], [3, 0, 3])
    same(batch[torch.tensor([4, 1])], [4, 1])
    same(batch[torch.tensor([True, False, True, False, False])], [0, 2])
    same(batch.index_select([-1]), [4])
    _assert_same_data(batch[torch.tensor(2)], graphs[2])
    assert torch.equal(batch["x"], batch.x)
    with pytest.raises(IndexError, match="idx"):
        batch.get_example(5)
    with pytest.raises(TypeError, match="idx"):
        batch.index_select(torch.tensor([0.5]))
    with pytest.raises(ValueError, match="idx"):
        batch.index_select(torch.tensor([True, False]))
    with pytest.raises(TypeError, match="idx"):
        batch.index_select(3.5)


def test_numpy_indices():
    np = pytest.importorskip("numpy")
    graphs = _random_graphs(5, seed=6)
    batch = Batch.from_data_list(graphs)
    _assert_same_data(batch[np.int64(3)], graphs[3])
    selected = batch[np.array([0, 4])]
    assert len(selected) == 2
    _assert_same_data(selected[0], graphs[0])
    _assert_same_data(selected[1], graphs[4])


def test_stack_scalars_and_copies():
    graphs = [Data(x=torch.ones(2, 1) * g, t=torch.tensor(g)) for g in range(3)]
    batch = Batch.from_data_list(graphs)
    assert batch.t.tolist() == [0, 1, 2] and batch.t.shape == (3,)
    moved = copy.deepcopy(batch).to("cpu")
    assert moved[2].t.dim() == 0 and int(moved[2].t) == 2
    shallow = copy.copy(batch)
    _assert_same_data(shallow[1], graphs[1])


def test_direct_construction():
    batch = Batch(x=torch.zeros(4, 1), batch=torch.tensor([0, 0, 1, 2]))
    assert type(batch).__name__ == "DataBatch" and batch.num_graphs == 3
    with pytest.raises(RuntimeError, match="from_data_list"):
        batch.get_example(0)
    assert len(Batch()) == 0


def test_bad_input():
    with pytest.raises(ValueError, match="data_list"):
        Batch.from_data_list([])
    with pytest.raises(TypeError, match="data_list"):
        Batch.from_data_list(Data(x=torch.zeros(1, 1)))
    with pytest.raises(TypeError, match=r"data_list\[1\]"):
        Batch.from_data_list([Data(x=torch.zeros(1, 1)), torch.zeros(3)])
    with pytest.raises(ValueError, match=r"data_list\[1\].*'y'"):
        Batch.from_data_list([Data(x=torch.zeros(1, 1), y=torch.ones(1)), Data(x=torch.zeros(1, 1))])
    with pytest.raises(ValueError, match="'x'"):
        Batch.from_data_list([Data(x=torch.zeros(1, 1)), Data(x=torch.zeros(1, 2))])
    with pytest.raises(ValueError, match="'k'.*data_list\\[1\\]"):
        Batch.from_data_list([Data(x=torch.zeros(1, 1), k=1), Data(x=torch.zeros(1, 1), k="a")])
    with pytest.raises(ValueError, match="follow_batch"):
        Batch.from_data_list([Data(x=torch.zeros(1, 1))], follow_batch=["nope"])
    with pytest.raises(TypeError, match="exclude_keys"):
        Batch.from_data_list([Data(x=torch.zeros(1, 1))], exclude_keys=[1])
