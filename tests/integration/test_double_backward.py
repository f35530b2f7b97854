"""Second derivatives (``create_graph=True``, as force training takes them) through gnn-kernels'
ops: right where the kernels' backward is linear (sum and mean reductions, spmm), a clear error
where a backward kernel has no derivative of its own, never a silently wrong number.

Sizes are above the kernels' break-even work (``backend._min_work``) so that the native
backend really runs.
"""

from __future__ import annotations

import os

import pytest
import torch

from gnn.aggr import MaxAggregation, MeanAggregation, SumAggregation
from gnn.core import ops

pytestmark = pytest.mark.skipif(
    "native" not in ops.available() or os.environ.get("GNN_KERNELS", "").strip().lower() == "torch",
    reason="needs gnn-kernels (and not GNN_KERNELS=torch)",
)

E, F, N = 20_000, 32, 2_000  # E * F above the 2^19 elements where sum/mean use the kernel


def _second_derivative(aggr: torch.nn.Module, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    index = torch.sort(torch.randint(0, N, (E,), generator=g))[0]
    x = torch.randn(E, F, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.randn(F, generator=g, dtype=torch.float64, requires_grad=True)
    y = aggr((x * w) ** 2, index, dim_size=N, dim=0)
    (dx,) = torch.autograd.grad(y.pow(3).sum(), x, create_graph=True)
    (dw,) = torch.autograd.grad(dx.pow(2).sum(), w)
    return dw


@pytest.mark.parametrize("aggr", [SumAggregation, MeanAggregation])
def test_sum_and_mean_second_derivative_equals_pure_torch(aggr):
    native = _second_derivative(aggr())
    with ops.backend("torch"):
        reference = _second_derivative(aggr())
    torch.testing.assert_close(native, reference, rtol=1e-9, atol=1e-6)


def test_max_second_derivative_raises_clearly():
    with pytest.raises(RuntimeError, match="no second derivative.*backend\\('torch'\\)"):
        _second_derivative(MaxAggregation())
    with ops.backend("torch"):  # the way out the message names
        assert torch.isfinite(_second_derivative(MaxAggregation())).all()


def test_first_derivatives_unaffected_by_the_guard():
    """Without create_graph the guard adds nothing: the kernel's gradient is returned as is."""
    g = torch.Generator().manual_seed(1)
    index = torch.sort(torch.randint(0, N, (E,), generator=g))[0]
    x = torch.randn(E, F, generator=g, dtype=torch.float64, requires_grad=True)
    MaxAggregation()(x, index, dim_size=N, dim=0).sum().backward()
    native = x.grad
    x.grad = None
    with ops.backend("torch"):
        MaxAggregation()(x, index, dim_size=N, dim=0).sum().backward()
    torch.testing.assert_close(native, x.grad)
    assert native.grad_fn is None
