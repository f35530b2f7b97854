"""The raw ``gnn_kernels::multi_reduce`` op (gnn-kernels alone: torch only) against a per-group
loop: values, gradients in both modes, gradcheck, opcheck, torch.compile and bad input."""

from __future__ import annotations

import pytest
import torch

import gnn.kernels

pytestmark = pytest.mark.skipif(
    not gnn.kernels.load(), reason=f"kernels not built: {gnn.kernels.load_error()}"
)
K = torch.ops.gnn_kernels if gnn.kernels.load() else None
CODES = {"sum": 0, "mean": 1, "max": 2, "min": 3, "var": 4, "std": 5, "softmax": 6}
SEMI = 8


def loop(x, rows, groups, name, t=None):
    """One reduction of x [E, F] per group (rows[e]: the group of row e), as PyG computes it."""
    out = torch.zeros(groups, x.shape[1], dtype=x.dtype)
    for g in range(groups):
        v = x[rows == g]
        if len(v) == 0:
            continue
        mean, mean_sq = v.mean(0), (v * v).mean(0)
        var = mean_sq - mean * mean
        std = var.clamp(min=1e-5).sqrt()
        e = (v * t - (v * t).max(0).values.detach()).exp() if t is not None else None
        out[g] = {
            "sum": lambda: v.sum(0),
            "mean": lambda: mean,
            "max": lambda: v.max(0).values,
            "min": lambda: v.min(0).values,
            "var": lambda: var,
            "std": lambda: std.masked_fill(std <= 1e-5**0.5, 0.0),
            "softmax": lambda: (e * v).sum(0) / (e.sum(0) + 1e-16),
        }[name]()
    return out


