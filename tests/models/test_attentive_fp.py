"""AttentiveFP (and its GATEConv) and NeuralFingerprint: PyG parity after a strict state_dict
load on small random molecules (outputs and gradients), dense references written here, the
fused weighted sum of GATEConv, empty graphs, isolated atoms, dtypes, bad input, signatures."""

from __future__ import annotations

import copy
import inspect

import pytest
import torch
import torch.nn.functional as F

from gnn.core import testing
from gnn.core import validation as v
from gnn.models import AttentiveFP, NeuralFingerprint
from gnn.models.attentive_fp import GATEConv

pyg = pytest.importorskip("torch_geometric")
from torch_geometric.nn.models import AttentiveFP as PygAttentiveFP  # noqa: E402
from torch_geometric.nn.models import NeuralFingerprint as PygNeuralFingerprint  # noqa: E402
from torch_geometric.nn.models.attentive_fp import GATEConv as PygGATEConv  # noqa: E402


def molecules(sizes=(5, 1, 7, 3), in_channels=6, edge_dim=3, seed=0, dtype=torch.float32):
    """A batch of random molecules (undirected bonds inside each, one isolated atom per molecule
    of more than two atoms, a single-atom molecule): ``x, edge_index, edge_attr, batch``."""
    g = torch.Generator().manual_seed(seed)
    edges, batch, start = [], [], 0
    for m, n in enumerate(sizes):
        batch += [m] * n
        if n > 2:
            a = torch.randint(0, n - 1, (n + 1,), generator=g) + start
            b = torch.randint(0, n - 1, (n + 1,), generator=g) + start
            keep = a != b
            edges.append(torch.stack([torch.cat([a[keep], b[keep]]), torch.cat([b[keep], a[keep]])]))
        start += n
    edge_index = torch.cat(edges, 1) if edges else torch.empty(2, 0, dtype=torch.long)
    x = torch.randn(start, in_channels, generator=g, dtype=dtype)
    edge_attr = torch.randn(edge_index.size(1), edge_dim, generator=g, dtype=dtype)
    return x, edge_index, edge_attr, torch.tensor(batch, dtype=torch.long)


def assert_same_signature(ours, theirs):
    a, b = inspect.signature(ours), inspect.signature(theirs)
    assert list(a.parameters) == list(b.parameters)
    for name, p in a.parameters.items():
        q = b.parameters[name]
        assert (p.default, p.kind) == (q.default, q.kind), name


# -- GATEConv ---------------------------------------------------------------------------
def dense_gate_conv(conv, x, edge_index, edge_attr):
    """The layer's formula, edge by edge."""
    n = x.size(0)
    out = conv.bias.expand(n, -1).clone()
    w1, w2 = conv.lin1.weight, conv.lin2.weight
    for i in range(n):
        incoming = (edge_index[1] == i).nonzero().view(-1).tolist()
        if not incoming:
            continue
        scores, values = [], []
        for e in incoming:
            j = int(edge_index[0, e])
            h = F.leaky_relu(w1 @ torch.cat([x[j], edge_attr[e]]), 0.01)
            scores.append(F.leaky_relu(conv.att_l.view(-1) @ h + conv.att_r.view(-1) @ x[i], 0.01))
            values.append(w2 @ x[j])
        alpha = torch.softmax(torch.stack(scores), 0)
        out[i] = out[i] + (alpha.view(-1, 1) * torch.stack(values)).sum(0)
    return out


def test_gate_conv_matches_dense_reference_and_pyg():
    torch.manual_seed(0)
    x, edge_index, edge_attr, _ = molecules(in_channels=8, dtype=torch.float64)
    conv, ref = GATEConv(8, 8, 3).double(), PygGATEConv(8, 8, 3, 0.0).double()
    with torch.no_grad():
        ref.bias.normal_()
    assert_same_signature(GATEConv.__init__, PygGATEConv.__init__)
    testing.load_pyg_state(conv, ref)
    out = conv(x, edge_index, edge_attr)
    testing.assert_close(out, dense_gate_conv(conv, x, edge_index, edge_attr), atol=1e-12, rtol=1e-10)
    testing.assert_close(out, ref(x, edge_index, edge_attr), atol=1e-12, rtol=1e-10)


