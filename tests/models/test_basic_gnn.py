"""The basic GNNs (GCN, GraphSAGE, GIN, GAT, PNA, EdgeCNN) and GNN over any registered conv:
a dense reference, PyG parity (every jk, several norms, outputs and gradients), signatures,
options, trimming, input forms and bad inputs."""

from __future__ import annotations

import inspect

import pytest
import torch
import torch.nn.functional as F

import gnn.models as models
from gnn.core import testing
from gnn.core.utils import coalesce, to_edge_index

N, E, F_IN, HIDDEN, F_OUT = 12, 48, 6, 8, 3
DEG = torch.tensor([1, 4, 6, 3, 1])
MODELS = {
    "GCN": {},
    "GraphSAGE": {},
    "GIN": {},
    "GAT": {"heads": 2},
    "PNA": {"aggregators": ["mean", "max", "std"], "scalers": ["identity", "amplification"], "deg": DEG},
    "EdgeCNN": {},
}
JKS = [None, "last", "cat", "max", "lstm"]


def graph(seed: int = 0, dtype: torch.dtype = torch.float32):
    x, edge_index = testing.random_graph(N, E, F_IN, seed=seed, dtype=dtype)
    g = torch.Generator().manual_seed(seed + 100)
    edge_weight = (torch.rand(E, generator=g) + 0.1).to(dtype)
    edge_attr = torch.randn(E, 2, generator=g).to(dtype)
    return x, edge_index, edge_weight, edge_attr


def edge_inputs(name: str, edge_weight, edge_attr) -> dict:
    if name == "GCN":
        return {"edge_weight": edge_weight}
    if name in ("GAT", "PNA"):
        return {"edge_attr": edge_attr}
    return {}


def build(lib, name: str, **kwargs):
    extra = dict(MODELS[name])
    if name in ("GAT", "PNA"):
        extra["edge_dim"] = 2
    return getattr(lib, name)(F_IN, HIDDEN, 3, **{**extra, **kwargs})


# -- a dense reference -----------------------------------------------------------------------------
def test_gcn_model_dense_reference():
    x, edge_index, edge_weight, _ = graph(1, torch.float64)
    model = models.GCN(F_IN, HIDDEN, 3, out_channels=F_OUT, act="elu").double()
    for conv in model.convs:
        torch.nn.init.normal_(conv.bias)
    a = testing.dense_gcn_adjacency(edge_index, edge_weight, N)
    h = x
    for i, conv in enumerate(model.convs):
        h = a @ h @ conv.lin.weight.t() + conv.bias
        if i < 2:
            h = F.elu(h)
    torch.testing.assert_close(model(x, edge_index, edge_weight), h)


def test_jk_modes_by_formula():
    x, edge_index, _, _ = graph(2, torch.float64)
    for jk in ("cat", "max", "last"):
        model = models.GraphSAGE(F_IN, HIDDEN, 2, out_channels=F_OUT, jk=jk).double()
        h1 = F.relu(model.convs[0](x, edge_index))
        h2 = F.relu(model.convs[1](h1, edge_index))
        combined = {"cat": torch.cat([h1, h2], -1), "max": torch.maximum(h1, h2), "last": h2}[jk]
        torch.testing.assert_close(model(x, edge_index), model.lin(combined))


# -- PyG parity ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("jk", JKS)
def test_matches_pyg_every_jk(name, jk):
    pyg = pytest.importorskip("torch_geometric")
    x, edge_index, edge_weight, edge_attr = graph(3)
    torch.manual_seed(0)
    theirs = build(pyg.nn, name, out_channels=F_OUT, jk=jk)
    ours = build(models, name, out_channels=F_OUT, jk=jk)
    testing.load_pyg_state(ours, theirs)
    assert repr(ours) == repr(theirs)
    kwargs = edge_inputs(name, edge_weight, edge_attr)
    testing.assert_close(ours(x, edge_index, **kwargs), theirs(x, edge_index, **kwargs))


