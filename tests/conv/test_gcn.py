"""GCNConv: dense formula, PyG parity, input formats, fused path, caching, bad inputs."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

import gnn.conv._utils as conv_utils
from gnn.conv import GCNConv
from gnn.core import ops, testing
from gnn.core.utils import is_sparse

N, E, F_IN, F_OUT = 10, 40, 5, 7


def graph(seed: int = 0) -> tuple[Tensor, Tensor, Tensor]:
    x, edge_index = testing.random_graph(N, E, F_IN, seed=seed)
    weight = torch.rand(E, generator=torch.Generator().manual_seed(seed)) + 0.1
    return x, edge_index, weight


def normalized_adjacency(edge_index, weight, n, improved=False, loops=True, normalize=True) -> Tensor:
    """D^-1/2 (A + fill I) D^-1/2 with A[dst, src] summed over duplicates; existing loops keep their weight."""
    w = torch.ones(edge_index.size(1)) if weight is None else weight
    a = torch.zeros(n, n, dtype=torch.float64)
    diag = {}
    for e in range(edge_index.size(1)):
        s, d = int(edge_index[0, e]), int(edge_index[1, e])
        if loops and s == d:
            diag[s] = float(w[e])
        else:
            a[d, s] += float(w[e])
    for i in range(n) if loops else []:
        a[i, i] = diag.get(i, 2.0 if improved else 1.0)
    if not normalize:
        return a
    deg = a.sum(1)
    inv = torch.where(deg > 0, deg.pow(-0.5), torch.zeros_like(deg))
    return inv.view(-1, 1) * a * inv.view(1, -1)


@pytest.mark.parametrize("improved", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("loops", [False, True])
def test_dense_formula(improved, weighted, loops):
    x, edge_index, weight = graph(1)
    weight = weight if weighted else None
    conv = GCNConv(F_IN, F_OUT, improved=improved, add_self_loops=loops)
    torch.nn.init.normal_(conv.bias)
    a_hat = normalized_adjacency(edge_index, weight, N, improved, loops)
    expected = a_hat @ x.double() @ conv.lin.weight.double().t() + conv.bias.double()
    torch.testing.assert_close(conv(x, edge_index, weight).double(), expected, atol=1e-5, rtol=1e-4)


def test_dense_formula_without_normalization():
    x, edge_index, weight = graph(2)
    conv = GCNConv(F_IN, F_OUT, normalize=False, bias=False)
    a = normalized_adjacency(edge_index, weight, N, loops=False, normalize=False)
    expected = a @ x.double() @ conv.lin.weight.double().t()
    torch.testing.assert_close(conv(x, edge_index, weight).double(), expected, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"improved": True, "bias": False}, {"normalize": False}, {"add_self_loops": False, "cached": True}],
)
def test_matches_pyg(kwargs):
    pyg = pytest.importorskip("torch_geometric")
    x, edge_index, weight = graph(3)
    theirs = pyg.nn.GCNConv(F_IN, F_OUT, **kwargs)
    torch.nn.init.normal_(theirs.bias) if theirs.bias is not None else None
    ours = GCNConv(F_IN, F_OUT, **kwargs)
    testing.load_pyg_state(ours, theirs)
    assert repr(ours) == repr(theirs)
    testing.assert_close(ours(x, edge_index, weight), theirs(x, edge_index, weight))
    # (PyG 2.8 ignores `improved` without edge weights; its cache ignores a new graph)
    if not kwargs.get("improved") and not kwargs.get("cached"):
        testing.assert_close(ours(x, edge_index), theirs(x, edge_index))


def test_lazy_in_channels_and_pyg_lazy_checkpoint():
    pyg = pytest.importorskip("torch_geometric")
    x, edge_index, _ = graph(4)
    ours = GCNConv(-1, F_OUT)
    assert ours(x, edge_index).shape == (N, F_OUT)
    assert ours.lin.weight.shape == (F_OUT, F_IN)
    theirs = pyg.nn.GCNConv(-1, F_OUT)
    theirs(x, edge_index)
    lazy = GCNConv(-1, F_OUT)
    lazy.load_state_dict(theirs.state_dict(), strict=True)  # materializes the lazy weight
    testing.assert_close(lazy(x, edge_index), theirs(x, edge_index))


@pytest.mark.parametrize("kwargs", [{}, {"improved": True}, {"normalize": False}, {"add_self_loops": False}])
def test_input_formats_agree(kwargs):
    x, edge_index, weight = graph(5)
    conv = GCNConv(F_IN, F_OUT, **kwargs)
    testing.assert_formats_agree(
        lambda adj: conv(x, adj, None if is_sparse(adj) else weight), edge_index, N, edge_weight=weight
    )


def test_edge_permutation_invariance():
    x, edge_index, weight = graph(6)
    conv = GCNConv(F_IN, F_OUT)
    weight[edge_index[0] == edge_index[1]] = 0.7  # duplicate self loops: the last one's weight is kept
    perm = torch.randperm(E, generator=torch.Generator().manual_seed(0))
    testing.assert_close(conv(x, edge_index[:, perm], weight[perm]), conv(x, edge_index, weight))


def spy_spmm(monkeypatch) -> list[int]:
    calls: list[int] = []
    real = ops.reduce.run_spmm

    def spy(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(ops.reduce, "run_spmm", spy)
    return calls


def test_edge_index_input_takes_the_fused_spmm_path(monkeypatch):
    x, edge_index, weight = graph(7)
    conv = GCNConv(F_IN, F_OUT)
    expected = conv(x, edge_index, weight)
    calls = spy_spmm(monkeypatch)

    def no_message(*args, **kwargs):
        raise AssertionError("the [E, F] message path ran")

    conv.message = no_message
    testing.assert_close(conv(x, edge_index, weight), expected)
    assert len(calls) == 1


def test_cached_normalization_per_graph(monkeypatch):
    x, edge_index, weight = graph(8)
    counted: list[int] = []
    real = conv_utils.gcn_norm  # GCN normalizes through the shared cached_gcn_norm

    def counting(*args, **kwargs):
        counted.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(conv_utils, "gcn_norm", counting)
    conv = GCNConv(F_IN, F_OUT, cached=True)
    fresh = GCNConv(F_IN, F_OUT)
    fresh.load_state_dict(conv.state_dict())
    out = conv(x, edge_index, weight)
    testing.assert_close(conv(x, edge_index, weight), out)
    assert len(counted) == 1  # the second call reused the normalization
    # another graph is normalized again, and gives its own result
    _, other, other_w = graph(9)
    testing.assert_close(conv(x, other, other_w), fresh(x, other, other_w))
    before = len(counted)
    conv.reset_parameters()  # clears the cache
    conv(x, other, other_w)
    assert len(counted) == before + 1
    assert "_cache" not in str(conv.state_dict().keys())


def test_reset_parameters():
    conv = GCNConv(F_IN, F_OUT)
    torch.nn.init.normal_(conv.bias)
    old = conv.lin.weight.detach().clone()
    conv.reset_parameters()
    assert torch.count_nonzero(conv.bias) == 0
    assert not torch.equal(conv.lin.weight, old)


def test_empty_graph_and_isolated_nodes():
    x = torch.randn(4, F_IN)
    conv = GCNConv(F_IN, F_OUT, bias=False)
    out = conv(x, torch.empty(2, 0, dtype=torch.long))
    testing.assert_close(out, conv.lin(x))  # only the self loops (weight 1 / 1)
    assert conv(torch.empty(0, F_IN), torch.empty(2, 0, dtype=torch.long)).shape == (0, F_OUT)


def test_bad_inputs():
    x, edge_index, weight = graph(10)
    conv = GCNConv(F_IN, F_OUT)
    with pytest.raises(ValueError, match="edge_index"):
        conv(x, edge_index[:1])
    with pytest.raises(TypeError, match="edge_index"):
        conv(x, edge_index.float())
    with pytest.raises(ValueError, match="edge_index"):
        conv(x, torch.tensor([[0, N], [1, 2]]))
    with pytest.raises(ValueError, match="'x'.*in_channels"):
        conv(torch.randn(N, F_IN + 1), edge_index)
    with pytest.raises(ValueError, match="edge_weight"):
        conv(x, edge_index, weight[:-1])
    with pytest.raises(ValueError, match="tuple"):
        conv((x, x), edge_index)
    with pytest.raises(ValueError, match="self-loops"):
        GCNConv(F_IN, F_OUT, normalize=False, add_self_loops=True)
