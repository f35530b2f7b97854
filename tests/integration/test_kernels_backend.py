"""gnn.core.ops served by gnn-kernels' native backend, against the pure-torch reference."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from gnn.core import ops, testing, utils
from gnn.core.ops import backends
from gnn.core.ops import reference as ref

pytest.importorskip("gnn.kernels")
pytestmark = pytest.mark.skipif("native" not in backends.available(), reason="gnn-kernels not usable")


def both(fn):
    """fn() under the native backend and under pure torch."""
    with ops.backend("native"):
        a = fn()
    with ops.backend("torch"):
        b = fn()
    return a, b


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("index_dtype", [torch.int64, torch.int32])
@pytest.mark.parametrize("reduce", ["sum", "mean", "max", "min", "mul"])
def test_spmm_scatter_segment_match_reference(dtype, index_dtype, reduce):
    x, edge_index = testing.random_graph(40, 200, 6, seed=1, dtype=dtype)
    edge_index[1] = edge_index[1] % 30  # receivers 30..39 stay empty
    edge_index = edge_index.to(index_dtype)
    w = torch.rand(200, dtype=dtype)
    csr = utils.to_csr(edge_index, (40, 40), cache=False)
    x_nc = x.t().contiguous().t()  # non-contiguous view with the same values
    for weight in (None, w) if reduce != "mul" else ():  # spmm has no product
        a, b = both(lambda: ops.spmm(csr, x_nc, weight, reduce))
        torch.testing.assert_close(a, b)
    src = torch.randn(200, 3, 2, dtype=dtype)
    a, b = both(lambda: ops.scatter(src, edge_index[1], 0, 45, reduce))
    torch.testing.assert_close(a, b)
    a, b = both(lambda: ops.scatter(src, edge_index[1], 0, None, reduce))
    torch.testing.assert_close(a, b)
    idx = edge_index[1].sort().values
    ptr = torch.cat([idx.new_zeros(1), torch.bincount(idx, minlength=45).cumsum(0)]).to(index_dtype)
    a, b = both(lambda: ops.segment(src, ptr, 0, reduce))
    torch.testing.assert_close(a, b)
    if reduce == "sum":  # the group softmax, by the same (unsorted, then sorted) index
        for index in (edge_index[1], idx.to(index_dtype)):
            a, b = both(lambda: ops.softmax(src, index, num_nodes=45))
            torch.testing.assert_close(a, b)


def test_gradcheck_through_gnn_core_ops():
    x, edge_index = testing.random_graph(15, 60, 3, seed=2, dtype=torch.float64)
    csr = utils.to_csr(edge_index, (15, 15), cache=False)
    w = torch.rand(60, dtype=torch.float64, requires_grad=True)
    x.requires_grad_(True)
    with ops.backend("native"):
        for reduce in ("sum", "mean", "max", "min"):
            torch.autograd.gradcheck(lambda x, w: ops.spmm(csr, x, w, reduce), (x, w))
        xs = torch.randn(15, 2, 3, dtype=torch.float64, requires_grad=True)
        a_src = torch.randn(15, 2, dtype=torch.float64, requires_grad=True)
        a_dst = torch.randn(15, 2, dtype=torch.float64, requires_grad=True)
        torch.autograd.gradcheck(lambda *t: ops.node_score_attention(csr, *t), (xs, a_src, a_dst))


def test_attention_matches_reference_in_edge_order():
    x, edge_index = testing.random_graph(20, 90, 4, seed=3)
    csr = utils.to_csr(edge_index, (20, 20), cache=False)
    xs = torch.randn(20, 2, 4)
    a_src, a_dst, a_edge = torch.randn(20, 2), torch.randn(20, 2), torch.randn(90, 2)
    (o1, al1), (o2, al2) = both(lambda: ops.node_score_attention(csr, xs, a_src, a_dst, a_edge, 0.2))
    torch.testing.assert_close(o1, o2)
    torch.testing.assert_close(al1, al2)
    # alpha is in edge order: it sums to one over each receiver's incoming edges
    sums = ops.scatter(al1, edge_index[1], 0, 20)
    has_in = torch.bincount(edge_index[1], minlength=20) > 0
    torch.testing.assert_close(sums[has_in], torch.ones_like(sums[has_in]))


def test_unsupported_calls_fall_back_to_torch(monkeypatch):
    monkeypatch.delenv("GNN_KERNELS", raising=False)  # the default selection, also in a GNN_KERNELS=torch run
    name, _ = backends.select(
        "spmm", device=torch.device("cpu"), dtype=torch.float16, reduce="sum", requires_grad=False
    )
    assert name == "torch"
    name, _ = backends.select(  # CUDA kernels are compiled but were never run: not offered yet
        "scatter", device=torch.device("cuda"), dtype=torch.float32, reduce="sum", requires_grad=False
    )
    assert name == "torch"
    name, _ = backends.select(
        "scatter", device=torch.device("cpu"), dtype=torch.float32, reduce="mul", requires_grad=False
    )
    assert name == "native"
    name, _ = backends.select(
        "spmm", device=torch.device("cpu"), dtype=torch.float32, reduce="sum", requires_grad=True
    )
    assert name == "native"


def test_env_var_forces_torch_and_info_reports_backend():
    code = "from gnn.core.ops import backends; print(backends.describe()['spmm'])"
    forced = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "GNN_KERNELS": "torch"},
        check=True,
    )
    assert forced.stdout.strip() == "torch"
    default = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={k: v for k, v in os.environ.items() if k != "GNN_KERNELS"},
    )
    assert default.stdout.strip() == "native"


def test_softmax_matches_reference_and_gradcheck():
    g = torch.Generator().manual_seed(4)
    src = torch.randn(80, 3, dtype=torch.float64, generator=g, requires_grad=True)
    index = torch.randint(0, 10, (80,), generator=g)
    a, b = both(lambda: ops.softmax(src, index, num_nodes=12))
    torch.testing.assert_close(a, b)
    with ops.backend("native"):
        torch.autograd.gradcheck(lambda s: ops.softmax(s, index, num_nodes=12), (src,))


def test_segment_matmul_and_hetero_linear_on_the_kernel():
    from gnn.core.nn import HeteroLinear

    g = torch.Generator().manual_seed(5)
    inputs = torch.randn(10, 4, generator=g, dtype=torch.float64, requires_grad=True)
    other = torch.randn(3, 4, 2, generator=g, dtype=torch.float64, requires_grad=True)
    ptr = torch.tensor([0, 3, 3, 10])
    with ops.backend("native"):
        out = ops.segment_matmul(inputs, ptr, other)
        torch.autograd.gradcheck(lambda a, b: ops.segment_matmul(a, ptr, b), (inputs, other))
    with ops.backend("torch"):
        torch.testing.assert_close(out, ops.segment_matmul(inputs, ptr, other))
    lin = HeteroLinear(4, 3, num_types=3)
    x, types = torch.randn(12, 4, generator=g), torch.randint(0, 3, (12,), generator=g)
    with ops.backend("native"):
        fast = lin(x, types)
    with ops.backend("torch"):
        torch.testing.assert_close(fast, lin(x, types))


@pytest.mark.parametrize("op", ["dot_attention", "additive_attention"])
@pytest.mark.parametrize("with_edge", [False, True])
def test_fused_feature_attention_matches_reference_with_gradients(op, with_edge):
    """Native dot/GATv2 attention equals the pure-torch reference: outputs, alpha (edge order), all grads."""
    _, edge_index = testing.random_graph(60, 400, 1, seed=5)
    edge_index[1] = edge_index[1] % 50  # receivers 50..59 stay empty
    csr = utils.to_csr(edge_index, (60, 60), cache=False)
    g = torch.Generator().manual_seed(6)
    a, b, c = (torch.randn(60, 4, 8, generator=g) for _ in range(3))
    edge = torch.randn(400, 4, 8, generator=g) if with_edge else None
    if op == "additive_attention":
        c = torch.randn(4, 8, generator=g)
    inputs = [t.requires_grad_() for t in (a, b, c) + ((edge,) if with_edge else ())]
    w_out, w_alpha = torch.randn(60, 4, 8, generator=g), torch.randn(400, 4, generator=g)

    def run():
        out, alpha = getattr(ops, op)(csr, *inputs[:3], edge, 0.3)
        grads = torch.autograd.grad((out * w_out).sum() + (alpha * w_alpha).sum(), inputs)
        return (out, alpha) + grads

    native, reference = both(run)
    for x, y in zip(native, reference):
        torch.testing.assert_close(x, y, atol=1e-4, rtol=1e-4)


def test_attention_mask_and_unreturned_alpha_match_reference():
    x, edge_index = testing.random_graph(20, 90, 4, seed=4)
    edge_index[1, :3] = edge_index[0, :3]  # a few self loops to mask
    csr = utils.to_csr(edge_index, (20, 20), cache=False)
    mask = edge_index[0] == edge_index[1]
    mask[10] = True
    g = torch.Generator().manual_seed(5)
    xs, a_src, a_dst = (
        torch.randn(20, 2, 4, generator=g),
        torch.randn(20, 2, generator=g),
        torch.randn(20, 2, generator=g),
    )
    (o1, al1), (o2, al2) = both(lambda: ops.node_score_attention(csr, xs, a_src, a_dst, None, 0.2, mask=mask))
    torch.testing.assert_close(o1, o2)
    torch.testing.assert_close(al1, al2)
    assert bool((al1[mask] == 0).all())
    (o3, none3), (o4, none4) = both(
        lambda: ops.node_score_attention(csr, xs, a_src, a_dst, mask=mask, return_alpha=False)
    )
    assert none3 is None and none4 is None
    torch.testing.assert_close(o3, o1)
    torch.testing.assert_close(o4, o1)
    with pytest.raises(ValueError, match="mask"):
        ops.node_score_attention(csr, xs, a_src, a_dst, mask=mask.float())


def test_attention_mask_gradcheck_through_gnn_core_ops():
    _, edge_index = testing.random_graph(12, 40, 3, seed=6)
    csr = utils.to_csr(edge_index, (12, 12), cache=False)
    mask = torch.zeros(40, dtype=torch.bool)
    mask[::7] = True
    g = torch.Generator().manual_seed(7)
    xs = torch.randn(12, 2, 3, dtype=torch.float64, generator=g, requires_grad=True)
    a_src = torch.randn(12, 2, dtype=torch.float64, generator=g, requires_grad=True)
    a_dst = torch.randn(12, 2, dtype=torch.float64, generator=g, requires_grad=True)
    a_edge = torch.randn(40, 2, dtype=torch.float64, generator=g, requires_grad=True)
    for name in ("native", "torch"):
        with ops.backend(name):
            torch.autograd.gradcheck(
                lambda *t: ops.node_score_attention(csr, *t, 0.2, mask=mask), (xs, a_src, a_dst, a_edge)
            )
            torch.autograd.gradcheck(
                lambda *t: ops.node_score_attention(csr, *t, 0.2, mask=mask, return_alpha=False)[0],
                (xs, a_src, a_dst, a_edge),
            )


@pytest.mark.parametrize("reduce", ["sum", "mean", "min", "max", "mul"])
def test_every_scatter_reduction_is_served_by_the_kernels(reduce, monkeypatch):
    monkeypatch.delenv("GNN_KERNELS", raising=False)  # the default selection, also in a GNN_KERNELS=torch run
    src = torch.randn(50, 3, dtype=torch.float64, requires_grad=True)
    index = torch.randint(0, 12, (50,))
    name, _ = backends.select(
        "scatter", device=src.device, dtype=src.dtype, reduce=reduce, requires_grad=True
    )
    assert name == "native"
    out = ops.scatter(src, index, 0, 14, reduce)
    torch.testing.assert_close(out, ref.scatter(src, index, 0, 14, reduce))
    grad_out = torch.randn_like(out)
    (grad,) = torch.autograd.grad(out, src, grad_out)
    (grad_ref,) = torch.autograd.grad(ref.scatter(src, index, 0, 14, reduce), src, grad_out)
    torch.testing.assert_close(grad, grad_ref)


def _loop_softmax(src, index, groups):
    out = torch.zeros_like(src)
    for g in range(groups):
        rows = (index == g).nonzero().flatten()
        if len(rows):
            e = (src[rows] - src[rows].max(0).values).exp()
            out[rows] = e / e.sum(0)
    return out


def test_ops_softmax_uses_the_kernel_along_any_dim(monkeypatch):
    monkeypatch.delenv("GNN_KERNELS", raising=False)  # the default selection, also in a GNN_KERNELS=torch run
    name, _ = backends.select(
        "softmax", device=torch.device("cpu"), dtype=torch.float32, reduce=None, requires_grad=True
    )
    assert name == "native"
    src = torch.randn(4, 30, 5, dtype=torch.float64, requires_grad=True)
    index = torch.randint(0, 7, (30,))
    out = ops.softmax(src, index, num_nodes=7, dim=1)
    expected = (
        _loop_softmax(src.detach().movedim(1, 0).reshape(30, 20), index, 7).view(30, 4, 5).movedim(0, 1)
    )
    torch.testing.assert_close(out, expected)
    assert torch.autograd.gradcheck(lambda s: ops.softmax(s, index, num_nodes=7, dim=1), (src,))