@pytest.mark.parametrize("name", ["GCN", "GIN", "GAT", "EdgeCNN"])
@pytest.mark.parametrize(
    "norm, norm_kwargs",
    [("batch_norm", None), ("layer_norm", {"mode": "node"}), ("graph_norm", None), ("instance_norm", None)],
)
def test_matches_pyg_with_norms_outputs_and_gradients(name, norm, norm_kwargs):
    """Training mode (batch statistics) with a batch vector; outputs and every parameter's gradient."""
    pyg = pytest.importorskip("torch_geometric")
    x, edge_index, edge_weight, edge_attr = graph(4, torch.float64)
    batch = torch.tensor([0] * 5 + [1] * 7)
    torch.manual_seed(0)
    theirs = build(pyg.nn, name, out_channels=F_OUT, jk="cat", norm=norm, norm_kwargs=norm_kwargs).double()
    ours = build(models, name, out_channels=F_OUT, jk="cat", norm=norm, norm_kwargs=norm_kwargs).double()
    kwargs = {**edge_inputs(name, edge_weight, edge_attr), "batch": batch}
    testing.load_pyg_state(ours, theirs)
    assert ours.supports_norm_batch == theirs.supports_norm_batch
    out, out_p = ours(x, edge_index, **kwargs), theirs(x, edge_index, **kwargs)
    testing.assert_close(out, out_p, atol=1e-10, rtol=1e-8)
    out.square().sum().backward()
    out_p.square().sum().backward()
    grads = dict(theirs.named_parameters())
    for key, p in ours.named_parameters():
        testing.assert_close(p.grad, grads[key].grad, atol=1e-9, rtol=1e-7, msg=key)
    # the running statistics moved alike
    for key, value in theirs.state_dict().items():
        testing.assert_close(ours.state_dict()[key], value, atol=1e-10, rtol=1e-8, msg=key)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"act": "leaky_relu", "act_kwargs": {"negative_slope": 0.3}, "act_first": True, "norm": "batch_norm"},
        {"act": torch.nn.Tanh(), "norm": torch.nn.LayerNorm(HIDDEN)},
        {"act": None, "out_channels": None},
        {"act": "gelu", "norm": "BatchNorm", "norm_kwargs": {"affine": False}},
    ],
)
def test_matches_pyg_act_and_norm_options(kwargs):
    pyg = pytest.importorskip("torch_geometric")
    x, edge_index, _, _ = graph(5)
    kwargs = {"out_channels": F_OUT, **kwargs}
    torch.manual_seed(0)
    theirs = pyg.nn.GIN(F_IN, HIDDEN, 3, jk="max", **kwargs)
    ours = models.GIN(F_IN, HIDDEN, 3, jk="max", **kwargs)
    testing.load_pyg_state(ours, theirs)
    assert repr(ours.norms) == repr(theirs.norms)
    testing.assert_close(ours(x, edge_index), theirs(x, edge_index))
    ours.eval(), theirs.eval()
    testing.assert_close(ours(x, edge_index), theirs(x, edge_index))


@pytest.mark.parametrize("v2", [False, True])
@pytest.mark.parametrize("concat", [True, False])
def test_gat_heads_and_v2_match_pyg(v2, concat):
    pyg = pytest.importorskip("torch_geometric")
    x, edge_index, _, _ = graph(6)
    for jk in (None, "cat"):
        torch.manual_seed(0)
        theirs = pyg.nn.GAT(F_IN, HIDDEN, 2, out_channels=F_OUT, v2=v2, heads=4, concat=concat, jk=jk)
        ours = models.GAT(F_IN, HIDDEN, 2, out_channels=F_OUT, v2=v2, heads=4, concat=concat, jk=jk)
        testing.load_pyg_state(ours, theirs)
        assert [repr(c) for c in ours.convs] == [repr(c) for c in theirs.convs]
        assert ours.convs[0].dropout == theirs.convs[0].dropout
        ours.eval(), theirs.eval()
        testing.assert_close(ours(x, edge_index), theirs(x, edge_index))


def test_signatures_and_flags_match_pyg():
    pyg = pytest.importorskip("torch_geometric")
    for name in MODELS:
        ours, theirs = getattr(models, name), getattr(pyg.nn, name)
        for method in ("__init__", "forward", "inference_per_layer"):
            params = inspect.signature(getattr(ours, method)).parameters
            expected = inspect.signature(getattr(theirs, method)).parameters
            assert [(p.name, p.default, p.kind) for p in params.values()] == [
                (p.name, p.default, p.kind) for p in expected.values()
            ], (name, method)
        assert list(inspect.signature(ours.inference).parameters) == list(
            inspect.signature(theirs.inference).parameters
        )
        assert (ours.supports_edge_weight, ours.supports_edge_attr) == (
            theirs.supports_edge_weight,
            theirs.supports_edge_attr,
        ), name


