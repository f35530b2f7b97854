"""gnn.core.ops.spline_basis / spline_weighting (pure-torch path) against the loop reference written
from the B-spline definition (``gnn.core.testing.bspline_kernel_weights``: Cox-de Boor recursion on
integer knots), gradcheck, validation."""

from __future__ import annotations

import pytest
import torch

from gnn.core import ops, testing


def dense_from_sparse(basis, index, num_kernels):
    out = torch.zeros(basis.size(0), num_kernels, dtype=basis.dtype)
    for e in range(basis.size(0)):
        for s in range(basis.size(1)):
            out[e, index[e, s]] += basis[e, s]
    return out


CASES = [
    (1, [5], [True]),
    (2, [4], [False]),
    (3, [6], [True]),
    (1, [3, 4], [True, False]),
    (2, [5, 5], [False, True]),
    (3, [4, 5], [True, True]),
    (1, [3, 3, 4], [True, True, False]),
    (2, [4, 3, 5], [False, True, True]),
    (3, [4, 5, 4], [True, False, True]),
]


@pytest.mark.parametrize("degree,kernel_size,is_open", CASES)
def test_basis_matches_the_b_spline_definition(degree, kernel_size, is_open):
    g = torch.Generator().manual_seed(degree * 10 + len(kernel_size))
    pseudo = torch.rand(12, len(kernel_size), generator=g, dtype=torch.float64)
    pseudo[0] = 0.0
    pseudo[1] = 1.0  # the upper end: an open spline's last piece wraps with zero weight
    with ops.backend("torch"):
        basis, index = ops.spline_basis(pseudo, kernel_size, is_open, degree)
    num_kernels = 1
    for k in kernel_size:
        num_kernels *= k
    assert basis.shape == index.shape == (12, (degree + 1) ** len(kernel_size))
    assert index.dtype == torch.int64 and int(index.min()) >= 0 and int(index.max()) < num_kernels
    dense = dense_from_sparse(basis, index, num_kernels)
    expected = torch.stack(
        [testing.bspline_kernel_weights(u.tolist(), kernel_size, is_open, degree) for u in pseudo]
    )
    torch.testing.assert_close(dense, expected, atol=1e-12, rtol=1e-10)
    torch.testing.assert_close(basis.sum(1), torch.ones(12, dtype=torch.float64))  # a partition of unity


@pytest.mark.parametrize("degree", [1, 2, 3])
def test_basis_gradient_wrt_pseudo(degree):
    kernel_size, is_open = [5, 4], [True, False]
    g = torch.Generator().manual_seed(degree)
    pseudo = (0.05 + 0.9 * torch.rand(7, 2, generator=g, dtype=torch.float64)).requires_grad_()
    with ops.backend("torch"):
        torch.autograd.gradcheck(lambda p: ops.spline_basis(p, kernel_size, is_open, degree)[0], (pseudo,))
        basis, index = ops.spline_basis(pseudo, kernel_size, is_open, degree)
    # against the derivative of the loop reference (finite differences of the definition)
    weights = torch.randn(20, dtype=torch.float64, generator=g)
    (grad,) = torch.autograd.grad((dense_from_sparse(basis, index, 20) @ weights).sum(), pseudo)
    eps = 1e-6
    for e in range(7):
        for d in range(2):
            hi, lo = pseudo.detach()[e].clone(), pseudo.detach()[e].clone()
            hi[d] += eps
            lo[d] -= eps
            diff = (
                (
                    testing.bspline_kernel_weights(hi.tolist(), kernel_size, is_open, degree)
                    - testing.bspline_kernel_weights(lo.tolist(), kernel_size, is_open, degree)
                )
                @ weights
                / (2 * eps)
            )
            assert abs(float(diff) - float(grad[e, d])) < 1e-5


def loop_weighting(x, weight, u, kernel_size, is_open, m):
    out = torch.zeros(x.size(0), weight.size(-1), dtype=torch.float64)
    for e in range(x.size(0)):
        kernel = (
            testing.bspline_kernel_weights(u[e].tolist(), kernel_size, is_open, m).view(-1, 1, 1) * weight
        ).sum(0)
        out[e] = x[e] @ kernel
    return out


