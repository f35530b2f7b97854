"""MultiAggregation: every combine mode against a loop over groups and aggregations."""

from __future__ import annotations

import pytest
import torch

from gnn.aggr import (
    MaxAggregation,
    MeanAggregation,
    MultiAggregation,
    SoftmaxAggregation,
    StdAggregation,
)
from gnn.core import registry

INDEX = torch.tensor([1, 1, 0, 3, 3, 3, 1, 0])  # groups 2 and 4 empty
DIM_SIZE = 5
REDUCERS = {
    "mean": lambda t: t.mean(0),
    "max": lambda t: t.max(0).values,
    "std": lambda t: t.var(0, unbiased=False).clamp(min=1e-5).sqrt() * (t.var(0, unbiased=False) > 1e-5),
}


def loop(x, index, dim_size, name):
    out = torch.zeros(dim_size, x.size(1), dtype=x.dtype)
    for g in range(dim_size):
        rows = index == g
        if rows.any():
            out[g] = REDUCERS[name](x[rows])
    return out


def data(dtype=torch.float64):
    g = torch.Generator().manual_seed(5)
    return torch.randn(INDEX.numel(), 4, generator=g, dtype=dtype)


def test_cat_against_loop_index_ptr_and_dim():
    x = data()
    aggr = MultiAggregation(["mean", "max", "std"])
    expected = torch.cat([loop(x, INDEX, DIM_SIZE, n) for n in ("mean", "max", "std")], dim=-1)
    torch.testing.assert_close(aggr(x, INDEX, dim_size=DIM_SIZE), expected)
    perm = torch.argsort(INDEX, stable=True)
    ptr = torch.cat([torch.zeros(1, dtype=torch.long), torch.bincount(INDEX, minlength=DIM_SIZE).cumsum(0)])
    torch.testing.assert_close(aggr(x[perm], ptr=ptr), expected)
    out3 = aggr(torch.stack([x, -x]), INDEX, dim_size=DIM_SIZE, dim=1)
    torch.testing.assert_close(out3[0], expected)
    assert aggr.get_out_channels(4) == 12
    assert repr(aggr) == (
        "MultiAggregation([\n  MeanAggregation(),\n  MaxAggregation(),\n  StdAggregation(),\n], mode=cat)"
    )


@pytest.mark.parametrize("mode", ["sum", "mean", "max", "min", "logsumexp", "std", "var"])
def test_reduction_modes(mode):
    x = data()
    outs = [loop(x, INDEX, DIM_SIZE, n) for n in ("mean", "max", "std")]
    out = MultiAggregation(["mean", "max", "std"], mode=mode)(x, INDEX, dim_size=DIM_SIZE)
    for g in range(DIM_SIZE):
        for f in range(4):
            vals = torch.stack([o[g, f] for o in outs])
            ref = {
                "sum": vals.sum(),
                "mean": vals.mean(),
                "max": vals.max(),
                "min": vals.min(),
                "logsumexp": vals.exp().sum().log(),
                "std": ((vals - vals.mean()) ** 2).sum().div(2).sqrt(),
                "var": ((vals - vals.mean()) ** 2).sum().div(2),
            }[mode]
            torch.testing.assert_close(out[g, f], ref)


def test_proj_and_attn_modes():
    x = data(torch.float32)
    outs = [loop(x, INDEX, DIM_SIZE, n) for n in ("mean", "max")]
    proj = MultiAggregation(["mean", "max"], mode="proj", mode_kwargs={"in_channels": 4, "out_channels": 6})
    torch.testing.assert_close(proj(x, INDEX, dim_size=DIM_SIZE), proj.lin(torch.cat(outs, -1)))
    assert proj.get_out_channels(4) == 6
    assert list(proj.state_dict()) == ["lin.weight", "lin.bias"]

    attn = MultiAggregation(
        ["mean", "max"], mode="attn", mode_kwargs={"in_channels": 4, "out_channels": 6, "num_heads": 2}
    )
    assert list(attn.state_dict()) == [
        "lin_heads.lins.0.weight", "lin_heads.lins.0.bias", "lin_heads.lins.1.weight", "lin_heads.lins.1.bias",
        "multihead_attn.in_proj_weight", "multihead_attn.in_proj_bias",
        "multihead_attn.out_proj.weight", "multihead_attn.out_proj.bias",
    ]  # fmt: skip
    # reference: each output attends over the A aggregation outputs of its own group
    heads = [attn.lin_heads.lins[str(i)](o) for i, o in enumerate(outs)]
    mha = attn.multihead_attn
    expected = torch.zeros(DIM_SIZE, 6)
    for g in range(DIM_SIZE):
        seq = torch.stack([h[g] for h in heads]).unsqueeze(1)  # [A, 1, 6]
        out, _ = mha(seq, seq, seq)
        expected[g] = out.mean(0)[0]
    torch.testing.assert_close(attn(x, INDEX, dim_size=DIM_SIZE), expected)
    # lazy input size
    lazy = MultiAggregation(["mean", "max"], mode="attn", mode_kwargs={"in_channels": -1, "out_channels": 6})
    assert lazy(x, INDEX).shape == (4, 6)
    assert lazy.lin_heads.lins["0"].weight.shape == (6, 4)


