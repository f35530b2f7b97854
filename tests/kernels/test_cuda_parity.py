"""Every CUDA kernel of gnn-kernels against the CPU kernel of the same op (runs only on a GPU).

The CUDA kernels (csrc/cuda) transliterate the CPU ones (csrc/cpu): same schemas, checks and
outputs. Here both run on the same random inputs (CSR patterns with empty rows, empty segments),
in float32 and float64, and every output and gradient is compared; a bad index must raise a
RuntimeError (not kill the CUDA context), and the ops with a backward pass ``gradcheck`` in float64
on the GPU through their autograd wrappers. Skipped where no GPU or no CUDA build is present.
"""

from __future__ import annotations

import pytest
import torch

import gnn.kernels

LOADED = gnn.kernels.load()
pytestmark = [
    pytest.mark.skipif(not LOADED, reason=f"kernels not built: {gnn.kernels.load_error()}"),
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
    pytest.mark.skipif(
        LOADED and gnn.kernels.build_info().get("cuda") is None, reason="gnn-kernels built without CUDA"
    ),
]
K = torch.ops.gnn_kernels if LOADED else None
DEVICE = "cuda"
M, N, E, H, C = 9, 7, 40, 2, 5  # C + H * C cross no warp boundary; WIDE crosses two
WIDE = 70


def tol(expected):
    """Summation orders differ (warp reductions, atomics in scatter sum), so an element that is a sum
    of cancelling terms differs by a fraction of the terms' size, not of its own: atol scales with
    the output's largest magnitude. (Measured with the kernels run on the CPU under a warp
    emulator: at most 6.3e-6 of that scale in float32, 1.5e-14 in float64.)"""
    scale = max(1.0, expected.abs().max().item()) if expected.numel() else 1.0
    if expected.dtype == torch.float32:
        return {"rtol": 1e-4, "atol": 5e-5 * scale}
    return {"rtol": 1e-9, "atol": 1e-11 * scale}


def cuda(*tensors):
    return tuple(None if t is None else t.to(DEVICE) for t in tensors)


def assert_same(got, expected):
    """got (CUDA outputs) == expected (CPU outputs), element by element (integer outputs exactly)."""
    got = got if isinstance(got, (tuple, list)) else (got,)
    expected = expected if isinstance(expected, (tuple, list)) else (expected,)
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        assert a.device.type == DEVICE and a.shape == b.shape and a.dtype == b.dtype
        if b.is_floating_point():
            torch.testing.assert_close(a.cpu(), b, **tol(b))
        else:
            assert torch.equal(a.cpu(), b)


