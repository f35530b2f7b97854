"""The aggregations computed by one-pass multi-reductions (gnn.core.ops.multi_reduce): PyG parity
with gradients, MultiAggregation's partial fusion, MessagePassing(aggr=[...]) without an [E, F]
message tensor (fused path = general path = PyG), the sort done once per index, torch.compile."""

from __future__ import annotations

import pytest
import torch

import gnn.aggr as A
from gnn.core import MessagePassing, cache, ops, testing

N, E, F = 12, 50, 4
HIST = torch.tensor([2, 3, 4, 2, 1])


def data(dtype=torch.float64):
    g = torch.Generator().manual_seed(7)
    x = torch.randn(E, F, generator=g, dtype=dtype)
    index = torch.randint(0, N - 2, (E,), generator=g)  # the last two groups are empty
    index[0] = N - 3
    index[index == N - 3] = 0
    index[0] = N - 3  # group N - 3 has one element
    return x, index


class Plain(MessagePassing):
    def forward(self, x, edge_index):
        return self.propagate(edge_index, x=x)


def make(lib, name):
    """The aggregation ``name`` of ``lib`` (gnn.aggr or torch_geometric.nn.aggr)."""
    if name == "multi":
        return lib.MultiAggregation(["mean", "max", "std", "softmax", "sum", "min", "var"])
    if name == "multi_learn":
        return lib.MultiAggregation(
            ["mean", lib.SoftmaxAggregation(t=0.3, learn=True, channels=F), "std", "powermean"],
            mode="proj",
            mode_kwargs={"in_channels": F, "out_channels": 3},
        )
    if name == "scaler":
        return lib.DegreeScalerAggregation(["mean", "min", "max", "std"], ["identity", "amplification"], HIST)
    if name == "softmax":
        return lib.SoftmaxAggregation(t=0.5, learn=True)
    if name == "std_semi":
        return lib.StdAggregation(semi_grad=True)
    if name == "powermean":
        return lib.PowerMeanAggregation(p=2.0, learn=True)
    return getattr(lib, name)()


NAMES = [
    "MaxAggregation",
    "MeanAggregation",
    "StdAggregation",
    "VarAggregation",
    "std_semi",
    "softmax",
    "powermean",
    "multi",
    "multi_learn",
    "scaler",
]


@pytest.mark.parametrize("name", NAMES)
def test_values_and_gradients_match_pyg(name):
    pyg = pytest.importorskip("torch_geometric.nn.aggr")
    x, index = data(torch.float32)
    torch.manual_seed(0)
    ours, theirs = make(A, name), make(pyg, name)
    testing.load_pyg_state(ours, theirs)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    for kwargs in ({"index": index, "dim_size": N}, {"index": index.sort().values, "dim_size": N}):
        a, b = ours(x1, **kwargs), theirs(x2, **kwargs)
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
        w = torch.randn(a.shape, generator=torch.Generator().manual_seed(1))
        pa = [x1, *ours.parameters()]
        pb = [x2, *theirs.parameters()]
        for ga, gb in zip(torch.autograd.grad((a * w).sum(), pa), torch.autograd.grad((b * w).sum(), pb)):
            torch.testing.assert_close(ga, gb, atol=1e-4, rtol=1e-4)


def test_multi_fuses_the_one_pass_aggregations_and_keeps_the_order(monkeypatch):
    x, index = data()
    calls = []
    real = ops.multi_reduce

    def counting(src, reduce, *args, **kwargs):
        calls.append([r.name if isinstance(r, ops.Reduction) else r for r in reduce])
        return real(src, reduce, *args, **kwargs)

    import gnn.aggr.multi as multi_module
    import gnn.core.aggr.base as base_module

    monkeypatch.setattr(multi_module.ops, "multi_reduce", counting)
    monkeypatch.setattr(base_module.ops, "multi_reduce", counting)
    aggr = A.MultiAggregation(["max", "median", "std", "mean"])
    out = aggr(x, index, dim_size=N)
    assert calls == [["max", "std", "mean"]]  # one pass; the median runs on its own
    parts = [a(x, index, dim_size=N) for a in (A.MaxAggregation(), A.MedianAggregation())]
    parts += [a(x, index, dim_size=N) for a in (A.StdAggregation(), A.MeanAggregation())]
    torch.testing.assert_close(out, torch.cat(parts, dim=-1))
    calls.clear()
    A.MultiAggregation(["mean", "max", "std"])(x, index, dim_size=N)
    assert calls == [["mean", "max", "std"]]


