"""PyG behaviours that user code relies on, found by running PyG's usage against ours.

Hooks (every kind fires on the fused paths too, and per-edge hooks see PyG's edges),
explain mode on graphs that already hold self loops, the cache attributes users reset
by hand, ``TransformerConv._alpha``, SuperGAT's sampling methods, bipartite and static
graph inputs, and clear errors where PyG crashes or silently goes wrong.
"""

from __future__ import annotations

import pytest
import torch

import gnn.conv as C
from gnn.core import testing

N, F = 7, 8


def graph_with_loops():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(N, F, generator=g, dtype=torch.float64)
    ei = torch.randint(0, N, (2, 20), generator=g)
    ei[:, :3] = torch.tensor([[1, 2, 2], [1, 2, 2]])  # self loops already in the graph, one twice
    return x, ei


#: layer name -> (kwargs-free builder taking the library, call)
LAYERS = {
    "GCNConv": (lambda lib: lib.GCNConv(F, 4), lambda m, x, ei: m(x, ei)),
    "GATConv": (lambda lib: lib.GATConv(F, 4, heads=2), lambda m, x, ei: m(x, ei)),
    "GATv2Conv": (lambda lib: lib.GATv2Conv(F, 4, heads=2), lambda m, x, ei: m(x, ei)),
    "TransformerConv": (lambda lib: lib.TransformerConv(F, 4, heads=2), lambda m, x, ei: m(x, ei)),
    "PDNConv": (lambda lib: lib.PDNConv(F, 4, 3, 5), lambda m, x, ei: m(x, ei, _edge_attr(ei))),
    "FAConv": (lambda lib: lib.FAConv(F), lambda m, x, ei: m(x, x, ei)),
    "SuperGATConv": (lambda lib: lib.SuperGATConv(F, 4, heads=2), lambda m, x, ei: m(x, ei)),
    "APPNP": (lambda lib: lib.APPNP(2, 0.1), lambda m, x, ei: m(x, ei)),
    "GINConv": (lambda lib: lib.GINConv(torch.nn.Linear(F, 4)), lambda m, x, ei: m(x, ei)),
    "SAGEConv": (lambda lib: lib.SAGEConv(F, 4), lambda m, x, ei: m(x, ei)),
}
EXPLAINED = ["GCNConv", "GATConv", "GATv2Conv", "PDNConv", "FAConv", "SuperGATConv", "APPNP"]


def _edge_attr(ei):
    return torch.linspace(0, 1, ei.size(1) * 3, dtype=torch.float64).view(-1, 3)


def pair(name):
    pyg = pytest.importorskip("torch_geometric.nn")
    build, call = LAYERS[name]
    torch.manual_seed(0)
    theirs = build(pyg).double().eval()
    ours = build(C).double().eval()
    testing.load_pyg_state(ours, theirs)
    return ours, theirs, call


def _rows(out):
    return out.size(0) if isinstance(out, torch.Tensor) else len(out)


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_every_hook_kind_fires_as_in_pyg(name):
    ours, theirs, call = pair(name)
    x, ei = graph_with_loops()
    seen: dict[str, dict[str, list]] = {}
    for label, module in (("ours", ours), ("pyg", theirs)):
        log: dict[str, list] = {"pre": [], "fwd": [], "msg": []}
        handles = [
            module.register_propagate_forward_pre_hook(lambda m, inp, log=log: log["pre"].append(1)),
            module.register_propagate_forward_hook(lambda m, inp, out, log=log: log["fwd"].append(out)),
        ]
        call(module, x, ei)
        handles.append(
            module.register_message_forward_hook(lambda m, inp, out, log=log: log["msg"].append(out))
        )
        call(module, x, ei)
        for h in handles:
            h.remove()
        seen[label] = log
    assert len(seen["ours"]["pre"]) == len(seen["pyg"]["pre"]) > 0  # the fused paths fire them too
    assert len(seen["ours"]["fwd"]) == len(seen["pyg"]["fwd"])
    for a, b in zip(seen["ours"]["fwd"], seen["pyg"]["fwd"]):
        testing.assert_close(a, b, atol=1e-10)
    # message hooks see exactly PyG's messages: the same rows (PyG's self-loop handling) and values
    assert [_rows(m) for m in seen["ours"]["msg"]] == [_rows(m) for m in seen["pyg"]["msg"]]
    for a, b in zip(seen["ours"]["msg"], seen["pyg"]["msg"]):
        testing.assert_close(a, b, atol=1e-10)


