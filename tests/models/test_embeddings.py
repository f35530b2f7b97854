"""Node2Vec, MetaPath2Vec and LightGCN against PyG (same samples, same seeds, strict state_dict)
and against references written here."""

from __future__ import annotations

import inspect
import sys
import types

import pytest
import torch

from gnn.core import testing
from gnn.models import LightGCN, MetaPath2Vec, Node2Vec
from gnn.models.lightgcn import BPRLoss


def params(fn):
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]


def ring_graph(n=12):
    src = torch.arange(n)
    dst = (src + 1) % n
    chords = torch.tensor([[0, 3, 5, 7], [6, 9, 11, 2]])
    ei = torch.cat([torch.stack([src, dst]), torch.stack([dst, src]), chords, chords.flip(0)], 1)
    return ei[:, torch.randperm(ei.size(1), generator=torch.Generator().manual_seed(0))]


# -- Node2Vec ----------------------------------------------------------------------------------
def test_node2vec_signatures_and_repr():
    pyg = pytest.importorskip("torch_geometric.nn")
    for name in ("__init__", "forward", "loader", "pos_sample", "neg_sample", "sample", "loss", "test"):
        assert params(getattr(Node2Vec, name)) == params(getattr(pyg.Node2Vec, name)), name
    model = Node2Vec(ring_graph(), 16, walk_length=5, context_size=3)
    assert repr(model) == "Node2Vec(12, 16)"
    assert list(model.state_dict()) == ["embedding.weight"]


def test_node2vec_csr_matches_pyg_sorting():
    pytest.importorskip("torch_geometric")
    from torch_geometric.index import index2ptr
    from torch_geometric.utils import sort_edge_index

    ei = ring_graph()
    model = Node2Vec(ei, 4, 3, 2, num_nodes=14)  # two isolated nodes
    row, col = sort_edge_index(ei, num_nodes=14)
    assert torch.equal(model.rowptr, index2ptr(row, 14)) and torch.equal(model.col, col)


@pytest.mark.parametrize("p,q", [(1.0, 1.0), (0.5, 2.0)])
def test_node2vec_samples_and_loss_equal_pygs_on_the_same_draws(p, q):
    pyg = pytest.importorskip("torch_geometric.nn")
    model = Node2Vec(ring_graph(), 8, walk_length=6, context_size=3, walks_per_node=2, p=p, q=q,
                     num_negative_samples=3)  # fmt: skip
    batch = torch.tensor([0, 4, 7, 11])
    # PyG 2.8's methods run on our object (it needs pyg-lib to be built, which this machine lacks):
    # the same attributes (rowptr, col, random_walk_fn, walk_length, ...) give the same samples
    for method in ("pos_sample", "neg_sample"):
        torch.manual_seed(1)
        expected = getattr(pyg.Node2Vec, method)(model, batch)
        torch.manual_seed(1)
        got = getattr(model, method)(batch)
        assert torch.equal(got, expected), method
    torch.manual_seed(2)
    pos_rw, neg_rw = model.sample(batch.tolist())
    assert pos_rw.shape == (2 * 4 * 4, 3) and neg_rw.shape == (3 * 2 * 4 * 4, 3)
    torch.testing.assert_close(model.loss(pos_rw, neg_rw), pyg.Node2Vec.loss(model, pos_rw, neg_rw))


def test_node2vec_windows_follow_the_graph_and_loss_matches_loop():
    ei = ring_graph()
    edges = set(map(tuple, ei.t().tolist()))
    model = Node2Vec(ei, 8, walk_length=7, context_size=4, p=0.25, q=4.0).double()
    torch.manual_seed(0)
    pos_rw, neg_rw = model.sample(torch.arange(12))
    assert pos_rw.shape == (12 * 4, 4)  # 7 nodes per walk: 4 windows of 4
    for window in pos_rw.tolist():
        assert all((a, b) in edges for a, b in zip(window[:-1], window[1:]))
    assert torch.equal(neg_rw[:12, 0], torch.arange(12))  # negatives start at the batch nodes
    z = model.embedding.weight
    pos = [torch.sigmoid(z[w[0]] @ z[x]) for w in pos_rw.tolist() for x in w[1:]]
    neg = [1 - torch.sigmoid(z[w[0]] @ z[x]) for w in neg_rw.tolist() for x in w[1:]]
    expected = -torch.log(torch.stack(pos) + 1e-15).mean() - torch.log(torch.stack(neg) + 1e-15).mean()
    torch.testing.assert_close(model.loss(pos_rw, neg_rw), expected)


