"""Dense convolutions (gnn.conv.dense): dense formulas, PyG parity, masks, 2-D inputs, empty graphs, errors."""

from __future__ import annotations

import inspect

import pytest
import torch
import torch.nn.functional as F

from gnn.conv import DenseGATConv, DenseGCNConv, DenseGINConv, DenseGraphConv, DenseSAGEConv, GCNConv
from gnn.core import testing
from gnn.core.utils import to_dense_adj, to_dense_batch

B, N, F_IN, F_OUT = 3, 6, 5, 4


def inputs(seed: int = 0, dtype: torch.dtype = torch.float64, symmetric: bool = False):
    """``x [B, N, F_IN]``, a weighted ``adj [B, N, N]`` with some self loops, and a mask (graph 1 has 4 nodes)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, N, F_IN, generator=g, dtype=dtype)
    adj = (torch.rand(B, N, N, generator=g) < 0.5).to(dtype) * (
        torch.rand(B, N, N, generator=g, dtype=dtype) + 0.5
    )
    if symmetric:
        adj = adj + adj.transpose(1, 2)
    mask = torch.ones(B, N, dtype=torch.bool)
    mask[1, 4:] = False
    return x, adj, mask


def loop_aggregate(x, adj, rule):
    """``out[b, i] = rule(i, [(j, adj[b, i, j]) for non-zero entries])`` by explicit loops."""
    out = []
    for b in range(x.size(0)):
        rows = []
        for i in range(x.size(1)):
            nbrs = [(j, adj[b, i, j]) for j in range(x.size(1)) if adj[b, i, j] != 0]
            rows.append(rule(x[b], i, nbrs))
        out.append(torch.stack(rows))
    return torch.stack(out)


# -- dense formulas ---------------------------------------------------------------------------------
@pytest.mark.parametrize("improved", [False, True])
@pytest.mark.parametrize("add_loop", [True, False])
def test_gcn_formula(improved, add_loop):
    x, adj, mask = inputs()
    conv = DenseGCNConv(F_IN, F_OUT, improved=improved).double()
    torch.nn.init.normal_(conv.bias)
    expected = []
    for b in range(B):
        a = adj[b].clone()
        if add_loop:
            for i in range(N):
                a[i, i] = 2.0 if improved else 1.0  # the diagonal is set, not added to
        d = a.sum(1).clamp(min=1).pow(-0.5)
        expected.append(d[:, None] * a * d[None, :] @ x[b] @ conv.lin.weight.t() + conv.bias)
    expected = torch.stack(expected)
    torch.testing.assert_close(conv(x, adj, add_loop=add_loop), expected)
    torch.testing.assert_close(conv(x, adj, mask, add_loop), expected * mask[..., None])


def test_gcn_wide_output_takes_the_other_order():
    # out_channels > in_channels aggregates first, then transforms: same numbers
    x, adj, _ = inputs()
    conv = DenseGCNConv(F_IN, 3 * F_IN).double()
    a = adj.clone()
    a.diagonal(dim1=1, dim2=2).fill_(1.0)
    d = a.sum(-1).clamp(min=1).pow(-0.5)
    expected = (d[..., None] * a * d[:, None, :]) @ x @ conv.lin.weight.t()
    torch.testing.assert_close(conv(x, adj), expected)


@pytest.mark.parametrize("eps, train_eps", [(0.0, False), (0.25, True)])
def test_gin_formula(eps, train_eps):
    x, adj, mask = inputs()
    net = torch.nn.Sequential(torch.nn.Linear(F_IN, 8), torch.nn.ReLU(), torch.nn.Linear(8, F_OUT)).double()
    conv = DenseGINConv(net, eps=eps, train_eps=train_eps)
    assert isinstance(conv.eps, torch.nn.Parameter) == train_eps
    summed = loop_aggregate(
        x, adj, lambda xb, i, nb: sum((w * xb[j] for j, w in nb), torch.zeros(F_IN).double())
    )
    torch.testing.assert_close(conv(x, adj, mask), net(summed + (1 + eps) * x) * mask[..., None])
    torch.testing.assert_close(conv(x, adj, add_loop=False), net(summed))


@pytest.mark.parametrize("aggr", ["add", "mean", "max"])
def test_graph_conv_formula(aggr):
    x, adj, mask = inputs()
    conv = DenseGraphConv(F_IN, F_OUT, aggr=aggr).double()
    if aggr == "max":  # PyG 2.8's reading: max over j with adj[j, i] != 0, unweighted; 0 if none
        agg = loop_aggregate(
            x,
            adj.transpose(1, 2),
            lambda xb, i, nb: (
                torch.stack([xb[j] for j, _ in nb]).max(0).values if nb else torch.zeros(F_IN).double()
            ),
        )
    else:
        agg = loop_aggregate(
            x, adj, lambda xb, i, nb: sum((w * xb[j] for j, w in nb), torch.zeros(F_IN).double())
        )
        if aggr == "mean":
            agg = agg / adj.sum(-1, keepdim=True).clamp(min=1)
    expected = conv.lin_rel(agg) + x @ conv.lin_root.weight.t()
    torch.testing.assert_close(conv(x, adj, mask), expected * mask[..., None])


@pytest.mark.parametrize("normalize", [False, True])
def test_sage_formula(normalize):
    x, adj, mask = inputs()
    conv = DenseSAGEConv(F_IN, F_OUT, normalize=normalize).double()
    mean = loop_aggregate(
        x, adj, lambda xb, i, nb: sum((w * xb[j] for j, w in nb), torch.zeros(F_IN).double())
    )
    mean = mean / adj.sum(-1, keepdim=True).clamp(min=1)
    expected = mean @ conv.lin_rel.weight.t() + conv.lin_root(x)
    if normalize:
        expected = expected / expected.norm(dim=-1, keepdim=True)
    torch.testing.assert_close(conv(x, adj, mask), expected * mask[..., None])


@pytest.mark.parametrize("concat", [True, False])
@pytest.mark.parametrize("add_loop", [True, False])
def test_gat_formula(concat, add_loop):
    x, adj, mask = inputs()
    heads = 3
    conv = DenseGATConv(F_IN, F_OUT, heads=heads, concat=concat, negative_slope=0.1).double()
    torch.nn.init.normal_(conv.bias)
    z = (x @ conv.lin.weight.t()).view(B, N, heads, F_OUT)
    out = torch.zeros(B, N, heads, F_OUT, dtype=torch.float64)
    for b in range(B):
        for i in range(N):
            nbrs = [j for j in range(N) if adj[b, i, j] != 0 or (add_loop and i == j)]
            for h in range(heads):
                if not nbrs:
                    continue  # no incoming edge: nothing aggregated
                e = torch.stack(
                    [
                        F.leaky_relu(
                            (z[b, i, h] * conv.att_dst[0, 0, h]).sum()
                            + (z[b, j, h] * conv.att_src[0, 0, h]).sum(),
                            0.1,
                        )
                        for j in nbrs
                    ]
                )
                alpha = torch.softmax(e, 0)
                out[b, i, h] = sum(a * z[b, j, h] for a, j in zip(alpha, nbrs))
    expected = (out.reshape(B, N, heads * F_OUT) if concat else out.mean(2)) + conv.bias
    torch.testing.assert_close(conv(x, adj, add_loop=add_loop), expected)
    torch.testing.assert_close(conv(x, adj, mask, add_loop), expected * mask[..., None])


def test_gat_isolated_node_gets_the_bias_not_nan():
    conv = DenseGATConv(F_IN, F_OUT, heads=2)
    torch.nn.init.normal_(conv.bias)
    out = conv(torch.randn(1, 3, F_IN), torch.zeros(1, 3, 3), add_loop=False)
    torch.testing.assert_close(out, conv.bias.expand(1, 3, -1))


def test_gat_attention_dropout_only_while_training():
    x, adj, _ = inputs(dtype=torch.float32)
    conv = DenseGATConv(F_IN, F_OUT, heads=2, dropout=0.9)
    conv.eval()
    ref = conv(x, adj)
    torch.testing.assert_close(conv(x, adj), ref)
    conv.train()
    assert not torch.allclose(conv(x, adj), ref)


# -- the sparse layers, through to_dense_batch / to_dense_adj ------------------------------------
def test_dense_gcn_matches_sparse_gcn_on_a_batch():
    x, edge_index = testing.random_graph(9, 30, F_IN, seed=4, duplicates=False, self_loops=False)
    edge_index = edge_index[:, edge_index[0] != edge_index[1]]
    batch = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1, 1])
    edge_index = edge_index[:, batch[edge_index[0]] == batch[edge_index[1]]]  # edges inside graphs
    sparse = GCNConv(F_IN, F_OUT)
    dense = DenseGCNConv(F_IN, F_OUT)
    dense.lin.weight.data.copy_(sparse.lin.weight)
    dense.bias.data.copy_(sparse.bias)
    x_dense, mask = to_dense_batch(x, batch)
    # to_dense_adj holds the edge i -> j at [i, j]; the layer sums adj[i, j] x_j: transpose to follow edges
    adj = to_dense_adj(edge_index, batch).transpose(1, 2)
    adj = adj.clamp(max=1)  # duplicate edges count once in both
    edge_index = torch.unique(edge_index, dim=1)
    testing.assert_close(dense(x_dense, adj, mask)[mask], sparse(x, edge_index))


# -- PyG parity ------------------------------------------------------------------------------------
LAYERS = [
    ("DenseGCNConv", lambda m: m.DenseGCNConv(F_IN, F_OUT)),
    ("DenseGCNConv-improved", lambda m: m.DenseGCNConv(F_IN, 2 * F_IN, improved=True, bias=False)),
    ("DenseGINConv", lambda m: m.DenseGINConv(torch.nn.Linear(F_IN, F_OUT), eps=0.3, train_eps=True)),
    ("DenseGraphConv", lambda m: m.DenseGraphConv(F_IN, F_OUT)),
    ("DenseGraphConv-mean", lambda m: m.DenseGraphConv(F_IN, F_OUT, aggr="mean", bias=False)),
    ("DenseGraphConv-max", lambda m: m.DenseGraphConv(F_IN, F_OUT, aggr="max")),
    ("DenseSAGEConv", lambda m: m.DenseSAGEConv(F_IN, F_OUT, normalize=True)),
    ("DenseGATConv", lambda m: m.DenseGATConv(F_IN, F_OUT, heads=2)),
    ("DenseGATConv-mean", lambda m: m.DenseGATConv(F_IN, F_OUT, heads=3, concat=False, negative_slope=0.3)),
]


@pytest.mark.parametrize("name, make", LAYERS, ids=[n for n, _ in LAYERS])
def test_matches_pyg(name, make):
    pyg = pytest.importorskip("torch_geometric")
    import gnn.conv

    torch.manual_seed(0)
    theirs, ours = make(pyg.nn), make(gnn.conv)
    testing.load_pyg_state(ours, theirs)
    assert repr(ours) == repr(theirs)
    x, adj, mask = inputs(seed=1, dtype=torch.float32)
    takes_loop = "add_loop" in inspect.signature(type(ours).forward).parameters
    for mode in ("train", "eval"):
        ours.train(mode == "train")
        theirs.train(mode == "train")
        testing.assert_close(ours(x, adj), theirs(x, adj))
        testing.assert_close(ours(x, adj, mask), theirs(x, adj, mask))
        testing.assert_close(ours(x[0], adj[0]), theirs(x[0], adj[0]))  # 2-D: one graph
        if takes_loop:
            adj_loops = adj + torch.eye(N)  # every node keeps an edge (PyG's GAT gives NaN otherwise)
            testing.assert_close(ours(x, adj_loops, mask, False), theirs(x, adj_loops, mask, False))


@pytest.mark.parametrize(
    "name", ["DenseGCNConv", "DenseGINConv", "DenseGraphConv", "DenseSAGEConv", "DenseGATConv"]
)
def test_signatures_match_pyg(name):
    pyg = pytest.importorskip("torch_geometric")
    import gnn.conv

    for method in ("__init__", "forward"):
        ours = inspect.signature(getattr(getattr(gnn.conv, name), method)).parameters.values()
        theirs = inspect.signature(getattr(getattr(pyg.nn, name), method)).parameters.values()
        assert [(p.name, p.default, p.kind) for p in ours] == [(p.name, p.default, p.kind) for p in theirs]


def test_state_dict_keys():
    assert set(DenseGCNConv(3, 4).state_dict()) == {"lin.weight", "bias"}
    assert set(DenseGINConv(torch.nn.Linear(3, 4)).state_dict()) == {"eps", "nn.weight", "nn.bias"}
    assert set(DenseGraphConv(3, 4).state_dict()) == {"lin_rel.weight", "lin_rel.bias", "lin_root.weight"}
    assert set(DenseSAGEConv(3, 4).state_dict()) == {"lin_rel.weight", "lin_root.weight", "lin_root.bias"}
    assert {k: tuple(v.shape) for k, v in DenseGATConv(3, 4, heads=2).state_dict().items()} == {
        "lin.weight": (8, 3),
        "att_src": (1, 1, 2, 4),
        "att_dst": (1, 1, 2, 4),
        "bias": (8,),
    }


# -- inputs ----------------------------------------------------------------------------------------
ALL = [
    lambda: DenseGCNConv(F_IN, F_OUT),
    lambda: DenseGINConv(torch.nn.Linear(F_IN, F_OUT)),
    lambda: DenseGraphConv(F_IN, F_OUT, aggr="max"),
    lambda: DenseSAGEConv(F_IN, F_OUT),
    lambda: DenseGATConv(F_IN, F_OUT, heads=2, concat=False),
]


@pytest.mark.parametrize("make", ALL)
def test_empty_and_single_node_graphs(make):
    conv = make()
    assert conv(torch.randn(2, 0, F_IN), torch.zeros(2, 0, 0)).shape == (2, 0, F_OUT)
    assert conv(torch.randn(0, 3, F_IN), torch.zeros(0, 3, 3)).shape == (0, 3, F_OUT)
    single = conv(torch.randn(4, 1, F_IN), torch.zeros(4, 1, 1))
    assert single.shape == (4, 1, F_OUT) and torch.isfinite(single).all()


@pytest.mark.parametrize("make", ALL)
def test_masked_rows_are_zero_and_padding_without_edges_changes_nothing(make):
    conv = make()
    x, adj, mask = inputs(seed=2, dtype=torch.float32)
    adj = adj * mask[:, None, :] * mask[:, :, None]  # padded nodes have no edges
    out = conv(x, adj, mask)
    assert (out[~mask] == 0).all()
    # graph 1 alone (4 nodes, no padding) gives its real rows
    testing.assert_close(out[1, :4], conv(x[1:2, :4], adj[1:2, :4, :4])[0])


@pytest.mark.parametrize("make", ALL)
def test_float64_bool_adjacency_and_non_contiguous(make):
    conv = make().double()
    x, adj, mask = inputs(seed=3)
    binary = adj != 0
    testing.assert_close(conv(x, binary, mask), conv(x, binary.double(), mask))
    x_t = x.transpose(1, 2).contiguous().transpose(1, 2)
    testing.assert_close(conv(x_t, adj.transpose(1, 2).contiguous().transpose(1, 2)), conv(x, adj))


@pytest.mark.parametrize("make", ALL)
def test_one_feature_matrix_broadcasts_over_a_batch_of_adjacencies(make):
    conv = make()
    x, adj, mask = inputs(seed=6, dtype=torch.float32)
    testing.assert_close(conv(x[0], adj, mask), conv(x[:1].expand(B, -1, -1), adj, mask))


def test_lazy_in_channels():
    conv = DenseGCNConv(-1, F_OUT)
    out = conv(torch.randn(2, 4, 7), torch.ones(2, 4, 4))
    assert out.shape == (2, 4, F_OUT) and conv.lin.weight.shape == (F_OUT, 7)


@pytest.mark.parametrize("make", ALL)
def test_bad_inputs_name_the_argument(make):
    conv = make()
    x, adj, mask = inputs(dtype=torch.float32)
    with pytest.raises(TypeError, match="'x'"):
        conv(x.tolist(), adj)
    with pytest.raises(TypeError, match="'adj'"):
        conv(x, None)
    with pytest.raises(ValueError, match="'x'"):
        conv(x[0, 0], adj)
    with pytest.raises(ValueError, match="'adj'"):
        conv(x, adj[:, :, :-1])
    with pytest.raises(ValueError, match="'adj'"):
        conv(x, adj[:, :-1, :-1])
    with pytest.raises(ValueError, match="batch size"):
        conv(x, adj[:2])
    with pytest.raises(ValueError, match="'mask'"):
        conv(x, adj, mask[:, :-1])
    with pytest.raises(TypeError, match="'x'"):
        conv(x.long(), adj)


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="'x'.*in_channels"):
        DenseSAGEConv(F_IN + 1, F_OUT)(*inputs()[:2])
    with pytest.raises(ValueError, match="'aggr'"):
        DenseGraphConv(F_IN, F_OUT, aggr="median")
    with pytest.raises(ValueError, match="'heads'"):
        DenseGATConv(F_IN, F_OUT, heads=0)


def test_gcn_compiles_without_graph_breaks():
    x, adj, mask = inputs(seed=5, dtype=torch.float32)
    testing.assert_compiles_like_eager(DenseGCNConv(F_IN, F_OUT), x, adj, mask)


def test_reexported_and_reachable_through_gnn_nn():
    import gnn.conv.dense as dense
    import gnn.nn

    assert gnn.nn.DenseGATConv is dense.DenseGATConv is DenseGATConv
    assert gnn.nn.dense is dense
