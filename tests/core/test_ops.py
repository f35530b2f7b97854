"""The pure-torch ops against loop references, plus backend selection."""

from __future__ import annotations

import pytest
import torch

from gnn.core import ops, utils
from gnn.core.ops import backends
from gnn.core.utils import to_csr

LOOP = {
    "sum": lambda t: t.sum(0),
    "mean": lambda t: t.mean(0),
    "max": lambda t: t.max(0).values,
    "min": lambda t: t.min(0).values,
    "mul": lambda t: t.prod(0),
}


def loop_scatter(src, index, n, reduce):
    out = torch.full((n,) + src.shape[1:], 1.0 if reduce == "mul" else 0.0, dtype=src.dtype)
    for g in range(n):
        rows = src[index == g]
        if len(rows):
            out[g] = LOOP[reduce](rows)
    return out


@pytest.mark.parametrize("reduce", list(LOOP))
@pytest.mark.parametrize("index_dtype", [torch.int64, torch.int32])
def test_scatter_and_segment_match_loop(reduce, index_dtype):
    g = torch.Generator().manual_seed(0)
    src = torch.randn(20, 3, dtype=torch.float64, generator=g)
    index = torch.randint(0, 6, (20,), generator=g).sort().values.to(index_dtype)
    expected = loop_scatter(src, index.long(), 8, reduce)  # groups 6, 7 empty
    torch.testing.assert_close(ops.scatter(src, index, 0, 8, reduce), expected)
    ptr = torch.cat([torch.zeros(1, dtype=torch.long), torch.bincount(index.long(), minlength=8).cumsum(0)])
    torch.testing.assert_close(ops.segment(src, ptr, 0, reduce), expected)


def test_scatter_other_dim_and_noncontiguous():
    src = torch.randn(10, 3).t()  # [3, 10], non-contiguous
    assert not src.is_contiguous()
    index = torch.tensor([0, 1, 1, 2, 0, 0, 3, 3, 3, 1])
    out = ops.scatter(src, index, dim=1, dim_size=5, reduce="sum")
    expected = loop_scatter(src.t().contiguous(), index, 5, "sum").t()
    torch.testing.assert_close(out, expected)


@pytest.mark.parametrize("reduce", ["sum", "mean", "max", "min"])
def test_spmm_matches_gather_scatter(reduce):
    g = torch.Generator().manual_seed(1)
    edge_index = torch.randint(0, 7, (2, 30), generator=g)
    x = torch.randn(7, 4, dtype=torch.float64, generator=g)
    w = torch.rand(30, dtype=torch.float64, generator=g)
    csr = to_csr(edge_index, (7, 7), cache=False)
    for weight in (None, w):
        msgs = x[edge_index[0]] * (1 if weight is None else weight.view(-1, 1))
        expected = loop_scatter(msgs, edge_index[1], 7, reduce)
        torch.testing.assert_close(ops.spmm(csr, x, weight, reduce), expected)


def test_spmm_gradcheck_x_and_weight():
    g = torch.Generator().manual_seed(2)
    edge_index = torch.randint(0, 5, (2, 14), generator=g)
    csr = to_csr(edge_index, (5, 5), cache=False)
    x = torch.randn(5, 3, dtype=torch.float64, requires_grad=True, generator=g)
    w = torch.rand(14, dtype=torch.float64, generator=g)
    for reduce in ("sum", "mean"):
        torch.autograd.gradcheck(lambda x: ops.spmm(csr, x, w, reduce), (x,))
    w.requires_grad_(True)
    torch.autograd.gradcheck(lambda x, w: ops.spmm(csr, x, w, "sum"), (x, w))


@pytest.mark.parametrize("reduce", ["sum", "mean", "max"])
def test_spmm_with_self_term_matches_loop_and_gradcheck(reduce):
    # out[i] = reduce_{j -> i} w_ji x_j + s * x_self[i]; isolated rows get the self term only
    g = torch.Generator().manual_seed(5)
    edge_index = torch.randint(0, 6, (2, 25), generator=g)
    edge_index[1, edge_index[1] == 2] = 3  # node 2 receives nothing
    csr = to_csr(edge_index, (6, 8), cache=False)
    x = torch.randn(6, 2, 3, dtype=torch.float64, generator=g, requires_grad=True)
    x_self = torch.randn(8, 2, 3, dtype=torch.float64, generator=g, requires_grad=True)
    w = torch.rand(25, dtype=torch.float64, generator=g)
    for weight in (None, w):
        msgs = x.detach()[edge_index[0]] * (1 if weight is None else weight.view(-1, 1, 1))
        expected = loop_scatter(msgs, edge_index[1], 8, reduce) + 0.75 * x_self.detach()
        out = ops.spmm(csr, x, weight, reduce, x_self=x_self, self_weight=0.75)
        torch.testing.assert_close(out, expected)
    if reduce != "max":
        torch.autograd.gradcheck(
            lambda x, xs: ops.spmm(csr, x, w, reduce, x_self=xs, self_weight=-1.5), (x, x_self)
        )
    with pytest.raises(ValueError, match="x_self"):
        ops.spmm(csr, x, None, reduce, x_self=x_self[:5])
    with pytest.raises(TypeError, match="self_weight"):
        ops.spmm(csr, x, None, reduce, x_self=x_self, self_weight=torch.tensor(1.0))