def test_node2vec_loader_forward_and_isolated_nodes():
    model = Node2Vec(ring_graph(), 4, walk_length=3, context_size=2, num_nodes=15)
    batches = list(model.loader(batch_size=5, shuffle=False))
    assert len(batches) == 3
    pos_rw, neg_rw = batches[2]
    assert pos_rw.shape == (5 * 2, 2) and neg_rw.shape == (5 * 2, 2)
    assert bool((pos_rw[torch.isin(pos_rw[:, 0], torch.tensor([12, 13, 14]))] >= 12).all())  # stuck
    assert torch.equal(model(), model.embedding.weight)
    assert torch.equal(model(torch.tensor([3, 1])), model.embedding.weight[[3, 1]])


def test_node2vec_test_uses_sklearn(monkeypatch):
    calls = {}

    class FakeLogisticRegression:
        def __init__(self, *args, **kwargs):
            calls["init"] = (args, kwargs)

        def fit(self, x, y):
            calls["fit"] = (x.shape, y.tolist())
            return self

        def score(self, x, y):
            return 0.75

    fake = types.ModuleType("sklearn.linear_model")
    fake.LogisticRegression = FakeLogisticRegression
    monkeypatch.setitem(sys.modules, "sklearn", types.ModuleType("sklearn"))
    monkeypatch.setitem(sys.modules, "sklearn.linear_model", fake)
    model = Node2Vec(ring_graph(), 4, 3, 2)
    z = model().detach()
    y = torch.arange(12) % 2
    assert model.test(z[:8], y[:8], z[8:], y[8:], max_iter=50) == 0.75
    assert calls["init"] == ((), {"solver": "lbfgs", "max_iter": 50}) and calls["fit"] == (
        (8, 4),
        y[:8].tolist(),
    )
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.delitem(sys.modules, "sklearn.linear_model")
    with pytest.raises(ImportError, match="scikit-learn"):
        model.test(z[:8], y[:8], z[8:], y[8:])


def test_node2vec_bad_inputs():
    ei = ring_graph()
    with pytest.raises(ValueError, match="walk_length"):
        Node2Vec(ei, 4, walk_length=2, context_size=3)
    with pytest.raises(ValueError, match="edge_index"):
        Node2Vec(ei[0], 4, 3, 2)
    with pytest.raises(IndexError, match="edge_index"):
        Node2Vec(ei, 4, 3, 2, num_nodes=5)
    with pytest.raises(ValueError, match="'p'"):
        Node2Vec(ei, 4, 3, 2, p=0)
    model = Node2Vec(ei, 4, 3, 2)
    with pytest.raises(IndexError, match="pos_rw"):
        model.loss(torch.tensor([[0, 12]]), torch.tensor([[0, 1]]))
    with pytest.raises(IndexError, match="start"):
        model.pos_sample(torch.tensor([12]))


# -- MetaPath2Vec ------------------------------------------------------------------------------
def hetero_edges():
    g = torch.Generator().manual_seed(3)
    author_paper = torch.stack(
        [torch.randint(0, 6, (20,), generator=g), torch.randint(0, 9, (20,), generator=g)]
    )
    author_paper[0, author_paper[0] == 5] = 4  # author 5 writes nothing: walks from it die
    paper_venue = torch.stack(
        [torch.randint(0, 8, (9,), generator=g), torch.randint(0, 3, (9,), generator=g)]
    )
    return {
        ("author", "writes", "paper"): author_paper,
        ("paper", "written_by", "author"): author_paper.flip(0),
        ("paper", "published_in", "venue"): paper_venue,
        ("venue", "publishes", "paper"): paper_venue.flip(0),
    }


METAPATH = [
    ("author", "writes", "paper"),
    ("paper", "published_in", "venue"),
    ("venue", "publishes", "paper"),
    ("paper", "written_by", "author"),
]


