"""torch-scatter / torch-sparse adapters against the pure-torch reference.

Runs in the optional nox session that compiles torch-scatter and torch-sparse
(``nox -s optional_backends``); skipped where they are not installed.
"""

from __future__ import annotations

import pytest
import torch

from gnn.core import ops, testing, utils
from gnn.core.ops import backends


def _with(name, fn):
    with ops.backend(name):
        a = fn()
    with ops.backend("torch"):
        b = fn()
    return a, b


@pytest.mark.parametrize("reduce", ["sum", "mean", "max", "min", "mul"])
def test_torch_scatter_adapter(reduce):
    pytest.importorskip("torch_scatter")
    assert "torchscatter" in backends.available()  # names are normalized like registry names
    g = torch.Generator().manual_seed(0)
    src = torch.randn(60, 4, dtype=torch.float64, generator=g, requires_grad=True)
    index = torch.randint(0, 10, (60,), generator=g)
    a, b = _with("torch_scatter", lambda: ops.scatter(src, index, 0, 12, reduce))
    torch.testing.assert_close(a, b)
    idx = index.sort().values
    ptr = torch.cat([idx.new_zeros(1), torch.bincount(idx, minlength=12).cumsum(0)])
    a, b = _with("torch_scatter", lambda: ops.segment(src, ptr, 0, reduce))
    torch.testing.assert_close(a, b)


@pytest.mark.parametrize("reduce", ["sum", "mean", "max", "min"])
def test_torch_sparse_adapter(reduce):
    pytest.importorskip("torch_sparse")
    assert "torchsparse" in backends.available()
    x, edge_index = testing.random_graph(20, 80, 5, seed=1, dtype=torch.float64)
    csr = utils.to_csr(edge_index, (20, 20), cache=False)
    w = torch.rand(80, dtype=torch.float64)
    for weight in (None, w):
        a, b = _with("torch_sparse", lambda: ops.spmm(csr, x, weight, reduce))
        torch.testing.assert_close(a, b)
    x.requires_grad_(True)
    with ops.backend("torch_sparse"):
        torch.autograd.gradcheck(lambda x: ops.spmm(csr, x, w, "sum"), (x,))


def test_sparse_tensor_input_matches_edge_index():
    pytest.importorskip("torch_sparse")
    from gnn.core import MessagePassing

    class Plain(MessagePassing):
        def forward(self, x, edge_index):
            return self.propagate(edge_index, x=x)

    x, edge_index = testing.random_graph(15, 50, 3, seed=2)
    names = [name for name, _ in testing.edge_index_formats(edge_index, 15)]
    assert "SparseTensor" in names
    for aggr in ("sum", "mean", "max"):
        testing.assert_formats_agree(lambda adj: Plain(aggr=aggr)(x, adj), edge_index, 15)


def test_empty_inputs_never_reach_the_extensions():
    pytest.importorskip("torch_sparse")
    empty = utils.to_csr(torch.empty(2, 0, dtype=torch.long), (0, 0), cache=False)
    with ops.backend("torch_sparse"):
        assert ops.spmm(empty, torch.empty(0, 3), None, "sum").shape == (0, 3)
    with ops.backend("torch_scatter"):
        assert (
            ops.scatter(torch.empty(0, 3), torch.empty(0, dtype=torch.long), 0, 4, "max").tolist()
            == [[0.0] * 3] * 4
        )
