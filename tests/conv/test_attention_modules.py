"""Attention modules (gnn.conv.attention): explicit formulas, masks, PyG parity, signatures, errors."""

from __future__ import annotations

import inspect
import math

import pytest
import torch
import torch.nn.functional as F

from gnn.conv import PerformerAttention, PolynormerAttention, QFormer, SGFormerAttention
from gnn.core import testing

B, N, C = 2, 7, 8


def batch(seed: int = 0, dtype: torch.dtype = torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, N, C, generator=g, dtype=dtype)
    mask = torch.ones(B, N, dtype=torch.bool)
    mask[1, 4:] = False
    return x, mask


# -- Performer --------------------------------------------------------------------------------------
def test_performer_formula():
    x, mask = batch()
    heads, dim = 2, 4
    attn = PerformerAttention(C, heads, head_channels=dim, qkv_bias=True).double()
    proj = attn.fast_attn.projection_matrix  # [M, dim], M = int(dim * ln dim)
    assert proj.shape == (int(dim * math.log(dim)), dim)
    for m in (None, mask):
        out = torch.zeros(B, N, heads * dim, dtype=torch.float64)
        for b in range(B):
            q, k, v = (lin(x[b]).view(N, heads, dim) for lin in (attn.q, attn.k, attn.v))
            if m is not None:
                v = v * m[b].view(N, 1, 1)  # padded values are zero, padded keys still count
            for h in range(heads):
                phi_q = torch.relu(q[:, h] @ proj.t()) + 1e-3
                phi_k = torch.relu(k[:, h] @ proj.t()) + 1e-3
                for i in range(N):
                    weights = phi_k @ phi_q[i]  # [N]
                    out[b, i, h * dim : (h + 1) * dim] = (weights[:, None] * v[:, h]).sum(0) / weights.sum()
        torch.testing.assert_close(attn(x, m), attn.attn_out(out))


def test_performer_projection_is_orthogonal_per_block_and_redraws():
    attn = PerformerAttention(C, 2, head_channels=8)
    proj = attn.fast_attn.projection_matrix.clone()
    assert proj.shape == (16, 8)  # int(8 ln 8) = 16: two blocks of 8
    for block in proj.split(8):
        torch.testing.assert_close(block @ block.t(), torch.eye(8), atol=1e-5, rtol=0)
    attn.redraw_projection_matrix()
    assert attn.fast_attn.projection_matrix.shape == proj.shape
    assert not torch.equal(attn.fast_attn.projection_matrix, proj)
    assert "fast_attn.projection_matrix" in attn.state_dict()


def test_performer_dropout_on_the_output():
    x, _ = batch(dtype=torch.float32)
    attn = PerformerAttention(C, 2, head_channels=4, dropout=0.5, attn_out_bias=False)
    attn.eval()
    ref = attn(x)
    attn.train()
    out = attn(x)
    kept = out != 0
    assert 0 < kept.float().mean() < 1
    torch.testing.assert_close(out[kept], 2 * ref[kept])


# -- SGFormer ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("heads", [1, 2])
def test_sgformer_formula_in_float64(heads):
    x, mask = batch()
    dim = 3
    attn = SGFormerAttention(C, heads, head_channels=dim, qkv_bias=True).double()
    for m in (None, mask):
        out = torch.zeros(B, N, dim, dtype=torch.float64)
        for b in range(B):
            q, k, v = (lin(x[b]).view(N, heads, dim) for lin in (attn.q, attn.k, attn.v))
            if m is not None:
                v = v * m[b].view(N, 1, 1)
            for h in range(heads):
                qn = q[:, h] / q[:, h].norm(dim=-1, keepdim=True)
                kn = k[:, h] / k[:, h].norm(dim=-1, keepdim=True)
                for i in range(N):
                    num = sum((qn[i] @ kn[j]) * v[j, h] for j in range(N)) + N * v[i, h]
                    den = sum((qn[i] @ kn[j]) for j in range(N)) + N
                    out[b, i] += num / den / heads
        torch.testing.assert_close(attn(x, m), out)


