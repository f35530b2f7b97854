"""GNNFF: PyG parity after a strict load in training and eval mode (PyG runs here on the brute-force
``pyg::radius`` of ``conftest.py`` and a loop-built triplet list defined in this test, since
torch-sparse and pyg-lib are not installed), the triplets against a loop reference, equivariance of
the forces, batching, empty and single-atom inputs, gradients, bad input, signatures and repr."""

from __future__ import annotations

import inspect

import pytest
import torch
from torch import Tensor

from gnn.core import testing
from gnn.core import validation as v
from gnn.models import GNNFF
from gnn.models import gnnff as mod


# -- reference pieces (loops) -------------------------------------------------------------
def loop_triplets(edge_index: Tensor, num_nodes: int):
    """Every (edge k -> j, edge j -> i) with k != i, by a double loop over the edges."""
    src, dst = edge_index.tolist()
    out = [[], [], [], [], []]  # idx_i, idx_j, idx_k, idx_kj, idx_ji
    for e in range(len(src)):
        for f in range(len(src)):
            if dst[f] == src[e] and src[f] != dst[e]:
                for lst, val in zip(out, (dst[e], src[e], src[f], f, e)):
                    lst.append(val)
    as_t = [torch.tensor(x, dtype=torch.long) for x in out]
    return (edge_index[1], edge_index[0], *as_t)


@pytest.fixture
def pyg(pyg_with_radius, monkeypatch):
    """PyG on the brute-force radius search of ``conftest.py`` and :func:`loop_triplets`."""
    import torch_geometric.nn.models.gnnff as pyg_gnnff

    monkeypatch.setattr(pyg_gnnff, "triplets", loop_triplets)  # PyG's needs torch-sparse
    return pyg_with_radius


def molecules(sizes, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    n = sum(sizes)
    z = torch.randint(1, 10, (n,), generator=g)
    pos = (torch.randn(n, 3, generator=g, dtype=torch.float64) * 1.2).to(dtype)
    batch = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes, dtype=torch.long))
    return z, pos, batch


def pair(pyg, *args, **kwargs):
    torch.manual_seed(0)
    theirs = pyg.nn.models.GNNFF(*args, **kwargs)
    ours = GNNFF(*args, **kwargs)
    testing.load_pyg_state(ours, theirs)
    return ours, theirs


def scramble_bn_stats(model: torch.nn.Module, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm1d):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g))
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
            m.weight.data.copy_(torch.randn(m.weight.shape, generator=g))


def rotation(seed=0) -> Tensor:
    q, _ = torch.linalg.qr(
        torch.randn(3, 3, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    )
    return q * torch.sign(torch.linalg.det(q))


# -- PyG parity ----------------------------------------------------------------------------
@pytest.mark.parametrize("cutoff,max_nb", [(5.0, 32), (2.5, 3)])
def test_forces_match_pyg_in_training_mode(pyg, cutoff, max_nb):
    ours, theirs = pair(pyg, 16, 8, 3, cutoff=cutoff, max_num_neighbors=max_nb)
    assert repr(ours) == repr(theirs)
    z, pos, batch = molecules([5, 7, 2, 9], seed=1)
    f_p, f_o = theirs(z, pos, batch), ours(z, pos, batch)
    assert f_o.shape == f_p.shape == (23, 3)
    testing.assert_close(f_o, f_p, atol=1e-5, rtol=1e-5)
    # the BatchNorm running statistics moved the same way
    for (name, a), b in zip(ours.state_dict().items(), theirs.state_dict().values()):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5, msg=name)


def test_forces_and_gradients_match_pyg_in_eval_mode(pyg):
    ours, theirs = pair(pyg, 12, 6, 2)
    with torch.no_grad():
        scramble_bn_stats(theirs)
    testing.load_pyg_state(ours, theirs)
    ours.eval(), theirs.eval()
    z, pos, batch = molecules([6, 8], seed=2)
    target = torch.randn(14, 3, generator=torch.Generator().manual_seed(3))
    for model in (ours, theirs):
        p = pos.clone().requires_grad_()
        f = model(z, p, batch)
        ((f - target) ** 2).sum().backward()
        model.pos_grad = p.grad
    testing.assert_close(ours(z, pos, batch), theirs(z, pos, batch), atol=1e-5, rtol=1e-5)
    testing.assert_close(ours.pos_grad, theirs.pos_grad, atol=1e-4, rtol=1e-4)
    grads = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        torch.testing.assert_close(p.grad, grads[name].grad, atol=1e-4, rtol=1e-4, msg=name)


