"""PANConv against a dense matrix-power reference, PyG (needs torch-sparse), sparse inputs, bad input."""

from __future__ import annotations

import pytest
import torch

from gnn.conv.pan import PANConv
from gnn.core import ops, testing
from gnn.core.utils import is_sparse


def dense_adj(edge_index, n, weight=None):
    a = torch.zeros(n, n, dtype=torch.float64)
    for e in range(edge_index.size(1)):
        a[edge_index[1, e], edge_index[0, e]] += 1.0 if weight is None else float(weight[e])
    return a


def dense_m(conv: PANConv, a: torch.Tensor) -> torch.Tensor:
    """M = Z^-1/2 (sum_n prod_{k<=n} w_k A^n) Z^-1/2, Z = non-zeros per row (float64, differentiable)."""
    n = a.size(0)
    w = conv.weight.double()
    total = torch.zeros(n, n, dtype=torch.float64)
    power = torch.eye(n, dtype=torch.float64)
    scale = torch.ones((), dtype=torch.float64)
    for k in range(conv.filter_size + 1):
        if k > 0:
            power = power @ a
        scale = scale * w[k]
        total = total + scale * power
    pattern = torch.eye(n, dtype=torch.bool)
    power = torch.eye(n, dtype=torch.float64)
    for _ in range(conv.filter_size):
        power = power @ a
        pattern |= power != 0
    z = pattern.sum(1).double().pow(-0.5)
    return z.view(-1, 1) * total * z.view(1, -1)


def dense_reference(conv: PANConv, x, a):
    m = dense_m(conv, a)
    return (m @ x.double() @ conv.lin.weight.double().t() + conv.lin.bias.double()).float(), m


def to_dense(m):
    """``M`` is a torch.sparse tensor, or a torch_sparse.SparseTensor when that is installed."""
    assert is_sparse(m)
    return testing.to_dense(m)


@pytest.mark.parametrize("filter_size", [0, 1, 3])
def test_matches_dense_reference(filter_size):
    x, edge_index = testing.random_graph(12, 25, 4, seed=filter_size)
    conv = PANConv(4, 3, filter_size)
    with torch.no_grad():
        conv.weight.uniform_(0.3, 1.2)
    out, m = conv(x, edge_index)
    expected, expected_m = dense_reference(conv, x, dense_adj(edge_index, 12))
    testing.assert_close(out, expected)
    testing.assert_close(to_dense(m).double(), expected_m.detach(), atol=1e-6)


def test_gradient_reaches_path_weights():
    x, edge_index = testing.random_graph(10, 20, 3, seed=1, dtype=torch.float64)
    conv = PANConv(3, 2, 2).double()
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([0.7, 1.3, 0.4]))
    out, _ = conv(x, edge_index)
    (grad,) = torch.autograd.grad(out.square().sum(), conv.weight)
    m = dense_m(conv, dense_adj(edge_index, 10))
    expected_out = m @ x @ conv.lin.weight.t() + conv.lin.bias
    (expected,) = torch.autograd.grad(expected_out.square().sum(), conv.weight)
    testing.assert_close(grad, expected, atol=1e-9, rtol=1e-7)


def test_sparse_formats_agree():
    x, edge_index = testing.random_graph(10, 30, 3, seed=2)
    conv = PANConv(3, 4, 2)
    testing.assert_formats_agree(lambda adj: conv(x, adj)[0], edge_index, 10)


def test_torch_sparse_values_weight_the_adjacency():
    x, edge_index = testing.random_graph(9, 20, 3, seed=3)
    weight = torch.rand(20, generator=torch.Generator().manual_seed(3)) + 0.5
    conv = PANConv(3, 4, 2)
    expected, _ = dense_reference(conv, x, dense_adj(edge_index, 9, weight))
    for name, adj in testing.edge_index_formats(edge_index, 9, weight):
        if isinstance(adj, torch.Tensor):
            testing.assert_close(conv(x, adj)[0], expected, msg=name)


