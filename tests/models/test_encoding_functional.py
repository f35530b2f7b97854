"""PositionalEncoding, TemporalEncoding, bro and gini: formulas written here, PyG parity, gradients."""

from __future__ import annotations

import math

import pytest
import torch

from gnn.core import testing
from gnn.models import PositionalEncoding, TemporalEncoding, bro, gini


def test_positional_encoding_formula():
    enc = PositionalEncoding(6, base_freq=1e-3, granularity=2.0)
    x = torch.tensor([0.0, 1.5, 4.0, 10.0])
    freq = torch.tensor([1e-3 ** (k / 2) for k in range(3)])
    arg = (x / 2.0).view(-1, 1) * freq.view(1, -1)
    testing.assert_close(enc(x), torch.cat([arg.sin(), arg.cos()], -1))
    assert enc(torch.zeros(2, 3)).shape == (6, 6)
    assert "frequency" in enc.state_dict()
    with pytest.raises(ValueError, match="out_channels"):
        PositionalEncoding(5)


def test_temporal_encoding_formula():
    enc = TemporalEncoding(5)
    t = torch.tensor([0.0, 2.0, 7.5])
    root = math.sqrt(5)
    weight = torch.tensor([root ** -(root * k / 4) for k in range(5)])
    testing.assert_close(enc(t), torch.cos(t.view(-1, 1) * weight.view(1, -1)))


def test_encodings_match_pyg():
    pyg = pytest.importorskip("torch_geometric")
    x = torch.rand(20) * 100
    for ours, theirs in (
        (PositionalEncoding(8, 1e-4, 3.0), pyg.nn.PositionalEncoding(8, 1e-4, 3.0)),
        (TemporalEncoding(7), pyg.nn.TemporalEncoding(7)),
    ):
        testing.load_pyg_state(ours, theirs)
        assert repr(ours) == repr(theirs)
        testing.assert_close(ours(x), theirs(x))


def bro_reference(x, batch, p):
    total, graphs = 0.0, sorted(set(batch.tolist()))
    for g in graphs:
        xg = x[batch == g].double()
        diff = xg @ xg.t() - torch.eye(xg.size(0), dtype=torch.float64)
        total += torch.linalg.matrix_norm(diff, "nuc") if p == "nuc" else diff.abs().pow(p).sum() ** (1 / p)
    return total / len(graphs)


@pytest.mark.parametrize("p", [2, 1, "nuc"])
def test_bro_formula(p):
    x = torch.randn(9, 4)
    batch = torch.tensor([0, 0, 0, 1, 1, 3, 3, 3, 3])  # graph 2 is empty: not counted
    testing.assert_close(bro(x, batch, p).double(), torch.as_tensor(bro_reference(x, batch, p)))
    assert float(bro(torch.eye(3), torch.tensor([0, 1, 2]))) == 0.0
    with pytest.raises(ValueError, match="sorted"):
        bro(x, batch.flip(0))
    with pytest.raises(ValueError, match="batch"):
        bro(x, batch[:3])


def test_gini_formula_and_gradient():
    w = torch.randn(4, 6, dtype=torch.float64)
    w[0, :3] = 0.0  # ties, as in sparse weights
    w[1, 2] = w[1, 4]

    def reference(w):
        rows = []
        for row in w:
            n = row.numel()
            pairwise = (row.view(-1, 1) - row.view(1, -1)).abs().sum()
            rows.append(pairwise / (2 * (n * n - n) * row.abs().mean() + torch.finfo().eps))
        return torch.stack(rows).mean()

    a, b = w.clone().requires_grad_(), w.clone().requires_grad_()
    out, expected = gini(a), reference(b)
    testing.assert_close(out, expected, atol=1e-12, rtol=1e-10)
    out.backward()
    expected.backward()
    testing.assert_close(a.grad, b.grad, atol=1e-12, rtol=1e-10)
    assert float(gini(torch.ones(2, 5))) == 0.0
    with pytest.raises(ValueError, match="w"):
        gini(torch.ones(5))


def test_bro_and_gini_match_pyg():
    pyg = pytest.importorskip("torch_geometric")
    from torch_geometric.nn.functional import bro as bro_p
    from torch_geometric.nn.functional import gini as gini_p

    x = torch.randn(10, 4)
    batch = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2, 2, 2])
    for p in (2, "fro", "nuc"):
        testing.assert_close(bro(x, batch, p), bro_p(x, batch, p))
    w = torch.randn(3, 8)
    testing.assert_close(gini(w), gini_p(w))
    assert pyg is not None