def test_softmax_matches_loop_and_ptr():
    g = torch.Generator().manual_seed(3)
    src = torch.randn(12, 2, dtype=torch.float64, generator=g)
    index = torch.tensor([0, 0, 0, 1, 1, 3, 3, 3, 3, 3, 4, 4])
    out = ops.softmax(src, index, num_nodes=6)
    for grp in range(6):
        rows = index == grp
        if rows.any():
            torch.testing.assert_close(out[rows], torch.softmax(src[rows], 0))
    ptr = torch.tensor([0, 3, 5, 5, 10, 12])
    torch.testing.assert_close(ops.softmax(src, ptr=ptr), out)
    src.requires_grad_(True)
    torch.autograd.gradcheck(lambda s: ops.softmax(s, index, num_nodes=6), (src,))


def test_segment_matmul_matches_loop():
    g = torch.Generator().manual_seed(4)
    inputs = torch.randn(9, 3, generator=g)
    other = torch.randn(3, 3, 2, generator=g)
    ptr = torch.tensor([0, 4, 4, 9])
    out = ops.segment_matmul(inputs, ptr, other)
    expected = torch.cat([inputs[:4] @ other[0], inputs[4:] @ other[2]])
    torch.testing.assert_close(out, expected)
    # rows with extra dimensions, and the errors that name the argument
    stacked = ops.segment_matmul(inputs.view(9, 1, 3).expand(9, 2, 3), ptr, other)
    torch.testing.assert_close(stacked, expected.unsqueeze(1).expand(9, 2, 2))
    with pytest.raises(TypeError, match="'other' must have the dtype"):
        ops.segment_matmul(inputs, ptr, other.double())
    with pytest.raises(ValueError, match="'inputs' must have shape"):
        ops.segment_matmul(torch.randn(9), ptr, other)


def test_bad_inputs_name_the_argument():
    src = torch.randn(5, 2)
    with pytest.raises(ValueError, match="'index' has 4 entries"):
        ops.scatter(src, torch.zeros(4, dtype=torch.long))
    with pytest.raises(TypeError, match="'index' must be an integer"):
        ops.scatter(src, torch.zeros(5))
    with pytest.raises(ValueError, match="'index' contains index 5"):
        ops.scatter(src, torch.tensor([0, 1, 2, 3, 5]), dim_size=5)
    with pytest.raises(ValueError, match="'reduce'"):
        ops.scatter(src, torch.zeros(5, dtype=torch.long), reduce="median")
    with pytest.raises(ValueError, match="'ptr' must be monotonically"):
        ops.segment(src, torch.tensor([0, 3, 2, 5]))
    with pytest.raises(ValueError, match="'ptr' must end"):
        ops.segment(src, torch.tensor([0, 3, 4]))
    with pytest.raises(ValueError, match="'dim'"):
        ops.scatter(src, torch.zeros(5, dtype=torch.long), dim=2)
    csr = to_csr(torch.tensor([[0, 1], [1, 0]]), (2, 2), cache=False)
    with pytest.raises(ValueError, match="'x' has 3 rows"):
        ops.spmm(csr, torch.randn(3, 2))
    with pytest.raises(ValueError, match="'edge_weight' must have shape"):
        ops.spmm(csr, torch.randn(2, 2), torch.ones(3))


class _CountingBackend:
    """A fake compiled backend: supports only float64 sum scatter."""

    def __init__(self):
        self.calls = 0

    def supports(self, op, *, device, dtype, reduce, **ctx):
        return op == "scatter" and dtype == torch.float64 and reduce == "sum"

    def scatter(self, src, index, dim, dim_size, reduce):
        self.calls += 1
        return ops.reference.scatter(src, index, dim, dim_size, reduce)


