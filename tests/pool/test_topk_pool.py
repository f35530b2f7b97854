"""TopKPooling: loop reference, PyG parity (outputs and gradients), batches, empty graphs, bad input."""

from __future__ import annotations

import inspect
import math

import pytest
import torch

from gnn.core import testing
from gnn.pool import TopKPooling


def graph(seed=0, n=24, e=70, f=5, graphs=4, sort=True, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, f, generator=g, dtype=dtype)
    edge_index = torch.randint(0, n, (2, e), generator=g)
    batch = torch.randint(0, graphs, (n,), generator=g)
    return x, edge_index, batch.sort().values if sort else batch


def reference(pool: TopKPooling, x, edge_index, edge_attr, batch):
    """Score, rank and keep one graph at a time; keep the edges between kept nodes (loops)."""
    w = pool.select.weight.detach().view(-1).double()
    raw = x.double() @ w
    perm = []
    for g in sorted(set(batch.tolist())):
        nodes = [i for i in range(x.size(0)) if int(batch[i]) == g]
        if pool.min_score is None:
            score = torch.tanh(raw / w.norm())
            nodes.sort(key=lambda i: (-float(score[i]), i))
            ratio = pool.ratio
            k = int(ratio) if ratio >= 1 else math.ceil(ratio * len(nodes) - 1e-9)
            perm += nodes[:k]
        else:
            exp = {i: math.exp(float(raw[i])) for i in nodes}
            total = sum(exp.values())
            score_g = {i: exp[i] / total for i in nodes}
            best = max(score_g.values())
            perm += [i for i in nodes if score_g[i] > min(best - 1e-7, pool.min_score)]
            score = torch.zeros(x.size(0), dtype=torch.float64)
            for i in nodes:
                score[i] = score_g[i]
    if pool.min_score is not None:
        perm.sort()
        score = torch.zeros(x.size(0), dtype=torch.float64)
        for g in set(batch.tolist()):
            nodes = [i for i in range(x.size(0)) if int(batch[i]) == g]
            total = sum(math.exp(float(raw[i])) for i in nodes)
            for i in nodes:
                score[i] = math.exp(float(raw[i])) / total
    perm_t = torch.tensor(perm, dtype=torch.long)
    out = pool.multiplier * x.double()[perm_t] * score[perm_t].view(-1, 1)
    position = {p: k for k, p in enumerate(perm)}
    kept = [
        e
        for e in range(edge_index.size(1))
        if int(edge_index[0, e]) in position and int(edge_index[1, e]) in position
    ]
    new_edges = torch.tensor(
        [[position[int(edge_index[r, e])] for e in kept] for r in (0, 1)], dtype=torch.long
    )
    attr = None if edge_attr is None else edge_attr[kept]
    return out, new_edges.view(2, -1), attr, batch[perm_t], perm_t, score[perm_t]


@pytest.mark.parametrize(
    "kwargs", [{}, {"ratio": 0.3}, {"ratio": 2}, {"ratio": 100}, {"min_score": 0.3}, {"multiplier": 2.5}]
)
@pytest.mark.parametrize("sort", [True, False])
def test_matches_loop_reference(kwargs, sort):
    x, edge_index, batch = graph(sort=sort)
    edge_attr = torch.randn(edge_index.size(1), 2, dtype=torch.float64)
    pool = TopKPooling(5, **kwargs).double()
    testing.assert_close(
        pool(x, edge_index, edge_attr, batch), reference(pool, x, edge_index, edge_attr, batch)
    )


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"ratio": 3}, {"ratio": 0.7}, {"min_score": 0.2}, {"multiplier": 0.5, "nonlinearity": "sigmoid"}],
)
@pytest.mark.parametrize("sort", [True, False])
def test_matches_pyg(kwargs, sort):
    pyg = pytest.importorskip("torch_geometric.nn")
    x, edge_index, batch = graph(seed=3, sort=sort)
    edge_attr = torch.randn(edge_index.size(1), 3, dtype=torch.float64)
    theirs = pyg.TopKPooling(5, **kwargs).double()
    ours = TopKPooling(5, **kwargs).double()
    testing.load_pyg_state(ours, theirs)
    assert repr(ours) == repr(theirs)
    x_ours, x_theirs = x.clone().requires_grad_(), x.clone().requires_grad_()
    out, expected = ours(x_ours, edge_index, edge_attr, batch), theirs(x_theirs, edge_index, edge_attr, batch)
    testing.assert_close(out, expected)
    # gradients reach the projection (select.weight) and the features, as in PyG
    weight = torch.randn_like(out[0])
    ((out[0] * weight).sum() + out[5].sin().sum()).backward()
    ((expected[0] * weight).sum() + expected[5].sin().sum()).backward()
    testing.assert_close(x_ours.grad, x_theirs.grad)
    testing.assert_close(ours.select.weight.grad, theirs.select.weight.grad)
    assert ours.select.weight.grad.abs().sum() > 0


def test_matches_pyg_with_attn_and_no_batch():
    pyg = pytest.importorskip("torch_geometric.nn")
    x, edge_index, _ = graph(seed=5)
    attn = torch.randn(x.size(0), 5, dtype=torch.float64, requires_grad=True)
    theirs, ours = pyg.TopKPooling(5).double(), TopKPooling(5).double()
    testing.load_pyg_state(ours, theirs)
    out, expected = ours(x, edge_index, attn=attn), theirs(x, edge_index, attn=attn)
    testing.assert_close(out, expected)
    assert out[3].eq(0).all()  # no batch: one graph, returned as zeros as in PyG
    out[0].sum().backward()
    assert attn.grad is not None and ours.select.weight.grad is not None


