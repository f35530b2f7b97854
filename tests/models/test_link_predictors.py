"""LPFormer and ARLinkPredictor: PyG parity after a strict state_dict load (logits and gradients, eval
and training), the node selection of LPFormer against a loop reference for every threshold mode,
the approximate PPR against the exact one and a one-source-at-a-time push, empty batches, input
forms, bad inputs, signatures and repr."""

from __future__ import annotations

import inspect

import pytest
import torch

from gnn.core import testing
from gnn.core import validation as v
from gnn.models import ARLinkPredictor, LPFormer
from gnn.models.lpformer import approximate_ppr

N, F_IN, HIDDEN = 20, 5, 8


def same_signature(ours, theirs) -> None:
    a = [(p.name, p.default, p.kind) for p in inspect.signature(ours).parameters.values()]
    b = [(p.name, p.default, p.kind) for p in inspect.signature(theirs).parameters.values()]
    assert a == b


def graph(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    edges = torch.randint(0, N, (2, 30), generator=g)
    edge_index = torch.cat([edges, edges.flip(0)], dim=1)  # undirected, with duplicates
    x = torch.randn(N, F_IN, generator=g)
    pairs = torch.randint(0, N, (2, 7), generator=g)
    return x, edge_index, pairs


def ppr_of(edge_index, eps: float = 1e-4):
    index, value = approximate_ppr(edge_index, N, alpha=0.15, eps=eps)
    return torch.sparse_coo_tensor(index, value, (N, N))


THRESHOLDS = [None, [0, 0, 1e-3], [1e-3, 1e-2, 5e-3]]


# -- LPFormer: parity -----------------------------------------------------------------------------
@pytest.mark.parametrize("thresholds", THRESHOLDS)
@pytest.mark.parametrize("training", [False, True])
def test_lpformer_matches_pyg(thresholds, training):
    pyg = pytest.importorskip("torch_geometric.nn")
    torch.manual_seed(0)
    kwargs = dict(ppr_thresholds=thresholds, gnn_dropout=0.0, transformer_dropout=0.0)
    theirs, ours = pyg.LPFormer(F_IN, HIDDEN, **kwargs), LPFormer(F_IN, HIDDEN, **kwargs)
    testing.load_pyg_state(ours, theirs)
    assert repr(ours) == repr(theirs) and repr(ours.att_layers[0]) == repr(theirs.att_layers[0])
    assert list(ours.state_dict()) == list(theirs.state_dict())
    x, edge_index, pairs = graph(1)
    ppr = ppr_of(edge_index)
    ours.train(training), theirs.train(training)
    testing.assert_close(
        ours(pairs, x, edge_index, ppr), theirs(pairs, x, edge_index, ppr), atol=1e-6, rtol=1e-5
    )


def test_lpformer_gradients_match_pyg():
    pyg = pytest.importorskip("torch_geometric.nn")
    torch.manual_seed(1)
    kwargs = dict(gnn_dropout=0.0, transformer_dropout=0.0, num_gnn_layers=3)
    theirs, ours = pyg.LPFormer(F_IN, HIDDEN, **kwargs), LPFormer(F_IN, HIDDEN, **kwargs)
    x, edge_index, pairs = graph(2)
    testing.assert_gradients_match_pyg(
        ours, theirs, pairs, x, edge_index, ppr_of(edge_index), atol=1e-5, rtol=1e-4
    )


def test_lpformer_dropout_keeps_a_share_of_the_nodes():
    torch.manual_seed(2)
    model = LPFormer(F_IN, HIDDEN, transformer_dropout=0.5, ppr_thresholds=[0, 0, 0])
    x, edge_index, pairs = graph(3)
    ppr = model.calc_sparse_ppr(edge_index, N)
    adj, table = model._adjacency(edge_index, N, x.device), model._check_inputs(pairs, x, edge_index, ppr)
    model.eval()
    full = sum(g.index.size(1) for g in model.compute_node_mask(pairs, adj, table))
    model.train()
    dropped = sum(g.index.size(1) for g in model.compute_node_mask(pairs, adj, table))
    assert 0 < dropped < full
    assert model(pairs, x, edge_index, ppr).shape == (7,)


# -- LPFormer: the node selection against a loop reference --------------------------------------------
def reference_groups(pairs, edge_index, ppr, thresholds, training):
    t_cn, t_1hop, t_far = thresholds
    adj = torch.zeros(N, N, dtype=torch.bool)
    adj[edge_index[0], edge_index[1]] = True
    adj2 = adj.clone()
    if training:
        adj2[pairs[0], pairs[1]] = True
        adj2[pairs[1], pairs[0]] = True
    dense = ppr.to_dense()
    mode = "cn" if t_far == 1 and t_1hop == 1 else "1-hop" if t_far == 1 else "all"
    groups = {"cn": [], "1hop": [], "far": []}
    for p in range(pairs.size(1)):
        a, b = int(pairs[0, p]), int(pairs[1, p])
        for u in range(N):
            s, t = float(dense[a, u]), float(dense[b, u])
            if adj[a, u] and adj[b, u]:
                if s >= t_cn and t >= t_cn:
                    groups["cn"].append((p, u, s, t))
            elif (adj[a, u] or adj[b, u]) and mode != "cn":
                if s >= t_1hop and t >= t_1hop:
                    groups["1hop"].append((p, u, s, t))
            elif mode == "all" and not adj2[a, u] and not adj2[b, u] and s > 0 and t > 0:
                if s >= t_far and t >= t_far:
                    groups["far"].append((p, u, s, t))
    return groups


@pytest.mark.parametrize("thresholds", [[0, 1e-4, 1e-2], [0, 0, 1e-3], [0, 1e-2, 1], [1e-3, 1, 1]])
@pytest.mark.parametrize("training", [False, True])
def test_node_groups_loop_reference(thresholds, training):
    model = LPFormer(F_IN, HIDDEN, ppr_thresholds=thresholds, transformer_dropout=0.0).train(training)
    x, edge_index, pairs = graph(4)
    ppr = ppr_of(edge_index)
    adj, table = model._adjacency(edge_index, N, x.device), model._check_inputs(pairs, x, edge_index, ppr)
    got = model.compute_node_mask(pairs, adj, table)
    expected = reference_groups(pairs, edge_index, ppr, thresholds, training)
    for group, name in zip(got, ("cn", "1hop", "far")):
        rows = [(int(p), int(u)) for p, u in group.index.t()]
        assert rows == [(p, u) for p, u, _, _ in expected[name]], name
        if rows:
            testing.assert_close(
                group.src, torch.tensor([s for *_, s, _ in expected[name]]), atol=1e-6, rtol=1e-5
            )
            testing.assert_close(
                group.tgt, torch.tensor([t for *_, t in expected[name]]), atol=1e-6, rtol=1e-5
            )
    counts = model.get_structure_cnts(pairs, *got)
    cn_count = torch.zeros(pairs.size(1))
    for p, *_ in expected["cn"]:
        cn_count[p] += 1
    testing.assert_close(counts[0].view(-1), cn_count)
    assert model(pairs, x, edge_index, ppr).shape == (pairs.size(1),)


# -- approximate PPR --------------------------------------------------------------------------------
def exact_ppr(edge_index, alpha):
    a = torch.zeros(N, N, dtype=torch.float64)
    a.index_put_(
        (edge_index[0], edge_index[1]), torch.ones(edge_index.size(1), dtype=torch.float64), accumulate=True
    )
    deg = a.sum(1)
    walk = a / deg.clamp(min=1).unsqueeze(1)
    return alpha * torch.linalg.inv(torch.eye(N, dtype=torch.float64) - (1 - alpha) * walk), deg


def sequential_push(edge_index, alpha, eps):
    """Andersen et al.'s push, one source at a time with a queue (the residual starts at alpha)."""
    neighbours = [[] for _ in range(N)]
    for s, t in edge_index.t().tolist():
        neighbours[s].append(t)
    out = torch.zeros(N, N, dtype=torch.float64)
    for source in range(N):
        p, r, queue = {}, {source: alpha}, [source]
        while queue:
            u = queue.pop()
            res = r.pop(u, 0.0)
            p[u] = p.get(u, 0.0) + res
            for w in neighbours[u]:
                r[w] = r.get(w, 0.0) + (1 - alpha) * res / len(neighbours[u])
                if r[w] >= alpha * eps * len(neighbours[w]) and w not in queue:
                    queue.append(w)
        for u, value in p.items():
            out[source, u] = value
    return out


@pytest.mark.parametrize("eps", [1e-3, 1e-4])
def test_approximate_ppr_error_bound(eps):
    _, edge_index, _ = graph(5)
    edge_index = edge_index[:, :-4]  # some nodes without out-edges
    alpha = 0.15
    index, value = approximate_ppr(edge_index, N, alpha, eps)
    approx = torch.zeros(N, N, dtype=torch.float64)
    approx[index[0], index[1]] = value.double()
    exact, deg = exact_ppr(edge_index, alpha)
    bound = eps * deg.clamp(min=1).unsqueeze(0) + 1e-6
    assert ((exact - approx) >= -1e-6).all() and ((exact - approx) <= bound).all()
    push = sequential_push(edge_index, alpha, eps)
    assert ((exact - push) >= -1e-6).all() and ((exact - push) <= bound).all()
    assert (value > 0).all() and torch.equal(
        index[0] * N + index[1], torch.sort(index[0] * N + index[1]).values
    )


def test_calc_sparse_ppr_shape_and_isolated_nodes():
    model = LPFormer(F_IN, HIDDEN)
    ppr = model.calc_sparse_ppr(torch.tensor([[0, 1], [1, 0]]), num_nodes=4)
    assert ppr.shape == (4, 4) and ppr.is_sparse
    dense = ppr.to_dense()
    assert dense[2, 2] == pytest.approx(0.15) and dense[3].sum() == pytest.approx(0.15)
    empty = model.calc_sparse_ppr(torch.empty(2, 0, dtype=torch.long), num_nodes=0)
    assert empty.shape == (0, 0)


# -- LPFormer: forms, empty, bad inputs -----------------------------------------------------------------
def test_lpformer_input_forms_and_empty_batch():
    torch.manual_seed(6)
    model = LPFormer(F_IN, HIDDEN).eval()
    x, edge_index, pairs = graph(7)
    ppr = ppr_of(edge_index)
    expected = model(pairs, x, edge_index, ppr)
    torch.testing.assert_close(model(pairs.int(), x, edge_index.int(), ppr), expected)
    torch.testing.assert_close(model(pairs, x, edge_index, ppr.to_dense()), expected)
    adj = torch.sparse_coo_tensor(edge_index, torch.ones(edge_index.size(1)), (N, N))  # symmetric graph
    torch.testing.assert_close(model(pairs, x, adj, ppr), expected, atol=1e-5, rtol=1e-5)
    assert model(pairs[:, :0], x, edge_index, ppr).shape == (0,)
    out = model(pairs, x, torch.empty(2, 0, dtype=torch.long), ppr)  # no edges: only >1-hop nodes
    assert out.shape == (7,) and torch.isfinite(out).all()


def test_lpformer_bad_inputs():
    model = LPFormer(F_IN, HIDDEN)
    x, edge_index, pairs = graph(8)
    ppr = ppr_of(edge_index)
    with pytest.raises(v.IndexRangeError, match="'batch'"):
        model(pairs + N, x, edge_index, ppr)
    with pytest.raises(ValueError, match="'batch'"):
        model(pairs[0], x, edge_index, ppr)
    with pytest.raises(ValueError, match="'x'"):
        model(pairs, x[:, :2], edge_index, ppr)
    with pytest.raises(ValueError, match="'ppr_matrix'"):
        model(pairs, x, edge_index, torch.zeros(N, N + 1))
    with pytest.raises(ValueError, match="'x' has"):
        model(pairs, x[:5], edge_index, ppr)
    with pytest.raises(v.IndexRangeError, match="'edge_index'"):
        model(pairs, x, edge_index + N, ppr)
    with pytest.raises(ValueError, match="'ppr_thresholds'"):
        LPFormer(F_IN, HIDDEN, ppr_thresholds=[0, 1])
    with pytest.raises(ValueError, match="'num_transformer_layers'"):
        LPFormer(F_IN, HIDDEN, num_transformer_layers=2)
    with pytest.raises(ValueError, match="'num_heads'"):
        LPFormer(F_IN, HIDDEN, num_heads=2)


def test_lpformer_signatures():
    pyg = pytest.importorskip("torch_geometric.nn")
    from torch_geometric.nn.models.lpformer import LPAttLayer

    from gnn.models.lpformer import LPAttLayer as OurLPAttLayer

    same_signature(LPFormer.__init__, pyg.LPFormer.__init__)
    same_signature(LPFormer.forward, pyg.LPFormer.forward)
    same_signature(LPFormer.calc_sparse_ppr, pyg.LPFormer.calc_sparse_ppr)
    same_signature(OurLPAttLayer.__init__, LPAttLayer.__init__)
    same_signature(OurLPAttLayer.forward, LPAttLayer.forward)


# -- ARLinkPredictor ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "options",
    [
        {},
        {"num_layers": 1},
        {"num_layers": 4, "out_channels": 7, "attract_ratio": 0.3},
        {"attract_ratio": 1.0},
    ],
)
def test_ar_link_predictor_matches_pyg(options):
    pyg = pytest.importorskip("torch_geometric.nn")
    torch.manual_seed(9)
    theirs, ours = pyg.ARLinkPredictor(F_IN, HIDDEN, **options), ARLinkPredictor(F_IN, HIDDEN, **options)
    testing.load_pyg_state(ours, theirs)
    assert repr(ours) == repr(theirs)
    x, edge_index, pairs = graph(10)
    testing.assert_gradients_match_pyg(ours, theirs, x, pairs, atol=1e-6, rtol=1e-5)
    a, r = ours.encode(x)
    a_p, r_p = theirs.encode(x)
    assert ours.calculate_r_fraction(a, r) == pytest.approx(theirs.calculate_r_fraction(a_p, r_p), rel=1e-5)


