"""GPSConv: explicit softmax-attention reference, PyG parity (norms, performer, train/eval), batch order,
empty and single-node graphs, gradients, errors, torch.compile."""

from __future__ import annotations

import inspect
import math

import pytest
import torch
import torch._dynamo as dynamo

from gnn.conv import GINConv, GINEConv, GPSConv
from gnn.conv._padded import bucketed_layout
from gnn.core import registry, testing

C, HEADS = 8, 2


def graphs(sizes: list[int], seed: int = 0, dtype: torch.dtype = torch.float64, degree: int = 3):
    """Features, edges inside each graph, and the sorted ``batch`` of graphs with ``sizes`` nodes."""
    g = torch.Generator().manual_seed(seed)
    counts = torch.tensor(sizes)
    batch = torch.repeat_interleave(torch.arange(len(sizes)), counts)
    ptr = torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)])
    n = int(ptr[-1])
    e = n * degree
    graph = batch[torch.randint(0, max(n, 1), (e,), generator=g)] if n else torch.zeros(0, dtype=torch.long)
    src = ptr[graph] + (torch.rand(e, generator=g) * counts[graph]).long()
    dst = ptr[graph] + (torch.rand(e, generator=g) * counts[graph]).long()
    return torch.randn(n, C, generator=g, dtype=dtype), torch.stack([src, dst]), batch


def gin(seed: int = 0) -> GINConv:
    torch.manual_seed(seed)
    return GINConv(torch.nn.Sequential(torch.nn.Linear(C, C), torch.nn.ReLU(), torch.nn.Linear(C, C)))


def reference(layer: GPSConv, x, edge_index, batch):
    """GPS without norms or dropout, by dense per-graph formulas (float64)."""
    n = x.size(0)
    adj = torch.zeros(n, n, dtype=x.dtype).index_put_(
        (edge_index[1], edge_index[0]), torch.ones(edge_index.size(1), dtype=x.dtype), accumulate=True
    )
    local = layer.conv.nn((1 + layer.conv.eps) * x + adj @ x) + x
    attn = layer.attn
    w, b = attn.in_proj_weight, attn.in_proj_bias
    d = C // HEADS
    glob = torch.zeros_like(x)
    for graph in batch.unique() if batch is not None else [None]:
        idx = torch.arange(n) if graph is None else (batch == graph).nonzero().flatten()
        xg = x[idx]
        q, k, v = (xg @ w[i * C : (i + 1) * C].t() + b[i * C : (i + 1) * C] for i in range(3))
        heads = []
        for h in range(HEADS):
            cols = slice(h * d, (h + 1) * d)
            scores = q[:, cols] @ k[:, cols].t() / math.sqrt(d)
            heads.append(torch.softmax(scores, dim=-1) @ v[:, cols])
        glob[idx] = torch.cat(heads, dim=-1) @ attn.out_proj.weight.t() + attn.out_proj.bias
    h = local + glob + x
    lin1, lin2 = layer.mlp[0], layer.mlp[3]
    return h + torch.relu(h @ lin1.weight.t() + lin1.bias) @ lin2.weight.t() + lin2.bias


SIZES = [1, 3, 17, 9, 16, 2, 30, 12, 11, 25, 5]  # several buckets, ragged ones included


def test_multihead_matches_the_explicit_softmax_reference():
    x, edge_index, batch = graphs(SIZES)
    layout = bucketed_layout(batch, len(SIZES))
    assert len(layout.buckets) > 3 and any(m is not None for m in layout.masks)
    layer = GPSConv(C, gin(), heads=HEADS, norm=None).double()
    torch.testing.assert_close(layer(x, edge_index, batch), reference(layer, x, edge_index, batch))
    torch.testing.assert_close(layer(x, edge_index), reference(layer, x, edge_index, None))  # one graph


def test_unsorted_batch_gives_the_permuted_result():
    x, edge_index, batch = graphs(SIZES, seed=1)
    perm = torch.randperm(x.size(0), generator=torch.Generator().manual_seed(0))
    inverse = torch.empty_like(perm)
    inverse[perm] = torch.arange(perm.numel())
    for attn_type, kwargs in [("multihead", {}), ("performer", {"head_channels": 4})]:
        layer = GPSConv(
            C, gin(), heads=HEADS, norm="graph_norm", attn_type=attn_type, attn_kwargs=kwargs
        ).double()
        expected = layer(x, edge_index, batch)
        got = layer(x[perm], inverse[edge_index], batch[perm])
        torch.testing.assert_close(got, expected[perm])


def test_empty_graphs_in_the_batch_change_nothing():
    x, edge_index, batch = graphs([4, 6, 3], seed=2)
    layer = GPSConv(C, gin(), heads=HEADS, norm=None).double()
    gapped = batch * 2 + 1  # graphs 0, 2, 4, 6 are empty
    torch.testing.assert_close(layer(x, edge_index, gapped), layer(x, edge_index, batch))
    performer = GPSConv(
        C, gin(), heads=HEADS, norm=None, attn_type="performer", attn_kwargs={"head_channels": 4}
    )
    performer = performer.double()
    torch.testing.assert_close(performer(x, edge_index, gapped), performer(x, edge_index, batch))