def test_sgformer_zero_rows_stay_finite():
    attn = SGFormerAttention(C, 2, head_channels=4)
    out = attn(torch.zeros(1, 3, C))
    assert torch.isfinite(out).all()


# -- Polynormer -------------------------------------------------------------------------------------
@pytest.mark.parametrize("qk_shared", [True, False])
def test_polynormer_formula(qk_shared):
    x, mask = batch()
    heads, dim = 2, 3
    attn = PolynormerAttention(C, heads, head_channels=dim, beta=0.6, qkv_bias=True, qk_shared=qk_shared)
    attn = attn.double()
    torch.nn.init.normal_(attn.lns.weight)
    for m in (None, mask):
        att = torch.zeros(B, N, heads * dim, dtype=torch.float64)
        for b in range(B):
            k = torch.sigmoid(attn.k(x[b]))
            q = k if qk_shared else torch.sigmoid(attn.q(x[b]))
            v = attn.v(x[b])
            if m is not None:
                v = v * m[b].view(N, 1)
            for h in range(heads):
                cols = [d * heads + h for d in range(dim)]  # feature d * heads + h belongs to head h
                qh, kh, vh = q[:, cols], k[:, cols], v[:, cols]
                for i in range(N):
                    w = kh @ qh[i]
                    att[b, i, cols] = (w[:, None] * vh).sum(0) / (w.sum() + 1e-6)
        gate = attn.h_lins(x)
        expected = torch.relu(
            attn.lin_out(F.layer_norm(att, (heads * dim,), attn.lns.weight, attn.lns.bias) * (gate + 0.6))
        )
        torch.testing.assert_close(attn(x, m), expected)


