"""RGATConv: a per-edge loop reference written here (every attention mode, mechanism and mod),
PyG parity after a strict state_dict load, the fused attention path, input formats,
edge-permutation invariance, embeddings, dropout and bad inputs."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from gnn.conv import RGATConv
from gnn.core import ops, testing
from gnn.core import validation as v

N, E, F_IN, C, R, H, D, EDGE_DIM = 9, 40, 6, 4, 3, 2, 3, 5
ADD, MUL = "additive-self-attention", "multiplicative-self-attention"
MODS = [None, "additive", "scaled", "f-additive", "f-scaled"]


def graph(seed: int = 0) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    x, edge_index = testing.random_graph(N, E, F_IN, seed=seed, dtype=torch.float64)
    g = torch.Generator().manual_seed(seed + 100)
    edge_type = torch.randint(0, R, (E,), generator=g)
    edge_attr = torch.randn(E, EDGE_DIM, generator=g, dtype=torch.float64)
    return x, edge_index, edge_type, edge_attr


def build(**kwargs) -> RGATConv:
    torch.manual_seed(0)
    conv = RGATConv(F_IN, C, R, heads=H, **kwargs).double()
    with torch.no_grad():  # move the mod parameters off their start values
        for p in (conv.w, conv.l1, conv.b1, conv.l2, conv.b2):
            p.normal_()
        if conv.bias is not None:
            conv.bias.normal_()
    return conv


def relation_weights(conv: RGATConv) -> Tensor:
    if conv.num_bases is not None:
        return torch.einsum("rb,bio->rio", conv.att.detach(), conv.basis.detach())
    w = conv.weight.detach()
    if conv.num_blocks is not None:
        return torch.stack([torch.block_diag(*w[r]) for r in range(R)])
    return w


def loop_reference(conv: RGATConv, x, edge_index, edge_type, edge_attr=None) -> tuple[Tensor, Tensor]:
    """Per-edge loops: (output, attention [E, H * D])."""
    w = relation_weights(conv)
    mult = conv.attention_mode == MUL
    dims = conv.dim if mult else 1
    q, k = conv.q.detach(), conv.k.detach()
    rows = x if x.is_floating_point() else None
    logits, values = [], []
    for e in range(E):
        j, i, r = int(edge_index[0, e]), int(edge_index[1, e]), int(edge_type[e])
        xi = rows[i] @ w[r] if rows is not None else w[r, int(x[i])]
        xj = rows[j] @ w[r] if rows is not None else w[r, int(x[j])]
        qi, kj = xi @ q, xj @ k
        term = None
        if edge_attr is not None:
            term = conv.lin_edge(edge_attr[e : e + 1]).detach()[0] @ conv.e.detach()
        if mult:
            a = qi * kj * (term if term is not None else 1.0)
        else:
            a = F.leaky_relu(qi + kj + (term if term is not None else 0.0), conv.negative_slope)
        logits.append(a)
        values.append(xj.view(H, C))
    logits = torch.stack(logits)  # [E, H * dims]
    alpha = torch.zeros_like(logits)
    within = conv.attention_mechanism == "within-relation"
    for e in range(E):
        i, r = int(edge_index[1, e]), int(edge_type[e])
        group = [f for f in range(E) if int(edge_index[1, f]) == i and (not within or int(edge_type[f]) == r)]
        top = logits[group].max(0).values
        alpha[e] = (logits[e] - top).exp() / (logits[group] - top).exp().sum(0)
    degree = torch.bincount(edge_index[1], minlength=N).double()
    out = torch.zeros(N, H, dims, C, dtype=torch.float64)
    for e in range(E):
        i = int(edge_index[1, e])
        a = alpha[e].view(H, dims, 1)
        val = values[e].view(H, 1, C)
        if conv.mod == "additive":
            msg = a * val + conv.w.detach() * val
        elif conv.mod == "scaled":
            psi = (
                torch.relu(degree[i] * conv.l1.detach() + conv.b1.detach()) @ conv.l2.detach()
                + conv.b2.detach()
            )
            msg = a * val * psi.view(1, 1, C)
        elif conv.mod == "f-additive":
            msg = (a + 1) * val
        elif conv.mod == "f-scaled":
            msg = a * degree[i] * val
        else:
            msg = a * val
        out[i] += msg
    out = out.reshape(N, -1) if conv.concat else out.mean(1).reshape(N, -1)
    if conv.bias is not None:
        out = out + conv.bias.detach()
    return out, alpha


CONFIGS = [
    {"attention_mechanism": mech, "attention_mode": mode, "mod": mod}
    for mech, mode, mod in itertools.product(["across-relation", "within-relation"], [ADD, MUL], MODS)
]


@pytest.mark.parametrize(
    "config", CONFIGS, ids=lambda c: f"{c['attention_mechanism'][:6]}-{c['attention_mode'][:3]}-{c['mod']}"
)
def test_loop_reference(config):
    x, edge_index, edge_type, _ = graph(1)
    conv = build(dim=D if config["attention_mode"] == MUL else 1, **config)
    out, (ei, alpha) = conv(x, edge_index, edge_type, return_attention_weights=True)
    want_out, want_alpha = loop_reference(conv, x, edge_index, edge_type)
    assert ei is edge_index
    testing.assert_close(alpha, want_alpha, atol=1e-10, rtol=1e-8)
    testing.assert_close(out, want_out, atol=1e-10, rtol=1e-8)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"num_bases": 2, "edge_dim": EDGE_DIM},
        {"num_blocks": 2, "concat": False, "edge_dim": EDGE_DIM, "attention_mode": MUL, "dim": D},
        {"edge_dim": EDGE_DIM, "attention_mechanism": "within-relation", "mod": "scaled", "concat": False},
    ],
)
def test_loop_reference_decompositions_and_edge_features(kwargs):
    x, edge_index, edge_type, edge_attr = graph(2)
    conv = build(**kwargs)
    want_out, want_alpha = loop_reference(conv, x, edge_index, edge_type, edge_attr)
    out, (_, alpha) = conv(x, edge_index, edge_type, edge_attr, return_attention_weights=False)
    testing.assert_close(out, want_out, atol=1e-10, rtol=1e-8)
    testing.assert_close(alpha, want_alpha, atol=1e-10, rtol=1e-8)


def test_embeddings_and_per_relation_edge_features():
    x, edge_index, edge_type, edge_attr = graph(3)
    conv = RGATConv(N, C, R, heads=H, edge_dim=EDGE_DIM).double()
    idx = torch.randperm(N, generator=torch.Generator().manual_seed(0))
    per_relation = torch.randn(R, EDGE_DIM, dtype=torch.float64)
    want, _ = loop_reference(conv, idx, edge_index, edge_type, per_relation[edge_type])
    testing.assert_close(conv(idx, edge_index, edge_type, per_relation), want, atol=1e-10, rtol=1e-8)


def test_signatures_match_pyg():
    pyg = pytest.importorskip("torch_geometric")
    testing.assert_signatures_match(RGATConv, pyg.nn.RGATConv)


@pytest.mark.parametrize(
    "config", CONFIGS, ids=lambda c: f"{c['attention_mechanism'][:6]}-{c['attention_mode'][:3]}-{c['mod']}"
)
def test_matches_pyg(config):
    pyg = pytest.importorskip("torch_geometric")
    x, edge_index, edge_type, edge_attr = graph(4)
    x, edge_attr = x.float(), edge_attr.float()
    kwargs = dict(config, heads=H, edge_dim=EDGE_DIM, dim=D if config["attention_mode"] == MUL else 1)
    if config["mod"] is None:
        kwargs["num_bases"] = 2
    torch.manual_seed(1)
    theirs = pyg.nn.RGATConv(F_IN, C, R, **kwargs)
    with torch.no_grad():  # PyG leaves l2 uninitialized: give both the same values
        for p in (theirs.l2, theirs.w, theirs.b1, theirs.bias):
            p.normal_()
    ours = RGATConv(F_IN, C, R, **kwargs)
    testing.load_pyg_state(ours, theirs)
    assert repr(ours) == repr(theirs)
    out, (ei, alpha) = ours(x, edge_index, edge_type, edge_attr, return_attention_weights=True)
    want_out, (_, want_alpha) = theirs(x, edge_index, edge_type, edge_attr, return_attention_weights=True)
    testing.assert_close(out, want_out)
    testing.assert_close(alpha, want_alpha)
    testing.assert_close(
        ours(x, edge_index, edge_type, edge_attr), theirs(x, edge_index, edge_type, edge_attr)
    )


def test_additive_mode_runs_the_fused_attention_kernel(monkeypatch):
    x, edge_index, edge_type, _ = graph(5)
    calls: list[int] = []
    real = ops.node_score_attention

    def spy(csr, *args, **kwargs):
        calls.append(csr.num_rows)
        return real(csr, *args, **kwargs)

    monkeypatch.setattr(ops, "node_score_attention", spy)
    for mechanism, rows in (("across-relation", N), ("within-relation", N * R)):
        conv = build(attention_mechanism=mechanism).eval()
        fused = conv(x, edge_index, edge_type)
        assert calls[-1] == rows
        seen: list[int] = []
        handle = conv.register_message_forward_hook(lambda m, inputs, out: seen.append(1))
        general = conv(x, edge_index, edge_type)
        handle.remove()
        assert seen
        testing.assert_close(general, fused, atol=1e-10, rtol=1e-8)


def test_dropout_applies_in_training_only():
    x, edge_index, edge_type, _ = graph(6)
    conv = build(dropout=0.5)
    conv.eval()
    expected = conv(x, edge_index, edge_type)
    torch.manual_seed(0)
    conv.train()
    out, (_, alpha) = conv(x, edge_index, edge_type, return_attention_weights=True)
    assert not torch.allclose(out, expected)
    _, want_alpha = loop_reference(conv, x, edge_index, edge_type)
    testing.assert_close(alpha, want_alpha, atol=1e-10, rtol=1e-8)  # the weights before dropout, as PyG


def test_sparse_inputs_carry_the_relations():
    x, edge_index, edge_type, _ = graph(7)
    conv = build()
    testing.assert_formats_agree(
        lambda adj: conv(x, adj, edge_type if adj.layout == torch.strided else None),
        edge_index,
        N,
        edge_weight=edge_type,
        atol=1e-10,
        rtol=1e-8,
    )
    adj = torch.sparse_coo_tensor(edge_index.flip(0), edge_type, (N, N))
    _, (weights, alpha) = conv(x, adj, return_attention_weights=True)
    assert weights.layout == torch.sparse_coo and alpha.shape == (E, H)


def test_edge_permutation_invariance():
    x, edge_index, edge_type, edge_attr = graph(8)
    conv = build(edge_dim=EDGE_DIM, attention_mechanism="within-relation")
    perm = torch.randperm(E, generator=torch.Generator().manual_seed(1))
    out, (_, alpha) = conv(x, edge_index, edge_type, edge_attr, return_attention_weights=True)
    out_p, (_, alpha_p) = conv(
        x, edge_index[:, perm], edge_type[perm], edge_attr[perm], return_attention_weights=True
    )
    testing.assert_close(out_p, out, atol=1e-10, rtol=1e-8)
    testing.assert_close(alpha_p, alpha[perm], atol=1e-10, rtol=1e-8)


def test_empty_graph_int32_and_grad():
    x, edge_index, edge_type, _ = graph(9)
    conv = build()
    testing.assert_close(conv(x, edge_index[:, :0], edge_type[:0]), conv.bias.expand(N, -1))
    expected = conv(x, edge_index, edge_type)
    testing.assert_close(conv(x, edge_index.int(), edge_type.int()), expected)
    xg = x.clone().requires_grad_()
    conv(xg, edge_index, edge_type).square().sum().backward()
    assert xg.grad is not None and conv.weight.grad is not None and conv.q.grad is not None


def test_bad_inputs_raise():
    x, edge_index, edge_type, edge_attr = graph(10)
    conv = build()
    with pytest.raises(ValueError, match="'edge_type'"):
        conv(x, edge_index)
    with pytest.raises(v.IndexRangeError, match="'edge_type'"):
        conv(x, edge_index, edge_type + R)
    with pytest.raises(ValueError, match="'edge_attr'"):
        conv(x, edge_index, edge_type, edge_attr)  # no edge_dim
    with pytest.raises(ValueError, match="'edge_attr'"):
        build(edge_dim=EDGE_DIM)(x, edge_index, edge_type, edge_attr[:-1])
    with pytest.raises(ValueError, match="'x'"):
        conv(x[:, :2], edge_index, edge_type)
    with pytest.raises(TypeError, match="'x'"):
        conv((x, x), edge_index, edge_type)
    with pytest.raises(ValueError, match="size"):
        conv(x, edge_index, edge_type, size=(N, N + 1))
    with pytest.raises(ValueError, match="attention_mechanism"):
        RGATConv(F_IN, C, R, attention_mechanism="inside")
    with pytest.raises(ValueError, match="attention_mode"):
        RGATConv(F_IN, C, R, attention_mode="dot")
    with pytest.raises(ValueError, match="dim"):
        RGATConv(F_IN, C, R, dim=2)
    with pytest.raises(ValueError, match="mod"):
        RGATConv(F_IN, C, R, mod="scaled", dropout=0.5)
    with pytest.raises(ValueError, match="mod"):
        RGATConv(F_IN, C, R, mod="double")
    with pytest.raises(ValueError, match="num_blocks"):
        RGATConv(F_IN, C, R, num_blocks=4)
    with pytest.raises(ValueError, match="Block-diagonal"):
        RGATConv(8, C, R, num_blocks=2)(torch.arange(8), edge_index % 8, edge_type)