def test_lazy_and_bipartite_in_channels_match_pyg():
    pyg = pytest.importorskip("torch_geometric")
    x, edge_index, _, _ = graph(7)
    torch.manual_seed(0)
    theirs = pyg.nn.GraphSAGE(-1, HIDDEN, 2)
    theirs(x, edge_index)
    ours = models.GraphSAGE(-1, HIDDEN, 2)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    testing.assert_close(ours(x, edge_index), theirs(x, edge_index))

    x_dst = torch.randn(5, 4)
    bip = torch.stack([torch.randint(0, N, (20,)), torch.randint(0, 5, (20,))])
    theirs = pyg.nn.GraphSAGE((F_IN, 4), HIDDEN, 1)
    ours = models.GraphSAGE((F_IN, 4), HIDDEN, 1)
    testing.load_pyg_state(ours, theirs)
    testing.assert_close(ours((x, x_dst), bip), theirs((x, x_dst), bip))


def test_trimming_matches_pyg_and_the_untrimmed_seeds():
    """A neighbour-sampled batch: seeds, then the nodes/edges of hop 1, then of hop 2."""
    pyg = pytest.importorskip("torch_geometric")
    g = torch.Generator().manual_seed(8)
    nodes = [3, 4, 5]  # seeds, hop 1, hop 2
    # hop-1 edges point from hop-1 nodes to seeds, hop-2 edges from hop-2 nodes to hop-1 nodes
    e1 = torch.stack([torch.randint(3, 7, (8,), generator=g), torch.randint(0, 3, (8,), generator=g)])
    e2 = torch.stack([torch.randint(7, 12, (10,), generator=g), torch.randint(3, 7, (10,), generator=g)])
    edge_index = torch.cat([e1, e2], dim=1)
    x = torch.randn(12, F_IN, generator=g)
    weight = torch.rand(18, generator=g)
    hops = {"num_sampled_nodes_per_hop": nodes, "num_sampled_edges_per_hop": [0, 8, 10]}
    trimmed = {}
    for name in ("GCN", "GraphSAGE"):
        torch.manual_seed(0)
        theirs = getattr(pyg.nn, name)(F_IN, HIDDEN, 2, out_channels=F_OUT)
        ours = getattr(models, name)(F_IN, HIDDEN, 2, out_channels=F_OUT)
        testing.load_pyg_state(ours, theirs)
        w = weight if name == "GCN" else None
        out = ours(x, edge_index, w, **hops)
        assert out.shape == (7, F_OUT)
        testing.assert_close(out, theirs(x, edge_index, w, **hops))
        trimmed[name] = ours, out
    # (mean aggregation: the seeds see the same neighbourhoods as without trimming)
    sage, out = trimmed["GraphSAGE"]
    testing.assert_close(out[:3], sage(x, edge_index)[:3])
    # a sparse adjacency (values: the weights) is trimmed alike
    gcn, out = trimmed["GCN"]
    adj = torch.sparse_coo_tensor(edge_index.flip(0), weight, (12, 12)).to_sparse_csr()
    testing.assert_close(gcn(x, adj, **hops), out)


def test_trimming_errors():
    model = models.GCN(F_IN, HIDDEN, 2)
    x, edge_index, weight, attr = graph(9)
    with pytest.raises(ValueError, match="num_sampled_edges_per_hop"):
        model(x, edge_index, num_sampled_nodes_per_hop=[4, 4, 4])
    with pytest.raises(ValueError, match="num_sampled_nodes_per_hop"):
        model(x, edge_index, num_sampled_nodes_per_hop=[4], num_sampled_edges_per_hop=[0])
    with pytest.raises(NotImplementedError, match="edge_weight"):
        model(
            x,
            edge_index,
            weight,
            attr,
            num_sampled_nodes_per_hop=[4, 4, 4],
            num_sampled_edges_per_hop=[0, 1, 1],
        )