def test_backend_selection_by_capability_and_forcing(monkeypatch):
    fake = _CountingBackend()
    monkeypatch.setattr(backends, "_backends", [("fake", fake)])
    monkeypatch.delenv("GNN_KERNELS", raising=False)
    index = torch.tensor([0, 1, 1])
    ops.scatter(torch.ones(3, dtype=torch.float64), index)
    assert fake.calls == 1
    ops.scatter(torch.ones(3), index)  # float32: not supported -> torch
    ops.scatter(torch.ones(3, dtype=torch.float64), index, reduce="max")
    assert fake.calls == 1
    with ops.backend("torch"):
        ops.scatter(torch.ones(3, dtype=torch.float64), index)
    assert fake.calls == 1
    monkeypatch.setenv("GNN_KERNELS", "torch")
    ops.scatter(torch.ones(3, dtype=torch.float64), index)
    assert fake.calls == 1
    assert backends.available() == ["fake", "torch"]
    with pytest.raises(ValueError, match="unknown kernel backend"):
        with ops.backend("nope"):
            pass


# -- dot_attention / gatv2_attention ---------------------------------------------------------------
def _attention_graph(index_dtype, m=8, n=6, e=40, seed=0):
    """edge_index (unsorted, receivers < m - 3 so the last rows are empty) and its CSR."""
    g = torch.Generator().manual_seed(seed)
    edge_index = torch.stack(
        [torch.randint(0, n, (e,), generator=g), torch.randint(0, m - 3, (e,), generator=g)]
    )
    edge_index = edge_index.to(index_dtype)
    return edge_index, to_csr(edge_index, (n, m), cache=False)


def _loop_row_softmax(edge_index, m, score, message, heads, channels, dtype):
    """Per-receiver loop over the incoming edges in edge order: softmax of score(e), sum alpha * message(e)."""
    out = torch.zeros(m, heads, channels, dtype=dtype)
    alpha = torch.zeros(edge_index.size(1), heads, dtype=dtype)
    for i in range(m):
        edges = (edge_index[1] == i).nonzero().flatten().tolist()
        if edges:
            w = torch.softmax(torch.stack([score(e) for e in edges]), dim=0)
            for wk, e in zip(w, edges):
                alpha[e] = wk
                out[i] += wk.unsqueeze(-1) * message(e)
    return out, alpha


def _loop_dot_attention(edge_index, q, k, v, edge, scale):
    src, dst = edge_index[0].long(), edge_index[1].long()

    def extra(e):
        return 0 if edge is None else edge[e]

    return _loop_row_softmax(
        edge_index.long(),
        q.size(0),
        lambda e: scale * (q[dst[e]] * (k[src[e]] + extra(e))).sum(-1),
        lambda e: v[src[e]] + extra(e),
        q.size(1),
        q.size(2),
        q.dtype,
    )


def _loop_gatv2_attention(edge_index, xs, xd, att, edge, slope):
    src, dst = edge_index[0].long(), edge_index[1].long()

    def score(e):
        z = xs[src[e]] + xd[dst[e]] + (0 if edge is None else edge[e])
        return (att * torch.nn.functional.leaky_relu(z, slope)).sum(-1)

    return _loop_row_softmax(
        edge_index.long(), xd.size(0), score, lambda e: xs[src[e]], xd.size(1), xd.size(2), xd.dtype
    )


def _noncontiguous(shape, dtype, g):
    """A tensor of ``shape`` whose last two dims are transposed in memory."""
    return torch.randn(shape[:-2] + (shape[-1], shape[-2]), generator=g, dtype=dtype).transpose(-1, -2)


@pytest.mark.parametrize("backend", backends.available())
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("index_dtype", [torch.int64, torch.int32])
@pytest.mark.parametrize("with_edge", [False, True])
def test_dot_and_gatv2_attention_match_loop(backend, dtype, index_dtype, with_edge):
    edge_index, csr = _attention_graph(index_dtype)
    g = torch.Generator().manual_seed(1)
    q, xd = _noncontiguous((8, 2, 3), dtype, g), torch.randn(8, 2, 3, generator=g, dtype=dtype)
    k, v, xs = (_noncontiguous((6, 2, 3), dtype, g) for _ in range(3))
    att = torch.randn(2, 3, generator=g, dtype=dtype)
    edge = _noncontiguous((40, 2, 3), dtype, g) if with_edge else None
    with ops.backend(backend):
        got = ops.dot_attention(csr, q, k, v, edge, scale=0.6)
        got2 = ops.additive_attention(csr, xs, xd, att, edge, negative_slope=0.1)
    tol = {"atol": 1e-5, "rtol": 1e-5}
    for a, b in zip(got, _loop_dot_attention(edge_index, q, k, v, edge, 0.6)):
        torch.testing.assert_close(a, b, **tol)
    for a, b in zip(got2, _loop_gatv2_attention(edge_index, xs, xd, att, edge, 0.1)):
        torch.testing.assert_close(a, b, **tol)
    assert got[0][5:].abs().sum() == 0 and got2[0][5:].abs().sum() == 0  # rows without entries