def test_message_passing_with_a_list_of_aggregations_takes_one_pass(monkeypatch):
    x, edge_index = testing.random_graph(N, E, F, seed=3, dtype=torch.float64)
    calls = []
    real = ops.multi_spmm

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    import gnn.core.fused as fused

    monkeypatch.setattr(fused.ops, "multi_spmm", counting)
    for aggr, kwargs in [
        (["mean", "max", "std", "softmax"], {}),
        ("degreescaler", {"aggr": ["mean", "min", "std"], "scaler": ["identity", "linear"], "deg": HIST}),
        ("std", {}),
    ]:
        conv = Plain(aggr=aggr, aggr_kwargs=kwargs)
        xg = x.clone().requires_grad_()
        fast = conv(xg, edge_index)
        assert len(calls) == 1
        calls.clear()
        # a message hook makes the messages observable: the general path runs
        handle = conv.register_message_forward_hook(lambda module, inputs, out: None)
        xr = x.clone().requires_grad_()
        general = conv(xr, edge_index)
        handle.remove()
        assert not calls
        torch.testing.assert_close(fast, general)
        w = torch.randn(fast.shape, dtype=fast.dtype, generator=torch.Generator().manual_seed(2))
        torch.testing.assert_close(
            torch.autograd.grad((fast * w).sum(), xg)[0], torch.autograd.grad((general * w).sum(), xr)[0]
        )
    pyg = pytest.importorskip("torch_geometric.nn")

    class PygPlain(pyg.MessagePassing):
        def forward(self, x, edge_index):
            return self.propagate(edge_index, x=x)

    ours = Plain(aggr=["mean", "max", "std", "sum"])
    theirs = PygPlain(aggr=["mean", "max", "std", "sum"])
    torch.testing.assert_close(ours(x, edge_index), theirs(x, edge_index))


def test_the_index_is_sorted_once(monkeypatch):
    x, index = data()
    cache.clear()
    sorts = []
    real = ops.multi._sort_groups

    def counting(*args):
        sorts.append(1)
        return real(*args)

    monkeypatch.setattr(ops.multi, "_sort_groups", counting)
    aggrs = [A.MultiAggregation(["mean", "max", "std"]), A.SoftmaxAggregation(), A.StdAggregation()]
    big = x.repeat(200, 8).float()  # large enough for the compiled kernel, where there is one
    big_index = index.repeat(200)
    with ops.backend("native") if "native" in ops.available() else _nothing():
        for _ in range(2):
            for aggr in aggrs:
                aggr(big, big_index, dim_size=N)
    assert len(sorts) == (1 if "native" in ops.available() else 0)  # the reference sorts nothing


class _nothing:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return None


def test_torch_compile_without_graph_breaks():
    x, index = data(torch.float32)
    aggr = A.MultiAggregation(["mean", "max", "std", A.SoftmaxAggregation(learn=True)])

    def fn(x, index):
        return aggr(x, index, dim_size=N)

    compiled = torch.compile(fn, fullgraph=True, backend="aot_eager")
    x = x.requires_grad_()
    out = compiled(x, index)
    torch.testing.assert_close(out, fn(x, index))
    torch.testing.assert_close(
        torch.autograd.grad(out.sum(), x)[0], torch.autograd.grad(fn(x, index).sum(), x)[0]
    )


def test_a_subclass_that_overrides_forward_is_not_fused():
    class Doubled(A.MeanAggregation):
        def forward(self, x, index=None, ptr=None, dim_size=None, dim=-2):
            return 2 * super().forward(x, index, ptr, dim_size, dim)

    x, index = data()
    assert Doubled().one_pass_reductions() is None
    assert A.MeanAggregation().one_pass_reductions() is not None
    out = A.MultiAggregation([Doubled(), "max"])(x, index, dim_size=N)
    mean = A.MeanAggregation()(x, index, dim_size=N)
    torch.testing.assert_close(out[:, :F], 2 * mean)
    x_src, edge_index = testing.random_graph(N, E, F, seed=2, dtype=torch.float64)
    conv = Plain(aggr=A.MultiAggregation([Doubled(), "std"]))
    expected = conv.aggr_module(x_src[edge_index[0]], edge_index[1], dim_size=N)
    torch.testing.assert_close(conv(x_src, edge_index), expected)


def test_message_passing_with_a_list_compiles_without_graph_breaks():
    x, edge_index = testing.random_graph(N, E, F, seed=4)
    conv = Plain(aggr=["mean", "max", "std"])
    compiled = torch.compile(conv, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(x, edge_index), conv(x, edge_index))
