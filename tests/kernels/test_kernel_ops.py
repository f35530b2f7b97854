"""The raw ``gnn_kernels`` custom ops against loop references (gnn-kernels alone: torch only)."""

from __future__ import annotations

import pytest
import torch

import gnn.kernels

pytestmark = pytest.mark.skipif(
    not gnn.kernels.load(), reason=f"kernels not built: {gnn.kernels.load_error()}"
)
K = torch.ops.gnn_kernels if gnn.kernels.load() else None


def random_csr(m: int, n: int, e: int, seed: int, empty_rows: bool = True):
    """rowptr/col sorted by row, with some empty rows, plus the transposed pattern."""
    g = torch.Generator().manual_seed(seed)
    rows = torch.randint(0, m // 2 if empty_rows else m, (e,), generator=g)
    cols = torch.randint(0, n, (e,), generator=g)
    perm = torch.argsort(rows, stable=True)
    rows, cols = rows[perm], cols[perm]
    rowptr = torch.zeros(m + 1, dtype=torch.long)
    rowptr[1:] = torch.bincount(rows, minlength=m).cumsum(0)
    t_perm = torch.argsort(cols, stable=True)
    t_rowptr = torch.zeros(n + 1, dtype=torch.long)
    t_rowptr[1:] = torch.bincount(cols, minlength=n).cumsum(0)
    return rowptr, cols, rows, (t_rowptr, rows[t_perm].contiguous(), t_perm)


REDUCE_NAMES = ["sum", "mean", "max", "min", "mul"]  # the kernels' reduce codes 0..4


def loop_spmm(rows, cols, value, x, m, reduce):
    out = torch.zeros((m,) + x.shape[1:], dtype=x.dtype)
    for i in range(m):
        sel = (rows == i).nonzero().flatten()
        if len(sel) == 0:
            out[i] = 1 if reduce == "mul" else 0  # an empty product is 1
            continue
        w = torch.ones(len(sel), dtype=x.dtype) if value is None else value[sel]
        msgs = x[cols[sel]] * w.view((-1,) + (1,) * (x.dim() - 1))
        out[i] = {
            "sum": msgs.sum(0),
            "mean": msgs.mean(0),
            "max": msgs.max(0).values,
            "mul": msgs.prod(0),
            "min": msgs.min(0).values,
        }[reduce]
    return out


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("weighted", [False, True])
def test_spmm_sum_mean_minmax(dtype, weighted):
    rowptr, col, rows, t = random_csr(12, 9, 50, seed=1)
    x = torch.randn(9, 1, 5, dtype=dtype)
    value = torch.rand(50, dtype=dtype) if weighted else None
    tol = {"atol": 1e-5, "rtol": 1e-5}
    for mean in (False, True):
        out = K.spmm_sum(rowptr, col, value, x, mean, None, None, None)
        ref = loop_spmm(rows, col, value, x, 12, "mean" if mean else "sum")
        torch.testing.assert_close(out, ref, **tol)
    for is_max in (True, False):
        out, arg = K.spmm_minmax(rowptr, col, value, x[:, 0], is_max)
        torch.testing.assert_close(
            out, loop_spmm(rows, col, value, x[:, 0], 12, "max" if is_max else "min"), **tol
        )
        assert bool((arg[6:] == -1).all())  # rows 6.. are empty


def test_spmm_per_head_weights_and_gradcheck():
    rowptr, col, rows, (t_rowptr, t_col, t_perm) = random_csr(7, 6, 25, seed=2)
    x = torch.randn(6, 2, 3, dtype=torch.float64, requires_grad=True)
    value = torch.rand(25, 2, dtype=torch.float64, requires_grad=True)
    out = K.spmm_sum(rowptr, col, value, x, False, t_rowptr, t_col, t_perm)
    ref = torch.stack(
        [loop_spmm(rows, col, value[:, h].detach(), x[:, h].detach(), 7, "sum") for h in range(2)], 1
    )
    torch.testing.assert_close(out, ref)
    for mean in (False, True):
        torch.autograd.gradcheck(
            lambda x, v: K.spmm_sum(rowptr, col, v, x, mean, t_rowptr, t_col, t_perm), (x, value)
        )
    shared = torch.rand(25, dtype=torch.float64, requires_grad=True)
    torch.autograd.gradcheck(
        lambda x, v: K.spmm_sum(rowptr, col, v, x, True, t_rowptr, t_col, t_perm), (x, shared)
    )
    x2 = torch.randn(6, 4, dtype=torch.float64, requires_grad=True)
    for is_max in (True, False):
        torch.autograd.gradcheck(lambda x, v: K.spmm_minmax(rowptr, col, v, x, is_max)[0], (x2, shared))


def test_sddmm():
    rowptr, col, rows, _ = random_csr(5, 4, 15, seed=3)
    a, b = torch.randn(5, 2, 3), torch.randn(4, 2, 3)
    torch.testing.assert_close(K.sddmm(rowptr, col, a, b), (a[rows] * b[col]).sum(-1))


def loop_attention(rows, cols, a_src, a_dst, a_edge, x, m, slope, mask=None):
    """Per-row loop: softmax over the unmasked entries (all masked: alpha 0, out 0)."""
    out = torch.zeros(m, x.size(1), x.size(2), dtype=x.dtype)
    alpha = torch.zeros(cols.numel(), x.size(1), dtype=x.dtype)
    keep = torch.ones(cols.numel(), dtype=torch.bool) if mask is None else ~mask
    for i in range(m):
        sel = ((rows == i) & keep).nonzero().flatten()
        if len(sel) == 0:
            continue
        s = a_src[cols[sel]] + a_dst[i] + (0 if a_edge is None else a_edge[sel])
        a = torch.softmax(torch.nn.functional.leaky_relu(s, slope), 0)
        alpha[sel] = a
        out[i] = (a.unsqueeze(-1) * x[cols[sel]]).sum(0)
    return out, alpha


def attention_inputs(dtype, with_edge, seed=5):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(7, 2, 3, dtype=dtype, generator=g, requires_grad=True)
    a_src = torch.randn(7, 2, dtype=dtype, generator=g, requires_grad=True)
    a_dst = torch.randn(8, 2, dtype=dtype, generator=g, requires_grad=True)
    a_edge = torch.randn(30, 2, dtype=dtype, generator=g, requires_grad=True) if with_edge else None
    return x, a_src, a_dst, a_edge


def attention_mask(rows):
    """Masks entries 0, 5, 9 and every entry of the row of entry 0 (a fully masked row)."""
    mask = torch.zeros(rows.numel(), dtype=torch.bool)
    mask[[0, 5, 9]] = True
    mask[rows == rows[0]] = True
    return mask


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("with_edge", [False, True])
@pytest.mark.parametrize("masked", [False, True])
def test_attention_forward_matches_loop(dtype, with_edge, masked):
    rowptr, col, rows, (t_rowptr, t_col, t_perm) = random_csr(8, 7, 30, seed=4)
    x, a_src, a_dst, a_edge = attention_inputs(dtype, with_edge)
    mask = attention_mask(rows) if masked else None
    out, alpha = K.attention_forward(rowptr, col, a_src, a_dst, a_edge, mask, x, 0.2, t_rowptr, t_col, t_perm)
    ref_out, ref_alpha = loop_attention(rows, col, a_src, a_dst, a_edge, x, 8, 0.2, mask)
    torch.testing.assert_close(out, ref_out)
    torch.testing.assert_close(alpha, ref_alpha)
    if masked:
        assert bool((alpha[mask] == 0).all())
        assert bool((out[rows[0]] == 0).all())


def test_attention_exp_matches_torch_over_the_float_range():
    # one row of many entries: the kernel's exp of (score - max) against torch's, down to underflow
    n = 4000
    rowptr = torch.tensor([0, n])
    col = torch.arange(n)
    scores = torch.linspace(-120.0, 0.0, n).view(n, 1)
    x = torch.ones(n, 1, 1)
    _, alpha = K.attention_forward(
        rowptr, col, scores.contiguous(), torch.zeros(1, 1), None, None, x, 1.0, None, None, None
    )
    torch.testing.assert_close(alpha, torch.softmax(scores, 0), rtol=2e-6, atol=1e-30)


@pytest.mark.parametrize("with_edge", [False, True])
@pytest.mark.parametrize("masked", [False, True])
def test_attention_gradcheck(with_edge, masked):
    rowptr, col, rows, (t_rowptr, t_col, t_perm) = random_csr(8, 7, 30, seed=4)
    x, a_src, a_dst, a_edge = attention_inputs(torch.float64, with_edge)
    mask = attention_mask(rows) if masked else None
    inputs = (x, a_src, a_dst) + ((a_edge,) if with_edge else ())

    def run(x, a_src, a_dst, *edge):
        return K.attention_forward(
            rowptr, col, a_src, a_dst, edge[0] if edge else None, mask, x, 0.2, t_rowptr, t_col, t_perm
        )  # out and alpha: alpha's own gradient path (grad_alpha) is checked too

    torch.autograd.gradcheck(run, inputs)
    torch.autograd.gradcheck(lambda *t: run(*t)[0], inputs)  # alpha unused: no grad_alpha
    torch.autograd.gradcheck(lambda *t: run(*t)[1], inputs)  # out unused


def test_attention_backward_checks_the_transposed_pattern():
    rowptr, col, rows, (t_rowptr, t_col, t_perm) = random_csr(8, 7, 30, seed=4)
    x, a_src, a_dst, _ = (t.detach() if t is not None else t for t in attention_inputs(torch.float32, False))
    alpha, grad_out = torch.rand(30, 2), torch.randn(8, 2, 3)
    bad_perm = t_perm.clone()
    bad_perm[0] = 30
    with pytest.raises(RuntimeError, match="t_perm"):
        K.attention_backward(
            rowptr, col, t_rowptr, t_col, bad_perm, a_src, a_dst, None, x, alpha, grad_out, None, 0.2
        )
    with pytest.raises(RuntimeError, match="transposed"):
        K.attention_backward(
            rowptr, col, t_rowptr[:-1], t_col, t_perm, a_src, a_dst, None, x, alpha, grad_out, None, 0.2
        )
    with pytest.raises(RuntimeError, match="mask"):
        K.attention_forward(
            rowptr, col, a_src, a_dst, None, torch.zeros(30, dtype=torch.uint8), x, 0.2, None, None, None
        )


@pytest.mark.parametrize("reduce", [0, 1, 2, 3, 4])
def test_scatter_and_segment_reduce(reduce):
    g = torch.Generator().manual_seed(6)
    src = torch.randn(40, 6, dtype=torch.float64, generator=g, requires_grad=True)
    index = torch.randint(0, 9, (40,), generator=g)
    name = REDUCE_NAMES[reduce]
    out, _ = K.scatter_reduce(src, index, 12, reduce)
    torch.testing.assert_close(out, loop_spmm(index, torch.arange(40), None, src.detach(), 12, name))
    torch.autograd.gradcheck(lambda s: K.scatter_reduce(s, index, 12, reduce)[0], (src,))
    sorted_index = index.sort().values
    ptr = torch.zeros(13, dtype=torch.long)
    ptr[1:] = torch.bincount(sorted_index, minlength=12).cumsum(0)
    out, _ = K.segment_reduce(src, ptr, reduce)
    torch.testing.assert_close(out, loop_spmm(sorted_index, torch.arange(40), None, src.detach(), 12, name))
    torch.autograd.gradcheck(lambda s: K.segment_reduce(s, ptr, reduce)[0], (src,))


def test_bad_indices_raise_instead_of_crashing():
    rowptr, col, _, _ = random_csr(5, 4, 10, seed=7)
    x = torch.randn(4, 1, 2)
    bad_col = col.clone()
    bad_col[3] = 99
    with pytest.raises(RuntimeError, match="out of range"):
        K.spmm_sum(rowptr, bad_col, None, x, False, None, None, None)
    bad_col[3] = -1
    with pytest.raises(RuntimeError, match="out of range"):
        K.spmm_minmax(rowptr, bad_col, None, x[:, 0], True)
    bad_ptr = rowptr.clone()
    bad_ptr[2] = 100
    with pytest.raises(RuntimeError, match="rowptr"):
        K.spmm_sum(bad_ptr, col, None, x, False, None, None, None)
    with pytest.raises(RuntimeError, match="out of range"):
        K.scatter_reduce(torch.randn(3, 2), torch.tensor([0, 5, 1]), 3, 0)
    with pytest.raises(RuntimeError, match="monotonically"):
        K.segment_reduce(torch.randn(3, 2), torch.tensor([0, 2, 1, 3]), 0)
    with pytest.raises(RuntimeError, match="float32/float64"):
        K.spmm_sum(rowptr, col, None, x.half(), False, None, None, None)


def test_under_torch_compile_without_graph_breaks():
    rowptr, col, rows, (t_rowptr, t_col, t_perm) = random_csr(10, 8, 30, seed=8)
    x = torch.randn(8, 1, 4, requires_grad=True)

    def f(x):
        out = K.spmm_sum(rowptr, col, None, x, True, t_rowptr, t_col, t_perm)
        return K.scatter_reduce(out[:, 0], rows[:10], 10, 2)[0].relu()

    explanation = torch._dynamo.explain(f)(x)
    assert explanation.graph_break_count == 0
    compiled = torch.compile(f, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(x), f(x))
    compiled(x).sum().backward()
    grad = x.grad.clone()
    x.grad = None
    f(x).sum().backward()
    torch.testing.assert_close(grad, x.grad)


def test_build_info_records_torch():
    info = gnn.kernels.build_info()
    built = tuple(int(p) for p in info["torch"].split(".")[:2])
    running = tuple(int(p) for p in torch.__version__.split("+")[0].split(".")[:2])
    # the stable-ABI library runs on the torch it was built with and on later releases
    assert info["stable_abi_target"] == "2.10"
    assert (2, 10) <= built <= running
    assert gnn.kernels.is_loaded()


@pytest.mark.parametrize("weighted", [False, True])
def test_spmm_sum_fused_self_term(weighted):
    # out[i] = (sum or mean)_{e in row i} w_e x[col e] + s * x_self[i], over feature widths that
    # cover a full register block (64 floats / 32 doubles), a partial one and both together
    rowptr, col, rows, (t_rowptr, t_col, t_perm) = random_csr(11, 9, 60, seed=9)
    for dtype in (torch.float32, torch.float64):
        for feats in (3, 32, 64, 70, 130):
            x = torch.randn(9, 1, feats, dtype=dtype)
            x_self = torch.randn(11, 1, feats, dtype=dtype)
            value = torch.rand(60, dtype=dtype) if weighted else None
            for mean in (False, True):
                out = K.spmm_sum(rowptr, col, value, x, mean, None, None, None, x_self, 1.25)
                ref = loop_spmm(rows, col, value, x, 11, "mean" if mean else "sum") + 1.25 * x_self
                torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    x = torch.randn(9, 2, 3, dtype=torch.float64, requires_grad=True)
    x_self = torch.randn(11, 2, 3, dtype=torch.float64, requires_grad=True)
    value = torch.rand(60, dtype=torch.float64, requires_grad=True) if weighted else None
    for mean in (False, True):
        torch.autograd.gradcheck(
            lambda x, xs: K.spmm_sum(rowptr, col, value, x, mean, t_rowptr, t_col, t_perm, xs, -0.5),
            (x, x_self),
        )
    with pytest.raises(RuntimeError, match="x_self"):
        K.spmm_sum(rowptr, col, None, x.detach(), False, None, None, None, x_self.detach()[:5], 1.0)


@pytest.mark.parametrize("reduce", [0, 1, 2, 3, 4])
def test_scatter_reduce_sorted_index_matches_unsorted_exactly(reduce):
    # a sorted index takes the group-parallel path; with the rows of each group in the same
    # order, every group reduces the same numbers in the same order: identical results
    g = torch.Generator().manual_seed(10)
    src = torch.randn(300, 70, generator=g)
    index = torch.randint(0, 40, (300,), generator=g)
    index[index == 7] = 8  # an empty group in the middle; groups 40..44 are empty at the end
    order = torch.argsort(index, stable=True)
    out_unsorted, _ = K.scatter_reduce(src, index, 45, reduce)
    out_sorted, _ = K.scatter_reduce(src[order].contiguous(), index[order].contiguous(), 45, reduce)
    assert torch.equal(out_unsorted, out_sorted)
    name = REDUCE_NAMES[reduce]
    ref = loop_spmm(index, torch.arange(300), None, src, 45, name)
    torch.testing.assert_close(out_sorted, ref)
    src64 = torch.randn(30, 4, dtype=torch.float64, generator=g, requires_grad=True)
    sorted_index = torch.randint(0, 6, (30,), generator=g).sort().values
    torch.autograd.gradcheck(lambda s: K.scatter_reduce(s, sorted_index, 8, reduce)[0], (src64,))
    with pytest.raises(RuntimeError, match="out of range"):
        K.scatter_reduce(src64.detach()[:3], torch.tensor([0, 1, 9]), 8, reduce)


@pytest.mark.parametrize("segment", [False, True])
def test_product_gradient_with_zeros(segment):
    # groups with no zero, one zero and two zeros: the gradient is the product of the others
    src = torch.tensor([[2.0, 0.0], [3.0, 0.0], [0.5, 4.0], [0.0, 5.0], [7.0, 0.0]], dtype=torch.float64)
    index = torch.tensor([0, 0, 0, 1, 1])
    ptr = torch.tensor([0, 3, 5, 5])
    src.requires_grad_(True)
    if segment:
        out, _ = K.segment_reduce(src, ptr, 4)
    else:
        out, _ = K.scatter_reduce(src, index, 3, 4)
    grad_out = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], dtype=torch.float64)
    (grad,) = torch.autograd.grad(out, src, grad_out)
    expected = torch.zeros_like(src)
    for e in range(5):
        members = (index == index[e]).nonzero().flatten()
        others = [k for k in members.tolist() if k != e]
        expected[e] = grad_out[index[e]] * src.detach()[others].prod(0)
    torch.testing.assert_close(
        out.detach(), torch.tensor([[3.0, 0.0], [0.0, 0.0], [1.0, 1.0]], dtype=torch.float64)
    )
    torch.testing.assert_close(grad, expected)
    reference = torch.ones(3, 2, dtype=torch.float64).scatter_reduce(
        0, index.view(-1, 1).expand(-1, 2), src, "prod", include_self=False
    )
    (torch_grad,) = torch.autograd.grad(reference, src, grad_out)
    torch.testing.assert_close(grad, torch_grad)
