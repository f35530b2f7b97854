"""The ``gnn_kernels`` B-spline ops (spline_basis, spline_weighting and their backward passes) against
loop references written from the B-spline definition (gnn-kernels alone: torch only)."""

from __future__ import annotations

import itertools

import pytest
import torch

import gnn.kernels

pytestmark = pytest.mark.skipif(
    not gnn.kernels.load(), reason=f"kernels not built: {gnn.kernels.load_error()}"
)
K = torch.ops.gnn_kernels if gnn.kernels.load() else None


def cardinal(x: float, m: int) -> float:
    """Cardinal B-spline of degree m on integer knots (support [0, m + 1)), Cox-de Boor."""
    if m == 0:
        return 1.0 if 0.0 <= x < 1.0 else 0.0
    return (x * cardinal(x, m - 1) + (m + 1 - x) * cardinal(x - 1, m - 1)) / m


def loop_dense_basis(pseudo, kernel_size, is_open, m):
    """[E, K]: the weight of every kernel matrix for every edge (open: M_m(v - i + m); closed: periodic)."""
    rows = []
    for u in pseudo.tolist():
        row = []
        for p in itertools.product(*[range(k) for k in reversed(kernel_size)]):
            p = p[::-1]  # dimension 0 varies fastest
            w = 1.0
            for d, k in enumerate(kernel_size):
                v = u[d] * (k - m * is_open[d])
                shifts = (0,) if is_open[d] else (-2, -1, 0, 1, 2)
                w *= sum(cardinal(v - p[d] + m + r * k, m) for r in shifts)
            row.append(w)
        rows.append(row)
    return torch.tensor(rows, dtype=torch.float64)


def densify(basis, index, num_kernels):
    out = torch.zeros(basis.size(0), num_kernels, dtype=torch.float64)
    return out.index_put_(
        (torch.arange(basis.size(0)).repeat_interleave(basis.size(1)), index.flatten()),
        basis.double().flatten(),
        accumulate=True,
    )


def args(kernel_size, is_open):
    return torch.tensor(kernel_size), torch.tensor(is_open, dtype=torch.uint8)


@pytest.mark.parametrize("degree", [1, 2, 3])
@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_basis_matches_definition(degree, dims, dtype):
    kernel_size, is_open = [5, 4, 6][:dims], [1, 0, 1][:dims]
    g = torch.Generator().manual_seed(degree + 3 * dims)
    pseudo = torch.rand(10, dims, generator=g, dtype=dtype)
    pseudo[0] = 1.0
    basis, index = K.spline_basis(pseudo, *args(kernel_size, is_open), degree)
    assert basis.dtype == dtype and index.dtype == torch.int64
    num = 1
    for k in kernel_size:
        num *= k
    tol = {"atol": 1e-6, "rtol": 1e-5} if dtype == torch.float32 else {"atol": 1e-12, "rtol": 1e-10}
    torch.testing.assert_close(
        densify(basis, index, num), loop_dense_basis(pseudo.double(), kernel_size, is_open, degree), **tol
    )


@pytest.mark.parametrize("degree", [1, 2, 3])
def test_basis_gradcheck(degree):
    g = torch.Generator().manual_seed(degree)
    pseudo = (0.05 + 0.9 * torch.rand(6, 3, generator=g, dtype=torch.float64)).requires_grad_()
    ks, op = args([4, 5, 3], [1, 0, 1])
    torch.autograd.gradcheck(lambda p: K.spline_basis(p, ks, op, degree)[0], (pseudo,))


def loop_weighting(x, weight, basis, index):
    out = torch.zeros(x.size(0), weight.size(2), dtype=x.dtype)
    for e in range(x.size(0)):
        for s in range(basis.size(1)):
            out[e] += basis[e, s] * (x[e] @ weight[index[e, s]])
    return out