@pytest.mark.parametrize("walks_per_node,negatives", [(1, 1), (3, 2)])
def test_metapath2vec_equals_pyg(walks_per_node, negatives):
    pyg = pytest.importorskip("torch_geometric.nn")
    kwargs = dict(
        walk_length=10, context_size=4, walks_per_node=walks_per_node, num_negative_samples=negatives
    )
    theirs = pyg.MetaPath2Vec(hetero_edges(), 8, METAPATH, **kwargs)
    ours = MetaPath2Vec(hetero_edges(), 8, METAPATH, **kwargs)
    testing.load_pyg_state(ours, theirs)
    assert repr(ours) == repr(theirs) and ours.dummy_idx == theirs.dummy_idx
    assert torch.equal(ours.offset, theirs.offset)
    batch = torch.arange(6)
    torch.manual_seed(0)
    expected = theirs._sample(batch)
    torch.manual_seed(0)
    got = ours._sample(batch)
    assert torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1])
    assert bool((got[0] == ours.dummy_idx).any())  # a dead walk reached the dummy node
    torch.testing.assert_close(ours.loss(*got), theirs.loss(*expected))
    for node_type in ("author", "paper", "venue"):
        assert torch.equal(ours(node_type), theirs(node_type))
    assert torch.equal(ours("paper", torch.tensor([2, 0])), theirs("paper", torch.tensor([2, 0])))
    for name in ("__init__", "forward", "loader", "loss", "test", "_pos_sample", "_neg_sample"):
        assert params(getattr(MetaPath2Vec, name)) == params(getattr(pyg.MetaPath2Vec, name)), name
    assert len(list(ours.loader(batch_size=4))) == 2


def test_metapath2vec_walks_follow_the_metapath():
    model = MetaPath2Vec(hetero_edges(), 4, METAPATH, walk_length=8, context_size=9)
    edges = {k: set(map(tuple, e.t().tolist())) for k, e in hetero_edges().items()}
    torch.manual_seed(1)
    pos_rw = model._pos_sample(torch.arange(5))  # context_size = walk_length + 1: the whole walks
    for walk in pos_rw.tolist():
        for i in range(8):
            key = METAPATH[i % 4]
            a = walk[i] - model.start[key[0]]
            b = walk[i + 1] - model.start[key[-1]]
            if walk[i + 1] == model.dummy_idx:
                assert walk[i] == model.dummy_idx or all(src != a for src, _ in edges[key])
            else:
                assert (a, b) in edges[key]


def test_metapath2vec_bad_inputs():
    with pytest.raises(ValueError, match="invalid metapath"):
        MetaPath2Vec(hetero_edges(), 4, [METAPATH[0], METAPATH[0]], 2, 2)
    with pytest.raises(AttributeError, match="cycle"):  # as PyG (and a ValueError)
        MetaPath2Vec(hetero_edges(), 4, METAPATH[:2], walk_length=5, context_size=2)
    with pytest.raises(ValueError, match="context_size"):
        MetaPath2Vec(hetero_edges(), 4, METAPATH, walk_length=2, context_size=4)
    with pytest.raises(ValueError, match="edge_index_dict"):
        MetaPath2Vec({METAPATH[0]: torch.zeros(3, 2, dtype=torch.long)}, 4, METAPATH[:1], 1, 2)
    model = MetaPath2Vec(hetero_edges(), 4, METAPATH, 4, 2)
    with pytest.raises(ValueError, match="node_type"):
        model("user")


# -- LightGCN ----------------------------------------------------------------------------------
def bipartite(seed=0):
    g = torch.Generator().manual_seed(seed)
    users, items = torch.randint(0, 6, (25,), generator=g), torch.randint(6, 15, (25,), generator=g)
    return torch.cat([torch.stack([users, items]), torch.stack([items, users])], 1)


