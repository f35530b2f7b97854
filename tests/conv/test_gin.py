"""GINConv and GINEConv: dense references, PyG parity, formats, fused path, bad inputs."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from gnn.conv import GINConv, GINEConv
from gnn.core import ops, testing
from gnn.core.utils import is_sparse

N, E, F_IN, F_OUT = 10, 40, 5, 7


def dense_adj(edge_index: Tensor, n_dst: int, n_src: int) -> Tensor:
    a = torch.zeros(n_dst, n_src, dtype=torch.float64)
    a.index_put_(
        (edge_index[1], edge_index[0]), torch.ones(edge_index.size(1), dtype=torch.float64), accumulate=True
    )
    return a


def mlp() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(F_IN, 16), torch.nn.ReLU(), torch.nn.Linear(16, F_OUT))


@pytest.mark.parametrize("eps, train_eps", [(0.0, False), (0.3, True), (-0.5, False)])
def test_gin_dense_formula(eps, train_eps):
    x, edge_index = testing.random_graph(N, E, F_IN, seed=1)
    net = mlp().double()
    conv = GINConv(net, eps=eps, train_eps=train_eps)
    expected = net((1 + eps) * x.double() + dense_adj(edge_index, N, N) @ x.double())
    torch.testing.assert_close(conv(x.double(), edge_index), expected)
    assert isinstance(conv.eps, torch.nn.Parameter) == train_eps
    assert ("eps" in dict(conv.named_parameters())) == train_eps and "eps" in conv.state_dict()


def test_gin_bipartite():
    x_src, x_dst = torch.randn(8, F_IN), torch.randn(5, F_IN)
    edge_index = torch.stack([torch.randint(0, 8, (20,)), torch.randint(0, 5, (20,))])
    net = torch.nn.Linear(F_IN, F_OUT)
    conv = GINConv(net, eps=0.1)
    expected = net(1.1 * x_dst + (dense_adj(edge_index, 5, 8) @ x_src.double()).float())
    testing.assert_close(conv((x_src, x_dst), edge_index), expected)
    testing.assert_close(
        conv((x_src, None), edge_index, size=(8, 5)),
        net((dense_adj(edge_index, 5, 8) @ x_src.double()).float()),
    )


def test_gine_loop_reference():
    x, edge_index = testing.random_graph(N, E, F_IN, seed=2)
    edge_attr = torch.randn(E, 3)
    net = mlp()
    conv = GINEConv(net, eps=0.2, edge_dim=3)
    agg = torch.zeros(N, F_IN)
    for e in range(E):
        j, i = edge_index[:, e]
        agg[i] += (x[j] + conv.lin(edge_attr[e])).relu()
    testing.assert_close(conv(x, edge_index, edge_attr), net(1.2 * x + agg))
    # without edge_dim the edge features must already have the node feature size
    plain = GINEConv(net)
    edge_attr = torch.randn(E, F_IN)
    agg = torch.zeros(N, F_IN).index_add_(0, edge_index[1], (x[edge_index[0]] + edge_attr).relu())
    testing.assert_close(plain(x, edge_index, edge_attr), net(x + agg))


@pytest.mark.parametrize("kwargs", [{}, {"eps": 0.4, "train_eps": True}])
def test_gin_matches_pyg(kwargs):
    pyg = pytest.importorskip("torch_geometric")
    x, edge_index = testing.random_graph(N, E, F_IN, seed=3)
    net = mlp()
    theirs = pyg.nn.GINConv(net, **kwargs)
    ours = GINConv(mlp(), **kwargs)
    testing.load_pyg_state(ours, theirs)
    assert repr(ours) == repr(theirs)
    testing.assert_close(ours(x, edge_index), theirs(x, edge_index))


@pytest.mark.parametrize("edge_dim", [None, 3])
def test_gine_matches_pyg(edge_dim):
    pyg = pytest.importorskip("torch_geometric")
    x, edge_index = testing.random_graph(N, E, F_IN, seed=4)
    edge_attr = torch.randn(E, edge_dim or F_IN)
    theirs = pyg.nn.GINEConv(mlp(), eps=0.1, train_eps=True, edge_dim=edge_dim)
    ours = GINEConv(mlp(), eps=0.1, train_eps=True, edge_dim=edge_dim)
    testing.load_pyg_state(ours, theirs)
    assert repr(ours) == repr(theirs)
    testing.assert_close(ours(x, edge_index, edge_attr), theirs(x, edge_index, edge_attr))


def test_input_formats_agree():
    x, edge_index = testing.random_graph(N, E, F_IN, seed=5)
    gin = GINConv(mlp(), eps=0.3)
    testing.assert_formats_agree(lambda adj: gin(x, adj), edge_index, N)
    # GINE: a hybrid COO adj_t [N, N, 3] carries the edge features as its values
    gine = GINEConv(mlp(), edge_dim=3)
    edge_attr = torch.randn(E, 3)
    adj_t = torch.sparse_coo_tensor(edge_index.flip(0), edge_attr, (N, N, 3))
    assert is_sparse(adj_t)
    expected = gine(x, edge_index, edge_attr)
    testing.assert_close(gine(x, adj_t), expected)


def test_edge_permutation_invariance():
    x, edge_index = testing.random_graph(N, E, F_IN, seed=6)
    edge_attr = torch.randn(E, 3)
    perm = torch.randperm(E, generator=torch.Generator().manual_seed(0))
    gin, gine = GINConv(mlp()), GINEConv(mlp(), edge_dim=3)
    testing.assert_close(gin(x, edge_index[:, perm]), gin(x, edge_index))
    testing.assert_close(gine(x, edge_index[:, perm], edge_attr[perm]), gine(x, edge_index, edge_attr))


def test_gin_takes_the_fused_spmm_path(monkeypatch):
    x, edge_index = testing.random_graph(N, E, F_IN, seed=7)
    conv = GINConv(mlp())
    expected = conv(x, edge_index)
    calls = []
    real = ops.reduce.run_spmm
    monkeypatch.setattr(ops.reduce, "run_spmm", lambda *a, **k: calls.append(1) or real(*a, **k))

    def no_message(*args, **kwargs):
        raise AssertionError("the [E, F] message path ran")

    conv.message = no_message
    testing.assert_close(conv(x, edge_index), expected)
    assert len(calls) == 1


def test_reset_parameters():
    conv = GINEConv(mlp(), eps=0.25, train_eps=True, edge_dim=3)
    with torch.no_grad():
        conv.eps.fill_(5.0)
    before = conv.lin.weight.detach().clone()
    conv.reset_parameters()
    assert conv.eps.item() == 0.25
    assert not torch.equal(before, conv.lin.weight)


def test_bad_inputs():
    x, edge_index = testing.random_graph(N, E, F_IN, seed=8)
    gin = GINConv(mlp())
    with pytest.raises(ValueError, match="edge_index"):
        gin(x, edge_index[:, None])
    with pytest.raises(TypeError, match="edge_index"):
        gin(x, edge_index.double())
    with pytest.raises(ValueError, match="edge_index"):
        gin(x, torch.tensor([[N + 3], [0]]))
    gine = GINEConv(mlp())
    with pytest.raises(ValueError, match="edge_attr"):
        gine(x, edge_index)
    with pytest.raises(ValueError, match="edge_attr"):
        gine(x, edge_index, torch.randn(E - 1, F_IN))
    with pytest.raises(ValueError, match="edge_dim"):
        gine(x, edge_index, torch.randn(E, 2))
    with pytest.raises(ValueError, match="input channels"):
        GINEConv(torch.nn.ReLU(), edge_dim=2)


def test_fused_root_term_matches_the_unfused_path_with_gradients():
    # with a constant eps, (1 + eps) x_i is added inside the spmm pass; a propagate hook forces
    # the plain path (propagate, then add): outputs and gradients must agree, for every format
    x_src = torch.randn(8, F_IN, dtype=torch.float64, requires_grad=True)
    x_dst = torch.randn(5, F_IN, dtype=torch.float64, requires_grad=True)
    edge_index = torch.stack([torch.randint(0, 8, (30,)), torch.randint(0, 5, (30,))])
    net = mlp().double()
    fused, plain = GINConv(net, eps=0.4).double(), GINConv(net, eps=0.4).double()
    plain.register_propagate_forward_hook(lambda module, inputs, out: None)
    adj = dense_adj(edge_index, 5, 8)
    adj_t = torch.sparse_coo_tensor(edge_index.flip(0), torch.ones(30), (5, 8)).coalesce().to_sparse_csr()
    # an x_j message ignores the values of a sparse adj_t: duplicates count once there
    for graph, a in ((edge_index, adj), (adj_t, (adj > 0).double())):
        expected = net(1.4 * x_dst + a @ x_src)
        grads = []
        for conv in (fused, plain):
            out = conv((x_src, x_dst), graph, size=(8, 5) if graph is edge_index else None)
            torch.testing.assert_close(out, expected)
            grads.append(torch.autograd.grad(out.square().sum(), (x_src, x_dst)))
        for a, b in zip(*grads):
            torch.testing.assert_close(a, b)
    x = x_src.detach()
    square = torch.randint(0, 8, (2, 20))
    torch.autograd.gradcheck(lambda x: fused(x, square), (x.requires_grad_(),))