def test_no_nodes_and_single_node_graphs():
    layer = GPSConv(C, gin(), heads=HEADS, norm=None).double()
    empty = layer(
        torch.zeros(0, C, dtype=torch.float64),
        torch.zeros(2, 0, dtype=torch.long),
        torch.zeros(0, dtype=torch.long),
    )
    assert empty.shape == (0, C)
    assert layer(torch.zeros(0, C, dtype=torch.float64), torch.zeros(2, 0, dtype=torch.long)).shape == (0, C)
    x, edge_index, batch = graphs([1, 1, 1, 1], seed=3)
    torch.testing.assert_close(layer(x, edge_index, batch), reference(layer, x, edge_index, batch))


def test_int32_batch_and_non_contiguous_features():
    x, edge_index, batch = graphs(SIZES, seed=12)
    layer = GPSConv(C, gin(), heads=HEADS, norm="layer_norm").double()
    expected = layer(x, edge_index, batch)
    x_t = x.t().contiguous().t()
    assert not x_t.is_contiguous()
    torch.testing.assert_close(layer(x_t, edge_index.int(), batch.int()), expected)


def test_attention_dropout_acts_in_training_only():
    x, edge_index, batch = graphs(SIZES, seed=4, dtype=torch.float32)
    layer = GPSConv(C, gin(), heads=HEADS, norm=None, attn_kwargs={"dropout": 0.9})
    layer.eval()
    ref = layer(x, edge_index, batch)
    torch.testing.assert_close(layer(x, edge_index, batch), ref)
    layer.train()
    assert not torch.allclose(layer(x, edge_index, batch), ref)


def test_gradcheck_through_the_bucketed_attention():
    x, edge_index, batch = graphs([3, 1, 5, 4, 2], seed=5)
    perm = torch.tensor([3, 7, 0, 12, 5, 1, 14, 2, 9, 4, 11, 6, 13, 8, 10])  # unsorted batch too
    inverse = torch.empty_like(perm)
    inverse[perm] = torch.arange(perm.numel())
    layer = GPSConv(C, gin(), heads=HEADS, norm=None).double()
    x = x[perm].requires_grad_()
    assert torch.autograd.gradcheck(lambda t: layer(t, inverse[edge_index], batch[perm]), (x,))


# -- PyG parity --------------------------------------------------------------------------------------
PARITY = [
    ("multihead", {}, "batch_norm", {}),
    ("multihead", {}, "layer_norm", {}),
    ("multihead", {}, "graph_norm", {}),
    ("multihead", {"bias": False}, "instance_norm", {}),
    ("multihead", {"add_bias_kv": True}, None, {}),  # the module itself on a padded batch
    ("performer", {"head_channels": 4}, "batch_norm", {}),
    ("performer", {"head_channels": 3, "qkv_bias": True}, "layer_norm", {"mode": "node"}),
]


@pytest.mark.parametrize("attn_type, attn_kwargs, norm, norm_kwargs", PARITY)
def test_matches_pyg(attn_type, attn_kwargs, norm, norm_kwargs):
    pyg = pytest.importorskip("torch_geometric")
    torch.manual_seed(0)
    mlp = torch.nn.Sequential(torch.nn.Linear(C, C), torch.nn.ReLU(), torch.nn.Linear(C, C))
    kwargs = dict(
        heads=HEADS, norm=norm, norm_kwargs=norm_kwargs, attn_type=attn_type, attn_kwargs=attn_kwargs
    )
    theirs = pyg.nn.GPSConv(C, pyg.nn.GINConv(mlp), act="gelu", **kwargs)
    ours = GPSConv(C, gin(), act="gelu", **kwargs)
    testing.load_pyg_state(ours, theirs)
    assert repr(ours) == repr(theirs)
    x, edge_index, batch = graphs(SIZES, seed=6, dtype=torch.float32)
    for training in (True, False, True):
        ours.train(training)
        theirs.train(training)
        testing.assert_close(ours(x, edge_index, batch), theirs(x, edge_index, batch))
        testing.assert_close(ours(x, edge_index), theirs(x, edge_index))
    for key, value in theirs.state_dict().items():  # running statistics moved alike
        testing.assert_close(ours.state_dict()[key], value, msg=key)


def test_local_layer_kwargs_and_attention_only():
    pyg = pytest.importorskip("torch_geometric")
    x, edge_index, batch = graphs(SIZES, seed=7, dtype=torch.float32)
    edge_attr = torch.randn(edge_index.size(1), 3)
    torch.manual_seed(0)
    theirs = pyg.nn.GPSConv(C, pyg.nn.GINEConv(torch.nn.Linear(C, C), edge_dim=3), heads=HEADS)
    ours = GPSConv(C, GINEConv(torch.nn.Linear(C, C), edge_dim=3), heads=HEADS)
    testing.load_pyg_state(ours, theirs)
    testing.assert_close(
        ours(x, edge_index, batch, edge_attr=edge_attr), theirs(x, edge_index, batch, edge_attr=edge_attr)
    )
    theirs, ours = pyg.nn.GPSConv(C, None, heads=4), GPSConv(C, None, heads=4)
    testing.load_pyg_state(ours, theirs)
    assert repr(ours) == repr(theirs) == "GPSConv(8, conv=None, heads=4, attn_type=multihead)"
    testing.assert_close(ours(x, edge_index, batch), theirs(x, edge_index, batch))