def _explain(module, mask, ei):
    for sub in module.modules():
        if hasattr(sub, "_edge_mask") and hasattr(sub, "explain"):
            sub.explain = True
            sub._edge_mask = mask
            sub._loop_mask = ei[0] != ei[1]
            sub._apply_sigmoid = True


@pytest.mark.parametrize("name", EXPLAINED)
def test_explain_mode_matches_pyg_on_graphs_with_self_loops(name):
    ours, theirs, call = pair(name)
    x, ei = graph_with_loops()
    mask = torch.randn(ei.size(1), dtype=torch.float64, generator=torch.Generator().manual_seed(9))
    _explain(ours, mask, ei)
    _explain(theirs, mask, ei)
    testing.assert_close(call(ours, x, ei), call(theirs, x, ei), atol=1e-10)


def test_gcn_message_hook_sees_pygs_rows():
    ours, theirs, call = pair("GCNConv")
    x, ei = graph_with_loops()
    rows = {}
    for label, module in (("ours", ours), ("pyg", theirs)):
        log = []
        h = module.register_message_forward_hook(lambda m, inp, out, log=log: log.append(out.size(0)))
        call(module, x, ei)
        h.remove()
        rows[label] = log
    loops = int((ei[0] == ei[1]).sum())
    assert rows["ours"] == rows["pyg"] == [ei.size(1) - loops + N]  # the given loops replaced by one per node


def test_transformer_alpha_is_visible_to_a_propagate_hook_as_in_pyg():
    ours, theirs, call = pair("TransformerConv")
    x, ei = graph_with_loops()
    got = {}
    for label, module in (("ours", ours), ("pyg", theirs)):
        h = module.register_propagate_forward_hook(
            lambda m, inp, out, label=label: got.__setitem__(label, m._alpha.detach().clone())
        )
        call(module, x, ei)
        h.remove()
        assert module._alpha is None  # reset after forward, as in PyG
    testing.assert_close(got["ours"], got["pyg"], atol=1e-10)


@pytest.mark.parametrize(
    "build, attrs",
    [
        (lambda: C.GCNConv(F, 4, cached=True), ["_cached_edge_index"]),
        (lambda: C.GCN2Conv(F, 0.1, cached=True), ["_cached_edge_index"]),
        (lambda: C.APPNP(2, 0.1, cached=True), ["_cached_edge_index"]),
        (lambda: C.EGConv(F, F, cached=True), ["_cached_edge_index"]),
        (lambda: C.FAConv(F, cached=True), ["_cached_edge_index"]),
        (lambda: C.SGConv(F, 4, cached=True), ["_cached_x"]),
        (lambda: C.SSGConv(F, 4, 0.1, cached=True), ["_cached_h"]),
    ],
)
def test_cache_attributes_reset_by_hand(build, attrs):
    conv = build().double()
    x, ei = graph_with_loops()

    def run():
        if isinstance(conv, (C.GCN2Conv, C.FAConv)):
            return conv(x, x, ei)
        return conv(x, ei)

    first = run()
    for attr in attrs:
        assert getattr(conv, attr) is not None
        setattr(conv, attr, None)  # PyG users clear the cache this way
    testing.assert_close(run(), first)
    assert all(getattr(conv, attr) is not None for attr in attrs)  # computed (and kept) again


