"""SGFormer and Polynormer: PyG parity after a strict state_dict load (outputs and gradients, several
graphs with an unsorted batch), a dense reference of the attention branch, node-order equivariance,
empty graphs, input forms, bad inputs, signatures and repr."""

from __future__ import annotations

import inspect

import pytest
import torch
import torch.nn.functional as F

from gnn.core import testing
from gnn.models import Polynormer, SGFormer

N, E, F_IN, HIDDEN, C = 14, 40, 5, 8, 3


def graph(seed: int = 0, dtype: torch.dtype = torch.float32, num_graphs: int = 3, kind: str = "unsorted"):
    x, edge_index = testing.random_graph(N, E, F_IN, seed=seed, dtype=dtype)
    g = torch.Generator().manual_seed(seed + 7)
    batch = torch.randint(0, num_graphs, (N,), generator=g)  # unsorted, uneven graph sizes
    if kind == "sorted":
        batch = batch.sort().values
    elif kind == "single":  # one graph, with index 2: PyG pads two empty graphs before it
        batch = torch.full((N,), 2)
    return x, edge_index, batch


BATCH_KINDS = ["unsorted", "sorted", "single"]


def same_signature(ours, theirs) -> None:
    a = [(p.name, p.default, p.kind) for p in inspect.signature(ours).parameters.values()]
    b = [(p.name, p.default, p.kind) for p in inspect.signature(theirs).parameters.values()]
    assert a == b


def pyg_nn():
    return pytest.importorskip("torch_geometric.nn")