def test_one_dimensional_features_and_float32_int32():
    pyg = pytest.importorskip("torch_geometric.nn")
    x, edge_index, batch = graph(seed=6, f=1, dtype=torch.float32)
    theirs, ours = pyg.TopKPooling(1), TopKPooling(1)
    testing.load_pyg_state(ours, theirs)
    expected = theirs(x, edge_index, batch=batch)
    testing.assert_close(ours(x, edge_index.int(), batch=batch.int()), expected)
    # [N] features are [N, 1] (PyG broadcasts them into a [K, K] product instead)
    testing.assert_close(ours(x.view(-1), edge_index, batch=batch), expected)


def test_signatures_match_pyg():
    pyg = pytest.importorskip("torch_geometric.nn")
    for name in ("__init__", "forward"):
        ours = inspect.signature(getattr(TopKPooling, name))
        theirs = inspect.signature(getattr(pyg.TopKPooling, name))
        assert list(ours.parameters) == list(theirs.parameters)
        assert [p.default for p in ours.parameters.values()] == [
            p.default for p in theirs.parameters.values()
        ]
    assert repr(TopKPooling(8, ratio=3, multiplier=2.0)) == "TopKPooling(8, ratio=3, multiplier=2.0)"
    assert repr(TopKPooling(8, min_score=0.1)) == "TopKPooling(8, min_score=0.1, multiplier=1.0)"
    assert list(TopKPooling(8).state_dict()) == ["select.weight"]


def test_empty_graphs_and_small_graphs():
    pool = TopKPooling(3, ratio=4)
    x = torch.randn(5, 3)
    batch = torch.tensor([0, 0, 3, 3, 3])  # graphs 1 and 2 have no node; both graphs have < 4 nodes
    edge_index = torch.tensor([[0, 2, 4], [1, 3, 2]])
    out, ei, _, new_batch, perm, score = pool(x, edge_index, batch=batch)
    assert sorted(perm.tolist()) == [0, 1, 2, 3, 4] and new_batch.tolist() == [0, 0, 3, 3, 3]
    assert ei.size(1) == 3
    out, ei, attr, new_batch, perm, score = pool(torch.zeros(0, 3), torch.zeros(2, 0, dtype=torch.long))
    assert out.shape == (0, 3) and ei.shape == (2, 0) and perm.numel() == 0 and score.numel() == 0
    out = TopKPooling(3)(torch.randn(4, 3), torch.zeros(2, 0, dtype=torch.long))
    assert out[0].shape == (2, 3) and out[1].shape == (2, 0)


def test_no_grad_gives_the_same_result():
    x, edge_index, batch = graph(seed=8)
    pool = TopKPooling(5).double()
    out = pool(x.clone().requires_grad_(), edge_index, batch=batch)
    with torch.no_grad():
        testing.assert_close(
            pool(x, edge_index, batch=batch), tuple(o.detach() if o is not None else o for o in out)
        )
    # non-contiguous features
    wide = torch.randn(x.size(0), 10, dtype=torch.float64)[:, ::2]
    testing.assert_close(
        pool(wide, edge_index, batch=batch), pool(wide.contiguous(), edge_index, batch=batch)
    )


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"ratio": 0}, ValueError, "'ratio'"),
        ({"ratio": -0.5}, ValueError, "'ratio'"),
        ({"ratio": "half"}, TypeError, "'ratio'"),
        ({"ratio": None}, ValueError, "'ratio' and 'min_score'"),
        ({"min_score": "low"}, ValueError, "'min_score'"),
        ({"multiplier": None}, ValueError, "'multiplier'"),
        ({"nonlinearity": "nope"}, ValueError, "'nonlinearity'"),
        ({"nonlinearity": 3}, TypeError, "'nonlinearity'"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        TopKPooling(4, **kwargs)


def test_bad_inputs():
    pool = TopKPooling(4)
    x, edge_index = torch.randn(6, 4), torch.tensor([[0, 1], [1, 5]])
    with pytest.raises(ValueError, match="'batch'"):
        pool(x, edge_index, batch=torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match="'batch'"):
        pool(x, edge_index, batch=torch.tensor([0, 0, 0, -1, 0, 0]))
    with pytest.raises(TypeError, match="'batch'"):
        pool(x, edge_index, batch=torch.zeros(6))
    with pytest.raises(IndexError, match="'edge_index'"):
        pool(x, torch.tensor([[0], [6]]))
    with pytest.raises(ValueError, match="'edge_index'"):
        pool(x, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="'edge_attr'"):
        pool(x, edge_index, torch.randn(3, 2))
    with pytest.raises(ValueError, match="'attn'"):
        pool(x, edge_index, attn=torch.randn(5, 4))
    with pytest.raises(ValueError, match="'x'"):
        pool(torch.randn(6, 3), edge_index)
    with pytest.raises(TypeError, match="'x'"):
        pool([[1.0]], edge_index)


def test_compiles_like_eager():
    """torch.compile (graph breaks at the data-dependent selection) gives eager's outputs and gradients."""
    x, edge_index, batch = graph(seed=9, dtype=torch.float32)
    pool = TopKPooling(5)
    expected = pool(x.clone().requires_grad_(), edge_index, batch=batch)
    compiled = torch.compile(pool, backend="aot_eager")
    x_c = x.clone().requires_grad_()
    out = compiled(x_c, edge_index, batch=batch)
    testing.assert_close(out, expected)
    grads = torch.autograd.grad(out[0].square().sum(), [x_c, pool.select.weight])
    x_e = x.clone().requires_grad_()
    expected = torch.autograd.grad(
        pool(x_e, edge_index, batch=batch)[0].square().sum(), [x_e, pool.select.weight]
    )
    testing.assert_close(grads, expected)
