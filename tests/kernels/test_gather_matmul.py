"""The ``gnn_kernels::gather_matmul`` op (typed matmul of gathered rows) against a per-row loop:
both routes (the per-type table and the grouped products), gradients (gradcheck in float64),
bound checks that raise, and torch.compile without graph breaks."""

from __future__ import annotations

import pytest
import torch

import gnn.kernels

pytestmark = pytest.mark.skipif(
    not gnn.kernels.load(), reason=f"kernels not built: {gnn.kernels.load_error()}"
)
K = torch.ops.gnn_kernels if gnn.kernels.load() else None


def loop(inputs, types, other, index=None):
    out = torch.zeros(types.numel(), other.size(-1), dtype=inputs.dtype)
    for e in range(types.numel()):
        row = inputs[int(index[e]) if index is not None else e]
        out[e] = (row.unsqueeze(-1) * other[int(types[e])]).sum(0)
    return out


def data(n, e, t=4, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    inputs = torch.randn(n, 3, generator=g, dtype=dtype)
    other = torch.randn(t, 3, 5, generator=g, dtype=dtype)
    types = torch.randint(0, t - 1, (e,), generator=g)  # one type without rows
    index = torch.randint(0, n, (e,), generator=g)
    return inputs, types, other, index


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("n, e", [(5, 13), (5, 30)])  # grouped (N * T > E), table (N * T <= E)
def test_matches_loop(dtype, n, e):
    inputs, types, other, index = data(n, e, dtype=dtype)
    torch.testing.assert_close(
        K.gather_matmul(inputs, types, other, index), loop(inputs, types, other, index)
    )
    torch.testing.assert_close(
        K.gather_matmul(inputs, types[:n], other, None), loop(inputs, types[:n], other)
    )


def test_non_contiguous_and_empty():
    inputs, types, other, index = data(6, 30)
    strided = torch.randn(6, 6, dtype=torch.float64)[:, ::2]
    t_other = other.transpose(1, 2).contiguous().transpose(1, 2)
    for idx in (index, index[:8]):
        torch.testing.assert_close(
            K.gather_matmul(strided, types[: idx.numel()], t_other, idx),
            loop(strided, types[: idx.numel()], other, idx),
        )
    assert K.gather_matmul(inputs, types[:0], other, index[:0]).shape == (0, 5)


@pytest.mark.parametrize("n, e", [(5, 13), (5, 30)])
def test_gradcheck_float64(n, e):
    inputs, types, other, index = data(n, e)
    inputs.requires_grad_()
    other.requires_grad_()
    torch.autograd.gradcheck(lambda a, b: K.gather_matmul(a, types, b, index), (inputs, other))
    torch.autograd.gradcheck(lambda a, b: K.gather_matmul(a, types[:n], b, None), (inputs, other))
    frozen = other.detach()  # one side only: the other comes back empty
    torch.autograd.gradcheck(lambda a: K.gather_matmul(a, types, frozen, index), (inputs,))
    torch.autograd.gradcheck(lambda b: K.gather_matmul(inputs.detach(), types, b, index), (other,))


def test_deterministic_gradients():
    inputs, types, other, index = data(50, 3000, t=3, dtype=torch.float32)
    grad = torch.randn(3000, 5)
    first = K.gather_matmul_backward(inputs, types, other, index, grad, True, True)
    for _ in range(3):
        again = K.gather_matmul_backward(inputs, types, other, index, grad, True, True)
        assert all(torch.equal(a, b) for a, b in zip(first, again))


def test_bad_indices_and_shapes_raise():
    inputs, types, other, index = data(5, 13)
    with pytest.raises(RuntimeError, match="'types' holds an index out of range"):
        K.gather_matmul(inputs, types + 4, other, index)
    with pytest.raises(RuntimeError, match="'index' holds an index out of range"):
        K.gather_matmul(inputs, types, other, index - 1)
    with pytest.raises(RuntimeError, match="'index' has 12 entries"):
        K.gather_matmul(inputs, types, other, index[:-1])
    with pytest.raises(RuntimeError, match="without 'index'"):
        K.gather_matmul(inputs, types, other, None)
    with pytest.raises(RuntimeError, match="input features"):
        K.gather_matmul(inputs[:, :2], types, other, index)
    with pytest.raises(RuntimeError, match="dtype"):
        K.gather_matmul(inputs, types, other.float(), index)
    with pytest.raises(RuntimeError, match="int64"):
        K.gather_matmul(inputs, types.int(), other, index)


def test_under_torch_compile_without_graph_breaks():
    inputs, types, other, index = data(5, 13, dtype=torch.float32)
    inputs.requires_grad_()
    other.requires_grad_()

    def f(a, b):
        return K.gather_matmul(a, types, b, index).tanh()

    assert torch._dynamo.explain(f)(inputs, other).graph_break_count == 0
    compiled = torch.compile(f, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(inputs, other), f(inputs, other))
    grads = torch.autograd.grad(compiled(inputs, other).sum(), (inputs, other))
    expected = torch.autograd.grad(f(inputs, other).sum(), (inputs, other))
    torch.testing.assert_close(grads, expected)