def test_entries_resolve_through_the_registry():
    soft = SoftmaxAggregation(learn=True)
    aggr = MultiAggregation(
        ["MeanAggregation", MaxAggregation, soft, "std"], aggrs_kwargs=[{}, {}, {}, {"semi_grad": True}]
    )
    assert [type(a) for a in aggr.aggrs] == [
        MeanAggregation,
        MaxAggregation,
        SoftmaxAggregation,
        StdAggregation,
    ]
    assert aggr.aggrs[2] is soft and aggr.aggrs[3].var_aggr.semi_grad
    assert list(aggr.state_dict()) == ["aggrs.2.t"]
    listed = registry.aggregations.resolve(["mean", "softmax"], aggrs_kwargs=[{}, {"t": 2.0}], mode="sum")
    assert isinstance(listed, MultiAggregation) and listed.mode == "sum" and listed.aggrs[1].t == 2.0
    # a single aggregation is returned as is, whatever the mode
    x = data()
    torch.testing.assert_close(MultiAggregation(["max"], mode="std")(x, INDEX), loop(x, INDEX, 4, "max"))


def test_bad_arguments():
    with pytest.raises(ValueError, match="'mode'"):
        MultiAggregation(["mean", "max"], mode="concat")
    with pytest.raises(ValueError, match="'aggrs' .* must not be empty"):
        MultiAggregation([])
    with pytest.raises(ValueError, match="'aggrs_kwargs'"):
        MultiAggregation(["mean", "max"], aggrs_kwargs=[{}])
    with pytest.raises(ValueError, match="'in_channels' and 'out_channels'"):
        MultiAggregation(["mean", "max"], mode="proj")
    with pytest.raises(ValueError, match="more than one aggregation"):
        MultiAggregation(["mean"], mode="attn", mode_kwargs={"in_channels": 4, "out_channels": 4})
    with pytest.raises(ValueError, match="'in_channels'"):
        MultiAggregation(["mean", "max"], mode="proj", mode_kwargs={"in_channels": [4], "out_channels": 4})
    with pytest.raises(ValueError, match="unknown aggregations name 'meen'.*'mean'"):
        MultiAggregation(["meen"])
    with pytest.raises(ValueError, match="'index' has 3 entries"):
        MultiAggregation(["mean", "max"])(data(), INDEX[:3])


def test_matches_pyg():
    pyg_aggr = pytest.importorskip("torch_geometric.nn.aggr")
    x = data(torch.float32)
    configs = [
        {"mode": "cat"},
        {"mode": "proj", "mode_kwargs": {"in_channels": 4, "out_channels": 5}},
        {"mode": "attn", "mode_kwargs": {"in_channels": 4, "out_channels": 6, "num_heads": 3}},
        {"mode": "attn", "mode_kwargs": {"in_channels": 4, "out_channels": 6, "num_heads": 2, "bias": False}},
        {"mode": "logsumexp"},
        {"mode": "var"},
    ]
    for config in configs:
        theirs = pyg_aggr.MultiAggregation(["mean", "max", "std"], **config)
        ours = MultiAggregation(["mean", "max", "std"], **config)
        ours.load_state_dict(theirs.state_dict(), strict=True)
        assert repr(ours) == repr(theirs)
        assert ours.get_out_channels(4) == theirs.get_out_channels(4)
        torch.testing.assert_close(ours(x, INDEX, dim_size=DIM_SIZE), theirs(x, INDEX, dim_size=DIM_SIZE))
