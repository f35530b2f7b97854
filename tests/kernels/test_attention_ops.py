"""The fused ``dot_attention`` / ``gatv2_attention`` kernels against per-row loop references.

gnn-kernels alone (torch only): the raw ``torch.ops.gnn_kernels`` ops, their autograd (gradcheck in
float64 for every input, alpha's gradient included), their fake implementations (``opcheck``) and
their input checks.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import gnn.kernels

pytestmark = pytest.mark.skipif(
    not gnn.kernels.load(), reason=f"kernels not built: {gnn.kernels.load_error()}"
)
K = torch.ops.gnn_kernels if gnn.kernels.load() else None
M, N, E, H, C = 7, 6, 30, 2, 3


def pattern(m: int = M, n: int = N, e: int = E, seed: int = 0):
    """A CSR (rows < m // 2 + 1 only, so the other rows are empty) and its transpose."""
    g = torch.Generator().manual_seed(seed)
    rows = torch.randint(0, m // 2 + 1, (e,), generator=g).sort().values
    cols = torch.randint(0, n, (e,), generator=g)
    rowptr = torch.zeros(m + 1, dtype=torch.long)
    rowptr[1:] = torch.bincount(rows, minlength=m).cumsum(0)
    t_perm = torch.argsort(cols, stable=True)
    t_rowptr = torch.zeros(n + 1, dtype=torch.long)
    t_rowptr[1:] = torch.bincount(cols, minlength=n).cumsum(0)
    return rowptr, cols, rows, (t_rowptr, rows[t_perm].contiguous(), t_perm)


def loop_softmax_aggregate(rows, m, score_fn, message_fn, like):
    """Per-row loop: softmax of score_fn(k) [H] over the row's entries, sum of alpha * message_fn(k)."""
    out = torch.zeros(m, H, C, dtype=like.dtype)
    alpha = torch.zeros(rows.numel(), H, dtype=like.dtype)
    for i in range(m):
        entries = (rows == i).nonzero().flatten().tolist()
        if not entries:
            continue
        scores = torch.stack([score_fn(k) for k in entries])  # [deg, H]
        weights = torch.softmax(scores, dim=0)
        for w, k in zip(weights, entries):
            alpha[k] = w
            out[i] += w.unsqueeze(-1) * message_fn(k)
    return out, alpha


def loop_dot(rows, cols, q, k, v, edge, scale):
    def msg_edge(e):
        return 0 if edge is None else edge[e]

    def score(e):
        return scale * (q[rows[e]] * (k[cols[e]] + msg_edge(e))).sum(-1)

    return loop_softmax_aggregate(rows, q.size(0), score, lambda e: v[cols[e]] + msg_edge(e), q)


def loop_gatv2(rows, cols, xs, xd, att, edge, slope):
    def score(e):
        z = xs[cols[e]] + xd[rows[e]] + (0 if edge is None else edge[e])
        return (att * F.leaky_relu(z, slope)).sum(-1)

    return loop_softmax_aggregate(rows, xd.size(0), score, lambda e: xs[cols[e]], xd)


def dot_inputs(dtype, with_edge, seed=1):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(M, H, C, generator=g, dtype=dtype)
    k = torch.randn(N, H, C, generator=g, dtype=dtype)
    v = torch.randn(N, H, C, generator=g, dtype=dtype)
    edge = torch.randn(E, H, C, generator=g, dtype=dtype) if with_edge else None
    return q, k, v, edge


def gatv2_inputs(dtype, with_edge, seed=2):
    g = torch.Generator().manual_seed(seed)
    xs = torch.randn(N, H, C, generator=g, dtype=dtype)
    xd = torch.randn(M, H, C, generator=g, dtype=dtype)
    att = torch.randn(H, C, generator=g, dtype=dtype)
    edge = torch.randn(E, H, C, generator=g, dtype=dtype) if with_edge else None
    return xs, xd, att, edge


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("with_edge", [False, True])
def test_dot_attention_matches_loop(dtype, with_edge):
    rowptr, col, rows, _ = pattern()
    q, k, v, edge = dot_inputs(dtype, with_edge)
    out, alpha = K.dot_attention_forward(rowptr, col, q, k, v, edge, 0.7, None, None, None)
    ref_out, ref_alpha = loop_dot(rows, col, q, k, v, edge, 0.7)
    torch.testing.assert_close(out, ref_out)
    torch.testing.assert_close(alpha, ref_alpha)
    assert out[M // 2 + 1 :].abs().sum() == 0  # empty rows


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("with_edge", [False, True])
def test_gatv2_attention_matches_loop(dtype, with_edge):
    rowptr, col, rows, _ = pattern()
    xs, xd, att, edge = gatv2_inputs(dtype, with_edge)
    out, alpha = K.gatv2_attention_forward(rowptr, col, xs, xd, att, edge, 0.2, None, None, None)
    ref_out, ref_alpha = loop_gatv2(rows, col, xs, xd, att, edge, 0.2)
    torch.testing.assert_close(out, ref_out)
    torch.testing.assert_close(alpha, ref_alpha)
    assert out[M // 2 + 1 :].abs().sum() == 0


def test_large_scores_stay_finite():
    """The running-max softmax must not overflow where exp(score) would."""
    rowptr, col, rows, _ = pattern()
    q, k, v, _ = dot_inputs(torch.float32, False)
    out, alpha = K.dot_attention_forward(rowptr, col, q * 300, k, v, None, 1.0, None, None, None)
    ref_out, ref_alpha = loop_dot(rows, col, q * 300, k, v, None, 1.0)
    assert torch.isfinite(out).all() and torch.isfinite(alpha).all()
    torch.testing.assert_close(out, ref_out)
    torch.testing.assert_close(alpha, ref_alpha)


@pytest.mark.parametrize("op", ["dot", "gatv2"])
@pytest.mark.parametrize("with_edge", [False, True])
def test_gradcheck_every_input(op, with_edge):
    rowptr, col, rows, t = pattern(seed=3)
    if op == "dot":
        inputs, scalar, fn = dot_inputs(torch.float64, with_edge), 0.6, K.dot_attention_forward
    else:
        inputs, scalar, fn = gatv2_inputs(torch.float64, with_edge), 0.2, K.gatv2_attention_forward
    inputs = [x.requires_grad_() if x is not None else None for x in inputs]
    weight = torch.randn(E, H, dtype=torch.float64)  # a loss that reaches alpha directly too

    def run(a, b, c, edge=None):
        out, alpha = fn(rowptr, col, a, b, c, edge, scalar, *t)
        return out, alpha * weight

    torch.autograd.gradcheck(run, tuple(x for x in inputs if x is not None))


@pytest.mark.parametrize("op", ["dot", "gatv2"])
def test_backward_matches_loop_autograd(op):
    """Kernel gradients equal autograd through the loop reference (float32, with edge features)."""
    rowptr, col, rows, t = pattern(m=20, n=15, e=120, seed=4)
    global M, N, E
    sizes = (M, N, E)
    M, N, E = 20, 15, 120
    try:
        if op == "dot":
            inputs, loop, fn = dot_inputs(torch.float32, True), loop_dot, K.dot_attention_forward
            scalar = 0.5
        else:
            inputs, loop, fn = gatv2_inputs(torch.float32, True), loop_gatv2, K.gatv2_attention_forward
            scalar = 0.2
    finally:
        M, N, E = sizes
    inputs = [x.requires_grad_() for x in inputs]
    out, alpha = fn(rowptr, col, *inputs, scalar, *t)
    ref_out, ref_alpha = loop(rows, col, *inputs, scalar)
    g_out, g_alpha = torch.randn_like(out), torch.randn_like(alpha)
    got = torch.autograd.grad((out * g_out).sum() + (alpha * g_alpha).sum(), inputs)
    want = torch.autograd.grad((ref_out * g_out).sum() + (ref_alpha * g_alpha).sum(), inputs)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("op", ["dot", "gatv2"])
def test_opcheck_fake_and_autograd_registration(op):
    rowptr, col, _, t = pattern(seed=5)
    if op == "dot":
        inputs, scalar, fn = dot_inputs(torch.float64, True), 0.6, K.dot_attention_forward
    else:
        inputs, scalar, fn = gatv2_inputs(torch.float64, True), 0.2, K.gatv2_attention_forward
    inputs = [x.requires_grad_() for x in inputs]
    torch.library.opcheck(fn, (rowptr, col, *inputs, scalar, *t))


def test_bad_inputs_raise_instead_of_crashing():
    rowptr, col, _, t = pattern()
    q, k, v, edge = dot_inputs(torch.float32, True)
    xs, xd, att, _ = gatv2_inputs(torch.float32, False)
    bad_col = col.clone()
    bad_col[3] = N  # out of range
    with pytest.raises(RuntimeError, match="'col' holds an index out of range"):
        K.dot_attention_forward(rowptr, bad_col, q, k, v, None, 1.0, None, None, None)
    with pytest.raises(RuntimeError, match="'col' holds an index out of range"):
        K.gatv2_attention_forward(rowptr, bad_col, xs, xd, att, None, 0.2, None, None, None)
    with pytest.raises(RuntimeError, match="'value' must be"):
        K.dot_attention_forward(rowptr, col, q, k, v[:-1], None, 1.0, None, None, None)
    with pytest.raises(RuntimeError, match="'edge' must be"):
        K.dot_attention_forward(rowptr, col, q, k, v, edge[:-1], 1.0, None, None, None)
    with pytest.raises(RuntimeError, match="'query' must be"):
        K.dot_attention_forward(rowptr, col, q[:-1], k, v, None, 1.0, None, None, None)
    with pytest.raises(RuntimeError, match="'x_dst' must be"):
        K.gatv2_attention_forward(rowptr, col, xs, xd[:, :1], att, None, 0.2, None, None, None)
    with pytest.raises(RuntimeError, match="'att' must be"):
        K.gatv2_attention_forward(rowptr, col, xs, xd, att[:1], None, 0.2, None, None, None)
    with pytest.raises(RuntimeError, match="dtype must match"):
        K.gatv2_attention_forward(rowptr, col, xs, xd, att.double(), None, 0.2, None, None, None)
    bad_ptr = rowptr.clone()
    bad_ptr[-1] = E + 5  # would read past col
    with pytest.raises(RuntimeError, match="'rowptr' must start at 0"):
        K.dot_attention_forward(bad_ptr, col, q, k, v, None, 1.0, None, None, None)
    # backward: a transposed pattern pointing out of range is refused before any memory is read
    out, alpha = K.dot_attention_forward(rowptr, col, q, k, v, None, 1.0, None, None, None)
    t_rowptr, t_col, t_perm = t
    bad_perm = t_perm.clone()
    bad_perm[0] = E
    with pytest.raises(RuntimeError, match="'t_perm' holds an index out of range"):
        K.dot_attention_backward(
            rowptr, col, q, k, v, None, 1.0, out, alpha, out, None, t_rowptr, t_col, bad_perm
        )
    with pytest.raises(RuntimeError, match="needs the transposed pattern"):
        K.gatv2_attention_backward(
            rowptr, col, xs, xd, att, None, 0.2, out, alpha, out, None, None, None, None
        )