def test_gradients_match_pyg_in_float64():
    pyg = pytest.importorskip("torch_geometric")
    torch.manual_seed(0)
    mlp = torch.nn.Sequential(torch.nn.Linear(C, C), torch.nn.ReLU(), torch.nn.Linear(C, C))
    theirs = pyg.nn.GPSConv(C, pyg.nn.GINConv(mlp), heads=HEADS).double()
    ours = GPSConv(C, gin(), heads=HEADS).double()
    x, edge_index, batch = graphs(SIZES, seed=8)
    testing.assert_gradients_match_pyg(ours, theirs, x, edge_index, batch)


def test_signature_and_state_dict_match_pyg():
    pyg = pytest.importorskip("torch_geometric")
    for method in ("__init__", "forward"):
        ours = inspect.signature(getattr(GPSConv, method)).parameters.values()
        theirs = inspect.signature(getattr(pyg.nn.GPSConv, method)).parameters.values()
        assert [(p.name, p.default, p.kind) for p in ours] == [(p.name, p.default, p.kind) for p in theirs]
    torch.manual_seed(0)
    layer = GPSConv(C, gin(), heads=HEADS)
    assert set(layer.state_dict()) >= {
        "attn.in_proj_weight",
        "attn.out_proj.weight",
        "mlp.0.weight",
        "mlp.3.bias",
        "norm1.module.running_mean",
        "norm3.module.weight",
    }


def test_reset_parameters_and_registry():
    layer = registry.convs.resolve("gps", C, gin(), heads=HEADS, norm="layer_norm")
    assert type(layer) is GPSConv
    before = {k: v.clone() for k, v in layer.state_dict().items()}
    layer.reset_parameters()
    assert not torch.equal(before["attn.in_proj_weight"], layer.attn.in_proj_weight)
    assert not torch.equal(before["mlp.0.weight"], layer.mlp[0].weight)
    shared = torch.nn.LayerNorm(C)  # a module instance serves the three places, as in PyG
    layer = GPSConv(C, gin(), heads=HEADS, norm=shared)
    assert layer.norm1 is layer.norm2 is layer.norm3 is shared


def test_bad_inputs_name_the_argument():
    x, edge_index, batch = graphs([3, 4], dtype=torch.float32)
    layer = GPSConv(C, gin(), heads=HEADS, norm=None)
    with pytest.raises(ValueError, match="'x'"):
        layer(x[:, :-1], edge_index, batch)
    with pytest.raises(TypeError, match="'x'"):
        layer(x.tolist(), edge_index, batch)
    with pytest.raises(ValueError, match="'batch'"):
        layer(x, edge_index, batch[:-1])
    with pytest.raises(TypeError, match="'batch'"):
        layer(x, edge_index, batch.float())
    with pytest.raises(ValueError, match="'batch'"):
        layer(x, edge_index, batch - 1)
    with pytest.raises(ValueError, match="'attn_type'"):
        GPSConv(C, None, attn_type="linear")
    with pytest.raises(ValueError, match="'heads'"):
        GPSConv(C, None, heads=3)
    with pytest.raises(ValueError, match="'norm'"):
        GPSConv(C, None, norm="no_such_norm")
    with pytest.raises(ValueError, match="'act'"):
        GPSConv(C, None, act="no_such_act")


# -- torch.compile -----------------------------------------------------------------------------------
def test_compiles_one_graph_without_graph_breaks():
    layer = GPSConv(C, gin(), heads=HEADS, norm="layer_norm")
    x, edge_index, _ = graphs([12], seed=9, dtype=torch.float32)
    testing.assert_compiles_like_eager(layer, x, edge_index)


def test_compiles_a_batch_with_dynamic_sizes():
    """With ``capture_scalar_outputs`` (the number of graphs and the largest graph are read from
    ``batch``), the whole layer is one graph (``fullgraph=True``); a batch of other sizes reuses it."""
    layer = GPSConv(C, gin(), heads=HEADS)  # batch_norm: graph-wise norms read batch_size from batch too
    x, edge_index, batch = graphs(SIZES[:6], seed=10, dtype=torch.float32)
    with dynamo.config.patch(capture_scalar_outputs=True):
        dynamo.reset()
        compiled = torch.compile(layer, fullgraph=True, backend="aot_eager", dynamic=True)  # fails on a break
        for sizes, seed in [(SIZES[:6], 10), (SIZES[3:], 11)]:
            x, edge_index, batch = graphs(sizes, seed=seed, dtype=torch.float32)
            x_c, x_e = x.clone().requires_grad_(), x.clone().requires_grad_()
            out = compiled(x_c, edge_index, batch)
            expected = layer(x_e, edge_index, batch)
            testing.assert_close(out, expected)
            out.square().sum().backward()
            expected.square().sum().backward()
            testing.assert_close(x_c.grad, x_e.grad)