@pytest.mark.parametrize("backend", backends.available())
@pytest.mark.parametrize("with_edge", [False, True])
def test_dot_and_gatv2_attention_gradcheck(backend, with_edge):
    _, csr = _attention_graph(torch.int64, m=6, n=5, e=20, seed=2)
    g = torch.Generator().manual_seed(3)

    def make(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64).requires_grad_()

    weight = torch.randn(20, 2, generator=g, dtype=torch.float64)  # the loss reaches alpha directly too
    edge = (make(20, 2, 3),) if with_edge else ()

    def dot(q, k, v, *e):
        out, alpha = ops.dot_attention(csr, q, k, v, *e, scale=0.5)
        return out, alpha * weight

    def gatv2(xs, xd, att, *e):
        out, alpha = ops.additive_attention(csr, xs, xd, att, *e, negative_slope=0.2)
        return out, alpha * weight

    with ops.backend(backend):
        torch.autograd.gradcheck(dot, (make(6, 2, 3), make(5, 2, 3), make(5, 2, 3)) + edge)
        torch.autograd.gradcheck(gatv2, (make(5, 2, 3), make(6, 2, 3), make(2, 3)) + edge)


def test_dot_and_gatv2_attention_bad_inputs_name_the_argument():
    edge_index, csr = _attention_graph(torch.int64)
    q, k, xs, xd = torch.randn(8, 2, 3), torch.randn(6, 2, 3), torch.randn(6, 2, 3), torch.randn(8, 2, 3)
    att, edge = torch.randn(2, 3), torch.randn(40, 2, 3)
    with pytest.raises(TypeError, match="'csr'"):
        ops.dot_attention(edge_index, q, k, k)
    with pytest.raises(ValueError, match="'query'"):
        ops.dot_attention(csr, q[:-1], k, k)
    with pytest.raises(ValueError, match="'key'"):
        ops.dot_attention(csr, q, k[:, :1], k)
    with pytest.raises(ValueError, match="'value'"):
        ops.dot_attention(csr, q, k, k[:-1])
    with pytest.raises(ValueError, match="'edge'"):
        ops.dot_attention(csr, q, k, k, edge[:-1])
    with pytest.raises(ValueError, match="'x_src'"):
        ops.additive_attention(csr, xs.long(), xd, att)
    with pytest.raises(ValueError, match="'x_dst'"):
        ops.additive_attention(csr, xs, xd[:, :, :2], att)
    with pytest.raises(ValueError, match="'att'"):
        ops.additive_attention(csr, xs, xd, att.view(1, 2, 3))
    with pytest.raises(ValueError, match="'edge'"):
        ops.additive_attention(csr, xs, xd, att, edge.view(40, 6))
    bad = ops.CSR(csr.rowptr, csr.col.clone(), csr.num_rows, csr.num_cols)
    bad.col[0] = 6  # out of range for 6 senders
    with pytest.raises(ValueError, match="'csr.col' contains index 6"):
        ops.dot_attention(bad, q, k, k)
    with pytest.raises(ValueError, match="'csr.col' contains index 6"):
        ops.additive_attention(bad, xs, xd, att)


@pytest.mark.parametrize("op", ["dot_attention", "additive_attention"])
def test_feature_attention_without_alpha_gives_the_same_output(op):
    g = torch.Generator().manual_seed(9)
    edge_index = torch.randint(0, 7, (2, 30), generator=g)
    csr = utils.to_csr(edge_index, (7, 7), cache=False)
    a, b = torch.randn(7, 2, 3, generator=g), torch.randn(7, 2, 3, generator=g)
    third = (
        torch.randn(2, 3, generator=g) if op == "additive_attention" else torch.randn(7, 2, 3, generator=g)
    )
    out, alpha = getattr(ops, op)(csr, a, b, third)
    lone, none = getattr(ops, op)(csr, a, b, third, return_alpha=False)
    assert none is None and alpha.shape == (30, 2)
    torch.testing.assert_close(lone, out)


def test_csr_in_edge_order_inverts_in_csr_order():
    edge_index = torch.tensor([[2, 0, 1, 0], [1, 1, 0, 2]])
    csr = utils.to_csr(edge_index, (3, 3), cache=False)
    values = torch.arange(4.0).view(4, 1).expand(4, 2)
    in_csr = csr.in_csr_order(values)
    assert torch.equal(csr.col, edge_index[0, csr.perm]) and torch.equal(in_csr, values[csr.perm])
    assert torch.equal(csr.in_edge_order(in_csr), values)
    assert csr.in_edge_order(None) is None