def random_csr(m=M, n=N, e=E, seed=0):
    """rowptr/col sorted by row (rows >= m // 2 + 1 empty) and the transposed pattern."""
    g = torch.Generator().manual_seed(seed)
    rows = torch.randint(0, m // 2 + 1, (e,), generator=g).sort().values
    cols = torch.randint(0, n, (e,), generator=g)
    rowptr = torch.zeros(m + 1, dtype=torch.long)
    rowptr[1:] = torch.bincount(rows, minlength=m).cumsum(0)
    t_perm = torch.argsort(cols, stable=True)
    t_rowptr = torch.zeros(n + 1, dtype=torch.long)
    t_rowptr[1:] = torch.bincount(cols, minlength=n).cumsum(0)
    return rowptr, cols, (t_rowptr, rows[t_perm].contiguous(), t_perm)


def randn(*shape, dtype, seed):
    return torch.randn(*shape, dtype=dtype, generator=torch.Generator().manual_seed(seed))


def cuda_csr(**kwargs):
    """random_csr(**kwargs) on the GPU: rowptr, col, (t_rowptr, t_col, t_perm)."""
    rowptr, col, t = random_csr(**kwargs)
    return *cuda(rowptr, col), cuda(*t)


def run_both(op, args, *, host=()):
    """op on the CPU tensors and on their CUDA copies (but for the positions in host, which the op
    reads on the host); compares every output and returns the CPU ones."""
    expected = getattr(K, op)(*args)
    moved = (
        cuda(a)[0] if isinstance(a, torch.Tensor) and pos not in host else a for pos, a in enumerate(args)
    )
    got = getattr(K, op)(*moved)
    assert_same(got, expected)
    return expected


DTYPES = [torch.float32, torch.float64]


# -- spmm, sddmm ------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("channels", [C, WIDE])
def test_spmm_sum_minmax_sddmm(dtype, channels):
    rowptr, col, _ = random_csr()
    x = randn(N, H, channels, dtype=dtype, seed=1)
    x_self = randn(M, H, channels, dtype=dtype, seed=2)
    for value in (None, torch.rand(E, dtype=dtype), torch.rand(E, H, dtype=dtype)):
        for mean in (False, True):
            run_both("spmm_sum", (rowptr, col, value, x, mean, None, None, None, None, 1.0))
            run_both("spmm_sum", (rowptr, col, value, x, mean, None, None, None, x_self, -0.5))
    for value in (None, torch.rand(E, dtype=dtype)):
        for is_max in (True, False):
            run_both("spmm_minmax", (rowptr, col, value, x[:, 0].contiguous(), is_max))
    run_both("sddmm", (rowptr, col, x_self, x))


# -- scatter, segment, segment_matmul -------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduce", [0, 1, 2, 3, 4])  # sum, mean, max, min, mul
def test_scatter_and_segment_reduce(dtype, reduce):
    src = randn(E, WIDE, dtype=dtype, seed=3)
    index = torch.randint(0, 12, (E,), generator=torch.Generator().manual_seed(4))
    index[index == 5] = 6  # an empty group in the middle, 12..14 empty at the end
    run_both("scatter_reduce", (src, index, 15, reduce))
    run_both("scatter_reduce", (src, index.sort().values, 15, reduce))  # sorted-index path
    ptr = torch.zeros(16, dtype=torch.long)
    ptr[1:] = torch.bincount(index, minlength=15).cumsum(0)
    run_both("segment_reduce", (src, ptr, reduce))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("feats", [1, WIDE])
def test_segment_softmax(dtype, feats):
    src = randn(E, feats, dtype=dtype, seed=40)
    src[3, 0] = float("-inf")
    index = torch.randint(0, 12, (E,), generator=torch.Generator().manual_seed(41))
    index[index == 5] = 6
    grad = randn(E, feats, dtype=dtype, seed=42)
    for idx in (index, index.sort().values):
        out = run_both("softmax_forward", (src, idx, 15))
        run_both("softmax_backward", (out, grad, idx, 15))
    g = torch.Generator().manual_seed(43)
    src64 = torch.randn(E, 3, dtype=torch.float64, generator=g).to(DEVICE).requires_grad_()
    torch.autograd.gradcheck(lambda s: K.softmax_forward(s, index.to(DEVICE), 15), (src64,))
    with pytest.raises(RuntimeError, match="out of range"):
        K.softmax_forward(src.to(DEVICE), torch.full((E,), 99, device=DEVICE), 15)


@pytest.mark.parametrize("dtype", DTYPES)
def test_segment_matmul(dtype):
    inputs = randn(11, 6, dtype=dtype, seed=5)
    other = randn(4, 6, 3, dtype=dtype, seed=6)
    ptr = torch.tensor([0, 0, 6, 6, 11])  # types 0 and 2 have no rows
    run_both("segment_matmul", (inputs, ptr, other), host=(1,))  # ptr: read on the host
    grad = randn(11, 3, dtype=dtype, seed=7)
    run_both("segment_matmul_backward", (inputs, ptr, other, grad, True, True), host=(1,))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows, entries", [(5, 13), (5, 30)])  # grouped (N * T > E), table (N * T <= E)
def test_gather_matmul(dtype, rows, entries):
    g = torch.Generator().manual_seed(8)
    inputs = randn(rows, 6, dtype=dtype, seed=8)
    other = randn(4, 6, 3, dtype=dtype, seed=9)
    types = torch.randint(0, 3, (entries,), generator=g)  # type 3 has no rows
    index = torch.randint(0, rows, (entries,), generator=g)
    grad = randn(entries, 3, dtype=dtype, seed=10)
    run_both("gather_matmul", (inputs, types, other, index))
    run_both("gather_matmul", (inputs, types[:rows], other, None))
    run_both("gather_matmul_backward", (inputs, types, other, index, grad, True, True))
    run_both("gather_matmul_backward", (inputs, types[:rows], other, None, grad[:rows], True, True))
    x64 = inputs.double().to(DEVICE).requires_grad_()
    w64 = other.double().to(DEVICE).requires_grad_()
    t, i = cuda(types, index)
    torch.autograd.gradcheck(lambda a, b: K.gather_matmul(a, t, b, i), (x64, w64))
    with pytest.raises(RuntimeError, match="out of range"):
        K.gather_matmul(*cuda(inputs, types + 4, other, index))


# -- attention (GAT), dot_attention (TransformerConv), gatv2_attention ----------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("with_edge", [False, True])
@pytest.mark.parametrize("masked", [False, True])
def test_gat_attention(dtype, with_edge, masked):
    rowptr, col, (t_rowptr, t_col, t_perm) = random_csr(seed=8)
    x, a_src = randn(N, H, WIDE, dtype=dtype, seed=9), randn(N, H, dtype=dtype, seed=10)
    a_dst = randn(M, H, dtype=dtype, seed=11)
    a_edge = randn(E, H, dtype=dtype, seed=12) if with_edge else None
    mask = None
    if masked:  # entries 0, 5 and the whole row of entry 0 (a fully masked row)
        mask = torch.zeros(E, dtype=torch.bool)
        mask[[0, 5]] = True
        mask[: int(rowptr[1])] = True
    out, alpha = run_both(
        "attention_forward", (rowptr, col, a_src, a_dst, a_edge, mask, x, 0.2, None, None, None)
    )
    grad_out, grad_alpha = randn(M, H, WIDE, dtype=dtype, seed=13), randn(E, H, dtype=dtype, seed=14)
    for ga in (None, grad_alpha):
        run_both(
            "attention_backward",
            (rowptr, col, t_rowptr, t_col, t_perm, a_src, a_dst, a_edge, x, alpha, grad_out, ga, 0.2),
        )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("with_edge", [False, True])
@pytest.mark.parametrize("channels", [C, WIDE])
def test_dot_attention(dtype, with_edge, channels):
    rowptr, col, t = random_csr(seed=15)
    q, k, v = (randn(rows, H, channels, dtype=dtype, seed=16 + s) for s, rows in enumerate((M, N, N)))
    edge = randn(E, H, channels, dtype=dtype, seed=19) if with_edge else None
    out, alpha = run_both("dot_attention_forward", (rowptr, col, q, k, v, edge, 0.4, *t))
    assert out[M // 2 + 1 :].abs().sum() == 0  # empty rows
    grad_out, grad_alpha = randn(M, H, channels, dtype=dtype, seed=20), randn(E, H, dtype=dtype, seed=21)
    for ga in (None, grad_alpha):
        args = (rowptr, col, q, k, v, edge, 0.4, out, alpha, grad_out, ga, *t)
        run_both("dot_attention_backward", args)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("with_edge", [False, True])
@pytest.mark.parametrize("channels", [C, WIDE])
def test_gatv2_attention(dtype, with_edge, channels):
    rowptr, col, t = random_csr(seed=22)
    xs, xd = randn(N, H, channels, dtype=dtype, seed=23), randn(M, H, channels, dtype=dtype, seed=24)
    att = randn(H, channels, dtype=dtype, seed=25)
    edge = randn(E, H, channels, dtype=dtype, seed=26) if with_edge else None
    out, alpha = run_both("gatv2_attention_forward", (rowptr, col, xs, xd, att, edge, 0.2, *t))
    assert out[M // 2 + 1 :].abs().sum() == 0  # empty rows
    grad_out, grad_alpha = randn(M, H, channels, dtype=dtype, seed=27), randn(E, H, dtype=dtype, seed=28)
    for ga in (None, grad_alpha):
        args = (rowptr, col, xs, xd, att, edge, 0.2, out, alpha, grad_out, ga, *t)
        run_both("gatv2_attention_backward", args)


def test_gatv2_att_gradient_over_many_rows():
    """grad_att sums over every edge in per-warp partials, then a column sum. With H * C = 1024 the
    kernel keeps at most 4096 warps (2^22 partial elements), so here warps take several rows."""
    m, n, e, heads, channels = 4500, 300, 9000, 2, 512
    rowptr, col, t = random_csr(m=m, n=n, e=e, seed=29)
    dtype = torch.float64
    xs, xd = randn(n, heads, channels, dtype=dtype, seed=30), randn(m, heads, channels, dtype=dtype, seed=31)
    att = randn(heads, channels, dtype=dtype, seed=32)
    out, alpha = K.gatv2_attention_forward(rowptr, col, xs, xd, att, None, 0.2, *t)
    grad_out = randn(m, heads, channels, dtype=dtype, seed=33)
    args = (rowptr, col, xs, xd, att, None, 0.2, out, alpha, grad_out, None, *t)
    run_both("gatv2_attention_backward", args)
    # no atomics anywhere in the backward: two runs agree bit for bit
    on_gpu = [cuda(a)[0] if isinstance(a, torch.Tensor) else a for a in args]
    first, second = K.gatv2_attention_backward(*on_gpu), K.gatv2_attention_backward(*on_gpu)
    assert all(torch.equal(a, b) for a, b in zip(first, second))


# -- bad input raises, gradients through autograd on the GPU --------------------------------------
def test_bad_indices_raise_instead_of_crashing():
    rowptr, col, (t_rowptr, t_col, t_perm) = cuda_csr(seed=34)
    bad_col = col.clone()
    bad_col[3] = N
    x = torch.randn(N, H, C, device=DEVICE)
    q = torch.randn(M, H, C, device=DEVICE)
    with pytest.raises(RuntimeError, match="out of range"):
        K.spmm_sum(rowptr, bad_col, None, x, False, None, None, None)
    with pytest.raises(RuntimeError, match="out of range"):
        K.dot_attention_forward(rowptr, bad_col, q, x, x, None, 1.0, None, None, None)
    with pytest.raises(RuntimeError, match="out of range"):
        K.gatv2_attention_forward(rowptr, bad_col, x, q, x[0], None, 0.2, None, None, None)
    out, alpha = K.gatv2_attention_forward(rowptr, col, x, q, x[0].contiguous(), None, 0.2, None, None, None)
    bad_perm = t_perm.clone()
    bad_perm[0] = -1
    with pytest.raises(RuntimeError, match="t_perm"):
        K.gatv2_attention_backward(
            rowptr, col, x, q, x[0].contiguous(), None, 0.2, out, alpha, out, None, t_rowptr, t_col, bad_perm
        )
    with pytest.raises(RuntimeError, match="out of range"):
        K.scatter_reduce(torch.randn(3, 2, device=DEVICE), torch.tensor([0, 5, 1], device=DEVICE), 3, 0)
    with pytest.raises(RuntimeError, match="'value' must be"):  # shape checks as on the CPU
        K.dot_attention_forward(rowptr, col, q, x, x[:, :1].contiguous(), None, 1.0, None, None, None)
    with pytest.raises(RuntimeError, match="CUDA tensor"):  # one input left on the CPU
        K.dot_attention_forward(rowptr, col, q, x, x.cpu(), None, 1.0, None, None, None)
    torch.cuda.synchronize()  # the context is still usable
    assert K.spmm_sum(rowptr, col, None, x, False, None, None, None).isfinite().all()


def _gat(rowptr, col, t, inputs):
    x, a_src, a_dst, a_edge = inputs
    return K.attention_forward(rowptr, col, a_src, a_dst, a_edge, None, x, 0.2, *t)


def _dot(rowptr, col, t, inputs):
    q, k, v, edge = inputs
    return K.dot_attention_forward(rowptr, col, q, k, v, edge, 0.4, *t)


def _gatv2(rowptr, col, t, inputs):
    xs, xd, att, edge = inputs
    return K.gatv2_attention_forward(rowptr, col, xs, xd, att, edge, 0.2, *t)


EG = 25  # entries of the gradcheck patterns
GRAD_SHAPES = {
    "node_score_attention": (_gat, [(N, H, C), (N, H), (M, H), (EG, H)]),
    "dot_attention": (_dot, [(M, H, C), (N, H, C), (N, H, C), (EG, H, C)]),
    "additive_attention": (_gatv2, [(N, H, C), (M, H, C), (H, C), (EG, H, C)]),
}


@pytest.mark.parametrize("name", sorted(GRAD_SHAPES))
def test_attention_gradcheck_on_gpu(name):
    """float64 gradcheck of out and alpha (alpha's own gradient path included) through autograd."""
    fn, shapes = GRAD_SHAPES[name]
    rowptr, col, t = cuda_csr(e=EG, seed=35)
    g = torch.Generator().manual_seed(36)
    inputs = [torch.randn(*s, dtype=torch.float64, generator=g).to(DEVICE).requires_grad_() for s in shapes]
    torch.autograd.gradcheck(lambda *a: fn(rowptr, col, t, a), inputs)


def test_reduction_gradcheck_on_gpu():
    rowptr, col, t = cuda_csr(e=EG, seed=37)
    g = torch.Generator().manual_seed(38)
    x = torch.randn(N, H, C, dtype=torch.float64, generator=g).to(DEVICE).requires_grad_()
    value = torch.rand(EG, dtype=torch.float64, generator=g).to(DEVICE).requires_grad_()
    torch.autograd.gradcheck(lambda x, w: K.spmm_sum(rowptr, col, w, x, False, *t), (x, value))
    src = torch.randn(12, 4, dtype=torch.float64, generator=g).to(DEVICE).requires_grad_()
    index = torch.tensor([0, 2, 2, 1, 0, 4, 4, 4, 1, 0, 2, 1], device=DEVICE)
    ptr = torch.tensor([0, 3, 3, 7, 12], device=DEVICE)
    for reduce in (0, 1, 2, 3, 4):
        torch.autograd.gradcheck(lambda s: K.scatter_reduce(s, index, 6, reduce)[0], (src,))
        torch.autograd.gradcheck(lambda s: K.segment_reduce(s, ptr, reduce)[0], (src,))
    other = torch.randn(4, 4, 3, dtype=torch.float64, generator=g).to(DEVICE).requires_grad_()
    type_ptr = torch.tensor([0, 5, 5, 9, 12])  # read on the host: stays on the CPU
    torch.autograd.gradcheck(lambda a, b: K.segment_matmul(a, type_ptr, b), (src, other))


# -- one-pass multi-reductions --------------------------------------------------------------------
MULTI_CODES = [0, 1, 2, 3, 4, 5, 6, 5 + 8, 6 + 8]  # sum mean max min var std softmax, semi std/softmax


@pytest.mark.parametrize("dtype", DTYPES)
def test_multi_reduce_forward_and_backward(dtype):
    rowptr, col, (t_rowptr, t_col, _) = random_csr(seed=40)
    perm = torch.randperm(E, generator=torch.Generator().manual_seed(41))
    temps = randn(2, WIDE, dtype=dtype, seed=42)
    x_nodes, x_elems = randn(N, WIDE, dtype=dtype, seed=43), randn(E, WIDE, dtype=dtype, seed=44)
    for args in (
        (rowptr, None, x_elems, MULTI_CODES, temps, None, None, True),  # sorted elements
        (rowptr, perm, x_elems, MULTI_CODES, temps, None, None, True),  # permuted elements
        (rowptr, col, x_nodes, MULTI_CODES, temps, t_rowptr, t_col, True),  # gathered nodes
    ):
        out, aux = run_both("multi_reduce", args)
        grad_out = randn(*out.shape, dtype=dtype, seed=45)
        rp, c, x, codes, tt, trp, tc, _ = args
        run_both("multi_reduce_backward", (rp, c, x, codes, tt, out, aux, grad_out, trp, tc, True, True))
    run_both("multi_reduce", (rowptr, perm, x_elems, [2, 3], None, None, None, False))  # no statistics


def test_multi_reduce_gradcheck_and_bad_input_on_gpu():
    rowptr, col, (t_rowptr, t_col, _) = cuda_csr(e=EG, seed=46)
    g = torch.Generator().manual_seed(47)
    x = (torch.randn(N, 3, dtype=torch.float64, generator=g) + torch.arange(N * 3).view(N, 3) / 10).to(DEVICE)
    temps = torch.tensor([[0.5, -1.0, 2.0]], dtype=torch.float64, device=DEVICE)
    codes = [0, 1, 2, 3, 4, 5, 6]
    torch.autograd.gradcheck(
        lambda x, t: K.multi_reduce(rowptr, col, x, codes, t, t_rowptr, t_col, True)[0],
        (x.requires_grad_(), temps.requires_grad_()),
    )
    with pytest.raises(RuntimeError, match="permutation"):
        repeated = torch.zeros(EG, dtype=torch.long, device=DEVICE)
        xe = torch.randn(EG, 3, dtype=torch.float64, device=DEVICE)
        out, aux = K.multi_reduce(rowptr, repeated, xe, [0], None, None, None, True)
        K.multi_reduce_backward(rowptr, repeated, xe, [0], None, out, aux, out, None, None, True, False)
    bad = col.clone()
    bad[0] = N
    with pytest.raises(RuntimeError, match="out of range"):
        K.multi_reduce(rowptr, bad, x, codes, temps, None, None, False)
    torch.cuda.synchronize()


# -- B-spline ops (csrc/cuda/spline.cu) ---------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("degree", [1, 2, 3])
def test_spline_basis_and_weighting(dtype, degree):
    g = torch.Generator().manual_seed(40 + degree)
    pseudo = torch.rand(E, 3, generator=g, dtype=dtype)
    pseudo[0] = 1.0
    kernel_size, is_open = torch.tensor([4, 5, 3]), torch.tensor([1, 0, 1], dtype=torch.uint8)
    basis, index = run_both("spline_basis", (pseudo, kernel_size, is_open, degree))
    grad_basis = randn(*basis.shape, dtype=dtype, seed=41)
    run_both("spline_basis_backward", (grad_basis, pseudo, kernel_size, is_open, degree))
    for f_in, f_out in ((C, C), (3, WIDE)):
        x, weight = randn(E, f_in, dtype=dtype, seed=42), randn(60, f_in, f_out, dtype=dtype, seed=43)
        out = run_both("spline_weighting", (x, weight, basis, index))
        grad = randn(*out.shape, dtype=dtype, seed=44)
        run_both("spline_weighting_backward", (grad, x, weight, basis, index, True, True, True))


def test_spline_gradcheck_and_bad_index_on_gpu():
    g = torch.Generator().manual_seed(45)
    pseudo = (0.05 + 0.9 * torch.rand(12, 2, generator=g, dtype=torch.float64)).to(DEVICE).requires_grad_()
    ks, op = torch.tensor([4, 3], device=DEVICE), torch.tensor([1, 0], dtype=torch.uint8, device=DEVICE)
    torch.autograd.gradcheck(lambda p: K.spline_basis(p, ks, op, 2)[0], (pseudo,))
    basis, index = K.spline_basis(pseudo.detach(), ks, op, 2)
    x = torch.randn(12, 3, dtype=torch.float64, generator=g).to(DEVICE).requires_grad_()
    w = torch.randn(12, 3, 2, dtype=torch.float64, generator=g).to(DEVICE).requires_grad_()
    b = basis.clone().requires_grad_()
    torch.autograd.gradcheck(lambda a, ww, bb: K.spline_weighting(a, ww, bb, index), (x, w, b))
    with pytest.raises(RuntimeError, match="weight_index"):
        K.spline_weighting(x.detach(), w.detach()[:5], basis, index)
    torch.cuda.synchronize()  # the context is still usable