def test_gate_conv_fused_sum_matches_per_edge_messages(monkeypatch):
    x, edge_index, edge_attr, _ = molecules(in_channels=8, dtype=torch.float64, seed=3)
    conv = GATEConv(8, 8, 3).double()
    per_edge = copy.deepcopy(conv)
    per_edge.register_message_forward_hook(lambda module, inputs, output: None)  # rules the plan out
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    calls = testing.spy_spmm(monkeypatch, conv)
    out = conv(x1, edge_index, edge_attr)
    assert len(calls) == 1
    want = per_edge(x2, edge_index, edge_attr)
    testing.assert_close(out, want, atol=1e-12, rtol=1e-10)
    out.square().sum().backward()
    want.square().sum().backward()
    testing.assert_close(x1.grad, x2.grad, atol=1e-12, rtol=1e-10)
    for (name, a), b in zip(conv.named_parameters(), per_edge.parameters()):
        testing.assert_close(a.grad, b.grad, atol=1e-12, rtol=1e-10, msg=name)


# -- AttentiveFP ------------------------------------------------------------------------
def test_attentive_fp_signature_repr_and_keys():
    assert_same_signature(AttentiveFP.__init__, PygAttentiveFP.__init__)
    assert_same_signature(AttentiveFP.forward, PygAttentiveFP.forward)
    ours, theirs = AttentiveFP(6, 8, 2, 3, 3, 2, dropout=0.1), PygAttentiveFP(6, 8, 2, 3, 3, 2, dropout=0.1)
    assert repr(ours) == repr(theirs)
    assert {k: v.shape for k, v in ours.state_dict().items()} == {
        k: v.shape for k, v in theirs.state_dict().items()
    }


@pytest.mark.parametrize("num_layers,num_timesteps", [(1, 0), (2, 1), (3, 3)])
def test_attentive_fp_matches_pyg_outputs_and_gradients(num_layers, num_timesteps):
    torch.manual_seed(num_layers)
    x, edge_index, edge_attr, batch = molecules(dtype=torch.float64, seed=num_layers)
    ours = AttentiveFP(6, 8, 2, 3, num_layers, num_timesteps).double()
    theirs = PygAttentiveFP(6, 8, 2, 3, num_layers, num_timesteps).double()
    testing.assert_gradients_match_pyg(ours, theirs, x, edge_index, edge_attr, batch)


def test_attentive_fp_dtypes_layouts_and_modes():
    torch.manual_seed(1)
    x, edge_index, edge_attr, batch = molecules(seed=5)
    ours, theirs = AttentiveFP(6, 8, 2, 3, 2, 2, dropout=0.3), PygAttentiveFP(6, 8, 2, 3, 2, 2, dropout=0.3)
    testing.load_pyg_state(ours, theirs)
    ours.eval(), theirs.eval()
    want = theirs(x, edge_index, edge_attr, batch)
    testing.assert_close(ours(x, edge_index, edge_attr, batch), want)
    # int32 indices, non-contiguous features
    x_nc = torch.stack([x, -x], -1)[..., 0]
    ea_nc = edge_attr.t().contiguous().t()
    assert not x_nc.is_contiguous()
    got = ours(x_nc, edge_index.int(), ea_nc, batch.int())
    testing.assert_close(got, want)
    # dropout acts in training only
    ours.train()
    torch.manual_seed(0)
    a = ours(x, edge_index, edge_attr, batch)
    torch.manual_seed(1)
    b = ours(x, edge_index, edge_attr, batch)
    assert not torch.allclose(a, b)


def test_attentive_fp_empty_and_bondless_molecules():
    model = AttentiveFP(6, 8, 2, 3, 2, 2)
    theirs = PygAttentiveFP(6, 8, 2, 3, 2, 2)
    testing.load_pyg_state(model, theirs)
    x, edge_index, edge_attr, batch = molecules(sizes=(1, 2, 1))  # no bonds at all
    assert edge_index.size(1) == 0
    testing.assert_close(model(x, edge_index, edge_attr, batch), theirs(x, edge_index, edge_attr, batch))
    out = model(x[:0], edge_index, edge_attr, batch[:0])
    assert out.shape == (0, 2)
    out.sum().backward()  # no crash through an empty graph