def test_supergat_sampling_methods_like_pyg():
    conv = C.SuperGATConv(F, 4, heads=2, neg_sample_ratio=0.5, edge_sample_ratio=0.5).train()
    _, ei = graph_with_loops()
    torch.manual_seed(0)
    pos = conv.positive_sampling(ei)
    assert pos.shape == (2, 10) and all(
        tuple(p) in set(map(tuple, ei.t().tolist())) for p in pos.t().tolist()
    )
    neg = conv.negative_sampling(ei, N)
    existing = set(map(tuple, ei.t().tolist()))
    assert neg.size(1) <= 5 and all(tuple(p) not in existing and p[0] != p[1] for p in neg.t().tolist())
    x = torch.randn(N, F)
    conv(x, ei)
    assert torch.isfinite(conv.get_attention_loss())


def test_bipartite_inputs_as_in_pyg():
    pyg = pytest.importorskip("torch_geometric.nn")
    g = torch.Generator().manual_seed(4)
    xs, xd = (
        torch.randn(6, F, generator=g, dtype=torch.float64),
        torch.randn(4, 5, generator=g, dtype=torch.float64),
    )
    ei = torch.tensor([[0, 1, 2, 5, 5], [0, 1, 3, 3, 2]])
    for build in (lambda lib: lib.GENConv((F, 5), 4), lambda lib: lib.GraphConv((F, 5), 4)):
        torch.manual_seed(0)
        theirs, ours = build(pyg).double(), build(C).double()
        testing.load_pyg_state(ours, theirs)
        testing.assert_close(ours((xs, xd), ei), theirs((xs, xd), ei), atol=1e-10)
    graph = C.GraphConv((F, 5), 4).double()
    assert graph((xs, xd), ei, size=(6, 4)).shape == (4, 4)
    with pytest.raises(ValueError, match="'x' has 4 nodes.*expects 5"):
        graph((xs, xd), ei, size=(6, 5))


def test_gat_residual_with_no_target_features_as_in_pyg():
    pyg = pytest.importorskip("torch_geometric.nn")
    torch.manual_seed(0)
    theirs, ours = pyg.GATConv(F, 4, residual=True).double(), C.GATConv(F, 4, residual=True).double()
    testing.load_pyg_state(ours, theirs)
    x, ei = graph_with_loops()
    testing.assert_close(ours((x, None), ei), theirs((x, None), ei), atol=1e-10)


STATIC = {
    "GCNConv": lambda lib: lib.GCNConv(F, 4),
    "SAGEConv": lambda lib: lib.SAGEConv(F, 4),
    "GraphConv": lambda lib: lib.GraphConv(F, 4),
    "GINConv": lambda lib: lib.GINConv(torch.nn.Linear(F, 4)),
    "ResGatedGraphConv": lambda lib: lib.ResGatedGraphConv(F, 4),
    "ARMAConv": lambda lib: lib.ARMAConv(F, 4, num_stacks=2),
    "MFConv": lambda lib: lib.MFConv(F, 4),
    "FiLMConv": lambda lib: lib.FiLMConv(F, 4),
    "ChebConv": lambda lib: lib.ChebConv(F, 4, 2),
    "ClusterGCNConv": lambda lib: lib.ClusterGCNConv(F, 4),
    "EdgeConv": lambda lib: lib.EdgeConv(torch.nn.Linear(2 * F, 4)),
    "TAGConv": lambda lib: lib.TAGConv(F, 4),
}


@pytest.mark.parametrize("name", sorted(STATIC))
def test_static_graphs_where_pyg_supports_them(name):
    pyg = pytest.importorskip("torch_geometric.nn")
    torch.manual_seed(0)
    theirs, ours = STATIC[name](pyg).double(), STATIC[name](C).double()
    testing.load_pyg_state(ours, theirs)
    _, ei = graph_with_loops()
    x = torch.randn(3, N, F, dtype=torch.float64)  # three feature sets on one graph
    testing.assert_close(ours(x, ei), theirs(x, ei), atol=1e-10)