def groups(e=60, g=12, f=4, seed=0, dtype=torch.float64):
    """x [e, f], a random grouping into g groups (the last two empty) as rowptr + permutation."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(e, f, generator=gen, dtype=dtype)
    rows = torch.randint(0, g - 2, (e,), generator=gen)
    perm = torch.argsort(rows, stable=True)
    rowptr = torch.zeros(g + 1, dtype=torch.long)
    rowptr[1:] = torch.bincount(rows, minlength=g).cumsum(0)
    return x, rows, perm, rowptr


NAMES = list(CODES)


def test_elements_mode_sorted_and_permuted():
    x, rows, perm, rowptr = groups()
    temps = torch.full((1, 4), 0.6, dtype=torch.float64)
    codes = [CODES[n] for n in NAMES]
    out, aux = K.multi_reduce(rowptr, perm, x, codes, temps, None, None)
    out_sorted, _ = K.multi_reduce(rowptr, None, x[perm].contiguous(), codes, temps, None, None)
    torch.testing.assert_close(out, out_sorted)
    for r, name in enumerate(NAMES):
        torch.testing.assert_close(out[:, r], loop(x, rows, 12, name, t=0.6))
    assert aux.shape == (12, 2, 4)


def test_gradients_both_modes_match_loop():
    x, rows, perm, rowptr = groups(seed=1)
    t = torch.tensor([[0.5, 1.0, -0.5, 2.0]], dtype=torch.float64, requires_grad=True)
    codes = [CODES[n] for n in NAMES] + [CODES["std"] + SEMI]
    w = torch.randn(12, len(codes), 4, dtype=torch.float64)
    xs = x.clone().requires_grad_()
    out, _ = K.multi_reduce(rowptr, perm, xs, codes, t, None, None, True)
    got = torch.autograd.grad((out * w).sum(), [xs, t])

    def reference(xr, tr):
        outs = [loop(xr, rows, 12, n, t=tr[0]) for n in NAMES]
        v = xr.detach()  # semi_grad std: the mean of squares without gradient
        mean_sq = torch.stack(
            [(v[rows == g] ** 2).mean(0) if (rows == g).any() else v.new_zeros(4) for g in range(12)]
        )
        mean = torch.stack(
            [xr[rows == g].mean(0) if (rows == g).any() else xr.new_zeros(4) for g in range(12)]
        )
        std = (mean_sq - mean * mean).clamp(min=1e-5).sqrt()
        outs.append(std.masked_fill(std <= 1e-5**0.5, 0.0))
        return torch.stack(outs, 1)

    xr = x.clone().requires_grad_()
    tr = t.detach().clone().requires_grad_()
    want = torch.autograd.grad((reference(xr, tr) * w).sum(), [xr, tr])
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b)
    # gather mode: col with repeats and the transposed pattern
    col = torch.randint(0, 20, (60,), generator=torch.Generator().manual_seed(2))
    xn = torch.randn(20, 4, dtype=torch.float64, requires_grad=True)
    t_perm = torch.argsort(col, stable=True)
    t_rowptr = torch.zeros(21, dtype=torch.long)
    t_rowptr[1:] = torch.bincount(col, minlength=20).cumsum(0)
    sorted_rows = rows[perm]  # the group of each CSR entry
    t_col = sorted_rows[t_perm].contiguous()
    out, _ = K.multi_reduce(rowptr, col, xn, codes[:-1], t, t_rowptr, t_col, True)
    got = torch.autograd.grad((out * w[:, :-1]).sum(), [xn, t])
    xr = xn.detach().clone().requires_grad_()
    tr = t.detach().clone().requires_grad_()
    ref = torch.stack([loop(xr[col], sorted_rows, 12, n, t=tr[0]) for n in NAMES], 1)
    want = torch.autograd.grad((ref * w[:, :-1]).sum(), [xr, tr])
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b)


def test_gradcheck_and_opcheck():
    x, rows, perm, rowptr = groups(e=16, g=6, f=2, seed=3)
    x = (x + torch.linspace(0, 1, 32, dtype=torch.float64).view(16, 2)).requires_grad_()  # no ties
    t = torch.tensor([[0.5, -1.0]], dtype=torch.float64, requires_grad=True)
    codes = [CODES[n] for n in NAMES]

    def fn(x, t):
        return K.multi_reduce(rowptr, perm, x, codes, t, None, None, True)[0]

    assert torch.autograd.gradcheck(fn, (x, t))
    torch.library.opcheck(K.multi_reduce.default, (rowptr, perm, x, codes, t, None, None, True))


def test_torch_compile_without_graph_breaks():
    x, rows, perm, rowptr = groups(e=200, g=30, f=8, dtype=torch.float32)
    x = x.requires_grad_()
    codes = [CODES["mean"], CODES["max"], CODES["std"]]

    def fn(x):
        return K.multi_reduce(rowptr, perm, x, codes, None, None, None, True)[0].square().sum()

    compiled = torch.compile(fn, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(x), fn(x))
    torch.testing.assert_close(torch.autograd.grad(compiled(x), x)[0], torch.autograd.grad(fn(x), x)[0])


def test_empty_and_single_groups():
    x = torch.randn(1, 3)
    rowptr = torch.tensor([0, 0, 1, 1])
    out, _ = K.multi_reduce(rowptr, None, x, [CODES[n] for n in NAMES], torch.ones(1, 3), None, None)
    assert not out[0].any() and not out[2].any()
    torch.testing.assert_close(out[1, :4], x.expand(4, 3))  # sum, mean, max, min of one element
    assert not out[1, 4:6].any()  # its var and std are 0
    torch.testing.assert_close(out[1, 6], x[0])
    out, _ = K.multi_reduce(
        torch.zeros(1, dtype=torch.long), None, torch.zeros(0, 3), [0, 2], None, None, None
    )
    assert out.shape == (0, 2, 3)


def test_bad_input_raises():
    x, rows, perm, rowptr = groups()
    with pytest.raises(RuntimeError, match="codes"):
        K.multi_reduce(rowptr, perm, x, [9], None, None, None)
    with pytest.raises(RuntimeError, match="codes"):
        K.multi_reduce(rowptr, perm, x, [CODES["max"] + SEMI], None, None, None)
    with pytest.raises(RuntimeError, match="codes"):
        K.multi_reduce(rowptr, perm, x, [], None, None, None)
    with pytest.raises(RuntimeError, match="temps"):
        K.multi_reduce(rowptr, perm, x, [CODES["softmax"]], None, None, None)
    with pytest.raises(RuntimeError, match="temps"):
        K.multi_reduce(rowptr, perm, x, [CODES["softmax"]], torch.ones(1, 3, dtype=x.dtype), None, None)
    with pytest.raises(RuntimeError, match="rowptr"):
        K.multi_reduce(rowptr[:5], perm, x, [0], None, None, None)
    bad = rowptr.clone()
    bad[3], bad[4] = bad[4], bad[3] - 1
    with pytest.raises(RuntimeError, match="rowptr"):
        K.multi_reduce(bad, None, x, [0], None, None, None)
    with pytest.raises(RuntimeError, match="col"):
        K.multi_reduce(rowptr, perm + 1, x, [0], None, None, None)
    with pytest.raises(RuntimeError, match="float32/float64"):
        K.multi_reduce(rowptr, perm, x.long(), [0], None, None, None)
    # elements mode: a repeated row cannot be written once per element
    out, aux = K.multi_reduce(rowptr, perm, x, [0], None, None, None)
    repeated = perm.clone()
    repeated[1] = repeated[0]
    with pytest.raises(RuntimeError, match="permutation"):
        K.multi_reduce_backward(rowptr, repeated, x, [0], None, out, aux, out, None, None, True, False)
    with pytest.raises(RuntimeError, match="t_col"):
        t_rowptr = torch.arange(61)
        K.multi_reduce_backward(rowptr, perm, x, [0], None, out, aux, out, t_rowptr, rows + 12, True, False)
    with pytest.raises(RuntimeError, match="grad_out"):
        K.multi_reduce_backward(rowptr, perm, x, [0], None, out, aux, out[:-1], None, None, True, False)
