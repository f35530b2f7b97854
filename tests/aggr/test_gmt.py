"""GraphMultisetTransformer against a per-group loop (hand-written attention) and against PyG."""

from __future__ import annotations

import math

import pytest
import torch

from gnn.aggr.gmt import GraphMultisetTransformer

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


def _layer_norm(h, norm):
    if norm is None:
        return h
    c = h - h.mean(-1, keepdim=True)
    return c / torch.sqrt(c.pow(2).mean(-1, keepdim=True) + norm.eps) * norm.weight + norm.bias


def _mab(mab, x, y):
    """MAB(x, y) for one unpadded set, written out: multi-head attention, residuals, ReLU FF."""
    n, c = x.shape
    heads = mab.attn.num_heads
    d = c // heads
    wq, wk, wv = mab.attn.in_proj_weight.chunk(3)
    bq, bk, bv = mab.attn.in_proj_bias.chunk(3)
    q = (x @ wq.t() + bq).view(n, heads, d).transpose(0, 1)
    k = (y @ wk.t() + bk).view(-1, heads, d).transpose(0, 1)
    v = (y @ wv.t() + bv).view(-1, heads, d).transpose(0, 1)
    att = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(d), dim=-1) @ v
    att = att.transpose(0, 1).reshape(n, c) @ mab.attn.out_proj.weight.t() + mab.attn.out_proj.bias
    h = _layer_norm(x + att, mab.layer_norm1)
    return _layer_norm(h + torch.relu(h @ mab.lin.weight.t() + mab.lin.bias), mab.layer_norm2)


def _pma(pma, x):
    return _mab(pma.mab, pma.seed[0], torch.relu(x @ pma.lin.weight.t() + pma.lin.bias))


def _loop(aggr, x, index, dim_size, max_len=None):
    rows = {}
    for g in range(dim_size):
        z = x[index == g][:max_len]
        if z.size(0) == 0:
            continue
        z = _pma(aggr.pma1, z)
        for encoder in aggr.encoders:
            z = _mab(encoder.mab, z, z)
        rows[g] = _pma(aggr.pma2, z)[0]
    return rows


@pytest.mark.parametrize("layer_norm", [False, True])
@pytest.mark.parametrize("heads", [1, 2])
def test_against_loop(layer_norm, heads):
    aggr = GraphMultisetTransformer(8, k=3, num_encoder_blocks=2, heads=heads, layer_norm=layer_norm).double()
    _randomize(aggr)
    x = _randn(9, 8, dtype=torch.float64)
    out = aggr(x, INDEX, dim_size=6)
    assert out.shape == (6, 8) and torch.isfinite(out).all()
    for g, expected in _loop(aggr, x, INDEX, 6).items():
        torch.testing.assert_close(out[g], expected)
    torch.testing.assert_close(aggr(x, ptr=PTR), out[:4])
    truncated = aggr(x, INDEX, max_num_elements=2)
    for g, expected in _loop(aggr, x, INDEX, 4, max_len=2).items():
        torch.testing.assert_close(truncated[g], expected)


def test_repr_and_bad_input():
    aggr = GraphMultisetTransformer(8, k=3, heads=2, layer_norm=True)
    assert repr(aggr) == "GraphMultisetTransformer(8, k=3, heads=2, layer_norm=True, dropout=0.0)"
    for k in (0, -1):
        with pytest.raises(ValueError, match="'k'"):
            GraphMultisetTransformer(8, k=k)
    with pytest.raises(ValueError, match="heads"):
        GraphMultisetTransformer(8, k=2, heads=3)
    with pytest.raises(ValueError, match="num_encoder_blocks"):
        GraphMultisetTransformer(8, k=2, num_encoder_blocks=-1)
    with pytest.raises(ValueError, match="index"):
        aggr(_randn(9, 8), torch.tensor([0, 1, 0, 1, 3, 3, 3, 3, 3]))
    with pytest.raises(ValueError, match="max_num_elements"):
        aggr(_randn(9, 8), INDEX, max_num_elements=0)


def test_gradcheck():
    aggr = GraphMultisetTransformer(4, k=2, heads=2, layer_norm=True).double()
    x = _randn(5, 4, dtype=torch.float64).requires_grad_()
    index = torch.tensor([0, 0, 0, 1, 1])
    assert torch.autograd.gradcheck(lambda t: aggr(t, index), (x,))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"k": 3},
        {"k": 4, "num_encoder_blocks": 2, "heads": 2, "layer_norm": True},
        {"k": 1, "num_encoder_blocks": 0},
    ],
)
def test_matches_pyg(kwargs):
    pyg = pytest.importorskip("torch_geometric")
    theirs = pyg.nn.aggr.GraphMultisetTransformer(8, **kwargs).eval()
    _randomize(theirs)
    ours = GraphMultisetTransformer(8, **kwargs).eval()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert repr(ours) == repr(theirs)
    x = _randn(9, 8)
    for extra in ({}, {"dim_size": 6}, {"max_num_elements": 3}):
        torch.testing.assert_close(ours(x, INDEX, **extra), theirs(x, INDEX, **extra))
    torch.testing.assert_close(ours(x, ptr=PTR), theirs(x, INDEX))


def test_no_elements_gives_the_empty_group_result():
    aggr = GraphMultisetTransformer(8, k=2, num_encoder_blocks=1, heads=2).eval()
    _randomize(aggr)
    x = _randn(9, 8)
    full = aggr(x, INDEX, dim_size=6)  # groups 2, 4 and 5 are empty
    empty = aggr(x[:0], INDEX[:0], dim_size=2)
    assert torch.isfinite(empty).all()
    torch.testing.assert_close(empty, full[4:6])
    torch.testing.assert_close(full[2], full[5])