# -- QFormer ----------------------------------------------------------------------------------------
def test_qformer_formula():
    x, _ = batch()
    qf = QFormer(C, 12, 5, num_heads=2, num_layers=2).double().eval()
    h = F.layer_norm(x, (C,), qf.layer_norm.weight, qf.layer_norm.bias)
    for layer in qf.encoder.layers:  # post-norm layers, explicit softmax attention
        w, bias = layer.self_attn.in_proj_weight, layer.self_attn.in_proj_bias
        q, k, v = (h @ w[i * C : (i + 1) * C].t() + bias[i * C : (i + 1) * C] for i in range(3))
        heads = []
        for hd in range(2):
            cols = slice(hd * C // 2, (hd + 1) * C // 2)
            scores = q[..., cols] @ k[..., cols].transpose(1, 2) / math.sqrt(C // 2)
            heads.append(torch.softmax(scores, -1) @ v[..., cols])
        a = layer.self_attn.out_proj(torch.cat(heads, -1))
        h = layer.norm1(h + a)
        h = layer.norm2(h + layer.linear2(torch.relu(layer.linear1(h))))
    torch.testing.assert_close(qf(x), qf.project(h))
    assert "encoder_layer.linear1.weight" in qf.state_dict()  # the template layer, as in PyG


# -- PyG parity -------------------------------------------------------------------------------------
MODULES = [
    ("PerformerAttention", (C, 2), {"head_channels": 4}),
    ("PerformerAttention", (C, 4), {"head_channels": 5, "qkv_bias": True, "attn_out_bias": False}),
    ("SGFormerAttention", (C, 2), {"head_channels": 4}),
    ("SGFormerAttention", (C,), {"qkv_bias": True}),
    ("PolynormerAttention", (C, 2), {"head_channels": 4}),
    ("PolynormerAttention", (C, 2), {"head_channels": 3, "qk_shared": False, "qkv_bias": True, "beta": 0.3}),
]


@pytest.mark.parametrize("name, args, kwargs", MODULES, ids=[m[0] + str(i) for i, m in enumerate(MODULES)])
def test_matches_pyg(name, args, kwargs):
    pyg = pytest.importorskip("torch_geometric")
    import gnn.conv

    torch.manual_seed(0)
    theirs = getattr(pyg.nn.attention, name)(*args, **kwargs)
    ours = getattr(gnn.conv, name)(*args, **kwargs)
    testing.load_pyg_state(ours, theirs)
    assert repr(ours) == repr(theirs)
    x, mask = batch(seed=1, dtype=torch.float32)
    for mode in (True, False):
        ours.train(mode)
        theirs.train(mode)
        testing.assert_close(ours(x), theirs(x))
        testing.assert_close(ours(x, mask), theirs(x, mask))


def test_qformer_matches_pyg():
    pyg = pytest.importorskip("torch_geometric")
    torch.manual_seed(0)
    theirs = pyg.nn.attention.QFormer(C, 12, 5, 2, 3)
    ours = QFormer(C, 12, 5, 2, 3)
    testing.load_pyg_state(ours, theirs)
    assert repr(ours) == repr(theirs)
    x, _ = batch(seed=2, dtype=torch.float32)
    for mode in (True, False):
        ours.train(mode)
        theirs.train(mode)
        testing.assert_close(ours(x), theirs(x))


@pytest.mark.parametrize(
    "name", ["PerformerAttention", "QFormer", "SGFormerAttention", "PolynormerAttention"]
)
def test_signatures_match_pyg(name):
    pyg = pytest.importorskip("torch_geometric")
    import gnn.conv

    for method in ("__init__", "forward"):
        ours = inspect.signature(getattr(getattr(gnn.conv, name), method)).parameters.values()
        theirs = inspect.signature(getattr(getattr(pyg.nn.attention, name), method)).parameters.values()
        # defaults compared by repr: the activation defaults are module instances
        assert [(p.name, repr(p.default), p.kind) for p in ours] == [
            (p.name, repr(p.default), p.kind) for p in theirs
        ]


# -- inputs -----------------------------------------------------------------------------------------
ALL = [
    lambda: PerformerAttention(C, 2, head_channels=4),
    lambda: SGFormerAttention(C, 2, head_channels=4),
    lambda: PolynormerAttention(C, 2, head_channels=4),
]


@pytest.mark.parametrize("make", ALL)
def test_empty_and_single_node_sets(make):
    attn = make()
    out = attn(torch.randn(2, 0, C))
    assert out.shape[:2] == (2, 0)
    single = attn(torch.randn(3, 1, C), torch.ones(3, 1, dtype=torch.bool))
    assert single.shape[:2] == (3, 1) and torch.isfinite(single).all()
    assert QFormer(C, 4, 3, 2, 1)(torch.randn(2, 1, C)).shape == (2, 1, 3)


@pytest.mark.parametrize("make", ALL)
def test_bad_inputs_name_the_argument(make):
    attn = make()
    x, mask = batch(dtype=torch.float32)
    with pytest.raises(TypeError, match="'x'"):
        attn(x.tolist())
    with pytest.raises(ValueError, match="'x'"):
        attn(x[0])
    with pytest.raises(ValueError, match="'x'"):
        attn(x[..., :-1])
    with pytest.raises(ValueError, match="'mask'"):
        attn(x, mask[:, :-1])
    with pytest.raises(TypeError, match="'mask'"):
        attn(x, mask.float())


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="'heads'"):
        PerformerAttention(C, 0)
    with pytest.raises(ValueError, match="'head_channels'"):
        PerformerAttention(C, 2, head_channels=1)
    with pytest.raises(ValueError, match="'heads'"):
        SGFormerAttention(C, 3)
    with pytest.raises(ValueError, match="'num_heads'"):
        QFormer(C, 4, 4, num_heads=3, num_layers=1)
    with pytest.raises(ValueError, match="'x'"):
        QFormer(C, 4, 4, 2, 1)(torch.randn(2, 3, C + 1))


def test_reachable_through_gnn_nn():
    import gnn.conv.attention as attention
    import gnn.nn

    assert gnn.nn.PerformerAttention is attention.PerformerAttention is PerformerAttention
    assert gnn.nn.attention is attention
