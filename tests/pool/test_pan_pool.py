"""PANPooling: reference from the formula, PyG parity on PANConv's M, input forms, gradients, bad input."""

from __future__ import annotations

import inspect
import math

import pytest
import torch

from gnn.conv import PANConv
from gnn.core import testing
from gnn.pool import PANPooling


class CooMatrix:
    """What PyG's PANPooling reads of a torch_sparse.SparseTensor: ``coo()`` and ``sizes()``
    (PyG's own PANConv needs torch-sparse, which is not installed here)."""

    def __init__(self, m: torch.Tensor) -> None:
        m = m.coalesce()
        self.row, self.col = m.indices()
        self.value, self.n = m.values(), m.size(0)

    def coo(self):
        return self.row, self.col, self.value

    def sizes(self):
        return [self.n, self.n]


def inputs(seed=0, n=20, e=50, f=4, graphs=3, sort=True):
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    x = torch.randn(n, f, generator=g, dtype=torch.float64)
    edge_index = torch.randint(0, n, (2, e), generator=g)
    batch = torch.randint(0, graphs, (n,), generator=g)
    out, m = PANConv(f, f, filter_size=2).double()(x, edge_index)
    return out.detach(), m, batch.sort().values if sort else batch


def reference(pool: PANPooling, x, m, batch):
    """score = tanh(sign(w) (beta_1 x.p + beta_2 sum_i M_ij)), top-k per graph, M restricted (loops)."""
    dense = m.detach().to_dense()
    beta, p = pool.beta.detach(), pool.p.detach()
    raw = beta[0] * (x @ p) + beta[1] * dense.sum(0)
    score = torch.tanh(raw * torch.sign(pool.select.weight.detach().view(())))
    perm = []
    for g in sorted(set(batch.tolist())):
        nodes = sorted(
            (i for i in range(x.size(0)) if int(batch[i]) == g), key=lambda i: (-float(score[i]), i)
        )
        perm += nodes[: math.ceil(pool.ratio * len(nodes) - 1e-9)]
    position = {q: k for k, q in enumerate(perm)}
    edges, values = [], []
    for i, j in dense.nonzero().tolist():  # row-major, as M's entries come
        if i in position and j in position:
            edges.append((position[j], position[i]))  # M_ij: a message j -> i
            values.append(float(dense[i, j]))
    perm = torch.tensor(perm)
    return (
        x[perm] * score[perm].view(-1, 1),
        torch.tensor(edges, dtype=torch.long).t().reshape(2, -1),
        torch.tensor(values, dtype=torch.float64),
        batch[perm],
        perm,
        score[perm],
    )


@pytest.mark.parametrize("sort", [True, False])
def test_matches_reference(sort):
    x, m, batch = inputs(seed=1, sort=sort)
    pool = PANPooling(4, ratio=0.6).double()
    with torch.no_grad():
        pool.p.uniform_(-1, 1)
        pool.beta.copy_(torch.tensor([0.7, -0.4]))
    testing.assert_close(pool(x, m, batch), reference(pool, x, m, batch))


@pytest.mark.parametrize(
    "kwargs", [{}, {"ratio": 3}, {"min_score": 0.1}, {"multiplier": 2.0, "nonlinearity": "sigmoid"}]
)
@pytest.mark.parametrize("sort", [True, False])
def test_matches_pyg(kwargs, sort):
    pyg = pytest.importorskip("torch_geometric.nn")
    x, m, batch = inputs(seed=2, sort=sort)
    theirs, ours = pyg.PANPooling(4, **kwargs).double(), PANPooling(4, **kwargs).double()
    testing.load_pyg_state(ours, theirs)
    assert repr(ours) == repr(theirs)
    with torch.no_grad():
        for module in (ours, theirs):
            module.p.copy_(torch.linspace(-1, 1, 4))
    x_ours, x_theirs = x.clone().requires_grad_(), x.clone().requires_grad_()
    out, expected = ours(x_ours, m, batch), theirs(x_theirs, CooMatrix(m), batch)
    testing.assert_close(out, expected)
    testing.assert_close(ours(x, CooMatrix(m), batch), expected)  # a SparseTensor-like M as well
    out[0].square().sum().backward()
    expected[0].square().sum().backward()
    testing.assert_close(x_ours.grad, x_theirs.grad)
    for name in ("p", "beta"):
        ours_grad, theirs_grad = getattr(ours, name).grad, getattr(theirs, name).grad
        testing.assert_close(ours_grad, theirs_grad, msg=name)
        assert ours_grad.abs().sum() > 0, name


def test_torch_sparse_layouts_agree():
    x, m, batch = inputs(seed=3)
    pool = PANPooling(4).double()
    expected = pool(x, m, batch)
    testing.assert_close(pool(x, m.detach().to_sparse_csr(), batch), expected)
    testing.assert_close(pool(x, m.detach().to_sparse_csc(), batch), expected)


def test_gradients_reach_panconv():
    torch.manual_seed(0)
    x = torch.randn(12, 4, dtype=torch.float64)
    conv = PANConv(4, 4, filter_size=2).double()
    out, m = conv(x, torch.randint(0, 12, (2, 30)))
    pooled, _, edge_attr, _, _, _ = PANPooling(4).double()(out, m)
    (pooled.square().sum() + edge_attr.sum()).backward()
    assert conv.weight.grad.abs().sum() > 0 and conv.lin.weight.grad.abs().sum() > 0


def test_signatures_match_pyg():
    pyg = pytest.importorskip("torch_geometric.nn")
    for name in ("__init__", "forward"):
        ours = inspect.signature(getattr(PANPooling, name))
        theirs = inspect.signature(getattr(pyg.PANPooling, name))
        assert list(ours.parameters) == list(theirs.parameters)
        assert [p.default for p in ours.parameters.values()] == [
            p.default for p in theirs.parameters.values()
        ]
    assert list(PANPooling(3).state_dict()) == ["p", "beta", "select.weight"]


def test_empty_and_bad_inputs():
    pool = PANPooling(3)
    x, m = PANConv(3, 3, 1)(torch.zeros(0, 3), torch.zeros(2, 0, dtype=torch.long))
    out = pool(x, m)
    assert out[0].shape == (0, 3) and out[1].shape == (2, 0)
    x, m = PANConv(3, 3, 1)(torch.randn(4, 3), torch.tensor([[0, 1], [1, 2]]))
    with pytest.raises(TypeError, match="'M'"):
        pool(x, torch.tensor([[0, 1], [1, 2]]))
    with pytest.raises(ValueError, match="'M'"):
        pool(x[:3], m)
    with pytest.raises(ValueError, match="'batch'"):
        pool(x, m, torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="'ratio'"):
        PANPooling(3, ratio=0)
