"""ChebConv: dense Chebyshev recursion, PyG parity, batched lambda_max, formats, fused path, bad inputs."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from gnn.conv import ChebConv
from gnn.core import ops, testing
from gnn.core.utils import is_sparse

N, E, F_IN, F_OUT = 10, 40, 5, 7


def dense_l_hat(
    edge_index: Tensor, weight: Tensor | None, n: int, norm: str | None, lambda_max: Tensor
) -> Tensor:
    """L_hat = 2 L / lambda_max - I with A[i, j] = weight of i -> j (loops dropped), lambda_max per node."""
    w = torch.ones(edge_index.size(1)) if weight is None else weight
    a = torch.zeros(n, n, dtype=torch.float64)
    for e in range(edge_index.size(1)):
        i, j = int(edge_index[0, e]), int(edge_index[1, e])
        if i != j:
            a[i, j] += float(w[e])
    deg = a.sum(1)
    if norm is None:
        lap = torch.diag(deg) - a
    elif norm == "sym":
        inv = torch.where(deg > 0, deg.pow(-0.5), torch.zeros_like(deg))
        lap = torch.eye(n, dtype=torch.float64) - inv.view(-1, 1) * a * inv.view(1, -1)
    else:
        inv = torch.where(deg > 0, 1.0 / deg, torch.zeros_like(deg))
        lap = torch.eye(n, dtype=torch.float64) - inv.view(-1, 1) * a
    return 2.0 * lap / lambda_max.double().view(-1, 1) - torch.eye(n, dtype=torch.float64)


def dense_cheb(conv: ChebConv, x: Tensor, l_hat: Tensor) -> Tensor:
    # messages flow i -> j, so the operator applied to the features is L_hat^T
    op = l_hat.t()
    tx = [x.double(), op @ x.double()]
    while len(tx) < len(conv.lins):
        tx.append(2 * op @ tx[-1] - tx[-2])
    out = sum(t @ lin.weight.double().t() for t, lin in zip(tx, conv.lins))
    return out + conv.bias.double()


@pytest.mark.parametrize("norm", [None, "sym", "rw"])
@pytest.mark.parametrize("K", [1, 2, 4])
def test_dense_recursion(norm, K):
    x, edge_index = testing.random_graph(N, E, F_IN, seed=1)
    weight = torch.rand(E) + 0.1
    conv = ChebConv(F_IN, F_OUT, K, normalization=norm)
    torch.nn.init.normal_(conv.bias)
    lam = torch.tensor(1.7)
    expected = dense_cheb(conv, x, dense_l_hat(edge_index, weight, N, norm, lam.expand(N)))
    torch.testing.assert_close(
        conv(x, edge_index, weight, lambda_max=lam).double(), expected, atol=1e-4, rtol=1e-4
    )


def test_batched_lambda_max():
    x, _ = testing.random_graph(N, E, F_IN, seed=2)
    edge_index = torch.tensor([[0, 1, 2, 3, 5, 6, 7, 8, 9], [1, 2, 0, 4, 6, 5, 8, 9, 7]])
    batch = torch.tensor([0] * 5 + [1] * 5)
    lam = torch.tensor([1.5, 1.9])
    conv = ChebConv(F_IN, F_OUT, 3, normalization="rw")
    expected = dense_cheb(conv, x, dense_l_hat(edge_index, None, N, "rw", lam[batch]))
    torch.testing.assert_close(
        conv(x, edge_index, batch=batch, lambda_max=lam).double(), expected, atol=1e-5, rtol=1e-4
    )


@pytest.mark.parametrize("norm, K", [("sym", 3), ("rw", 2), (None, 4)])
def test_matches_pyg(norm, K):
    pyg = pytest.importorskip("torch_geometric")
    x, edge_index = testing.random_graph(N, E, F_IN, seed=3)
    weight = torch.rand(E)
    theirs = pyg.nn.ChebConv(F_IN, F_OUT, K, normalization=norm)
    torch.nn.init.normal_(theirs.bias)
    ours = ChebConv(F_IN, F_OUT, K, normalization=norm)
    testing.load_pyg_state(ours, theirs)
    assert repr(ours) == repr(theirs)
    lam = 1.3 if norm != "sym" else None
    testing.assert_close(
        ours(x, edge_index, weight, lambda_max=lam), theirs(x, edge_index, weight, lambda_max=lam), atol=1e-4
    )
    batch = torch.tensor([0] * 5 + [1] * 5)
    lam = torch.tensor([1.5, 1.9])
    testing.assert_close(
        ours(x, edge_index, weight, batch, lam), theirs(x, edge_index, weight, batch, lam), atol=1e-4
    )


def test_input_formats_and_permutation():
    x, edge_index = testing.random_graph(N, E, F_IN, seed=4)
    weight = torch.rand(E) + 0.1
    conv = ChebConv(F_IN, F_OUT, 3)
    testing.assert_formats_agree(
        lambda adj: conv(x, adj, None if is_sparse(adj) else weight), edge_index, N, edge_weight=weight
    )
    perm = torch.randperm(E, generator=torch.Generator().manual_seed(0))
    testing.assert_close(conv(x, edge_index[:, perm], weight[perm]), conv(x, edge_index, weight))


def test_takes_the_fused_spmm_path(monkeypatch):
    x, edge_index = testing.random_graph(N, E, F_IN, seed=5)
    conv = ChebConv(F_IN, F_OUT, 4)
    expected = conv(x, edge_index)
    calls = []
    real = ops.reduce.run_spmm
    monkeypatch.setattr(ops.reduce, "run_spmm", lambda *a, **k: calls.append(1) or real(*a, **k))

    def no_message(*args, **kwargs):
        raise AssertionError("the [E, F] message path ran")

    conv.message = no_message
    testing.assert_close(conv(x, edge_index), expected)
    assert len(calls) == 3  # one per hop


def test_lazy_and_reset():
    x, edge_index = testing.random_graph(N, E, F_IN, seed=6)
    conv = ChebConv(-1, F_OUT, 2)
    assert conv(x, edge_index).shape == (N, F_OUT)
    torch.nn.init.normal_(conv.bias)
    conv.reset_parameters()
    assert torch.count_nonzero(conv.bias) == 0


def test_bad_inputs():
    x, edge_index = testing.random_graph(N, E, F_IN, seed=7)
    with pytest.raises(ValueError, match="K"):
        ChebConv(F_IN, F_OUT, 0)
    with pytest.raises(ValueError, match="normalization"):
        ChebConv(F_IN, F_OUT, 2, normalization="left")
    conv = ChebConv(F_IN, F_OUT, 2, normalization="rw")
    with pytest.raises(ValueError, match="lambda_max"):
        conv(x, edge_index)
    sym = ChebConv(F_IN, F_OUT, 2)
    with pytest.raises(ValueError, match="edge_index"):
        sym(x, edge_index[:1])
    with pytest.raises(TypeError, match="edge_index"):
        sym(x, edge_index.float())
    with pytest.raises(ValueError, match="edge_index"):
        sym(x, torch.tensor([[0], [N]]))
    with pytest.raises(ValueError, match="'x'.*in_channels"):
        sym(torch.randn(N, 3), edge_index)
    with pytest.raises(ValueError, match="edge_weight"):
        sym(x, edge_index, torch.rand(2))
    with pytest.raises(ValueError, match="batch"):
        sym(x, edge_index, batch=torch.zeros(3, dtype=torch.long))