def test_attentive_fp_bad_input():
    model = AttentiveFP(6, 8, 2, 3, 2, 1)
    x, edge_index, edge_attr, batch = molecules()
    with pytest.raises(ValueError, match="'x'"):
        model(x[:, :5], edge_index, edge_attr, batch)
    with pytest.raises(ValueError, match="'edge_attr'"):
        model(x, edge_index, edge_attr[:, :2], batch)
    with pytest.raises(ValueError, match="'edge_attr'"):
        model(x, edge_index, edge_attr[:-1], batch)
    with pytest.raises(ValueError, match="'batch'"):
        model(x, edge_index, edge_attr, batch[:-1])
    with pytest.raises(TypeError, match="'batch'"):
        model(x, edge_index, edge_attr, batch.float())
    with pytest.raises(v.IndexRangeError, match="edge_index"):
        model(x, edge_index + x.size(0), edge_attr, batch)
    with pytest.raises(TypeError, match="'batch'"):
        model(x, edge_index, edge_attr, None)
    with pytest.raises(ValueError, match="num_layers"):
        AttentiveFP(6, 8, 2, 3, 0, 1)


# -- NeuralFingerprint ------------------------------------------------------------------
def dense_fingerprint(model, x, edge_index, batch, num_graphs):
    """The paper's fingerprint with MFConv written densely: degree-wise weights per atom."""
    n = x.size(0)
    adj = torch.zeros(n, n, dtype=x.dtype).index_put_(
        (edge_index[1], edge_index[0]), torch.ones(edge_index.size(1), dtype=x.dtype), accumulate=True
    )
    deg = torch.bincount(edge_index[1], minlength=n)
    fp = torch.zeros(num_graphs, model.out_channels, dtype=x.dtype)
    for conv, lin in zip(model.convs, model.lins):
        neigh = adj @ x
        rows = []
        for i in range(n):
            d = min(int(deg[i]), conv.max_degree)
            rows.append(conv.lins_l[d](neigh[i]) + conv.lins_r[d](x[i]))
        x = torch.stack(rows).sigmoid()
        bits = torch.softmax(lin(x), -1)
        fp = fp.index_add(0, batch, bits)
    return fp


def test_neural_fingerprint_signature_repr_and_keys():
    assert_same_signature(NeuralFingerprint.__init__, PygNeuralFingerprint.__init__)
    assert_same_signature(NeuralFingerprint.forward, PygNeuralFingerprint.forward)
    ours, theirs = NeuralFingerprint(6, 8, 4, 3, max_degree=4), PygNeuralFingerprint(6, 8, 4, 3, max_degree=4)
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())


def test_neural_fingerprint_matches_pyg_and_dense_reference():
    torch.manual_seed(0)
    x, edge_index, _, batch = molecules(dtype=torch.float64, seed=2)
    ours, theirs = NeuralFingerprint(6, 8, 4, 3).double(), PygNeuralFingerprint(6, 8, 4, 3).double()
    testing.assert_gradients_match_pyg(ours, theirs, x, edge_index, batch)
    out = ours(x, edge_index, batch)
    testing.assert_close(out, dense_fingerprint(ours, x, edge_index, batch, 4), atol=1e-12, rtol=1e-10)
    # each layer adds a distribution per atom: the fingerprint of a molecule sums to L * atoms
    counts = torch.bincount(batch).double()
    testing.assert_close(out.sum(-1), 3 * counts, atol=1e-12, rtol=1e-10)
    # one graph without batch, an explicit batch_size with trailing empty graphs
    testing.assert_close(ours(x, edge_index), theirs(x, edge_index), atol=1e-12, rtol=1e-10)
    got = ours(x, edge_index.int(), batch, 6)
    assert got.shape == (6, 4) and torch.all(got[4:] == 0)
    testing.assert_close(got, theirs(x, edge_index, batch, 6), atol=1e-12, rtol=1e-10)


def test_neural_fingerprint_empty_graph_and_bad_input():
    model = NeuralFingerprint(6, 8, 4, 2)
    x, edge_index, _, batch = molecules()
    empty = model(x[:0], torch.empty(2, 0, dtype=torch.long), batch[:0], 2)
    assert empty.shape == (2, 4) and torch.all(empty == 0)
    with pytest.raises(ValueError, match="'batch'"):
        model(x, edge_index, batch[:-1])
    with pytest.raises(ValueError, match="'x'"):
        model(x[0], edge_index, batch)
    with pytest.raises(ValueError, match="num_layers"):
        NeuralFingerprint(6, 8, 4, 0)