def test_ar_link_predictor_formula_empty_and_bad_inputs():
    torch.manual_seed(10)
    model = ARLinkPredictor(F_IN, HIDDEN, attract_ratio=0.25).double()
    x, _, pairs = graph(11)
    x = x.double()
    a, r = model.encode(x)
    assert a.shape == (N, 2) and r.shape == (N, 6)
    expected = torch.sigmoid((a[pairs[0]] * a[pairs[1]]).sum(1) - (r[pairs[0]] * r[pairs[1]]).sum(1))
    torch.testing.assert_close(model(x, pairs), expected)
    assert model(x, pairs[:, :0]).shape == (0,)
    torch.testing.assert_close(model(x, pairs.int()), expected)
    with pytest.raises(v.IndexRangeError, match="'edge_index'"):
        model(x, pairs + N)
    with pytest.raises(ValueError, match="'x'"):
        model(x[:, :2], pairs)
    with pytest.raises(ValueError, match="'attract_ratio'"):
        ARLinkPredictor(F_IN, HIDDEN, attract_ratio=1.5)


def test_ar_link_predictor_signatures():
    pyg = pytest.importorskip("torch_geometric.nn")
    for name in ("__init__", "forward", "encode", "decode", "calculate_r_fraction"):
        same_signature(getattr(ARLinkPredictor, name), getattr(pyg.ARLinkPredictor, name))