def test_inference_per_layer_and_layerwise_inference():
    x, edge_index, _, _ = graph(10)
    model = models.GraphSAGE(F_IN, HIDDEN, 2, out_channels=F_OUT, norm="batch_norm").eval()
    full = model(x, edge_index)
    h = model.inference_per_layer(0, x, edge_index, N)
    testing.assert_close(model.inference_per_layer(1, h, edge_index, N), full)

    class Batch:
        def __init__(self, n_id, batch_size, edge_index):
            self.n_id, self.batch_size, self.edge_index = n_id, batch_size, edge_index

    class Loader(list):
        data = type("Data", (), {"x": x})()

    # two batches covering the seeds 0..5 and 6..11, each with its full 1-hop neighbourhood
    loader = Loader()
    for seeds in (torch.arange(6), torch.arange(6, N)):
        keep = torch.isin(edge_index[1], seeds)
        sub = edge_index[:, keep]
        n_id = torch.cat([seeds, sub[0][~torch.isin(sub[0], seeds)].unique()])
        local = torch.full((N,), -1, dtype=torch.long)
        local[n_id] = torch.arange(n_id.numel())
        loader.append(Batch(n_id, seeds.numel(), local[sub]))
    for cache in (False, True):
        testing.assert_close(model.inference(loader, cache=cache), full)
    with pytest.raises(RuntimeError, match="eval"):
        model.train().inference(loader)


# -- GNN: the same model over any conv of the registry -----------------------------------------------
def test_gnn_over_registered_convs_equals_the_named_model():
    x, edge_index, weight, _ = graph(11)
    for conv, named in (("gcn", models.GCN), ("SAGEConv", models.GraphSAGE)):
        torch.manual_seed(0)
        ours = models.GNN(conv, F_IN, HIDDEN, 3, out_channels=F_OUT, jk="lstm", norm="layer_norm")
        reference = named(F_IN, HIDDEN, 3, out_channels=F_OUT, jk="lstm", norm="layer_norm")
        reference.load_state_dict(ours.state_dict(), strict=True)
        assert ours.supports_edge_weight == reference.supports_edge_weight
        assert ours.supports_edge_attr == reference.supports_edge_attr
        w = weight if reference.supports_edge_weight else None
        testing.assert_close(ours(x, edge_index, w), reference(x, edge_index, w))
    model = models.GNN("sage", F_IN, HIDDEN, 2, aggr="max")
    assert repr(model) == f"GNN(SAGEConv, {F_IN}, {HIDDEN}, num_layers=2)"
    assert model.convs[0].aggr == "max"
    keyword = models.GNN(conv="sage", in_channels=F_IN, hidden_channels=HIDDEN, num_layers=2)
    assert repr(keyword) == f"GNN(SAGEConv, {F_IN}, {HIDDEN}, num_layers=2)"


def test_gnn_with_a_factory_and_edge_attr_detection():
    from gnn.conv import GINEConv

    def gine(in_channels, out_channels, **kwargs):
        return GINEConv(torch.nn.Linear(in_channels, out_channels), edge_dim=2, **kwargs)

    x, edge_index, _, edge_attr = graph(12)
    model = models.GNN(gine, F_IN, HIDDEN, 2, train_eps=True)
    assert model.supports_edge_attr and not model.supports_edge_weight
    h = F.relu(model.convs[0](x, edge_index, edge_attr))
    testing.assert_close(model(x, edge_index, edge_attr=edge_attr), model.convs[1](h, edge_index, edge_attr))
    assert model.convs[0].eps.requires_grad


def test_gnn_errors():
    with pytest.raises(ValueError, match="conv"):
        models.GNN("no_such_conv_xyz", F_IN, HIDDEN, 2)
    with pytest.raises(TypeError, match="conv"):
        models.GNN(torch.nn.Linear(2, 2), F_IN, HIDDEN, 2)
    with pytest.raises(TypeError, match="conv"):
        models.GNN(lambda i, o: "not a module", F_IN, HIDDEN, 2)