@pytest.mark.parametrize(
    "build",
    [
        lambda: C.GATConv(F, 4),
        lambda: C.GATv2Conv(F, 4),
        lambda: C.TransformerConv(F, 4),
        lambda: C.SuperGATConv(F, 4),
        lambda: C.AGNNConv(),
        lambda: C.GENConv(F, 4),
        lambda: C.GCN2Conv(F, 0.1),
    ],
)
def test_static_graphs_where_pyg_does_not_support_them_raise_clearly(build):
    conv = build()
    _, ei = graph_with_loops()
    x = torch.randn(2, N, F)
    with pytest.raises(ValueError, match=r"'x' must hold \[N, F\] node features"):
        conv(x, x, ei) if isinstance(conv, C.GCN2Conv) else conv(x, ei)


@pytest.mark.parametrize(
    "call",
    [
        lambda ei: C.GINConv(torch.nn.Linear(F, 4))(torch.randn(N), ei),
        lambda ei: C.GINEConv(torch.nn.Linear(F, 4), edge_dim=2)(torch.randn(N), ei, torch.randn(20, 2)),
        lambda ei: C.APPNP(2, 0.1)(torch.randn(N), ei),
        lambda ei: C.EdgeConv(torch.nn.Linear(2 * F, 4))(torch.randn(N), ei),
        lambda ei: C.GraphConv(F, 4)(torch.randn(N), ei),
        lambda ei: C.ARMAConv(-1, 4)(torch.randn(N), ei),  # a lazy layer: the error comes before shaping
    ],
)
def test_one_dimensional_features_raise_naming_x(call):
    _, ei = graph_with_loops()
    with pytest.raises(ValueError, match="'x'"):
        call(ei)


@pytest.mark.parametrize(
    "call",
    [
        lambda x, ei, w: C.APPNP(2, 0.1)(x, ei, w),
        lambda x, ei, w: C.GraphConv(F, 4)(x, ei, w),
        lambda x, ei, w: C.GCNConv(F, 4)(x, ei, w),
    ],
)
def test_two_dimensional_edge_weight_raises_naming_it(call):
    x, ei = graph_with_loops()
    with pytest.raises(ValueError, match="'edge_weight'"):
        call(x.float(), ei, torch.rand(ei.size(1), 2))


def test_out_of_range_indices_are_value_and_index_errors():
    x, ei = graph_with_loops()
    bad = ei.clone()
    bad[1, 5] = N
    for conv in (C.GCNConv(F, 4).double(), C.GATConv(F, 4).double(), C.SAGEConv(F, 4).double()):
        with pytest.raises(IndexError, match="out of range"):
            conv(x, bad)
        with pytest.raises(ValueError, match="out of range"):
            conv(x, bad)


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_torchscript_gives_a_clear_error():
    with pytest.raises(RuntimeError, match=r"torch\.compile.*torch\.export"):
        torch.jit.script(C.GCNConv(F, 4))


def test_gcn_scans_the_edge_index_range_once(monkeypatch):
    """The user's ``edge_index`` is range-checked once per graph; the looped graph gnn derives from
    it is vouched for, not scanned again, in the first forward or any later one."""
    from gnn.core import validation

    scans = []
    original = validation._row_bounds
    monkeypatch.setattr(validation, "_row_bounds", lambda ei: scans.append(ei) or original(ei))
    conv = C.GCNConv(4, 3)
    x, edge_index = torch.randn(6, 4), torch.tensor([[0, 1, 2, 3, 4], [1, 2, 3, 4, 5]])
    first = conv(x, edge_index)
    second = conv(x, edge_index)
    assert len(scans) == 1 and scans[0] is edge_index
    torch.testing.assert_close(first, second)
    with pytest.raises(IndexError, match="edge_index"):
        conv(x, edge_index + 1)
