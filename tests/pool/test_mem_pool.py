"""MemPooling: loop reference from the formula, PyG parity (outputs, KL loss, gradients), bad input."""

from __future__ import annotations

import inspect

import pytest
import torch

from gnn.core import testing
from gnn.pool import MemPooling


def reference(pool: MemPooling, x, batch):
    """One graph and one node at a time: Student-t kernels per head, head mixing, softmax, S^T X W."""
    keys = pool.k.detach().double()
    mix = pool.conv.weight.detach().double().view(-1)
    w = pool.lin.weight.detach().double()
    tau = pool.tau
    graphs = int(batch.max()) + 1
    n_max = int(torch.bincount(batch).max())
    out = torch.zeros(graphs, pool.num_clusters, w.size(0), dtype=torch.float64)
    s_all = torch.zeros(graphs, n_max, pool.num_clusters, dtype=torch.float64)
    for g in range(graphs):
        nodes = (batch == g).nonzero().view(-1).tolist()
        for slot, i in enumerate(nodes):
            mixed = torch.zeros(pool.num_clusters, dtype=torch.float64)
            for h in range(pool.heads):
                kernel = (1 + ((x[i] - keys[h]) ** 2).sum(-1) / tau) ** (-(tau + 1) / 2)
                mixed += mix[h] * kernel / kernel.sum()
            s_all[g, slot] = torch.softmax(mixed, 0)
        out[g] = s_all[g].t() @ torch.cat([x[nodes], x.new_zeros(n_max - len(nodes), x.size(1))]) @ w.t()
    return out, s_all


@pytest.mark.parametrize("tau", [1.0, 2.5])
def test_matches_loop_reference(tau):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(11, 5, generator=g, dtype=torch.float64)
    batch = torch.tensor([0, 0, 0, 1, 1, 1, 1, 1, 2, 2, 2])
    pool = MemPooling(5, 3, heads=2, num_clusters=4, tau=tau).double()
    testing.assert_close(pool(x, batch), reference(pool, x, batch))


@pytest.mark.parametrize("tau", [1.0, 2.0])
def test_matches_pyg(tau):
    pyg = pytest.importorskip("torch_geometric.nn")
    g = torch.Generator().manual_seed(1)
    x = torch.randn(20, 8, generator=g, dtype=torch.float64)
    batch = torch.tensor([0] * 8 + [1] * 12)
    theirs, ours = pyg.MemPooling(8, 5, 3, 4, tau=tau).double(), MemPooling(8, 5, 3, 4, tau=tau).double()
    testing.load_pyg_state(ours, theirs)
    assert repr(ours) == repr(theirs)
    x_ours, x_theirs = x.clone().requires_grad_(), x.clone().requires_grad_()
    out, expected = ours(x_ours, batch), theirs(x_theirs, batch)
    testing.assert_close(out, expected)
    loss, loss_pyg = MemPooling.kl_loss(out[1]), pyg.MemPooling.kl_loss(expected[1])
    testing.assert_close(loss, loss_pyg)
    (loss + out[0].square().sum()).backward()
    (loss_pyg + expected[0].square().sum()).backward()
    testing.assert_close(x_ours.grad, x_theirs.grad)
    for (name, p), q in zip(ours.named_parameters(), theirs.parameters()):
        testing.assert_close(p.grad, q.grad, msg=name)
        assert p.grad.abs().sum() > 0, name
    # dense input with and without a mask
    dense = torch.randn(2, 6, 8, generator=g, dtype=torch.float64)
    mask = torch.tensor([[1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 1]], dtype=torch.bool)
    testing.assert_close(ours(dense, mask=mask), theirs(dense, mask=mask))
    testing.assert_close(ours(dense), theirs(dense))
    testing.assert_close(
        ours(x, batch, max_num_nodes=15, batch_size=3), theirs(x, batch, max_num_nodes=15, batch_size=3)
    )


def test_kl_loss_of_empty_graphs_is_finite():
    pool = MemPooling(4, 3, 2, 3)
    x = torch.randn(5, 4, requires_grad=True)
    out, s = pool(x, torch.tensor([0, 0, 2, 2, 2]))  # graph 1 has no node (PyG's loss is NaN there)
    loss = MemPooling.kl_loss(s)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(x.grad).all() and torch.isfinite(pool.k.grad).all()
    out, s = pool(torch.zeros(0, 4), torch.zeros(0, dtype=torch.long))
    assert out.shape == (1, 3, 3) and s.shape == (1, 0, 3) and MemPooling.kl_loss(s) == 0


def test_signatures_match_pyg():
    pyg = pytest.importorskip("torch_geometric.nn")
    for name in ("__init__", "forward", "kl_loss"):
        ours = inspect.signature(getattr(MemPooling, name))
        theirs = inspect.signature(getattr(pyg.MemPooling, name))
        assert list(ours.parameters) == list(theirs.parameters)
        assert [p.default for p in ours.parameters.values()] == [
            p.default for p in theirs.parameters.values()
        ]
    assert list(MemPooling(4, 3, 2, 5).state_dict()) == ["k", "conv.weight", "lin.weight"]
    assert repr(MemPooling(4, 3, 2, 5)) == "MemPooling(4, 3, heads=2, num_clusters=5)"


def test_bad_inputs():
    pool = MemPooling(4, 3, 2, 2)
    with pytest.raises(ValueError, match="'x'"):
        pool(torch.randn(5, 3))
    with pytest.raises(ValueError, match="'batch'"):
        pool(torch.randn(5, 4), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="'batch'"):
        pool(torch.randn(2, 5, 4), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="'mask'"):
        pool(torch.randn(2, 5, 4), mask=torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="'mask'"):
        pool(torch.randn(5, 4), mask=torch.ones(5, dtype=torch.bool))
    with pytest.raises(ValueError, match="'heads'"):
        MemPooling(4, 3, 0, 2)
    with pytest.raises(ValueError, match="'tau'"):
        MemPooling(4, 3, 2, 2, tau=0.0)
    with pytest.raises(ValueError, match="'S'"):
        MemPooling.kl_loss(torch.rand(3, 4))