def test_uses_fused_spmm(monkeypatch):
    x, edge_index = testing.random_graph(10, 30, 3, seed=4)
    conv = PANConv(3, 4, 2)
    calls = []
    spmm = ops.reduce.run_spmm
    monkeypatch.setattr(ops.reduce, "run_spmm", lambda *a, **k: calls.append(1) or spmm(*a, **k))
    conv(x, edge_index)
    assert calls == [1]


def test_edge_permutation_invariance():
    x, edge_index = testing.random_graph(14, 40, 3, seed=5)
    conv = PANConv(3, 4, 2)
    perm = torch.randperm(40, generator=torch.Generator().manual_seed(0))
    testing.assert_close(conv(x, edge_index[:, perm])[0], conv(x, edge_index)[0])


def test_lazy_in_channels():
    x, edge_index = testing.random_graph(10, 30, 5, seed=6)
    conv = PANConv(-1, 4, 1)
    out, _ = conv(x, edge_index)
    assert conv.lin.weight.shape == (4, 5)
    testing.assert_close(out, dense_reference(conv, x, dense_adj(edge_index, 10))[0])


def test_reset_parameters():
    conv = PANConv(3, 4, 2)
    for p in conv.parameters():
        torch.nn.init.constant_(p, 7.0)
    conv.reset_parameters()
    assert torch.equal(conv.weight, torch.full((3,), 0.5))
    assert conv.lin.weight.abs().max() < 7.0 and conv.lin.weight.std() > 0


def test_bad_input():
    x, edge_index = testing.random_graph(10, 30, 3, seed=7)
    conv = PANConv(3, 4, 2)
    with pytest.raises(ValueError, match="x"):
        conv(torch.randn(10, 4), edge_index)
    with pytest.raises(ValueError, match="edge_index"):
        conv(x, edge_index[:1])
    with pytest.raises(TypeError, match="edge_index"):
        conv(x, edge_index.float())
    with pytest.raises(ValueError, match="edge_index"):
        conv(x, torch.tensor([[0, 10], [1, 2]]))
    with pytest.raises(ValueError, match="edge_index"):
        conv(x, torch.sparse_coo_tensor(torch.tensor([[0], [1]]), torch.ones(1), (10, 11)))
    with pytest.raises(ValueError, match="filter_size"):
        PANConv(3, 4, -1)


def test_pyg_signature_and_repr():
    pyg = pytest.importorskip("torch_geometric")
    # PyG's PANConv constructs without torch-sparse; running it needs torch-sparse
    theirs = pyg.nn.PANConv(4, 5, 3)
    ours = PANConv(4, 5, 3)
    assert repr(ours) == repr(theirs)
    testing.assert_signatures_match(PANConv, type(theirs), defaults=False)
    testing.load_pyg_state(ours, theirs)


def test_pyg_parity():
    pyg = pytest.importorskip("torch_geometric")
    pytest.importorskip("torch_sparse")  # PyG's PANConv runs only with torch-sparse
    x, edge_index = testing.random_graph(15, 40, 4, seed=8)
    theirs, ours = pyg.nn.PANConv(4, 5, 3), PANConv(4, 5, 3)
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor([0.9, 0.4, 1.1, 0.7]))
    testing.load_pyg_state(ours, theirs)
    out_t, m_t = theirs(x, edge_index)
    out_o, m_o = ours(x, edge_index)
    testing.assert_close(out_o, out_t)
    testing.assert_close(to_dense(m_o), to_dense(m_t))


def test_empty_graph():
    conv = PANConv(3, 4, 2)
    x, no_edges = torch.randn(5, 3), torch.empty(2, 0, dtype=torch.long)
    out, m = conv(x, no_edges)
    testing.assert_close(out, conv.lin(0.5 * x))  # M = w_0 I
    testing.assert_close(to_dense(m), 0.5 * torch.eye(5))
    out, m = conv(torch.randn(0, 3), no_edges)
    assert out.shape == (0, 4) and to_dense(m).shape == (0, 0)  # M may be a SparseTensor (no .shape)