def test_lpformer_builds_the_ppr_table_once_per_matrix(monkeypatch):
    import gnn.models.lpformer as lp

    calls = []
    original = lp.SparseRows.from_sparse

    def counting(matrix):
        calls.append(1)
        return original(matrix)

    monkeypatch.setattr(lp.SparseRows, "from_sparse", staticmethod(counting))
    model = LPFormer(F_IN, HIDDEN).eval()
    x, edge_index, pairs = graph(12)
    ppr = ppr_of(edge_index)
    first = model(pairs, x, edge_index, ppr)
    torch.testing.assert_close(model(pairs, x, edge_index, ppr), first)
    assert len(calls) == 1
    model(pairs, x, edge_index, ppr_of(edge_index, eps=1e-3))  # another matrix: a new table
    assert len(calls) == 2


def test_lp_attention_layer_loop_reference():
    from gnn.models.lpformer import LPAttLayer

    torch.manual_seed(13)
    layer = LPAttLayer(4, 4, None, 1, 0.0).double()
    torch.nn.init.normal_(layer.bias)
    pairs, nodes = 3, 6
    edge_feats, node_feats = torch.randn(pairs, 8).double(), torch.randn(nodes, 4).double()
    index = torch.tensor([[0, 0, 0, 2, 2], [1, 3, 5, 0, 1]])  # pair 1 attends to nothing
    pes = torch.randn(5, 4).double()
    out = layer(index, edge_feats, node_feats, pes)
    expected = []
    for p in range(pairs):
        ks = [k for k in range(index.size(1)) if int(index[0, k]) == p]
        query = layer.lin_l(edge_feats[p, :4]) + layer.lin_l(edge_feats[p, 4:])
        total = torch.zeros(4, dtype=torch.float64)
        if ks:
            values = [layer.lin_r(torch.cat([node_feats[int(index[1, k])], pes[k]])) for k in ks]
            scores = torch.stack(
                [(torch.nn.functional.leaky_relu(m * query, 0.2) * layer.att.view(-1)).sum() for m in values]
            )
            for weight, m in zip(torch.softmax(scores, 0), values):
                total = total + weight * m
        expected.append(layer.post_att_norm(total + layer.bias))
    torch.testing.assert_close(out, torch.stack(expected))
