"""MessagePassing with every aggregation of this part: by name + aggr_kwargs, as an instance, as a list."""

from __future__ import annotations

import pytest
import torch

import gnn.aggr as A
from gnn.core import MessagePassing, ops, testing


class Plain(MessagePassing):
    """out_i = aggr_{j -> i} x_j (the default message)."""

    def forward(self, x, edge_index):
        return self.propagate(edge_index, x=x)


N, E, F = 9, 30, 4
HIST = torch.tensor([1, 3, 2, 2, 1])

# name, aggr_kwargs
CASES = [
    (
        "multi",
        {"aggrs": ["mean", "max"], "mode": "proj", "mode_kwargs": {"in_channels": F, "out_channels": 3}},
    ),
    ("var", {"semi_grad": True}),
    ("std", {}),
    ("softmax", {"t": 0.5, "learn": True, "channels": F}),
    ("powermean", {"p": 2.0, "learn": True}),
    ("median", {"fill_value": -1.0}),
    ("quantile", {"q": [0.25, 0.75], "interpolation": "midpoint"}),
    ("degreescaler", {"aggr": ["mean", "std"], "scaler": ["identity", "amplification"], "deg": HIST}),
    ("attentional", {"gate_nn": torch.nn.Linear(F, 1), "nn": torch.nn.Linear(F, 5)}),
    ("equilibrium", {"in_channels": F, "out_channels": 3, "num_layers": [6], "grad_iter": 2}),
    ("lcm", {"in_channels": F, "out_channels": 3}),
    ("variancepreserving", {}),
]


def graph():
    x, edge_index = testing.random_graph(N, E, F, seed=11)
    edge_index[1, -1] = N - 1  # node N-1 has an incoming edge; some nodes have none
    # sorted by target, as the sequence-like aggregations (LCM) need
    perm = torch.argsort(edge_index[1] * N + edge_index[0])
    return x, edge_index[:, perm]


@pytest.mark.parametrize("name, kwargs", CASES, ids=[c[0] for c in CASES])
def test_by_name_with_kwargs_and_as_instance(name, kwargs):
    torch.manual_seed(0)
    x, edge_index = graph()
    conv = Plain(aggr=name, aggr_kwargs=kwargs)
    aggr = conv.aggr_module
    assert isinstance(aggr, A.Aggregation)
    assert conv.aggr == name
    # reference: the aggregation applied to the messages x_j grouped by target
    expected = aggr(x[edge_index[0]], edge_index[1], dim_size=N)
    out = conv(x, edge_index)
    torch.testing.assert_close(out, expected)
    assert {k.partition(".")[2] for k in conv.state_dict()} == set(aggr.state_dict())
    # the same module passed as an instance gives the same numbers
    by_instance = Plain(aggr=aggr)
    assert by_instance.aggr_module is aggr
    torch.testing.assert_close(by_instance(x, edge_index), out)


def test_list_resolves_to_multi_aggregation():
    x, edge_index = graph()
    conv = Plain(aggr=["mean", "std", "median"], aggr_kwargs={"mode": "cat"})
    assert isinstance(conv.aggr_module, A.MultiAggregation)
    assert conv.aggr == ["mean", "std", "median"]
    msgs, index = x[edge_index[0]], edge_index[1]
    expected = torch.cat(
        [
            A.MeanAggregation()(msgs, index, dim_size=N),
            A.StdAggregation()(msgs, index, dim_size=N),
            A.MedianAggregation()(msgs, index, dim_size=N),
        ],
        dim=-1,
    )
    torch.testing.assert_close(conv(x, edge_index), expected)


def test_instances_keep_the_fused_path(monkeypatch):
    calls = []
    real = ops.reduce.run_spmm

    def counting(*args, **kwargs):
        calls.append(args[3])  # run_spmm(csr, x, edge_weight, reduce, x_self, self_weight)
        return real(*args, **kwargs)

    monkeypatch.setattr(ops.reduce, "run_spmm", counting)
    x, edge_index = graph()
    by_string = Plain(aggr="mean")(x, edge_index)
    by_instance = Plain(aggr=A.MeanAggregation())(x, edge_index)
    assert calls == ["mean", "mean"]
    torch.testing.assert_close(by_instance, by_string)
    Plain(aggr=A.MaxAggregation())(x, edge_index)
    Plain(aggr=A.SumAggregation())(x, edge_index)
    assert len(calls) == 4
    # aggregations that are not basic reductions take the general path
    median = Plain(aggr=A.MedianAggregation())(x, edge_index)
    assert len(calls) == 4
    torch.testing.assert_close(median, A.MedianAggregation()(x[edge_index[0]], edge_index[1], dim_size=N))
