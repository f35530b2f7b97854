"""gnn.core.ops.spline_basis / spline_weighting on gnn-kernels' native backend against the pure-torch
reference: values, every gradient (pseudo-coordinates included), gradcheck through the ops layer,
SplineConv on both backends and under torch.compile."""

from __future__ import annotations

import pytest
import torch

from gnn.core import ops
from gnn.core.ops import backends

pytest.importorskip("gnn.kernels")
pytestmark = pytest.mark.skipif("native" not in backends.available(), reason="gnn-kernels not usable")

import gnn.kernels.backend as native_backend  # noqa: E402


@pytest.fixture(autouse=True)
def any_size(monkeypatch):
    """The native backend takes calls of every size (it declines small ones by default)."""
    monkeypatch.setattr(native_backend, "_MIN_WORK_DEFAULT", 0)


def run(backend, pseudo, x, weight, kernel_size, is_open, degree):
    with ops.backend(backend):
        basis, index = ops.spline_basis(pseudo, kernel_size, is_open, degree)
        out = ops.spline_weighting(x, weight, basis, index)
    return basis, index, out


@pytest.mark.parametrize("degree", [1, 2, 3])
@pytest.mark.parametrize("dims", [1, 2, 3])
def test_native_matches_reference_with_gradients(degree, dims):
    g = torch.Generator().manual_seed(degree * 7 + dims)
    kernel_size, is_open = [5, 3, 4][:dims], [True, False, True][:dims]
    num = 1
    for k in kernel_size:
        num *= k
    leaves = [
        torch.rand(30, dims, generator=g, dtype=torch.float64),
        torch.randn(30, 6, generator=g, dtype=torch.float64),
        torch.randn(num, 6, 4, generator=g, dtype=torch.float64),
    ]
    results = {}
    for backend in ("native", "torch"):
        pseudo, x, weight = (t.clone().requires_grad_() for t in leaves)
        basis, index, out = run(backend, pseudo, x, weight, kernel_size, is_open, degree)
        grads = torch.autograd.grad((out * torch.arange(4.0, dtype=out.dtype)).sum(), (pseudo, x, weight))
        results[backend] = (basis, index, out, grads)
    (b1, i1, o1, g1), (b2, i2, o2, g2) = results["native"], results["torch"]
    assert torch.equal(i1, i2)
    torch.testing.assert_close(b1, b2)
    torch.testing.assert_close(o1, o2)
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b)


def test_gradcheck_through_the_ops_layer():
    g = torch.Generator().manual_seed(0)
    pseudo = (0.05 + 0.9 * torch.rand(8, 2, generator=g, dtype=torch.float64)).requires_grad_()
    x = torch.randn(8, 3, generator=g, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(12, 3, 2, generator=g, dtype=torch.float64, requires_grad=True)

    def fn(p, a, w):
        with ops.backend("native"):
            basis, index = ops.spline_basis(p, [3, 4], [True, False], 2)
            return ops.spline_weighting(a, w, basis, index)

    torch.autograd.gradcheck(fn, (pseudo, x, weight))


def test_spline_conv_on_both_backends_and_compiled():
    from gnn.conv import SplineConv

    torch.manual_seed(0)
    conv = SplineConv(6, 5, dim=2, kernel_size=[3, 4], is_open_spline=[True, False], degree=2).double()
    x = torch.randn(20, 6, dtype=torch.float64)
    ei = torch.randint(0, 20, (2, 70))
    pseudo = torch.rand(70, 2, dtype=torch.float64)
    with ops.backend("native"):
        native = conv(x, ei, pseudo)
    with ops.backend("torch"):
        reference = conv(x, ei, pseudo)
    torch.testing.assert_close(native, reference)
    compiled = torch.compile(conv, backend="aot_eager", fullgraph=True, dynamic=True)
    with ops.backend("native"):
        torch.testing.assert_close(compiled(x, ei, pseudo), native)