def test_signatures_and_repr_match_pyg(pyg):
    from torch_geometric.nn.models import gnnff as theirs

    for name in ("GNNFF", "GaussianFilter", "NodeBlock", "EdgeBlock", "ShiftedSoftplus"):
        for method in ("__init__", "forward"):
            a = inspect.signature(getattr(getattr(mod, name), method)).parameters
            b = inspect.signature(getattr(getattr(theirs, name), method)).parameters
            assert list(a) == list(b), name
            assert [p.default for p in a.values()] == [p.default for p in b.values()], name
    ours, pyg_model = pair(pyg, 8, 4, 1, cutoff=3.0)
    assert repr(ours) == repr(pyg_model)
    assert ours.edge_emb.coeff == pyg_model.edge_emb.coeff
    assert (ours.cutoff, ours.max_num_neighbors) == (pyg_model.cutoff, pyg_model.max_num_neighbors)


# -- triplets ----------------------------------------------------------------------------
def test_triplets_equal_loop_reference():
    g = torch.Generator().manual_seed(0)
    for n, e in ((6, 14), (9, 30), (1, 0), (0, 0)):
        edge_index = torch.randint(0, max(n, 1), (2, e), generator=g)
        ours = mod.triplets(edge_index, n)
        ref = loop_triplets(edge_index, n)
        assert torch.equal(ours[0], ref[0]) and torch.equal(ours[1], ref[1])
        # the same set of triplets (order may differ among equal senders)
        key = lambda t: sorted(zip(*(x.tolist() for x in t[2:])))  # noqa: E731
        assert key(ours) == key(ref)
        assert torch.equal(ours[6], torch.sort(ours[6], stable=True).values)  # grouped by j -> i


# -- physics and batching ---------------------------------------------------------------
def eval_model(*args, **kwargs) -> GNNFF:
    torch.manual_seed(0)
    model = GNNFF(*args, **kwargs).double()
    with torch.no_grad():
        scramble_bn_stats(model, 1)
    return model.eval()


def test_forces_rotate_with_the_molecule():
    model = eval_model(12, 6, 2)
    z, pos, batch = molecules([7, 5], seed=4, dtype=torch.float64)
    rot, shift = rotation(2), torch.tensor([1.0, -0.5, 3.0], dtype=torch.float64)
    f = model(z, pos, batch)
    torch.testing.assert_close(model(z, pos @ rot.T + shift, batch), f @ rot.T, atol=1e-10, rtol=1e-8)
    assert f.abs().max() > 1e-3
    model.train()  # batch statistics are invariant too
    torch.testing.assert_close(model(z, pos @ rot.T + shift, batch), model(z, pos, batch) @ rot.T)


def test_batch_equals_molecules_one_by_one():
    model = eval_model(12, 6, 2)
    sizes = (4, 1, 6)
    z, pos, batch = molecules(sizes, seed=5, dtype=torch.float64)
    f = model(z, pos, batch)
    start = 0
    for n in sizes:
        sl = slice(start, start + n)
        torch.testing.assert_close(f[sl], model(z[sl], pos[sl]), atol=1e-12, rtol=1e-10)
        start += n


def test_empty_isolated_and_single_atoms():
    model = eval_model(8, 4, 2)
    assert model(torch.zeros(0, dtype=torch.long), torch.zeros(0, 3, dtype=torch.float64)).shape == (0, 3)
    assert torch.equal(
        model(torch.tensor([6]), torch.randn(1, 3, dtype=torch.float64)),
        torch.zeros(1, 3, dtype=torch.float64),
    )
    # the last atom is far away: its row is zero (PyG would drop the row)
    z = torch.tensor([1, 6, 8])
    pos = torch.tensor([[0.0, 0, 0], [1.0, 0.2, 0], [50, 0, 0]], dtype=torch.float64)
    f = model(z, pos)
    assert f.shape == (3, 3) and torch.equal(f[2], torch.zeros(3, dtype=torch.float64))
    assert f[:2].abs().max() > 0
    torch.testing.assert_close(f[0], -f[1])  # two atoms alone: equal and opposite


def test_int32_indices_and_non_contiguous_positions():
    model = eval_model(8, 4, 1)
    z, pos, batch = molecules([5, 4], seed=6, dtype=torch.float64)
    pos_t = pos.t().contiguous().t()
    assert not pos_t.is_contiguous()
    torch.testing.assert_close(model(z.int(), pos_t, batch.int()), model(z, pos, batch))


def test_bad_input():
    model = eval_model(8, 4, 1)
    z, pos, batch = molecules([3], dtype=torch.float64)
    with pytest.raises(ValueError, match="'pos'"):
        model(z, pos[:, :2])
    with pytest.raises(TypeError, match="'z'"):
        model(z.float(), pos)
    with pytest.raises(v.IndexRangeError, match="'z'"):
        model(torch.tensor([1, 95, 2]), pos)
    with pytest.raises(ValueError, match="'batch'"):
        model(z, pos, batch[:1])
    with pytest.raises(ValueError, match="'cutoff'"):
        GNNFF(8, 4, 1, cutoff=0.0)
    with pytest.raises(TypeError, match="'hidden_node_channels'"):
        GNNFF("8", 4, 1)
    with pytest.raises(ValueError, match="'batch'"):  # radius_graph needs molecules in order
        model(z, pos, torch.tensor([1, 0, 1]))