@pytest.mark.parametrize("f_in,f_out", [(3, 2), (32, 32), (70, 5), (1, 130)])  # every column block width
def test_weighting_forward_and_backward_match_loop(f_in, f_out):
    g = torch.Generator().manual_seed(f_in + f_out)
    e, combos, num = 11, 4, 9
    x = torch.randn(e, f_in, generator=g, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(num, f_in, f_out, generator=g, dtype=torch.float64, requires_grad=True)
    basis = torch.rand(e, combos, generator=g, dtype=torch.float64, requires_grad=True)
    index = torch.randint(0, num, (e, combos), generator=g)
    index[0] = 2  # one edge uses one matrix four times
    out = K.spline_weighting(x, weight, basis, index)
    expected = loop_weighting(x, weight, basis, index)
    torch.testing.assert_close(out, expected)
    grad = torch.randn(e, f_out, generator=g, dtype=torch.float64)
    got = torch.autograd.grad(out, (x, weight, basis), grad)
    want = torch.autograd.grad(expected, (x, weight, basis), grad)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b)


def test_weighting_gradcheck_and_partial_gradients():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(7, 3, generator=g, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(5, 3, 2, generator=g, dtype=torch.float64, requires_grad=True)
    basis = torch.rand(7, 2, generator=g, dtype=torch.float64, requires_grad=True)
    index = torch.randint(0, 5, (7, 2), generator=g)
    torch.autograd.gradcheck(lambda a, w, b: K.spline_weighting(a, w, b, index), (x, weight, basis))
    torch.autograd.gradcheck(lambda w: K.spline_weighting(x.detach(), w, basis.detach(), index), (weight,))
    # the backward op returns empty tensors for what is not asked for
    gx, gw, gb = K.spline_weighting_backward(
        torch.ones(7, 2, dtype=torch.float64),
        x.detach(),
        weight.detach(),
        basis.detach(),
        index,
        False,
        True,
        False,
    )
    assert gx.shape == (0, 3) and gw.shape == (5, 3, 2) and gb.shape == (0, 2)


def test_weight_gradient_over_many_chunks_is_deterministic():
    g = torch.Generator().manual_seed(1)
    e = 9000  # several chunks of the weight gradient
    x = torch.randn(e, 4, generator=g)
    weight = torch.randn(6, 4, 3, generator=g, requires_grad=True)
    basis = torch.rand(e, 2, generator=g)
    index = torch.randint(0, 6, (e, 2), generator=g)
    grads = []
    for threads in (1, 2):
        old = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            (gw,) = torch.autograd.grad(K.spline_weighting(x, weight, basis, index).sum(), weight)
        finally:
            torch.set_num_threads(old)
        grads.append(gw)
    assert torch.equal(grads[0], grads[1])
    expected = torch.zeros(6, 4, 3, dtype=torch.float64)
    for s in range(2):
        expected.index_add_(
            0, index[:, s], (basis[:, s, None, None] * x[:, :, None]).double().expand(-1, -1, 3)
        )
    torch.testing.assert_close(grads[0].double(), expected, rtol=1e-4, atol=1e-3)


def test_empty_inputs():
    basis, index = K.spline_basis(torch.empty(0, 2), *args([3, 3], [1, 1]), 1)
    assert basis.shape == (0, 4) and index.shape == (0, 4)
    w = torch.randn(9, 3, 2, requires_grad=True)
    out = K.spline_weighting(torch.empty(0, 3), w, basis, index)
    assert out.shape == (0, 2)
    (gw,) = torch.autograd.grad(out.sum(), w)
    assert torch.equal(gw, torch.zeros_like(w))


def test_bad_inputs_raise():
    basis, index = K.spline_basis(torch.rand(4, 1), *args([3], [1]), 1)
    with pytest.raises(RuntimeError, match="weight_index"):
        K.spline_weighting(torch.randn(4, 2), torch.randn(2, 2, 2), basis, index + 1)
    with pytest.raises(RuntimeError, match="weight_index"):
        K.spline_weighting(torch.randn(4, 2), torch.randn(3, 2, 2), basis, index - 3)
    with pytest.raises(RuntimeError, match="kernel_size"):
        K.spline_basis(torch.rand(4, 1), *args([0], [0]), 1)
    with pytest.raises(RuntimeError, match="degree"):
        K.spline_basis(torch.rand(4, 1), *args([3], [1]), 4)
    with pytest.raises(RuntimeError, match="one entry per dimension"):
        K.spline_basis(torch.rand(4, 2), *args([3], [1]), 1)
    # NaN and huge coordinates give valid indices, never a crash
    _, idx = K.spline_basis(torch.tensor([[float("nan")], [1e30], [-1e30]]), *args([4], [0]), 2)
    assert int(idx.min()) >= 0 and int(idx.max()) < 4
