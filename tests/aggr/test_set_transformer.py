"""The Set Transformer attention blocks against a hand-written attention, and
SetTransformerAggregation against a per-group loop and against PyG."""

from __future__ import annotations

import math

import pytest
import torch

from gnn.aggr._attention_blocks import (
    InducedSetAttentionBlock,
    MultiheadAttentionBlock,
    PoolingByMultiheadAttention,
    SetAttentionBlock,
)
from gnn.aggr.set_transformer import SetTransformerAggregation

INDEX = torch.tensor([0, 0, 0, 1, 3, 3, 3, 3, 3])
PTR = torch.tensor([0, 3, 4, 4, 9])


def _randn(*shape, dtype=torch.float32, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _randomize(module, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for value in module.state_dict(keep_vars=True).values():
            if value.is_floating_point():
                value.copy_(0.5 * torch.randn(value.shape, generator=g, dtype=value.dtype))


# -- hand-written reference of the blocks (one set at a time, no padding) -----------------
def _layer_norm(h, norm):
    if norm is None:
        return h
    c = h - h.mean(-1, keepdim=True)
    return c / torch.sqrt(c.pow(2).mean(-1, keepdim=True) + norm.eps) * norm.weight + norm.bias


def _attention(attn, q_in, kv_in):
    """softmax(Q K^T / sqrt(d)) V per head, concatenated, then the output projection."""
    n, c = q_in.shape
    heads = attn.num_heads
    d = c // heads
    wq, wk, wv = attn.in_proj_weight.chunk(3)
    bq, bk, bv = attn.in_proj_bias.chunk(3)
    q = (q_in @ wq.t() + bq).view(n, heads, d).transpose(0, 1)
    k = (kv_in @ wk.t() + bk).view(-1, heads, d).transpose(0, 1)
    v = (kv_in @ wv.t() + bv).view(-1, heads, d).transpose(0, 1)
    weights = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(d), dim=-1)
    out = (weights @ v).transpose(0, 1).reshape(n, c)
    return out @ attn.out_proj.weight.t() + attn.out_proj.bias


def mab_ref(mab, x, y):
    h = _layer_norm(x + _attention(mab.attn, x, y), mab.layer_norm1)
    return _layer_norm(h + torch.relu(h @ mab.lin.weight.t() + mab.lin.bias), mab.layer_norm2)


def pma_ref(pma, x):
    return mab_ref(pma.mab, pma.seed[0], torch.relu(x @ pma.lin.weight.t() + pma.lin.bias))


def set_transformer_ref(aggr, x, index, dim_size, max_len=None):
    rows = {}
    for g in range(dim_size):
        z = x[index == g][:max_len]
        if z.size(0) == 0:
            continue
        for encoder in aggr.encoders:
            z = mab_ref(encoder.mab, z, z)
        z = pma_ref(aggr.pma, z)
        for decoder in aggr.decoders:
            z = mab_ref(decoder.mab, z, z)
        rows[g] = z.reshape(-1) if aggr.concat else z.mean(0)
    return rows


# -- blocks ---------------------------------------------------------------------------------
X_MASK = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1], [1, 0, 0, 0]], dtype=torch.bool)
Y_MASK = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]], dtype=torch.bool)


@pytest.mark.parametrize("layer_norm", [False, True])
@pytest.mark.parametrize("heads", [1, 2])
def test_mab_against_manual_attention(layer_norm, heads):
    mab = MultiheadAttentionBlock(8, heads=heads, layer_norm=layer_norm).double()
    _randomize(mab)
    x, y = _randn(3, 4, 8, dtype=torch.float64), _randn(3, 5, 8, dtype=torch.float64, seed=1)
    out = mab(x, y, X_MASK, Y_MASK)
    for b in range(3):
        expected = mab_ref(mab, x[b], y[b][Y_MASK[b]])
        torch.testing.assert_close(out[b][X_MASK[b]], expected[X_MASK[b]])
        # masked query rows get no attention: only the residual and the feed-forward part
        h = _layer_norm(x[b], mab.layer_norm1)
        rest = _layer_norm(h + torch.relu(h @ mab.lin.weight.t() + mab.lin.bias), mab.layer_norm2)
        torch.testing.assert_close(out[b][~X_MASK[b]], rest[~X_MASK[b]])
    torch.testing.assert_close(mab(x, y)[1], mab_ref(mab, x[1], y[1]))


def test_sab_isab_pma_against_manual():
    x = _randn(3, 5, 8, dtype=torch.float64)
    sab = SetAttentionBlock(8, heads=2).double()
    isab = InducedSetAttentionBlock(8, num_induced_points=3, heads=2).double()
    pma = PoolingByMultiheadAttention(8, num_seed_points=2, heads=2).double()
    for block in (sab, isab, pma):
        _randomize(block)
    out_sab, out_isab, out_pma = sab(x, Y_MASK), isab(x, Y_MASK), pma(x, Y_MASK)
    for b in range(3):
        xb = x[b][Y_MASK[b]]
        torch.testing.assert_close(out_sab[b][Y_MASK[b]], mab_ref(sab.mab, xb, xb))
        h = mab_ref(isab.mab1, isab.ind[0], xb)
        torch.testing.assert_close(out_isab[b][Y_MASK[b]], mab_ref(isab.mab2, xb, h))
        torch.testing.assert_close(out_pma[b], pma_ref(pma, xb))
    assert repr(sab) == "SetAttentionBlock(8, heads=2, layer_norm=True, dropout=0.0)"
    assert (
        repr(pma)
        == "PoolingByMultiheadAttention(8, num_seed_points=2, heads=2, layer_norm=True, dropout=0.0)"
    )