@pytest.mark.parametrize("alpha", [None, 0.3, "tensor"])
def test_lightgcn_equals_pyg(alpha):
    pyg = pytest.importorskip("torch_geometric.nn")
    if alpha == "tensor":
        alpha = torch.tensor([0.5, 0.3, 0.2, 0.1])
    theirs = pyg.LightGCN(15, 8, 3, alpha=alpha)
    ours = LightGCN(15, 8, 3, alpha=alpha)
    testing.load_pyg_state(ours, theirs)
    assert repr(ours) == repr(theirs)
    ei = bipartite()
    w = torch.rand(ei.size(1))
    label = torch.tensor([[0, 1, 2], [7, 8, 14]])
    torch.testing.assert_close(ours.get_embedding(ei, w), theirs.get_embedding(ei, w))
    torch.testing.assert_close(ours(ei), theirs(ei))
    torch.testing.assert_close(ours(ei, label, w), theirs(ei, label, w))
    torch.testing.assert_close(
        ours.predict_link(ei, label, prob=True), theirs.predict_link(ei, label, prob=True)
    )
    assert torch.equal(ours.predict_link(ei, label), theirs.predict_link(ei, label))
    src, dst = torch.arange(6), torch.arange(6, 15)
    assert torch.equal(ours.recommend(ei, src_index=src, dst_index=dst, k=3),
                       theirs.recommend(ei, src_index=src, dst_index=dst, k=3))  # fmt: skip
    assert torch.equal(ours.recommend(ei, k=2), theirs.recommend(ei, k=2))
    pred, y = ours(ei, label), torch.tensor([1, 0, 1])
    torch.testing.assert_close(ours.link_pred_loss(pred, y), theirs.link_pred_loss(pred, y))
    pos, neg = torch.randn(5), torch.randn(5)
    for node_id in (None, torch.tensor([0, 3, 9])):
        torch.testing.assert_close(
            ours.recommendation_loss(pos, neg, node_id, lambda_reg=0.1),
            theirs.recommendation_loss(pos, neg, node_id, lambda_reg=0.1),
        )
    for name in ("__init__", "forward", "get_embedding", "predict_link", "recommend", "link_pred_loss",
                 "recommendation_loss"):  # fmt: skip
        assert params(getattr(LightGCN, name)) == params(getattr(pyg.LightGCN, name)), name


def test_lightgcn_matches_dense_propagation_and_sparse_input():
    model = LightGCN(15, 4, 2).double()
    ei = bipartite(1)
    adj = torch.zeros(15, 15, dtype=torch.float64)
    adj.index_put_((ei[1], ei[0]), torch.ones(ei.size(1), dtype=torch.float64), accumulate=True)
    deg = adj.sum(1)
    inv = torch.where(deg > 0, deg.pow(-0.5), torch.zeros_like(deg))
    norm = inv.view(-1, 1) * adj * inv.view(1, -1)
    x0 = model.embedding.weight
    x1 = norm @ x0
    x2 = norm @ x1
    torch.testing.assert_close(model.get_embedding(ei), (x0 + x1 + x2) / 3)
    adj_t = torch.sparse_coo_tensor(
        torch.stack([ei[1], ei[0]]), torch.ones(ei.size(1), dtype=torch.float64), (15, 15)
    )
    torch.testing.assert_close(model.get_embedding(adj_t), model.get_embedding(ei))
    scores = model(adj_t)
    assert scores.shape == (ei.size(1),)


def test_bpr_loss_formula_and_lightgcn_errors():
    pos, neg, emb = torch.randn(6), torch.randn(6), torch.randn(4, 3)
    expected = -torch.log(torch.sigmoid(pos - neg)).mean() + 0.5 * (emb**2).sum() / 6
    torch.testing.assert_close(BPRLoss(0.5)(pos, neg, emb), expected)
    torch.testing.assert_close(BPRLoss()(pos, neg), -torch.log(torch.sigmoid(pos - neg)).mean())
    with pytest.raises(ValueError, match="alpha"):
        LightGCN(5, 4, 2, alpha=torch.ones(2))
    with pytest.raises(TypeError, match="alpha"):
        LightGCN(5, 4, 2, alpha="x")
    model = LightGCN(5, 4, 1)
    with pytest.raises(ValueError, match="'k'"):
        model.recommend(torch.tensor([[0, 1], [1, 0]]), k=6)
    with pytest.raises(IndexError, match="edge_label_index"):
        model(torch.tensor([[0, 1], [1, 0]]), torch.tensor([[0], [5]]))
