"""gnn.core.ops.gather_matmul (``out[e] = inputs[index[e]] @ other[types[e]]``) against a per-row
loop written here: both routes of the pure-torch reference (the per-type table and the grouped
matmul), the default backend, gradients (gradcheck in float64) and bad inputs."""

from __future__ import annotations

import pytest
import torch

from gnn.core import ops, testing
from gnn.core import validation as v
from gnn.core.ops import reference_relational as ref


def loop(inputs, types, other, index=None):
    rows = []
    for e in range(types.numel()):
        row = inputs[int(index[e]) if index is not None else e]
        rows.append((row.unsqueeze(-1) * other[int(types[e])]).sum(0))
    return torch.stack(rows) if rows else inputs.new_zeros(0, other.size(-1))


def data(n=6, e=15, t=4, f_in=3, f_out=5, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    inputs = torch.randn(n, f_in, generator=g, dtype=dtype)
    other = torch.randn(t, f_in, f_out, generator=g, dtype=dtype)
    types = torch.randint(0, t - 1, (e,), generator=g)  # the last type has no rows
    index = torch.randint(0, n, (e,), generator=g)
    return inputs, types, other, index


@pytest.mark.parametrize("backend", ["torch", None])
@pytest.mark.parametrize("shape", [(6, 15), (6, 30), (40, 15)])  # N * T vs E: grouped, table, grouped
def test_matches_loop(backend, shape):
    inputs, types, other, index = data(*shape)
    assert ref.use_table(shape[0], 4, shape[1], True) == (shape == (6, 30))
    with ops.backend(backend) if backend else torch.enable_grad():
        testing.assert_close(
            ops.gather_matmul(inputs, types, other, index), loop(inputs, types, other, index)
        )


@pytest.mark.parametrize("backend", ["torch", None])
def test_without_index_and_int32(backend):
    inputs, types, other, index = data(n=15, e=15)
    with ops.backend(backend) if backend else torch.enable_grad():
        testing.assert_close(ops.gather_matmul(inputs, types, other), loop(inputs, types, other))
        testing.assert_close(
            ops.gather_matmul(inputs, types.int(), other, index.int()), loop(inputs, types, other, index)
        )


@pytest.mark.parametrize("backend", ["torch", None])
def test_empty_and_non_contiguous(backend):
    inputs, types, other, index = data()
    with ops.backend(backend) if backend else torch.enable_grad():
        empty = ops.gather_matmul(inputs, types[:0], other, index[:0])
        assert empty.shape == (0, 5)
        t_inputs = inputs.t().contiguous().t()  # column-major rows
        t_other = other.transpose(1, 2).contiguous().transpose(1, 2)
        testing.assert_close(
            ops.gather_matmul(t_inputs, types, t_other, index), loop(inputs, types, other, index)
        )
        x0 = inputs.new_zeros(0, 3)
        assert ops.gather_matmul(x0, types[:0], other).shape == (0, 5)


@pytest.mark.parametrize("shape", [(6, 15), (6, 30)])
def test_gradcheck_reference_float64(shape):
    inputs, types, other, index = data(*shape)
    inputs.requires_grad_()
    other.requires_grad_()
    with ops.backend("torch"):
        torch.autograd.gradcheck(lambda a, b: ops.gather_matmul(a, types, b, index), (inputs, other))
        torch.autograd.gradcheck(lambda a, b: ops.gather_matmul(a, types[:6], b), (inputs, other))


def test_gradients_match_the_loop():
    inputs, types, other, index = data(6, 30)
    for backend in ("torch", None):
        a, b = inputs.clone().requires_grad_(), other.clone().requires_grad_()
        with ops.backend(backend) if backend else torch.enable_grad():
            (ops.gather_matmul(a, types, b, index) ** 2).sum().backward()
        a2, b2 = inputs.clone().requires_grad_(), other.clone().requires_grad_()
        (loop(a2, types, b2, index) ** 2).sum().backward()
        testing.assert_close(a.grad, a2.grad)
        testing.assert_close(b.grad, b2.grad)


def test_reference_under_compile_has_no_graph_break():
    inputs, types, other, index = data(6, 15)

    def f(a, b):
        with ops.backend("torch"):
            return ops.gather_matmul(a, types, b, index)

    torch._dynamo.reset()
    explanation = torch._dynamo.explain(f)(inputs, other)
    assert explanation.graph_break_count == 0, [r.reason for r in explanation.break_reasons]
    compiled = torch.compile(f, fullgraph=True, backend="aot_eager")
    testing.assert_close(compiled(inputs, other), loop(inputs, types, other, index))


def test_bad_inputs_raise():
    inputs, types, other, index = data()
    with pytest.raises(TypeError, match="'inputs'"):
        ops.gather_matmul(inputs.numpy(), types, other, index)
    with pytest.raises(ValueError, match="'inputs'"):
        ops.gather_matmul(inputs[0], types, other, index)
    with pytest.raises(ValueError, match="'inputs'"):
        ops.gather_matmul(inputs.long(), types, other.long(), index)
    with pytest.raises(TypeError, match="'other'"):
        ops.gather_matmul(inputs, types, other.float(), index)
    with pytest.raises(ValueError, match="'other'"):
        ops.gather_matmul(inputs, types, other[:, :2], index)
    with pytest.raises(TypeError, match="'types'"):
        ops.gather_matmul(inputs, types.double(), other, index)
    with pytest.raises(ValueError, match="'types'"):
        ops.gather_matmul(inputs, types.view(3, 5), other, index.view(3, 5))
    with pytest.raises(ValueError, match="'types'"):
        ops.gather_matmul(inputs, types, other)  # 15 types for 6 rows, no index
    with pytest.raises(ValueError, match="'index'"):
        ops.gather_matmul(inputs, types, other, index[:-1])
    with pytest.raises(v.IndexRangeError, match="'index'"):
        ops.gather_matmul(inputs, types, other, index + 6)
    with pytest.raises(v.IndexRangeError, match="'types'"):
        ops.gather_matmul(inputs, types + 4, other, index)
    with pytest.raises(IndexError, match="'types'"):
        ops.gather_matmul(inputs, types - 1, other, index)
