"""SuperGATConv: loop reference (MX / SD), self-supervision logits and loss, negative sampling, PyG parity."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from gnn.conv.supergat import SuperGATConv, _negative_edges
from gnn.core import testing

N, E, F_IN, C = 9, 36, 5, 3


def graph(dtype=torch.float64):
    return testing.random_graph(N, E, F_IN, seed=0, dtype=dtype)


def looped(edge_index):
    keep = edge_index[0] != edge_index[1]
    return torch.cat([edge_index[:, keep], torch.arange(N).repeat(2, 1)], 1)


def reference(conv: SuperGATConv, x, edge_index):
    H, Cc = conv.heads, conv.out_channels
    h = (x @ conv.lin.weight.T).view(-1, H, Cc)
    ei = looped(edge_index) if conv.add_self_loops else edge_index
    out = torch.zeros(N, H, Cc, dtype=x.dtype)
    for i in range(N):
        nbrs = [int(ei[0, e]) for e in range(ei.size(1)) if int(ei[1, e]) == i]
        if not nbrs:
            continue
        scores = []
        for j in nbrs:
            dot = (h[i] * h[j]).sum(-1)
            if conv.attention_type == "MX":
                s = ((h[j] * conv.att_l[0]).sum(-1) + (h[i] * conv.att_r[0]).sum(-1)) * torch.sigmoid(dot)
            else:
                s = dot / math.sqrt(Cc)
            scores.append(F.leaky_relu(s, conv.negative_slope))
        alpha = torch.softmax(torch.stack(scores), 0)
        out[i] = sum(a.unsqueeze(-1) * h[j] for a, j in zip(alpha, nbrs))
    out = out.reshape(N, H * Cc) if conv.concat else out.mean(1)
    return out + conv.bias if conv.bias is not None else out


CONFIGS = [
    dict(heads=2),
    dict(heads=2, attention_type="SD", concat=False),
    dict(heads=1, add_self_loops=False, bias=False),
]


@pytest.mark.parametrize("kwargs", CONFIGS, ids=str)
def test_matches_loop_reference(kwargs):
    torch.manual_seed(0)
    conv = SuperGATConv(F_IN, C, **kwargs).double().eval()
    with torch.no_grad():
        if conv.bias is not None:
            conv.bias.normal_()
    x, edge_index = graph()
    testing.assert_close(conv(x, edge_index), reference(conv, x, edge_index), atol=1e-10)


@pytest.mark.parametrize("attention_type", ["MX", "SD"])
def test_training_logits_and_loss(attention_type):
    torch.manual_seed(0)
    conv = SuperGATConv(F_IN, C, heads=2, attention_type=attention_type).double()
    x, edge_index = graph()
    neg = torch.tensor([[0, 1, 2, 3], [5, 6, 7, 8]])
    out = conv.train()(x, edge_index, neg_edge_index=neg)
    testing.assert_close(out, conv.eval()(x, edge_index))  # dropout=0: same output
    conv.train()(x, edge_index, neg_edge_index=neg)
    h = (x @ conv.lin.weight.T).view(-1, 2, C)
    pairs = torch.cat([looped(edge_index), neg], 1)
    logits = (h[pairs[1]] * h[pairs[0]]).sum(-1)
    if attention_type == "SD":
        logits = logits / math.sqrt(C)
    testing.assert_close(conv.att_x, logits, atol=1e-10)
    labels = torch.zeros(pairs.size(1), dtype=x.dtype)
    labels[: pairs.size(1) - 4] = 1
    testing.assert_close(conv.att_y, labels)
    loss = conv.get_attention_loss()
    expected = -(
        labels * F.logsigmoid(logits.mean(-1)) + (1 - labels) * F.logsigmoid(-logits.mean(-1))
    ).mean()
    testing.assert_close(loss, expected, atol=1e-10)
    assert float(conv.eval().get_attention_loss()) == 0.0


def test_sampled_negatives_and_positive_ratio():
    torch.manual_seed(0)
    conv = SuperGATConv(F_IN, C, neg_sample_ratio=1.0, edge_sample_ratio=0.5).double().train()
    x, edge_index = graph()
    conv(x, edge_index)
    num_pos = int(conv.att_y.sum())
    total = looped(edge_index).size(1)
    assert num_pos == int(0.5 * total)
    assert conv.att_x.size(0) - num_pos <= int(1.0 * 0.5 * total)
    conv.get_attention_loss().backward()
    assert conv.lin.weight.grad is not None


def test_negative_edges_are_non_edges():
    torch.manual_seed(0)
    _, edge_index = graph()
    existing = set(map(tuple, looped(edge_index).t().tolist()))
    neg = _negative_edges(looped(edge_index), N, 15)
    assert neg.size(1) == 15
    assert not (set(map(tuple, neg.t().tolist())) & existing)
    assert len(set(map(tuple, neg.t().tolist()))) == 15
    batch = torch.tensor([0] * 4 + [1] * 5)
    neg = _negative_edges(looped(edge_index), N, 10, batch=batch, undirected=True)
    assert torch.equal(batch[neg[0]], batch[neg[1]])
    pairs = set(map(tuple, neg.t().tolist()))
    assert all((b, a) in pairs for a, b in pairs)
    assert (neg[0] != neg[1]).all()
    # a complete graph has no negatives
    full = torch.cartesian_prod(torch.arange(4), torch.arange(4)).t()
    assert _negative_edges(full, 4, 5).size(1) == 0


def test_formats_and_permutation():
    conv = SuperGATConv(F_IN, C, heads=2).double().eval()
    x, edge_index = graph()
    testing.assert_formats_agree(lambda adj: conv(x, adj), edge_index, N, atol=1e-10)
    perm = torch.randperm(E, generator=torch.Generator().manual_seed(2))
    testing.assert_close(conv(x, edge_index[:, perm]), conv(x, edge_index), atol=1e-10)


def test_reset_and_lazy():
    torch.manual_seed(0)
    lazy = SuperGATConv(-1, C, heads=2).double().eval()
    x, edge_index = graph()
    out = lazy(x, edge_index)
    eager = SuperGATConv(F_IN, C, heads=2).double().eval()
    eager.load_state_dict(lazy.state_dict())
    testing.assert_close(eager(x, edge_index), out)
    torch.manual_seed(1)
    eager.reset_parameters()
    first = {k: v.clone() for k, v in eager.state_dict().items()}
    torch.manual_seed(1)
    eager.reset_parameters()
    assert all(torch.equal(v, first[k]) for k, v in eager.state_dict().items())


def test_bad_input():
    conv = SuperGATConv(F_IN, C)
    x, edge_index = graph(torch.float32)
    with pytest.raises(ValueError, match="attention_type"):
        SuperGATConv(F_IN, C, attention_type="GO")
    with pytest.raises(TypeError, match="edge_index"):
        conv(x, edge_index.float())
    with pytest.raises(ValueError, match="edge_index"):
        conv(x, torch.cat([edge_index, torch.tensor([[N], [0]])], 1))
    with pytest.raises(ValueError, match="x"):
        conv(torch.randn(N, 1), edge_index)
    with pytest.raises(ValueError, match="neg_edge_index"):
        conv(x, edge_index, neg_edge_index=torch.zeros(3, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="batch"):
        conv(x, edge_index, batch=torch.zeros(N - 1, dtype=torch.long))
    with pytest.raises(ValueError, match="get_attention_loss"):
        SuperGATConv(F_IN, C).get_attention_loss()


@pytest.mark.parametrize("kwargs", CONFIGS, ids=str)
def test_pyg_parity(kwargs):
    pyg = pytest.importorskip("torch_geometric")
    torch.manual_seed(0)
    theirs, ours = pyg.nn.SuperGATConv(F_IN, C, **kwargs), SuperGATConv(F_IN, C, **kwargs)
    testing.load_pyg_state(ours, theirs)
    assert repr(ours) == repr(theirs)
    x, edge_index = graph(torch.float32)
    testing.assert_close(ours.eval()(x, edge_index), theirs.eval()(x, edge_index))
    neg = torch.tensor([[0, 1, 2], [4, 6, 8]])
    testing.assert_close(ours.train()(x, edge_index, neg), theirs.train()(x, edge_index, neg))
    testing.assert_close(ours.att_x, theirs.att_x)
    testing.assert_close(ours.att_y, theirs.att_y)
    testing.assert_close(ours.get_attention_loss(), theirs.get_attention_loss())
    testing.assert_signatures_match(SuperGATConv, pyg.nn.SuperGATConv, ("__init__",))
