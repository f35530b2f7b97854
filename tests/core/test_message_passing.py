"""MessagePassing against dense references: formats, flows, bipartite, decomposition, hooks."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from gnn.core import MessagePassing, ops, testing
from gnn.core.aggr import MeanAggregation, SumAggregation
from gnn.core.utils import add_self_loops, is_sparse


class HandGCN(MessagePassing):
    """A GCN written only with gnn-core, as a user of gnn-core alone would."""

    fused_message = "edge_weight * x_j"

    def __init__(self, in_channels: int, out_channels: int, **kwargs):
        super().__init__(aggr="add", **kwargs)
        self.lin = torch.nn.Linear(in_channels, out_channels, bias=False)

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        n = x.size(0)
        edge_index, _ = add_self_loops(edge_index, num_nodes=n)
        deg = ops.scatter(torch.ones(edge_index.size(1)), edge_index[1], 0, n, "sum")
        inv = deg.pow(-0.5)
        weight = inv[edge_index[0]] * inv[edge_index[1]]
        return self.propagate(edge_index, x=self.lin(x), edge_weight=weight)

    def message(self, x_j: Tensor, edge_weight: Tensor) -> Tensor:
        return edge_weight.view(-1, 1) * x_j


def dense_adj(edge_index: Tensor, n_src: int, n_dst: int, weight: Tensor | None = None) -> Tensor:
    """A[dst, src] summed over duplicate edges (a loop, as a reference)."""
    a = torch.zeros(n_dst, n_src, dtype=torch.float64)
    for e in range(edge_index.size(1)):
        w = 1.0 if weight is None else float(weight[e])
        a[edge_index[1, e], edge_index[0, e]] += w
    return a


class Plain(MessagePassing):
    def forward(self, x, edge_index, size=None):
        return self.propagate(edge_index, x=x, size=size)


class NoFuse(MessagePassing):
    """Same messages as Plain, but through the general message/aggregate path."""

    def forward(self, x, edge_index, size=None):
        return self.propagate(edge_index, x=x, size=size)

    def message(self, x_j: Tensor, x_i: Tensor | None) -> Tensor:
        return x_j


def test_hand_gcn_matches_dense_formula():
    x, edge_index = testing.random_graph(12, 40, 5, seed=1)
    conv = HandGCN(5, 3)
    out = conv(x, edge_index)
    a = dense_adj(edge_index, 12, 12) + torch.eye(12, dtype=torch.float64)
    d = a.sum(1).pow(-0.5)
    expected = (d.view(-1, 1) * a * d.view(1, -1)) @ (x.double() @ conv.lin.weight.double().t())
    torch.testing.assert_close(out.double(), expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("aggr", ["sum", "mean", "max", "min"])
@pytest.mark.parametrize("cls", [Plain, NoFuse])
def test_every_format_agrees_with_duplicates(aggr, cls):
    x, edge_index = testing.random_graph(9, 30, 4, seed=2)
    conv = cls(aggr=aggr)
    testing.assert_formats_agree(lambda adj: conv(x, adj), edge_index, 9)


@pytest.mark.parametrize("aggr", ["sum", "mean", "max", "min"])
def test_fused_and_general_paths_agree_with_loop(aggr):
    x, edge_index = testing.random_graph(8, 25, 3, seed=3)
    fused, general = Plain(aggr=aggr)(x, edge_index), NoFuse(aggr=aggr)(x, edge_index)
    torch.testing.assert_close(fused, general)
    expected = torch.zeros(8, 3)
    for i in range(8):
        msgs = x[edge_index[0, edge_index[1] == i]]
        if len(msgs):
            red = {
                "sum": msgs.sum(0),
                "mean": msgs.mean(0),
                "max": msgs.max(0).values,
                "min": msgs.min(0).values,
            }
            expected[i] = red[aggr]
    torch.testing.assert_close(fused, expected)


def test_fused_path_is_taken_for_strings_and_instances(monkeypatch):
    calls = []
    real = ops.reduce.run_spmm

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(ops.reduce, "run_spmm", counting)
    x, edge_index = testing.random_graph(6, 12, 2)
    Plain(aggr="mean")(x, edge_index)
    Plain(aggr=MeanAggregation())(x, edge_index)
    Plain(aggr=SumAggregation())(x, edge_index)
    assert len(calls) == 3
    NoFuse(aggr="mean")(x, edge_index)  # overridden message: general path
    assert len(calls) == 3


def test_target_to_source_flow():
    x, edge_index = testing.random_graph(7, 20, 3, seed=4)
    for cls in (Plain, NoFuse):
        out = cls(flow="target_to_source")(x, edge_index)
        expected = cls()(x, edge_index.flip(0))
        torch.testing.assert_close(out, expected)
        dense = dense_adj(edge_index.flip(0), 7, 7).float() @ x
        torch.testing.assert_close(out, dense, atol=1e-5, rtol=1e-5)


def test_bipartite_tuple_and_size():
    g = torch.Generator().manual_seed(5)
    x_src, x_dst = torch.randn(6, 3, generator=g), torch.randn(4, 3, generator=g)
    edge_index = torch.stack(
        [torch.randint(0, 6, (15,), generator=g), torch.randint(0, 4, (15,), generator=g)]
    )
    expected = dense_adj(edge_index, 6, 4).float() @ x_src
    for cls in (Plain, NoFuse):
        out = cls()((x_src, x_dst), edge_index)
        assert out.shape == (4, 3)
        torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
        out = cls()((x_src, None), edge_index, size=(6, 4))
        torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    # sparse bipartite adj_t [N_dst, N_src]
    adj_t = torch.sparse_coo_tensor(edge_index.flip(0), torch.ones(15), (4, 6))
    torch.testing.assert_close(Plain()((x_src, x_dst), adj_t), expected, atol=1e-5, rtol=1e-5)


class Edgy(MessagePassing):
    """A message that uses x_i, x_j and edge features; decomposable per channel."""

    def __init__(self, **kwargs):
        super().__init__(aggr="sum", **kwargs)

    def forward(self, x, edge_index, edge_attr):
        return self.propagate(edge_index, x=x, edge_attr=edge_attr)

    def message(self, x_i, x_j, edge_attr):
        return (x_j - 0.5 * x_i) * edge_attr.view(-1, 1)


def test_decomposed_layers_equal_single_layer_also_for_tuples():
    x, edge_index = testing.random_graph(10, 30, 8, seed=6)
    w = torch.rand(30)
    one = Edgy()(x, edge_index, w)
    four = Edgy(decomposed_layers=4)(x, edge_index, w)
    torch.testing.assert_close(one, four)
    x_dst = torch.randn(10, 8)
    one = Edgy()((x, x_dst), edge_index, w)
    two = Edgy(decomposed_layers=2)((x, x_dst), edge_index, w)
    torch.testing.assert_close(one, two)


def test_hooks_fire_modify_and_remove():
    x, edge_index = testing.random_graph(5, 10, 2, seed=7)
    conv = NoFuse()
    seen = []
    handles = [
        conv.register_propagate_forward_pre_hook(lambda m, inp: seen.append("prop_pre")),
        conv.register_message_forward_pre_hook(lambda m, inp: seen.append("msg_pre")),
        conv.register_message_forward_hook(lambda m, inp, out: out * 2),
        conv.register_aggregate_forward_pre_hook(lambda m, inp: seen.append("aggr_pre")),
        conv.register_aggregate_forward_hook(lambda m, inp, out: seen.append("aggr")),
        conv.register_propagate_forward_hook(lambda m, inp, out: out + 1),
    ]
    out = conv(x, edge_index)
    torch.testing.assert_close(out, 2 * NoFuse()(x, edge_index) + 1)
    assert seen == ["prop_pre", "msg_pre", "aggr_pre", "aggr"]
    for h in handles:
        h.remove()
    torch.testing.assert_close(conv(x, edge_index), NoFuse()(x, edge_index))


def test_message_hooks_disable_fusion_but_keep_numbers():
    x, edge_index = testing.random_graph(5, 10, 2, seed=8)
    conv = Plain()
    fired = []
    conv.register_message_forward_hook(lambda m, inp, out: fired.append(out.shape))
    torch.testing.assert_close(conv(x, edge_index), Plain()(x, edge_index))
    assert fired == [torch.Size([10, 2])]


def test_explain_mode_scales_messages_by_sigmoid_mask():
    x, edge_index = testing.random_graph(6, 14, 3, seed=9)
    conv = Plain()
    mask = torch.randn(14)
    conv.explain = True
    conv._edge_mask = mask
    out = conv(x, edge_index)
    expected = dense_adj(edge_index, 6, 6, mask.sigmoid()).float() @ x
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    conv._edge_mask = None
    with pytest.raises(ValueError, match="edge mask"):
        conv(x, edge_index)


class EdgeScore(MessagePassing):
    def forward(self, x, edge_index):
        return self.edge_updater(edge_index, x=x)

    def edge_update(self, x_i, x_j):
        return (x_i * x_j).sum(-1)


def test_edge_updater():
    x, edge_index = testing.random_graph(6, 14, 3, seed=10)
    out = EdgeScore()(x, edge_index)
    torch.testing.assert_close(out, (x[edge_index[1]] * x[edge_index[0]]).sum(-1))


def test_empty_graphs_and_isolated_nodes():
    x = torch.randn(4, 3)
    empty = torch.empty(2, 0, dtype=torch.long)
    for cls in (Plain, NoFuse):
        for aggr in ("sum", "mean", "max"):
            torch.testing.assert_close(cls(aggr=aggr)(x, empty), torch.zeros(4, 3))
    assert Plain()(torch.empty(0, 3), empty).shape == (0, 3)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_dtypes_and_int32_and_noncontiguous(dtype):
    x, edge_index = testing.random_graph(8, 20, 4, seed=11)
    expected = Plain()(x, edge_index)
    out = Plain()(x.to(dtype), edge_index.int())
    torch.testing.assert_close(out.float(), expected, atol=5e-2, rtol=5e-2)
    x_nc = torch.randn(4, 8).t()
    torch.testing.assert_close(Plain()(x_nc, edge_index), Plain()(x_nc.contiguous(), edge_index))


def test_aggr_attribute_and_repr_like_pyg():
    assert Plain(aggr="mean").aggr == "mean"
    assert Plain(aggr=MeanAggregation()).aggr == "MeanAggregation()"
    assert Plain(aggr=None).aggr is None
    assert repr(Plain()) == "Plain()"
    conv = HandGCN(3, 4)
    conv.in_channels, conv.out_channels = 3, 4
    assert repr(conv) == "HandGCN(3, 4)"


# -- bad input --------------------------------------------------------------------------------
def test_bad_edge_index_raises_naming_argument():
    x = torch.randn(4, 2)
    conv = Plain()
    with pytest.raises(ValueError, match=r"edge_index.*\[2, E\]"):
        conv(x, torch.zeros(3, 5, dtype=torch.long))
    with pytest.raises(TypeError, match="edge_index.*integer"):
        conv(x, torch.zeros(2, 5))
    with pytest.raises(TypeError, match="edge_index"):
        conv(x, [[0, 1], [1, 0]])
    with pytest.raises(ValueError, match=r"edge_index\[1\].*out of range"):
        conv(x, torch.tensor([[0, 1], [1, 4]]))
    # PyG users catch IndexError for out-of-range nodes: the error is both
    with pytest.raises(IndexError, match=r"edge_index\[1\].*out of range"):
        conv(x, torch.tensor([[0, 1], [1, 4]]))
    with pytest.raises(IndexError, match="negative"):
        conv(x, torch.tensor([[0, -1], [1, 0]]))
    with pytest.raises(ValueError, match="negative"):
        conv(x, torch.tensor([[0, -1], [1, 0]]))
    with pytest.raises(ValueError, match="'x' has 4 nodes"):
        conv(x, torch.tensor([[0, 1], [1, 0]]), size=(5, 5))
    with pytest.raises(ValueError, match="size"):
        conv(x, torch.tensor([[0, 1], [1, 0]]), size=(4,))


def test_range_check_is_cached_per_graph_but_sees_in_place_changes():
    x = torch.randn(4, 2)
    conv = Plain()
    edge_index = torch.tensor([[0, 1, 2], [1, 2, 3]])
    first = conv(x, edge_index)
    torch.testing.assert_close(conv(x, edge_index), first)  # second call: cached bounds
    edge_index[1, 0] = 4  # an in-place change bumps the version: checked again
    with pytest.raises(ValueError, match=r"edge_index\[1\].*out of range"):
        conv(x, edge_index)
    with pytest.raises(ValueError, match=r"edge_index\[1\].*out of range"):
        conv(x, edge_index)
    edge_index[1, 0] = 1
    torch.testing.assert_close(conv(x, edge_index), first)
    with pytest.raises(ValueError, match=r"edge_index\[0\].*out of range"):
        conv(x, edge_index, size=(2, 4))


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="flow"):
        Plain(flow="up")
    with pytest.raises(ValueError, match="decomposed_layers"):
        Plain(decomposed_layers=0)
    with pytest.raises(ValueError, match="did you mean 'mean'"):
        Plain(aggr="meen")
    with pytest.raises(TypeError, match="aggr"):
        Plain(aggr=3)


def test_missing_message_argument_is_a_type_error():
    class Needs(MessagePassing):
        def forward(self, x, edge_index):
            return self.propagate(edge_index, x=x)

        def message(self, x_j, edge_attr):
            return x_j

    with pytest.raises(TypeError, match="edge_attr"):
        Needs()(torch.randn(3, 2), torch.tensor([[0], [1]]))


def test_gradients_flow_through_fused_path():
    x, edge_index = testing.random_graph(6, 15, 3, seed=12, dtype=torch.float64)
    w = torch.rand(15, dtype=torch.float64)

    class Weighted(MessagePassing):
        fused_message = "edge_weight * x_j"

        def forward(self, x, edge_index, edge_weight):
            return self.propagate(edge_index, x=x, edge_weight=edge_weight)

        def message(self, x_j, edge_weight):
            return edge_weight.view(-1, 1) * x_j

    x.requires_grad_(True)
    torch.autograd.gradcheck(lambda x: Weighted()(x, edge_index, w), (x,))
    w.requires_grad_(True)
    torch.autograd.gradcheck(lambda x, w: Weighted()(x, edge_index, w), (x, w))
    assert not is_sparse(edge_index)
