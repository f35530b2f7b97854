"""RGCNConv / FastRGCNConv: a per-relation loop reference written here, PyG parity after a strict
state_dict load, input formats, edge-permutation invariance, featureless inputs, bad inputs,
torch.compile without graph breaks and torch.export with dynamic node and edge counts."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from gnn.conv import FastRGCNConv, RGCNConv
from gnn.core import ops, testing
from gnn.core import validation as v
from gnn.core.ops import reduce as reduce_ops

N, E, F_IN, F_OUT, R = 10, 48, 6, 4, 3
CLASSES = [RGCNConv, FastRGCNConv]


def graph(seed: int = 0, n: int = N, e: int = E, f: int = F_IN) -> tuple[Tensor, Tensor, Tensor]:
    x, edge_index = testing.random_graph(n, e, f, seed=seed, dtype=torch.float64)
    edge_type = torch.randint(0, R, (e,), generator=torch.Generator().manual_seed(seed + 100))
    edge_type[:2] = 1  # the duplicate edge of random_graph in one relation
    return x, edge_index, edge_type


def relation_weights(conv: RGCNConv) -> Tensor:
    """``[R, F_in, F_out]`` per-relation matrices (blocks laid out on the diagonal)."""
    w = conv.weight.detach()
    if conv.comp is not None:
        return torch.einsum("rb,bio->rio", conv.comp.detach(), w)
    if conv.num_blocks is not None:
        return torch.stack([torch.block_diag(*w[r]) for r in range(w.size(0))])
    return w


def loop_reference(conv: RGCNConv, x_src, x_dst, edge_index, edge_type, aggr: str = "mean") -> Tensor:
    """``root x_i + sum_r aggr_{j in N_r(i)} x_j W_r + b``, one relation and one node at a time."""
    w = relation_weights(conv).double()
    featureless = not x_src.is_floating_point()
    rows = []
    for i in range(x_dst.size(0)):
        acc = torch.zeros(conv.out_channels, dtype=torch.float64)
        for r in range(conv.num_relations):
            mask = (edge_index[1] == i) & (edge_type == r)
            senders = edge_index[0][mask]
            if senders.numel() == 0:
                continue
            if featureless:
                msgs = torch.stack([w[r, int(x_src[j])] for j in senders])
                red = {
                    "mean": msgs.mean(0),
                    "add": msgs.sum(0),
                    "sum": msgs.sum(0),
                    "max": msgs.max(0).values,
                }
                acc += red[aggr]
            else:
                feats = x_src[senders].double()
                red = {
                    "mean": feats.mean(0),
                    "add": feats.sum(0),
                    "sum": feats.sum(0),
                    "max": feats.max(0).values,
                }
                acc += red[aggr] @ w[r]
        rows.append(acc)
    out = torch.stack(rows)
    if conv.root is not None:
        root = conv.root.detach().double()
        out = out + (root[x_dst] if featureless else x_dst.double() @ root)
    if conv.bias is not None:
        out = out + conv.bias.detach().double()
    return out


def configs(*extra: dict) -> list:
    """``(cls, kwargs)`` pairs; FastRGCNConv takes add/sum/mean only (no max)."""
    kwargs = [{}, {"num_bases": 2}, {"num_blocks": 2}, {"aggr": "add"}, {"aggr": "max"}, *extra]
    return [(cls, kw) for cls in CLASSES for kw in kwargs if cls is RGCNConv or kw.get("aggr") != "max"]


@pytest.mark.parametrize("cls, kwargs", configs({"root_weight": False}))
def test_loop_reference(cls, kwargs):
    x, edge_index, edge_type = graph(1)
    torch.manual_seed(0)
    conv = cls(F_IN, F_OUT, R, **kwargs).double()
    if conv.bias is not None:
        torch.nn.init.normal_(conv.bias)
    expected = loop_reference(conv, x, x, edge_index, edge_type, kwargs.get("aggr", "mean"))
    testing.assert_close(conv(x, edge_index, edge_type), expected, atol=1e-10, rtol=1e-9)
    # features that need a gradient: RGCNConv's sum/mean transform first (a relation table), the
    # other aggregations aggregate first; both give the loop's values and gradients
    xg, x_ref = x.clone().requires_grad_(), x.clone().requires_grad_()
    out = conv(xg, edge_index, edge_type)
    testing.assert_close(out, expected, atol=1e-10, rtol=1e-9)
    grad = torch.randn(out.shape, dtype=out.dtype, generator=torch.Generator().manual_seed(2))
    out.backward(grad)
    loop_reference(conv, x_ref, x_ref, edge_index, edge_type, kwargs.get("aggr", "mean")).backward(grad)
    testing.assert_close(xg.grad, x_ref.grad, atol=1e-10, rtol=1e-9)


@pytest.mark.parametrize("cls", CLASSES)
def test_bipartite_and_featureless(cls):
    x, edge_index, edge_type = graph(2)
    x_dst = torch.randn(7, 5, dtype=torch.float64)
    keep = edge_index[1] < 7
    ei, et = edge_index[:, keep], edge_type[keep]
    torch.manual_seed(0)
    conv = cls((F_IN, 5), F_OUT, R).double()
    testing.assert_close(
        conv((x, x_dst), ei, et), loop_reference(conv, x, x_dst, ei, et), atol=1e-10, rtol=1e-9
    )
    # featureless: node indices select rows of the relation and root matrices (learned embeddings)
    emb = cls(N, F_OUT, R, num_bases=2, aggr="mean").double()
    idx = torch.arange(N)
    expected = loop_reference(emb, idx, idx, edge_index, edge_type)
    testing.assert_close(emb(None, edge_index, edge_type), expected, atol=1e-10, rtol=1e-9)
    perm = torch.randperm(N, generator=torch.Generator().manual_seed(3))
    expected = loop_reference(emb, perm, perm, edge_index, edge_type)
    testing.assert_close(emb(perm, edge_index, edge_type), expected, atol=1e-10, rtol=1e-9)
    testing.assert_close(emb((None, idx), edge_index, edge_type), emb(None, edge_index, edge_type))


def test_rgcn_featureless_max():
    x, edge_index, edge_type = graph(3)
    conv = RGCNConv(N, F_OUT, R, aggr="max").double()
    idx = torch.arange(N)
    expected = loop_reference(conv, idx, idx, edge_index, edge_type, "max")
    testing.assert_close(conv(None, edge_index, edge_type), expected, atol=1e-10, rtol=1e-9)


def test_fast_and_plain_agree():
    x, edge_index, edge_type = graph(4)
    for kwargs in ({}, {"num_blocks": 2}, {"aggr": "add", "num_bases": 2}):
        plain = RGCNConv(F_IN, F_OUT, R, **kwargs).double()
        fast = FastRGCNConv(F_IN, F_OUT, R, **kwargs).double()
        fast.load_state_dict(plain.state_dict())
        testing.assert_close(
            fast(x, edge_index, edge_type), plain(x, edge_index, edge_type), atol=1e-10, rtol=1e-9
        )


def test_signatures_match_pyg():
    pyg = pytest.importorskip("torch_geometric")
    for ours, theirs in ((RGCNConv, pyg.nn.RGCNConv), (FastRGCNConv, pyg.nn.FastRGCNConv)):
        testing.assert_signatures_match(ours, theirs)


@pytest.mark.parametrize("cls, kwargs", configs({"root_weight": False, "bias": False}))
def test_matches_pyg(cls, kwargs):
    pyg = pytest.importorskip("torch_geometric")
    x, edge_index, edge_type = graph(5)
    x = x.float()
    theirs = getattr(pyg.nn, cls.__name__)(F_IN, F_OUT, R, **kwargs)
    if theirs.bias is not None:
        torch.nn.init.normal_(theirs.bias)
    ours = cls(F_IN, F_OUT, R, **kwargs)
    testing.load_pyg_state(ours, theirs)
    assert repr(ours) == repr(theirs)
    testing.assert_close(ours(x, edge_index, edge_type), theirs(x, edge_index, edge_type))
    if "num_blocks" not in kwargs:  # featureless: embeddings
        theirs = getattr(pyg.nn, cls.__name__)(N, F_OUT, R, **kwargs)
        ours = cls(N, F_OUT, R, **kwargs)
        testing.load_pyg_state(ours, theirs)
        testing.assert_close(ours(None, edge_index, edge_type), theirs(None, edge_index, edge_type))


def test_matches_pyg_bipartite_and_float64():
    pyg = pytest.importorskip("torch_geometric")
    x, edge_index, edge_type = graph(6)
    x_dst = torch.randn(N, 5, dtype=torch.float64)
    theirs = pyg.nn.RGCNConv((F_IN, 5), F_OUT, R).double()
    ours = RGCNConv((F_IN, 5), F_OUT, R).double()
    testing.load_pyg_state(ours, theirs)
    assert repr(ours) == repr(theirs)
    got = ours((x, x_dst), edge_index, edge_type)
    assert got.dtype == torch.float64
    testing.assert_close(got, theirs((x, x_dst), edge_index, edge_type), atol=1e-10, rtol=1e-9)


@pytest.mark.parametrize("cls", CLASSES)
def test_sparse_inputs_carry_the_relations(cls):
    x, edge_index, edge_type = graph(7)
    conv = cls(F_IN, F_OUT, R).double()
    # sparse values are the relations (PyG reads a SparseTensor's values so); edge_type is then ignored
    testing.assert_formats_agree(
        lambda adj: conv(
            x, adj, edge_type if isinstance(adj, Tensor) and adj.layout == torch.strided else None
        ),
        edge_index,
        N,
        edge_weight=edge_type,
        atol=1e-10,
        rtol=1e-9,
    )


@pytest.mark.parametrize("cls", CLASSES)
def test_edge_permutation_invariance(cls):
    x, edge_index, edge_type = graph(8)
    conv = cls(F_IN, F_OUT, R, num_bases=2).double()
    perm = torch.randperm(E, generator=torch.Generator().manual_seed(1))
    testing.assert_close(
        conv(x, edge_index[:, perm], edge_type[perm]), conv(x, edge_index, edge_type), atol=1e-10, rtol=1e-9
    )


@pytest.mark.parametrize("cls", CLASSES)
def test_empty_graph_int32_noncontiguous_and_grad(cls):
    x, edge_index, edge_type = graph(9)
    conv = cls(F_IN, F_OUT, R).double()
    empty = conv(x, edge_index[:, :0], edge_type[:0])
    testing.assert_close(empty, x @ conv.root + conv.bias)
    assert conv(x[:0], edge_index[:, :0], edge_type[:0]).shape == (0, F_OUT)
    expected = conv(x, edge_index, edge_type)
    testing.assert_close(conv(x, edge_index.int(), edge_type.int()), expected)
    wide = torch.randn(N, 2 * F_IN, dtype=torch.float64)
    wide[:, ::2] = x
    ei_t = edge_index.t().contiguous().t()
    testing.assert_close(conv(wide[:, ::2], ei_t, edge_type), expected)
    xg = x.clone().requires_grad_()
    conv(xg, edge_index, edge_type).square().sum().backward()
    assert xg.grad is not None and conv.weight.grad is not None and conv.root.grad is not None


def test_uses_one_fused_propagate(monkeypatch):
    """The per-relation mean is one fused spmm (no loop): over the relation-split receivers for
    features without gradient, over the relation-split senders (a table of x_j W_r) with one."""
    x, edge_index, edge_type = graph(10)
    conv = RGCNConv(F_IN, F_OUT, R).double()
    calls: list[tuple[int, int]] = []
    real = ops.spmm

    real_core = reduce_ops.run_spmm  # the engine's fused path calls the checked core directly

    def spy(csr, *args, **kwargs):
        calls.append((csr.num_rows, csr.num_cols))
        return real(csr, *args, **kwargs)

    def spy_core(csr, *args, **kwargs):
        calls.append((csr.num_rows, csr.num_cols))
        return real_core(csr, *args, **kwargs)

    monkeypatch.setattr(ops, "spmm", spy)
    monkeypatch.setattr(reduce_ops, "run_spmm", spy_core)
    conv(x, edge_index, edge_type)
    conv(x.clone().requires_grad_(), edge_index, edge_type)
    assert calls == [(N * R, N), (N, N * R)]
    seen: list[int] = []
    handle = conv.register_message_forward_hook(lambda m, inputs, out: seen.append(out.size(0)))
    general = conv(x.clone().requires_grad_(), edge_index, edge_type)
    handle.remove()
    assert seen == [E] and len(calls) == 2
    testing.assert_close(general, conv(x, edge_index, edge_type), atol=1e-10, rtol=1e-9)


def test_gather_matmul_carries_fast_rgcn(monkeypatch):
    x, edge_index, edge_type = graph(11)
    conv = FastRGCNConv(F_IN, F_OUT, R).double()
    calls: list[int] = []
    real = ops.gather_matmul

    def spy(inputs, types, other, index=None):
        calls.append(types.numel())
        return real(inputs, types, other, index)

    monkeypatch.setattr(ops, "gather_matmul", spy)
    conv(x, edge_index, edge_type)
    assert calls == [E]


@pytest.mark.parametrize("cls", CLASSES)
def test_bad_inputs_raise(cls):
    x, edge_index, edge_type = graph(12)
    conv = cls(F_IN, F_OUT, R).double()
    with pytest.raises(ValueError, match="'edge_type'"):
        conv(x, edge_index)
    with pytest.raises(ValueError, match="'edge_type'"):
        conv(x, edge_index, edge_type[:-1])
    with pytest.raises(TypeError, match="'edge_type'"):
        conv(x, edge_index, edge_type.double())
    with pytest.raises(v.IndexRangeError, match="'edge_type'"):
        conv(x, edge_index, edge_type + R)
    with pytest.raises(ValueError, match="'x'"):
        conv(x[:, :3], edge_index, edge_type)
    with pytest.raises(IndexError, match="edge_index"):
        conv(x[:5], edge_index, edge_type)
    with pytest.raises(v.IndexRangeError, match="'x'"):
        cls(N, F_OUT, R)(torch.arange(N) + 1, edge_index, edge_type)
    with pytest.raises(ValueError, match="'x\\[1\\]'"):
        conv((x, None), edge_index, edge_type)
    with pytest.raises(TypeError, match="'edge_type'"):
        sparse = torch.sparse_coo_tensor(edge_index.flip(0), torch.ones(E), (N, N))
        conv(x, sparse)
    with pytest.raises(ValueError, match="Block-diagonal"):
        cls(N, F_OUT, R, num_blocks=2)(None, edge_index, edge_type)
    with pytest.raises(ValueError, match="num_bases"):
        cls(F_IN, F_OUT, R, num_bases=2, num_blocks=2)
    with pytest.raises(ValueError, match="num_blocks"):
        cls(F_IN, F_OUT, R, num_blocks=4)
    with pytest.raises(ValueError, match="num_relations"):
        cls(F_IN, F_OUT, 0)
    with pytest.raises(ValueError, match="in_channels"):
        cls(-1, F_OUT, R)
    if cls is FastRGCNConv:
        with pytest.raises(ValueError, match="aggr"):
            cls(F_IN, F_OUT, R, aggr="max")(x, edge_index, edge_type)


def test_compile_without_graph_breaks():
    x, edge_index, edge_type = graph(13)
    x = x.float()
    blocks_max = RGCNConv(F_IN, F_OUT, R, num_blocks=2, aggr="max")
    blocks_max(x, edge_index, edge_type)
    torch._dynamo.reset()
    explanation = torch._dynamo.explain(blocks_max)(x, edge_index, edge_type)
    assert explanation.graph_break_count == 0, [r.reason for r in explanation.break_reasons]
    for conv in (RGCNConv(F_IN, F_OUT, R),):
        expected = conv(x, edge_index, edge_type)  # eager first (loads the kernel registry)
        torch._dynamo.reset()
        explanation = torch._dynamo.explain(conv)(x, edge_index, edge_type)
        assert explanation.graph_break_count == 0, [r.reason for r in explanation.break_reasons]
        compiled = torch.compile(conv, fullgraph=True, backend="aot_eager")
        x_c, x_e = x.clone().requires_grad_(), x.clone().requires_grad_()
        out = compiled(x_c, edge_index, edge_type)
        testing.assert_close(out, expected)
        out.square().sum().backward()
        conv(x_e, edge_index, edge_type).square().sum().backward()
        testing.assert_close(x_c.grad, x_e.grad)


def test_export_with_dynamic_nodes_and_edges():
    x, edge_index, edge_type = graph(14)
    x = x.float()
    conv = RGCNConv(F_IN, F_OUT, R, num_bases=2)
    conv(x, edge_index, edge_type)
    n, e = torch.export.Dim("n", min=2), torch.export.Dim("e", min=2)
    program = torch.export.export(conv, (x, edge_index, edge_type), dynamic_shapes=({0: n}, {1: e}, {0: e}))
    x2, ei2, et2 = graph(15, n=17, e=71)
    x2 = x2.float()
    testing.assert_close(program.module()(x2, ei2, et2), conv(x2, ei2, et2))
