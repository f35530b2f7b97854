"""PatchTransformerAggregation against a per-group loop (hand-written attention) and against PyG."""

from __future__ import annotations

import math

import pytest
import torch

from gnn.aggr.patch_transformer import PatchTransformerAggregation

INDEX = torch.tensor([0, 0, 0, 1, 3, 3, 3, 3, 3])
PTR = torch.tensor([0, 3, 4, 4, 9])


def _randn(*shape, dtype=torch.float32, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _randomize(module, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, value in module.state_dict(keep_vars=True).items():
            if value.is_floating_point() and not name.endswith("frequency"):
                value.copy_(0.5 * torch.randn(value.shape, generator=g, dtype=value.dtype))


def _layer_norm(h, norm):
    c = h - h.mean(-1, keepdim=True)
    return c / torch.sqrt(c.pow(2).mean(-1, keepdim=True) + norm.eps) * norm.weight + norm.bias


def _mab(mab, x):
    """Self-attention block on one sequence of tokens, written out."""
    n, c = x.shape
    heads = mab.attn.num_heads
    d = c // heads
    wq, wk, wv = mab.attn.in_proj_weight.chunk(3)
    bq, bk, bv = mab.attn.in_proj_bias.chunk(3)
    q, k, v = ((x @ w.t() + b).view(n, heads, d).transpose(0, 1) for w, b in ((wq, bq), (wk, bk), (wv, bv)))
    att = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(d), dim=-1) @ v
    att = att.transpose(0, 1).reshape(n, c) @ mab.attn.out_proj.weight.t() + mab.attn.out_proj.bias
    h = _layer_norm(x + att, mab.layer_norm1)
    return _layer_norm(h + torch.relu(h @ mab.lin.weight.t() + mab.lin.bias), mab.layer_norm2)


def _positional_encoding(num, channels, dtype):
    half = channels // 2
    freq = torch.tensor([1e-4 ** (i / (half - 1)) if half > 1 else 1.0 for i in range(half)], dtype=dtype)
    angle = torch.arange(num, dtype=dtype).view(-1, 1) * freq
    return torch.cat([torch.sin(angle), torch.cos(angle)], dim=-1)


REDUCE = {
    "sum": lambda t: t.sum(0),
    "mean": lambda t: t.mean(0),
    "min": lambda t: t.min(0).values,
    "max": lambda t: t.max(0).values,
    "var": lambda t: t.var(0),
    "std": lambda t: t.std(0),
}


def _loop(aggr, x, index, dim_size, max_num_elements=None):
    p = aggr.patch_size
    counts = [int((index == g).sum()) for g in range(dim_size)]
    patches = max_num_elements // p if max_num_elements else -(-max(counts) // p)
    rows = []
    for g in range(dim_size):
        h = (x[index == g] @ aggr.lin.weight.t() + aggr.lin.bias)[: patches * p]
        h = torch.cat([h, h.new_zeros(patches * p - h.size(0), h.size(1))])
        tokens = h.reshape(patches, -1) @ aggr.pad_projector.weight.t() + aggr.pad_projector.bias
        tokens = tokens + _positional_encoding(patches, h.size(1), x.dtype)
        for block in aggr.blocks:
            tokens = _mab(block, tokens)
        pooled = torch.cat([REDUCE[a](tokens) for a in aggr.aggrs])
        rows.append(pooled @ aggr.fc.weight.t() + aggr.fc.bias)
    return torch.stack(rows)


@pytest.mark.parametrize(
    "patch_size, heads, aggr, blocks",
    [(2, 1, "mean", 1), (2, 2, ["max", "std"], 2), (3, 2, ["sum", "min", "var"], 1), (1, 1, ["mean"], 0)],
)
def test_against_loop(patch_size, heads, aggr, blocks):
    module = PatchTransformerAggregation(
        4, 6, patch_size, hidden_channels=8, num_transformer_blocks=blocks, heads=heads, aggr=aggr
    ).double()
    _randomize(module)
    x = _randn(9, 4, dtype=torch.float64)
    expected = _loop(module, x, INDEX, 4)
    torch.testing.assert_close(module(x, INDEX), expected)
    torch.testing.assert_close(module(x, ptr=PTR), expected)
    torch.testing.assert_close(module(x, INDEX, dim_size=6), _loop(module, x, INDEX, 6))
    for m in (2 * patch_size, 2 * patch_size + 1):
        torch.testing.assert_close(module(x, INDEX, max_num_elements=m), _loop(module, x, INDEX, 4, m))
    assert repr(module) == f"PatchTransformerAggregation(4, 6, patch_size={patch_size})"


def test_positional_encoding_buffer():
    module = PatchTransformerAggregation(4, 6, 2, hidden_channels=8)
    torch.testing.assert_close(module.pe(torch.arange(5.0)), _positional_encoding(5, 8, torch.float32))
    assert "pe.frequency" in module.state_dict()


def test_bad_input():
    with pytest.raises(ValueError, match="aggr"):
        PatchTransformerAggregation(4, 6, 2, 8, aggr="median")
    with pytest.raises(ValueError, match="hidden_channels"):
        PatchTransformerAggregation(4, 6, 2, 7)
    with pytest.raises(ValueError, match="patch_size"):
        PatchTransformerAggregation(4, 6, 0, 8)
    with pytest.raises(ValueError, match="heads"):
        PatchTransformerAggregation(4, 6, 2, 8, heads=3)
    module = PatchTransformerAggregation(4, 6, 2, 8)
    with pytest.raises(ValueError, match="index"):
        module(_randn(9, 4), torch.tensor([0, 1, 0, 1, 3, 3, 3, 3, 3]))
    with pytest.raises(ValueError, match="max_num_elements"):
        module(_randn(9, 4), INDEX, max_num_elements=1)


def test_gradcheck():
    module = PatchTransformerAggregation(3, 2, 2, hidden_channels=4, heads=2, aggr=["mean", "max"]).double()
    x = _randn(5, 3, dtype=torch.float64).requires_grad_()
    index = torch.tensor([0, 0, 0, 1, 1])
    assert torch.autograd.gradcheck(lambda t: module(t, index), (x,))


@pytest.mark.filterwarnings("ignore:std\\(\\)")
@pytest.mark.parametrize(
    "kwargs",
    [
        {"patch_size": 2},
        {"patch_size": 3, "num_transformer_blocks": 2, "heads": 2, "aggr": ["mean", "max", "std"]},
    ],
)
def test_matches_pyg(kwargs):
    pyg = pytest.importorskip("torch_geometric")
    theirs = pyg.nn.aggr.PatchTransformerAggregation(4, 6, hidden_channels=8, **kwargs).eval()
    _randomize(theirs)
    ours = PatchTransformerAggregation(4, 6, hidden_channels=8, **kwargs).eval()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert repr(ours) == repr(theirs)
    x = _randn(9, 4)
    for extra in ({}, {"dim_size": 6}, {"max_num_elements": 4}, {"max_num_elements": 7}):
        # one patch (max_num_elements=4, patch_size=3) makes the unbiased std NaN in both
        torch.testing.assert_close(ours(x, INDEX, **extra), theirs(x, INDEX, **extra), equal_nan=True)
    torch.testing.assert_close(ours(x, ptr=PTR), theirs(x, INDEX))