# -- SGFormer -------------------------------------------------------------------------------------
@pytest.mark.parametrize("aggregate", ["add", "cat"])
@pytest.mark.parametrize("heads", [1, 2])
@pytest.mark.parametrize("kind", BATCH_KINDS)
def test_sgformer_matches_pyg(aggregate, heads, kind):
    pyg = pyg_nn()
    torch.manual_seed(0)
    theirs = pyg.SGFormer(F_IN, HIDDEN, C, trans_num_heads=heads, aggregate=aggregate, gnn_num_layers=2)
    ours = SGFormer(F_IN, HIDDEN, C, trans_num_heads=heads, aggregate=aggregate, gnn_num_layers=2)
    testing.load_pyg_state(ours, theirs)
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    x, edge_index, batch = graph(1, kind=kind)
    ours.eval(), theirs.eval()
    testing.assert_close(ours(x, edge_index, batch), theirs(x, edge_index, batch), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind", BATCH_KINDS)
def test_sgformer_gradients_match_pyg(kind):
    pyg = pyg_nn()
    torch.manual_seed(1)
    kwargs = dict(trans_dropout=0.0, gnn_dropout=0.0, trans_num_heads=2)
    theirs, ours = pyg.SGFormer(F_IN, HIDDEN, C, **kwargs), SGFormer(F_IN, HIDDEN, C, **kwargs)
    x, edge_index, batch = graph(2, kind=kind)  # training mode: batch norm uses the batch statistics
    testing.assert_gradients_match_pyg(ours, theirs, x, edge_index, batch, atol=1e-5, rtol=1e-4)


def test_sgformer_attention_branch_dense_reference():
    torch.manual_seed(2)
    model = SGFormer(F_IN, HIDDEN, C, trans_num_layers=1, trans_num_heads=1).double().eval()
    x, _, _ = graph(3, torch.float64)
    branch = model.trans_conv
    h = F.relu(branch.bns[0](branch.fcs[0](x)))
    attn = branch.attns[0]
    q, k, v = F.normalize(attn.q(h), dim=-1), F.normalize(attn.k(h), dim=-1), attn.v(h)
    num = q @ (k.t() @ v) + N * v
    den = q @ k.sum(0, keepdim=True).t() + N
    expected = F.relu(branch.bns[1](0.5 * (num / den + h)))
    torch.testing.assert_close(branch(x, None), expected)


def test_sgformer_one_graph_and_node_order():
    torch.manual_seed(3)
    model = SGFormer(F_IN, HIDDEN, C).eval()
    x, edge_index, batch = graph(4)
    # batch=None is one graph (PyG needs a batch vector)
    torch.testing.assert_close(
        model(x, edge_index, None), model(x, edge_index, torch.zeros(N, dtype=torch.long))
    )
    perm = torch.randperm(N)
    inverse = torch.empty_like(perm)
    inverse[perm] = torch.arange(N)
    out = model(x, edge_index, batch)
    permuted = model(x[perm], inverse[edge_index], batch[perm])
    torch.testing.assert_close(permuted, out[perm], atol=1e-5, rtol=1e-5)


def test_sgformer_input_forms_and_dtypes():
    torch.manual_seed(4)
    model = SGFormer(F_IN, HIDDEN, C).eval()
    x, edge_index, batch = graph(5)
    expected = model(x, edge_index, batch)
    torch.testing.assert_close(model(x, edge_index.int(), batch.int()), expected)
    x_nc = torch.cat([x, x], dim=1)[:, ::2]
    assert not x_nc.is_contiguous()
    torch.testing.assert_close(model(x_nc, edge_index, batch), model(x_nc.contiguous(), edge_index, batch))
    adj_t = torch.sparse_coo_tensor(edge_index.flip(0), torch.ones(E), (N, N))
    torch.testing.assert_close(model(x, adj_t, batch), expected, atol=1e-5, rtol=1e-5)
    out64 = model.double()(x.double(), edge_index, batch)
    assert out64.dtype == torch.float64
    torch.testing.assert_close(out64.float(), expected, atol=1e-5, rtol=1e-5)


def test_sgformer_empty_graph_and_isolated_nodes():
    model = SGFormer(F_IN, HIDDEN, C).eval()
    out = model(torch.randn(0, F_IN), torch.empty(2, 0, dtype=torch.long), torch.empty(0, dtype=torch.long))
    assert out.shape == (0, C)
    out = model(torch.randn(4, F_IN), torch.empty(2, 0, dtype=torch.long), torch.tensor([0, 0, 1, 1]))
    assert out.shape == (4, C) and torch.isfinite(out).all()


def test_sgformer_bad_inputs():
    model = SGFormer(F_IN, HIDDEN, C)
    x, edge_index, batch = graph(6)
    with pytest.raises(ValueError, match="'x'"):
        model(x[:, :2], edge_index, batch)
    with pytest.raises(TypeError, match="'x'"):
        model(x.long(), edge_index, batch)
    with pytest.raises(ValueError, match="'batch'"):
        model(x, edge_index, batch[:-1])
    with pytest.raises(TypeError, match="'batch'"):
        model(x, edge_index, batch.float())
    with pytest.raises(ValueError, match="'batch'"):
        model(x, edge_index, batch - 1)
    with pytest.raises(ValueError, match="'aggregate'"):
        SGFormer(F_IN, HIDDEN, C, aggregate="max")


def test_sgformer_signatures():
    pyg = pyg_nn()
    same_signature(SGFormer.__init__, pyg.SGFormer.__init__)
    same_signature(SGFormer.forward, pyg.SGFormer.forward)
    model = SGFormer(F_IN, HIDDEN, C)
    assert len(model.params1) == len(list(model.trans_conv.parameters()))
    assert len(model.params2) == len(list(model.graph_conv.parameters())) + 2


# -- Polynormer -----------------------------------------------------------------------------------
POLY_OPTIONS = [
    {},
    {"qk_shared": True, "beta": 0.5},
    {"pre_ln": True, "post_bn": False},
    {"local_attn": True},
]


@pytest.mark.parametrize("options", POLY_OPTIONS)
@pytest.mark.parametrize("use_global", [False, True])
def test_polynormer_matches_pyg(options, use_global):
    pyg = pyg_nn()
    torch.manual_seed(5)
    theirs = pyg.Polynormer(F_IN, HIDDEN, C, local_layers=3, **options)
    ours = Polynormer(F_IN, HIDDEN, C, local_layers=3, **options)
    testing.load_pyg_state(ours, theirs)
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    theirs._global = ours._global = use_global
    x, edge_index, batch = graph(7)
    ours.eval(), theirs.eval()
    testing.assert_close(ours(x, edge_index, batch), theirs(x, edge_index, batch), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("use_global", [False, True])
@pytest.mark.parametrize("kind", BATCH_KINDS)
def test_polynormer_gradients_match_pyg(use_global, kind):
    pyg = pyg_nn()
    torch.manual_seed(6)
    kwargs = dict(local_layers=2, in_dropout=0.0, dropout=0.0, global_dropout=0.0)
    theirs, ours = pyg.Polynormer(F_IN, HIDDEN, C, **kwargs), Polynormer(F_IN, HIDDEN, C, **kwargs)
    theirs._global = ours._global = use_global
    x, edge_index, batch = graph(8, kind=kind)
    testing.assert_gradients_match_pyg(ours, theirs, x, edge_index, batch, atol=1e-5, rtol=1e-4)


def test_polynormer_local_heads_and_global_head_limit():
    pyg = pyg_nn()
    torch.manual_seed(7)
    theirs = pyg.Polynormer(F_IN, HIDDEN, C, local_layers=2, heads=2, local_attn=True)
    ours = Polynormer(F_IN, HIDDEN, C, local_layers=2, heads=2, local_attn=True)
    testing.load_pyg_state(ours, theirs)
    x, edge_index, batch = graph(9)
    ours.eval(), theirs.eval()
    testing.assert_close(ours(x, edge_index, batch), theirs(x, edge_index, batch), atol=1e-5, rtol=1e-5)
    ours._global = True  # the attention takes hidden_channels inputs (PyG 2.8's layout): heads=1 only
    with pytest.raises(ValueError, match="'x' must have shape"):
        ours(x, edge_index, batch)


def test_polynormer_dense_reference_one_local_layer():
    torch.manual_seed(8)
    model = Polynormer(F_IN, HIDDEN, C, local_layers=1, global_layers=1).double().eval()
    x, edge_index, _ = graph(10, torch.float64)
    a = testing.dense_gcn_adjacency(edge_index, None, N)
    conv = model.local_convs[0]
    h = F.relu(model.h_lins[0](x))
    y = a @ x @ conv.lin.weight.t() + conv.bias + model.lins[0](x)
    y = F.relu(model.post_bns[0](y))
    y = 0.1 * model.lns[0](h * y) + 0.9 * y
    torch.testing.assert_close(model(x, edge_index, None), F.log_softmax(model.pred_local(y), -1))
    model._global = True
    z = model.global_attn[0](model.ln(y).unsqueeze(0)).squeeze(0)
    torch.testing.assert_close(model(x, edge_index, None), F.log_softmax(model.pred_global(z), -1))


def test_polynormer_node_order_empty_and_bad_inputs():
    torch.manual_seed(9)
    model = Polynormer(F_IN, HIDDEN, C, local_layers=2).eval()
    model._global = True
    x, edge_index, batch = graph(11)
    perm = torch.randperm(N)
    inverse = torch.empty_like(perm)
    inverse[perm] = torch.arange(N)
    out = model(x, edge_index, batch)
    torch.testing.assert_close(
        model(x[perm], inverse[edge_index], batch[perm]), out[perm], atol=1e-5, rtol=1e-5
    )
    empty = model(torch.randn(0, F_IN), torch.empty(2, 0, dtype=torch.long), torch.empty(0, dtype=torch.long))
    assert empty.shape == (0, C)
    with pytest.raises(ValueError, match="'x'"):
        model(x[:, :3], edge_index, batch)
    with pytest.raises(ValueError, match="'batch'"):
        model(x, edge_index, batch[:3])
    with pytest.raises(TypeError, match="'local_layers'"):
        Polynormer(F_IN, HIDDEN, C, local_layers=2.0)


def test_polynormer_zero_local_layers_builds_one_like_pyg():
    pyg = pyg_nn()
    theirs, ours = (
        pyg.Polynormer(F_IN, HIDDEN, C, local_layers=0),
        Polynormer(F_IN, HIDDEN, C, local_layers=0),
    )
    testing.load_pyg_state(ours, theirs)
    assert len(ours.local_convs) == 1


def test_polynormer_signatures():
    pyg = pyg_nn()
    same_signature(Polynormer.__init__, pyg.Polynormer.__init__)
    same_signature(Polynormer.forward, pyg.Polynormer.forward)