@pytest.mark.parametrize("degree,kernel_size,is_open", CASES[::2])
def test_weighting_matches_loop_and_gradchecks(degree, kernel_size, is_open):
    g = torch.Generator().manual_seed(5)
    num_kernels = 1
    for k in kernel_size:
        num_kernels *= k
    pseudo = torch.rand(9, len(kernel_size), generator=g, dtype=torch.float64)
    x = torch.randn(9, 3, generator=g, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(num_kernels, 3, 2, generator=g, dtype=torch.float64, requires_grad=True)
    with ops.backend("torch"):
        basis, index = ops.spline_basis(pseudo, kernel_size, is_open, degree)
        out = ops.spline_weighting(x, weight, basis, index)
        expected = loop_weighting(x.detach(), weight.detach(), pseudo, kernel_size, is_open, degree)
        torch.testing.assert_close(out, expected, atol=1e-12, rtol=1e-10)
        b = basis.clone().requires_grad_()
        torch.autograd.gradcheck(lambda a, w, bb: ops.spline_weighting(a, w, bb, index), (x, weight, b))


def test_reference_chunks_agree(monkeypatch):
    from gnn.core.ops import reference_spline

    g = torch.Generator().manual_seed(3)
    x = torch.randn(50, 4, generator=g, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(9, 4, 3, generator=g, dtype=torch.float64)
    basis, index = ops.spline_basis(torch.rand(50, 2, generator=g, dtype=torch.float64), 3, True, 1)
    whole = reference_spline.spline_weighting(x, weight, basis, index)
    monkeypatch.setattr(reference_spline, "_CHUNK_ELEMENTS", 27 * 7)  # chunks of 7 edges
    chunked = reference_spline.spline_weighting(x, weight, basis, index)
    torch.testing.assert_close(chunked, whole)
    (g1,) = torch.autograd.grad(whole.sum(), x)
    (g2,) = torch.autograd.grad(chunked.sum(), x)
    torch.testing.assert_close(g1, g2)
    # the reference's own backward (it recomputes each chunk's products), over several chunks
    w = weight.clone().requires_grad_()
    b = basis.clone().requires_grad_()
    torch.autograd.gradcheck(lambda a, ww, bb: reference_spline.spline_weighting(a, ww, bb, index), (x, w, b))
    (only_w,) = torch.autograd.grad(reference_spline.spline_weighting(x.detach(), w, basis, index).sum(), w)
    (all_w,) = torch.autograd.grad(reference_spline.spline_weighting(x, w, b, index).sum(), w)
    torch.testing.assert_close(only_w, all_w)


def test_empty_and_out_of_range_coordinates():
    basis, index = ops.spline_basis(torch.empty(0, 2), [3, 3], True, 2)
    assert basis.shape == (0, 9) and index.shape == (0, 9)
    out = ops.spline_weighting(torch.empty(0, 4), torch.randn(9, 4, 5), basis, index)
    assert out.shape == (0, 5)
    # coordinates outside [0, 1] still give valid indices (taken modulo the kernel size)
    basis, index = ops.spline_basis(torch.tensor([[-3.7], [2.5], [1e20]]), [4], [False], 3)
    assert int(index.min()) >= 0 and int(index.max()) < 4
    assert torch.isfinite(basis[:2]).all()


def test_float32_int32_and_non_contiguous():
    g = torch.Generator().manual_seed(4)
    pseudo = torch.rand(2, 8, generator=g).t()  # [8, 2], non-contiguous
    basis, index = ops.spline_basis(pseudo, torch.tensor([3, 4]), torch.tensor([True, False]), 1)
    b64, i64 = ops.spline_basis(pseudo.double().contiguous(), [3, 4], [True, False], 1)
    assert torch.equal(index, i64)
    torch.testing.assert_close(basis, b64.float())
    x = torch.randn(5, 8, generator=g).t()  # [8, 5]
    weight = torch.randn(12, 5, 3, generator=g)
    out = ops.spline_weighting(x, weight, basis, index.int())
    torch.testing.assert_close(out, ops.spline_weighting(x.contiguous(), weight, basis, index))


def test_validation_names_the_argument():
    with pytest.raises(TypeError, match="pseudo"):
        ops.spline_basis(torch.tensor([[1, 2]]), [3, 3], True)
    with pytest.raises(ValueError, match="degree"):
        ops.spline_basis(torch.rand(3, 1), [5], True, 4)
    with pytest.raises(ValueError, match="kernel_size"):
        ops.spline_basis(torch.rand(3, 2), [5, 5, 5], True)
    with pytest.raises(ValueError, match="kernel_size"):
        ops.spline_basis(torch.rand(3, 1), [2], True, 2)  # an open spline needs kernel_size > degree
    with pytest.raises(ValueError, match="pseudo"):
        ops.spline_basis(torch.tensor([[float("nan")]]), [3], True)
    with pytest.raises(TypeError, match="is_open_spline"):
        ops.spline_basis(torch.rand(3, 1), [3], torch.tensor([0.5]))
    basis, index = ops.spline_basis(torch.rand(4, 1), [3], True)
    with pytest.raises(ValueError, match="weight"):
        ops.spline_weighting(torch.randn(4, 2), torch.randn(3, 5, 2), basis, index)
    with pytest.raises(TypeError, match="weight"):
        ops.spline_weighting(torch.randn(4, 2), torch.randn(3, 2, 2, dtype=torch.float64), basis, index)
    with pytest.raises(ValueError, match="basis"):
        ops.spline_weighting(torch.randn(5, 2), torch.randn(3, 2, 2), basis, index)
    with pytest.raises(IndexError, match="weight_index"):
        ops.spline_weighting(torch.randn(4, 2), torch.randn(2, 2, 2), basis, index + 1)
    with pytest.raises(TypeError, match="weight_index"):
        ops.spline_weighting(torch.randn(4, 2), torch.randn(3, 2, 2), basis, index.float())
