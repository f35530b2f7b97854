"""DegreeScalerAggregation (PNA scalers) against a per-group loop."""

from __future__ import annotations

import math

import pytest
import torch

from gnn.aggr import DegreeScalerAggregation, MultiAggregation, SoftmaxAggregation

INDEX = torch.tensor([0, 2, 2, 0, 2, 3, 3, 3, 3, 0, 2])  # sizes 3, 0, 4, 4 (+ one empty past the end)
DIM_SIZE = 5
HIST = torch.tensor([1, 0, 3, 2, 4])  # deg[k] nodes of degree k
SCALERS = ["identity", "amplification", "attenuation", "linear", "inverse_linear"]


def averages(hist):
    total = sum(hist.tolist())
    lin = sum(k * n for k, n in enumerate(hist.tolist())) / total
    log = sum(math.log(k + 1) * n for k, n in enumerate(hist.tolist())) / total
    return lin, log


def loop(x, index, dim_size, scalers, reduce=lambda t: t.sum(0)):
    lin, log = averages(HIST)
    out = torch.zeros(dim_size, len(scalers) * x.size(1), dtype=x.dtype)
    for g in range(dim_size):
        rows = [i for i in range(index.numel()) if int(index[i]) == g]
        h = reduce(x[rows]) if rows else torch.zeros(x.size(1), dtype=x.dtype)
        d = max(len(rows), 1)
        factor = {
            "identity": 1.0,
            "amplification": math.log(d + 1) / log,
            "attenuation": log / math.log(d + 1),
            "linear": d / lin,
            "inverse_linear": lin / d,
        }
        out[g] = torch.cat([h * factor[s] for s in scalers])
    return out


def data(dtype=torch.float64):
    g = torch.Generator().manual_seed(4)
    return torch.randn(INDEX.numel(), 3, generator=g, dtype=dtype)


@pytest.mark.parametrize("scaler", SCALERS)
def test_each_scaler_against_loop(scaler):
    x = data()
    aggr = DegreeScalerAggregation("sum", scaler, HIST).double()
    expected = loop(x, INDEX, DIM_SIZE, [scaler])
    torch.testing.assert_close(aggr(x, INDEX, dim_size=DIM_SIZE), expected)
    perm = torch.argsort(INDEX, stable=True)
    ptr = torch.cat([torch.zeros(1, dtype=torch.long), torch.bincount(INDEX, minlength=DIM_SIZE).cumsum(0)])
    torch.testing.assert_close(aggr(x[perm], ptr=ptr), expected)


def test_all_scalers_concatenated_and_averages():
    x = data()
    aggr = DegreeScalerAggregation("mean", SCALERS, HIST).double()
    lin, log = averages(HIST)
    assert aggr.avg_deg_lin.item() == pytest.approx(lin)
    assert aggr.avg_deg_log.item() == pytest.approx(log)
    expected = loop(x, INDEX, DIM_SIZE, SCALERS, reduce=lambda t: t.mean(0))
    torch.testing.assert_close(aggr(x, INDEX, dim_size=DIM_SIZE), expected)
    # along dim 1 of a 3-D input
    out3 = aggr(torch.stack([x, 3 * x]), INDEX, dim_size=DIM_SIZE, dim=1)
    torch.testing.assert_close(out3[1], 3 * expected)


def test_list_of_aggregations_and_kwargs():
    x = data()
    aggr = DegreeScalerAggregation(["sum", "max"], ["identity", "linear"], HIST).double()
    assert isinstance(aggr.aggr, MultiAggregation)
    both = lambda t: torch.cat([t.sum(0), t.max(0).values])  # noqa: E731
    lin, _ = averages(HIST)
    out = aggr(x, INDEX, dim_size=DIM_SIZE)
    for g in range(DIM_SIZE):
        rows = INDEX == g
        h = both(x[rows]) if rows.any() else torch.zeros(6, dtype=x.dtype)
        d = max(int(rows.sum()), 1)
        torch.testing.assert_close(out[g], torch.cat([h, h * d / lin]))
    single = DegreeScalerAggregation("softmax", "identity", HIST, aggr_kwargs={"t": 2.0, "learn": True})
    assert isinstance(single.aggr, SoftmaxAggregation) and single.aggr.learn
    listed = DegreeScalerAggregation(["mean", "softmax"], "identity", HIST, aggr_kwargs=[{}, {"learn": True}])
    assert list(listed.state_dict()) == ["avg_deg_lin", "avg_deg_log", "aggr.aggrs.1.t"]


def test_train_norm_learns_the_averages():
    x = data()
    aggr = DegreeScalerAggregation("sum", ["amplification", "linear"], HIST, train_norm=True).double()
    assert {name for name, _ in aggr.named_parameters()} == {"avg_deg_lin", "avg_deg_log"}
    fixed = DegreeScalerAggregation("sum", ["amplification", "linear"], HIST)
    assert {name for name, _ in fixed.named_buffers()} == {"avg_deg_lin", "avg_deg_log"}

    def fn(lin, log):
        return torch.func.functional_call(
            aggr, {"avg_deg_lin": lin, "avg_deg_log": log}, (x, INDEX), {"dim_size": DIM_SIZE}
        )

    torch.autograd.gradcheck(
        fn,
        (
            aggr.avg_deg_lin.detach().clone().requires_grad_(),
            aggr.avg_deg_log.detach().clone().requires_grad_(),
        ),
    )
    with torch.no_grad():
        aggr.avg_deg_lin.fill_(9.0)
    aggr.reset_parameters()
    assert aggr.avg_deg_lin.item() == pytest.approx(averages(HIST)[0])


def test_bad_arguments():
    with pytest.raises(ValueError, match="'scaler'"):
        DegreeScalerAggregation("sum", "cubic", HIST)
    with pytest.raises(ValueError, match="'scaler'"):
        DegreeScalerAggregation("sum", [], HIST)
    with pytest.raises(ValueError, match="'deg'"):
        DegreeScalerAggregation("sum", "identity", torch.zeros(3))
    with pytest.raises(ValueError, match="'deg'"):
        DegreeScalerAggregation("sum", "identity", torch.ones(2, 2))
    with pytest.raises(ValueError, match="unknown aggregations name 'sumx'"):
        DegreeScalerAggregation("sumx", "identity", HIST)
    with pytest.raises(ValueError, match="'index' has 2 entries"):
        DegreeScalerAggregation("sum", "identity", HIST)(data(), INDEX[:2])


def test_matches_pyg():
    pyg_aggr = pytest.importorskip("torch_geometric.nn.aggr")
    x = data(torch.float32)
    # PyG 2.8.1 applies a list of scalers only when `aggr` is a list as well
    for aggr, scaler, train_norm in [
        ("mean", "amplification", False),
        (["mean", "max", "std"], SCALERS, True),
        (["sum"], ["identity", "attenuation"], False),
    ]:
        theirs = pyg_aggr.DegreeScalerAggregation(aggr, scaler, HIST, train_norm=train_norm)
        ours = DegreeScalerAggregation(aggr, scaler, HIST, train_norm=train_norm)
        ours.load_state_dict(theirs.state_dict(), strict=True)
        assert repr(ours) == repr(theirs)
        torch.testing.assert_close(ours(x, INDEX, dim_size=DIM_SIZE), theirs(x, INDEX, dim_size=DIM_SIZE))
