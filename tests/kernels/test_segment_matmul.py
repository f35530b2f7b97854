"""The ``gnn_kernels::segment_matmul`` op (grouped matmul by type) against a per-type loop."""

from __future__ import annotations

import pytest
import torch

import gnn.kernels

pytestmark = pytest.mark.skipif(
    not gnn.kernels.load(), reason=f"kernels not built: {gnn.kernels.load_error()}"
)
K = torch.ops.gnn_kernels if gnn.kernels.load() else None


def loop_segment_matmul(inputs, ptr, other):
    out = torch.zeros(inputs.size(0), other.size(-1), dtype=inputs.dtype)
    for t in range(ptr.numel() - 1):
        for row in range(int(ptr[t]), int(ptr[t + 1])):
            out[row] = (inputs[row].unsqueeze(-1) * other[t]).sum(0)
    return out


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_matches_loop_with_empty_types(dtype):
    g = torch.Generator().manual_seed(0)
    inputs = torch.randn(11, 5, generator=g, dtype=dtype)
    other = torch.randn(4, 5, 3, generator=g, dtype=dtype)
    ptr = torch.tensor([0, 0, 6, 6, 11])  # types 0 and 2 have no rows
    out = K.segment_matmul(inputs, ptr, other)
    torch.testing.assert_close(out, loop_segment_matmul(inputs, ptr, other))


def test_non_contiguous_inputs_and_weights():
    g = torch.Generator().manual_seed(1)
    inputs = torch.randn(5, 9, generator=g).t()  # [9, 5], column-major
    other = torch.randn(2, 3, 5, generator=g).transpose(1, 2)  # [2, 5, 3], strided
    ptr = torch.tensor([0, 4, 9])
    torch.testing.assert_close(K.segment_matmul(inputs, ptr, other), loop_segment_matmul(inputs, ptr, other))


def test_gradcheck_float64():
    g = torch.Generator().manual_seed(2)
    inputs = torch.randn(7, 3, generator=g, dtype=torch.float64, requires_grad=True)
    other = torch.randn(3, 3, 2, generator=g, dtype=torch.float64, requires_grad=True)
    ptr = torch.tensor([0, 2, 2, 7])
    torch.autograd.gradcheck(lambda a, b: K.segment_matmul(a, ptr, b), (inputs, other))
    # only one side needs a gradient: the other comes back empty and is not returned
    frozen = other.detach()
    torch.autograd.gradcheck(lambda a: K.segment_matmul(a, ptr, frozen), (inputs,))


def test_bad_offsets_and_shapes_raise():
    inputs, other = torch.randn(6, 3), torch.randn(2, 3, 4)
    with pytest.raises(RuntimeError, match="non-decreasing"):
        K.segment_matmul(inputs, torch.tensor([0, 7, 6]), other)
    with pytest.raises(RuntimeError, match="end at 6"):
        K.segment_matmul(inputs, torch.tensor([0, 2, 9]), other)
    with pytest.raises(RuntimeError, match="2 matrices"):
        K.segment_matmul(inputs, torch.tensor([0, 2, 4, 6]), other)
    with pytest.raises(RuntimeError, match="input features"):
        K.segment_matmul(torch.randn(6, 2), torch.tensor([0, 2, 6]), other)
    with pytest.raises(RuntimeError, match="int64"):
        K.segment_matmul(inputs, torch.tensor([0, 2, 6], dtype=torch.int32), other)


def test_under_torch_compile_without_graph_breaks():
    inputs = torch.randn(8, 4, requires_grad=True)
    other = torch.randn(3, 4, 2, requires_grad=True)
    ptr = torch.tensor([0, 3, 3, 8])

    def f(a, b):
        return K.segment_matmul(a, ptr, b).tanh()

    assert torch._dynamo.explain(f)(inputs, other).graph_break_count == 0
    compiled = torch.compile(f, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(inputs, other), f(inputs, other))
    grads = torch.autograd.grad(compiled(inputs, other).sum(), (inputs, other))
    expected = torch.autograd.grad(f(inputs, other).sum(), (inputs, other))
    torch.testing.assert_close(grads, expected)