def test_blocks_bad_arguments():
    with pytest.raises(ValueError, match="heads"):
        MultiheadAttentionBlock(8, heads=3)
    with pytest.raises(ValueError, match="num_seed_points"):
        PoolingByMultiheadAttention(8, num_seed_points=0)
    with pytest.raises(ValueError, match="num_induced_points"):
        InducedSetAttentionBlock(8, num_induced_points=0)


# -- SetTransformerAggregation --------------------------------------------------------------
@pytest.mark.parametrize("concat", [True, False])
@pytest.mark.parametrize("layer_norm", [False, True])
def test_against_loop(concat, layer_norm):
    aggr = SetTransformerAggregation(
        8,
        num_seed_points=2,
        num_encoder_blocks=2,
        num_decoder_blocks=1,
        heads=2,
        concat=concat,
        layer_norm=layer_norm,
    ).double()
    _randomize(aggr)
    x = _randn(9, 8, dtype=torch.float64)
    out = aggr(x, INDEX, dim_size=6)
    assert out.shape == (6, 16 if concat else 8)
    assert torch.isfinite(out).all()
    for g, expected in set_transformer_ref(aggr, x, INDEX, 6).items():
        torch.testing.assert_close(out[g], expected)
    torch.testing.assert_close(aggr(x, ptr=PTR), out[:4])
    truncated = aggr(x, INDEX, max_num_elements=2)
    for g, expected in set_transformer_ref(aggr, x, INDEX, 4, max_len=2).items():
        torch.testing.assert_close(truncated[g], expected)


def test_bad_input():
    aggr = SetTransformerAggregation(8)
    with pytest.raises(ValueError, match="index"):
        aggr(_randn(9, 8), torch.tensor([0, 1, 0, 1, 3, 3, 3, 3, 3]))
    with pytest.raises(ValueError, match="max_num_elements"):
        aggr(_randn(9, 8), INDEX, max_num_elements=0)
    with pytest.raises(ValueError, match="heads"):
        SetTransformerAggregation(8, heads=3)
    with pytest.raises(ValueError, match="num_seed_points"):
        SetTransformerAggregation(8, num_seed_points=0)


def test_gradcheck():
    aggr = SetTransformerAggregation(4, num_seed_points=2, heads=2, layer_norm=True).double()
    x = _randn(5, 4, dtype=torch.float64).requires_grad_()
    index = torch.tensor([0, 0, 0, 1, 1])
    assert torch.autograd.gradcheck(lambda t: aggr(t, index), (x,))


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {
            "num_seed_points": 2,
            "num_encoder_blocks": 2,
            "num_decoder_blocks": 2,
            "heads": 2,
            "layer_norm": True,
        },
        {"num_seed_points": 3, "concat": False, "heads": 4, "num_decoder_blocks": 0},
    ],
)
def test_matches_pyg(kwargs):
    pyg = pytest.importorskip("torch_geometric")
    theirs = pyg.nn.aggr.SetTransformerAggregation(8, **kwargs).eval()
    _randomize(theirs)
    ours = SetTransformerAggregation(8, **kwargs).eval()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert repr(ours) == repr(theirs)
    x = _randn(9, 8)
    for extra in ({}, {"dim_size": 6}, {"max_num_elements": 3}):  # dim_size=6: empty groups too
        torch.testing.assert_close(ours(x, INDEX, **extra), theirs(x, INDEX, **extra))
    torch.testing.assert_close(ours(x, ptr=PTR), theirs(x, INDEX))


def test_blocks_match_pyg_with_dropout_in_training():
    pyg = pytest.importorskip("torch_geometric")
    utils = pyg.nn.aggr.utils
    pairs = [
        (MultiheadAttentionBlock(8, 2, True, 0.3), utils.MultiheadAttentionBlock(8, 2, True, 0.3)),
        (SetAttentionBlock(8, 2, False, 0.3), utils.SetAttentionBlock(8, 2, False, 0.3)),
        (InducedSetAttentionBlock(8, 3, 2, True, 0.3), utils.InducedSetAttentionBlock(8, 3, 2, True, 0.3)),
        (
            PoolingByMultiheadAttention(8, 2, 2, True, 0.3),
            utils.PoolingByMultiheadAttention(8, 2, 2, True, 0.3),
        ),
    ]
    x, y = _randn(3, 4, 8), _randn(3, 5, 8, seed=1)
    for ours, theirs in pairs:
        _randomize(theirs)
        ours.load_state_dict(theirs.state_dict(), strict=True)
        assert list(ours.state_dict()) == list(theirs.state_dict())
        assert repr(ours) == repr(theirs)
        args = (x, y, X_MASK, Y_MASK) if isinstance(ours, MultiheadAttentionBlock) else (y, Y_MASK)
        for training in (True, False):
            ours.train(training)
            theirs.train(training)
            torch.manual_seed(7)
            expected = theirs(*args)
            torch.manual_seed(7)
            torch.testing.assert_close(ours(*args), expected)


def test_no_elements_gives_the_empty_group_result():
    aggr = SetTransformerAggregation(8, num_seed_points=2, heads=2, layer_norm=True).eval()
    _randomize(aggr)
    x = _randn(9, 8)
    full = aggr(x, INDEX, dim_size=6)  # groups 2, 4 and 5 are empty
    empty = aggr(x[:0], INDEX[:0], dim_size=2)
    assert torch.isfinite(empty).all()
    torch.testing.assert_close(empty, full[4:6])
    torch.testing.assert_close(full[2], full[5])
