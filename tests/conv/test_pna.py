"""PNAConv against a per-node loop reference, PyG, sparse inputs and bad input."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from gnn.conv.pna import PNAConv
from gnn.core import testing
from gnn.core.utils import is_sparse

DEG = torch.tensor([1, 4, 6, 3, 2])
AGGREGATORS = ["mean", "min", "max", "sum"]
SCALERS = ["identity", "amplification", "attenuation", "linear", "inverse_linear"]


def loop_reference(conv: PNAConv, x, edge_index, edge_attr, aggregators, scalers, deg_hist):
    """PNA node by node in float64: per-tower pre-nets, aggregators x scalers, post-nets, lin."""
    ref = copy.deepcopy(conv).double()
    x = x.double()
    n, towers, f_in = x.size(0), conv.towers, conv.F_in
    bins = torch.arange(deg_hist.numel(), dtype=torch.float64)
    avg_lin = float((bins * deg_hist).sum() / deg_hist.sum())
    avg_log = float(((bins + 1).log() * deg_hist).sum() / deg_hist.sum())
    xt = x.view(n, towers, f_in) if conv.divide_input else x.view(n, 1, f_in).expand(n, towers, f_in)
    rows = []
    with torch.no_grad():
        for i in range(n):
            edges = (edge_index[1] == i).nonzero().view(-1).tolist()
            d = max(len(edges), 1)
            tower_outs = []
            for t in range(towers):
                msgs = []
                for e in edges:
                    parts = [xt[i, t], xt[int(edge_index[0, e]), t]]
                    if edge_attr is not None:
                        parts.append(ref.edge_encoder(edge_attr[e].double()))
                    msgs.append(ref.pre_nns[t](torch.cat(parts)))
                if msgs:
                    m = torch.stack(msgs)
                    aggs = {
                        "mean": m.mean(0),
                        "min": m.min(0).values,
                        "max": m.max(0).values,
                        "sum": m.sum(0),
                    }
                else:
                    aggs = {a: torch.zeros(f_in, dtype=torch.float64) for a in aggregators}
                h = torch.cat([aggs[a] for a in aggregators])
                factor = {
                    "identity": 1.0,
                    "amplification": math.log(d + 1) / avg_log,
                    "attenuation": avg_log / math.log(d + 1),
                    "linear": d / avg_lin,
                    "inverse_linear": avg_lin / d,
                }
                scaled = torch.cat([h * factor[s] for s in scalers])
                tower_outs.append(ref.post_nns[t](torch.cat([xt[i, t], scaled])))
            rows.append(ref.lin(torch.cat(tower_outs)))
    return torch.stack(rows).float()


@pytest.mark.parametrize(
    "options",
    [
        dict(),
        dict(towers=2, divide_input=True, pre_layers=2, post_layers=2),
        dict(towers=2, edge_dim=3, act="tanh"),
    ],
)
def test_matches_loop_reference(options):
    x, edge_index = testing.random_graph(12, 36, 4, seed=1)
    edge_attr = torch.randn(36, 3) if "edge_dim" in options else None
    conv = PNAConv(4, 6, AGGREGATORS, SCALERS, DEG, **options)
    expected = loop_reference(conv, x, edge_index, edge_attr, AGGREGATORS, SCALERS, DEG.double())
    testing.assert_close(conv(x, edge_index, edge_attr), expected)


def test_sparse_formats_agree():
    x, edge_index = testing.random_graph(10, 30, 4, seed=2)
    conv = PNAConv(4, 4, ["mean", "max", "std"], ["identity", "linear"], DEG)
    # without edge_dim the values of the sparse forms are ignored
    testing.assert_formats_agree(lambda adj: conv(x, adj), edge_index, 10)
    weight = torch.randn(30)
    conv = PNAConv(4, 4, ["mean", "max"], ["identity", "linear"], DEG, edge_dim=1)
    testing.assert_formats_agree(
        lambda adj: conv(x, adj, None if is_sparse(adj) else weight.view(-1, 1)),
        edge_index,
        10,
        edge_weight=weight,
    )


def test_edge_permutation_invariance():
    x, edge_index = testing.random_graph(14, 45, 4, seed=3)
    edge_attr = torch.randn(45, 2)
    conv = PNAConv(4, 4, ["mean", "max", "std"], SCALERS, DEG, edge_dim=2, towers=2)
    perm = torch.randperm(45, generator=torch.Generator().manual_seed(0))
    testing.assert_close(conv(x, edge_index[:, perm], edge_attr[perm]), conv(x, edge_index, edge_attr))


def test_degree_histogram():
    class Graph:
        def __init__(self, edge_index, num_nodes):
            self.edge_index, self.num_nodes = edge_index, num_nodes

    graphs = [Graph(torch.tensor([[0, 1, 2, 0], [1, 1, 1, 2]]), 4), Graph(torch.tensor([[0], [1]]), 3)]
    # in-degrees: [0, 3, 1, 0] and [0, 1, 0] -> 4 nodes of degree 0, 2 of degree 1, 1 of degree 3
    assert PNAConv.get_degree_histogram(graphs).tolist() == [4, 2, 0, 1]


def test_reset_parameters():
    conv = PNAConv(4, 4, ["mean"], ["identity"], DEG, edge_dim=2, pre_layers=2, train_norm=True)
    for p in conv.parameters():
        torch.nn.init.constant_(p, 7.0)
    conv.reset_parameters()
    bins = torch.arange(DEG.numel(), dtype=torch.float64)
    avg_lin = float((bins * DEG).sum() / DEG.sum())
    assert conv.aggr_module.avg_deg_lin.item() == pytest.approx(avg_lin)
    for name, p in conv.named_parameters():
        if "avg_deg" not in name:
            assert p.abs().max() < 7.0 and p.std() > 0, name


def test_bad_input():
    x, edge_index = testing.random_graph(10, 30, 4, seed=4)
    conv = PNAConv(4, 4, ["mean"], ["identity"], DEG, edge_dim=2)
    edge_attr = torch.randn(30, 2)
    with pytest.raises(ValueError, match="x"):
        conv(torch.randn(10, 5), edge_index, edge_attr)
    with pytest.raises(ValueError, match="edge_attr"):
        conv(x, edge_index, edge_attr[:-1])
    with pytest.raises(ValueError, match="edge_attr"):
        conv(x, edge_index, torch.randn(30, 3))
    with pytest.raises(ValueError, match="edge_attr"):
        PNAConv(4, 4, ["mean"], ["identity"], DEG)(x, edge_index, edge_attr)
    with pytest.raises(ValueError, match="edge_index"):
        conv(x, edge_index[:1], edge_attr)
    with pytest.raises(TypeError, match="edge_index"):
        conv(x, edge_index.float(), edge_attr)
    with pytest.raises(ValueError, match="edge_index"):
        conv(x, torch.tensor([[0, 10], [1, 2]]), edge_attr[:2])
    with pytest.raises(ValueError, match="towers"):
        PNAConv(4, 5, ["mean"], ["identity"], DEG, towers=2)
    with pytest.raises(ValueError, match="scaler"):
        PNAConv(4, 4, ["mean"], ["cubic"], DEG)


def test_pyg_parity():
    pyg = pytest.importorskip("torch_geometric")
    x, edge_index = testing.random_graph(20, 70, 8, seed=5)
    edge_attr = torch.randn(70, 3)
    args = (8, 12, ["mean", "min", "max", "std"], SCALERS, DEG)
    options = dict(
        edge_dim=3,
        towers=3,
        pre_layers=2,
        post_layers=3,
        act="leaky_relu",
        act_kwargs={"negative_slope": 0.3},
    )
    theirs, ours = pyg.nn.PNAConv(*args, **options), PNAConv(*args, **options)
    assert repr(ours) == repr(theirs)
    testing.assert_signatures_match(PNAConv, type(theirs), defaults=False)
    testing.load_pyg_state(ours, theirs)
    testing.assert_close(ours(x, edge_index, edge_attr), theirs(x, edge_index, edge_attr))
    args = (8, 4, ["mean", "max"], ["identity", "amplification"], DEG)
    theirs = pyg.nn.PNAConv(*args, towers=2, divide_input=True, train_norm=True)
    ours = PNAConv(*args, towers=2, divide_input=True, train_norm=True)
    testing.load_pyg_state(ours, theirs)
    testing.assert_close(ours(x, edge_index), theirs(x, edge_index))

    class Graph:
        def __init__(self, edge_index, num_nodes):
            self.edge_index, self.num_nodes = edge_index, num_nodes

    graphs = [Graph(testing.random_graph(n, 3 * n, 1, seed=n)[1], n) for n in (5, 9, 14)]
    assert torch.equal(PNAConv.get_degree_histogram(graphs), pyg.nn.PNAConv.get_degree_histogram(graphs))


def test_empty_graph():
    conv = PNAConv(4, 4, AGGREGATORS, SCALERS, DEG, edge_dim=2, towers=2)
    x, no_edges, no_attr = torch.randn(5, 4), torch.empty(2, 0, dtype=torch.long), torch.empty(0, 2)
    expected = loop_reference(conv, x, no_edges, no_attr, AGGREGATORS, SCALERS, DEG.double())
    testing.assert_close(conv(x, no_edges, no_attr), expected)
    assert conv(torch.randn(0, 4), no_edges, no_attr).shape == (0, 4)


# -- the per-node message path (edge_dim=None, one-layer pre-networks) ------------------------------
@pytest.mark.parametrize(
    "options",
    [
        dict(),
        dict(towers=2),
        dict(towers=2, divide_input=True, train_norm=True),
        dict(aggregators=["sum", "var", "max", "softmax"], scalers=["identity", "attenuation"]),
    ],
)
def test_per_node_path_matches_per_edge_path_and_pyg(options):
    pyg = pytest.importorskip("torch_geometric")
    options = dict(options)
    aggregators = options.pop("aggregators", ["mean", "min", "max", "std"])
    scalers = options.pop("scalers", SCALERS)
    x, edge_index = testing.random_graph(30, 120, 8, seed=6, dtype=torch.float64)
    edge_index[1, :5] = 29  # node 29 receives 5 edges; some nodes receive none
    args = (8, 6, aggregators, scalers, DEG)
    torch.manual_seed(0)
    ours, theirs = PNAConv(*args, **options), pyg.nn.PNAConv(*args, **options)
    testing.load_pyg_state(ours, theirs)
    ours, theirs = ours.double(), theirs.double()  # float64: gradients compared tightly
    assert ours._messages_are_linear()
    xa, xb, xc = (x.clone().requires_grad_() for _ in range(3))
    fast = ours(xa, edge_index)
    handle = ours.register_message_forward_hook(lambda module, inputs, out: None)  # observable messages
    assert not ours._messages_are_linear()
    general = ours(xb, edge_index)
    handle.remove()
    expected = theirs(xc, edge_index)
    testing.assert_close(fast, expected)
    testing.assert_close(general, expected)
    w = torch.randn(fast.shape, generator=torch.Generator().manual_seed(3), dtype=fast.dtype)
    grads = [
        torch.autograd.grad((out * w).sum(), [inp, *module.parameters()])
        for out, inp, module in ((fast, xa, ours), (expected, xc, theirs))
    ]
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b)


def test_per_edge_path_for_edge_features_deep_pre_networks_and_subclasses():
    x, edge_index = testing.random_graph(12, 40, 4, seed=7)
    assert not PNAConv(4, 4, ["mean"], ["identity"], DEG, edge_dim=2)._messages_are_linear()
    assert not PNAConv(4, 4, ["mean"], ["identity"], DEG, pre_layers=2)._messages_are_linear()
    assert not PNAConv(4, 4, ["median"], ["identity"], DEG)._messages_are_linear()

    class Doubled(PNAConv):
        def message(self, x_i, x_j, edge_attr):
            return 2 * super().message(x_i, x_j, edge_attr)

    doubled = Doubled(4, 4, ["mean", "max"], ["identity"], DEG)
    assert not doubled._messages_are_linear()
    plain = PNAConv(4, 4, ["mean", "max"], ["identity"], DEG)
    plain.load_state_dict(doubled.state_dict())
    assert plain._messages_are_linear()
    # mean and max of 2 m are 2 (mean, max) of m: the post-network sees twice the aggregation
    xt = x.view(-1, 1, 4)
    got = doubled.propagate(edge_index, x=xt, edge_attr=None)
    want = plain._linear_message_path(xt, edge_index)
    testing.assert_close(got, 2 * want)


def test_per_node_path_with_pyg_edge_dim_model_and_sparse_input():
    pyg = pytest.importorskip("torch_geometric")
    x, edge_index = testing.random_graph(20, 60, 6, seed=8)
    # with edge_dim the per-edge path runs and matches PyG after a strict load
    args = (6, 4, ["mean", "min", "max", "std"], ["identity", "linear"], DEG)
    ours, theirs = PNAConv(*args, edge_dim=2, towers=2), pyg.nn.PNAConv(*args, edge_dim=2, towers=2)
    testing.load_pyg_state(ours, theirs)
    edge_attr = torch.randn(60, 2)
    assert not ours._messages_are_linear()
    testing.assert_close(ours(x, edge_index, edge_attr), theirs(x, edge_index, edge_attr))
    # without edge_dim, every graph format gives the same result on the per-node path
    conv = PNAConv(*args)
    testing.assert_formats_agree(lambda adj: conv(x, adj), edge_index, 20)


def test_per_node_path_compiles_without_graph_breaks():
    x, edge_index = testing.random_graph(40, 160, 8, seed=9)
    conv = PNAConv(8, 8, ["mean", "min", "max", "std"], SCALERS, DEG)
    compiled = torch.compile(conv, fullgraph=True, backend="aot_eager")
    testing.assert_close(compiled(x, edge_index), conv(x, edge_index))