# -- inputs -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(MODELS))
def test_input_forms(name):
    """float64, int32 indices, non-contiguous features, sparse adjacency, empty graphs."""
    x, edge_index, edge_weight, edge_attr = graph(13, torch.float64)
    model = build(models, name, out_channels=F_OUT).double().eval()
    kwargs = edge_inputs(name, edge_weight, edge_attr)
    expected = model(x, edge_index, **kwargs)
    assert expected.dtype == torch.float64 and expected.shape == (N, F_OUT)
    testing.assert_close(model(x, edge_index.int(), **kwargs), expected)
    strided = torch.stack([x, -x], dim=-1)[..., 0]  # x as a non-contiguous view
    assert not strided.is_contiguous()
    testing.assert_close(model(strided, edge_index, **kwargs), expected)
    if name in ("GCN", "GraphSAGE", "GIN"):
        # (a sparse adjacency merges duplicate edges: compare on a graph without any)
        unique, w = coalesce(edge_index, edge_weight, N)
        w = w if name == "GCN" else None
        adj = torch.sparse_coo_tensor(
            unique.flip(0), w if w is not None else torch.ones(unique.size(1)), (N, N)
        )
        testing.assert_close(model(x, adj.to_sparse_csr()), model(x, unique, w), atol=1e-8, rtol=1e-6)
    empty = edge_index[:, :0]
    out = model(x, empty, **{k: v[:0] for k, v in kwargs.items()})
    assert out.shape == (N, F_OUT) and torch.isfinite(out).all()
    assert model(x[:0], empty, **{k: v[:0] for k, v in kwargs.items()}).shape == (0, F_OUT)


def test_training_step_with_dropout_runs_and_learns():
    x, edge_index, _, _ = graph(14)
    y = torch.randint(0, F_OUT, (N,), generator=torch.Generator().manual_seed(0))
    model = models.GCN(F_IN, HIDDEN, 2, out_channels=F_OUT, dropout=0.3, norm="batch_norm")
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss = F.cross_entropy(model(x, edge_index), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    model.eval()
    testing.assert_close(model(x, edge_index), model(x, edge_index))  # deterministic in eval


def test_compiles_without_graph_breaks():
    x, edge_index, weight, _ = graph(15)
    model = models.GCN(F_IN, HIDDEN, 2, out_channels=F_OUT, jk="cat")
    testing.assert_compiles_like_eager(model, x, edge_index, weight)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"num_layers": 0}, "num_layers"),
        ({"hidden_channels": -1}, "hidden_channels"),
        ({"jk": "sum"}, "jk"),
        ({"dropout": 1.5}, "dropout"),
        ({"norm": "no_such_norm_xyz"}, "norm"),
        ({"act": "no_such_act_xyz"}, "act"),
        ({"out_channels": 0}, "out_channels"),
    ],
)
def test_bad_arguments(kwargs, match):
    args = {"in_channels": F_IN, "hidden_channels": HIDDEN, "num_layers": 2, **kwargs}
    with pytest.raises(ValueError, match=match):
        models.GCN(**args)


def test_gat_heads_must_divide_hidden_channels():
    with pytest.raises(ValueError, match="heads"):
        models.GAT(F_IN, 10, 2, heads=3)


def test_bad_inputs_name_the_argument():
    model = models.GCN(F_IN, HIDDEN, 2)
    x, edge_index, _, _ = graph(16)
    with pytest.raises(ValueError, match="edge_index"):
        model(x, edge_index[:1])
    with pytest.raises(IndexError):
        model(x, edge_index + N)
    with pytest.raises(ValueError, match="x"):
        model(x[:, :2], edge_index)


def test_to_edge_index_of_trimmed_sparse_keeps_only_seed_receivers():
    """The sparse trim keeps the edges into the nodes of the first hops only."""
    x = torch.randn(6, F_IN)
    edge_index = torch.tensor([[1, 2, 3, 4, 5], [0, 0, 1, 2, 3]])
    adj = torch.sparse_coo_tensor(edge_index.flip(0), torch.ones(5), (6, 6)).to_sparse_csr()
    from gnn.models.basic_gnn import _trim

    _, trimmed, _ = _trim(1, [1, 2, 3], [0, 2, 3], x, adj, None)
    index, _ = to_edge_index(trimmed)
    assert sorted(map(tuple, index.t().tolist())) == [(1, 0), (2, 0)]


def test_forward_hook_output_is_never_overwritten_by_the_activation():
    """The ReLU runs in place on the layers' fresh outputs only: a hooked layer's output stays."""
    x, edge_index, _, _ = graph(17)
    model = models.GraphSAGE(F_IN, HIDDEN, 2)
    seen = []
    model.convs[0].register_forward_hook(lambda module, inputs, output: seen.append(output))
    model(x, edge_index)
    assert bool((seen[0] < 0).any())  # the hook's tensor was not passed through the ReLU in place
