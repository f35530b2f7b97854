"""ViSNet: PyG parity after a strict load (energies and forces; PyG runs here on a brute-force
``pyg::radius`` from ``conftest.py``), forces against finite differences, rotation / translation
invariance of the energy and equivariance of the forces, batching, empty and single-atom inputs,
bad input, signatures and repr."""

from __future__ import annotations

import inspect
import math

import pytest
import torch
from torch import Tensor

from gnn.core import testing
from gnn.core import validation as v
from gnn.models import ViSNet
from gnn.models import visnet as mod

SMALL = dict(num_layers=2, hidden_channels=16, num_heads=4, num_rbf=8)


# -- PyG on a brute-force radius search --------------------------------------------------
@pytest.fixture
def pyg(pyg_with_radius):
    """PyG with its ``radius_graph`` running on ``conftest.py``'s brute force (no pyg-lib here)."""
    return pyg_with_radius


def molecules(sizes, seed=0, dtype=torch.float32, spread=1.2):
    g = torch.Generator().manual_seed(seed)
    n = sum(sizes)
    z = torch.randint(1, 10, (n,), generator=g)
    pos = (torch.randn(n, 3, generator=g, dtype=torch.float64) * spread).to(dtype)
    batch = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes, dtype=torch.long))
    return z, pos, batch


def pair(pyg, **kwargs):
    from torch_geometric.nn.models import ViSNet as PyGViSNet

    torch.manual_seed(0)
    theirs = PyGViSNet(**kwargs)
    ours = ViSNet(**kwargs)
    testing.load_pyg_state(ours, theirs)
    return ours, theirs


def rotation(seed=0, dtype=torch.float64) -> Tensor:
    q, _ = torch.linalg.qr(torch.randn(3, 3, generator=torch.Generator().manual_seed(seed), dtype=dtype))
    return q * torch.sign(torch.linalg.det(q))


# -- PyG parity --------------------------------------------------------------------------
CONFIGS = [
    dict(),
    dict(lmax=2),
    dict(vertex=True, num_layers=3),
    dict(lmax=2, vertex=True, vecnorm_type="max_min", trainable_vecnorm=True, trainable_rbf=True),
    dict(vecnorm_type="rms", reduce_op="mean", mean=1.5, std=2.0, atomref=torch.linspace(-1, 1, 100)),
    dict(cutoff=2.0, max_num_neighbors=3),
]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: ",".join(c) or "default")
def test_energy_and_forces_match_pyg(pyg, config):
    ours, theirs = pair(pyg, derivative=True, **{**SMALL, **config})
    assert repr(ours) == repr(theirs)
    z, pos, batch = molecules([5, 7, 1, 9], seed=1)
    e_p, f_p = theirs(z, pos.clone(), batch)
    e_o, f_o = ours(z, pos.clone(), batch)
    assert e_o.shape == e_p.shape == (4, 1) and f_o.shape == f_p.shape == (22, 3)
    testing.assert_close(e_o, e_p, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(f_o, f_p, atol=1e-5 * max(1.0, float(f_p.detach().abs().max())), rtol=1e-4)


def test_without_derivative_returns_none_and_matches_pyg(pyg):
    ours, theirs = pair(pyg, **SMALL)
    z, pos, batch = molecules([6, 4], seed=2)
    (e_o, f_o), (e_p, f_p) = ours(z, pos, batch), theirs(z, pos, batch)
    assert f_o is None and f_p is None and not pos.requires_grad
    testing.assert_close(e_o, e_p, atol=1e-5, rtol=1e-5)


def test_training_step_matches_pyg_gradients(pyg):
    """Energy + force loss, backward through the forces (double backward): the same parameter
    gradients as PyG."""
    ours, theirs = pair(pyg, derivative=True, lmax=2, vertex=True, **SMALL)
    z, pos, batch = molecules([5, 6], seed=3)
    target = torch.randn(pos.shape, generator=torch.Generator().manual_seed(0))
    for model in (ours, theirs):
        e, f = model(z, pos.clone(), batch)
        (e.sum() + ((f - target) ** 2).sum()).backward()
    grads_p = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        torch.testing.assert_close(p.grad, grads_p[name].grad, atol=2e-4, rtol=2e-3, msg=name)


def test_submodules_match_pyg(pyg):
    from torch_geometric.nn.models import visnet as theirs

    vec = torch.randn(7, 3, generator=torch.Generator().manual_seed(0))
    for lmax in (1, 2):
        testing.assert_close(mod.Sphere(lmax)(vec), theirs.Sphere(lmax)(vec))
    feats = torch.randn(5, 8, 6, generator=torch.Generator().manual_seed(1))
    feats[0] = 0  # an atom without vector features
    for norm in ("max_min", None, "rms"):
        for s in (3, 8):
            testing.assert_close(
                mod.VecLayerNorm(6, True, norm)(feats[:, :s]),
                theirs.VecLayerNorm(6, True, norm)(feats[:, :s]),
            )
    dist = torch.linspace(0, 6, 13)
    testing.assert_close(
        mod.ExpNormalSmearing(5.0, 16, False)(dist), theirs.ExpNormalSmearing(5.0, 16, False)(dist)
    )
    testing.assert_close(mod.CosineCutoff(4.0)(dist), theirs.CosineCutoff(4.0)(dist))


def test_signatures_and_repr_match_pyg(pyg):
    from torch_geometric.nn.models import visnet as theirs

    for name in (
        "ViSNet", "ViSNetBlock", "ViS_MP", "ViS_MP_Vertex", "Distance", "Sphere", "VecLayerNorm",
        "ExpNormalSmearing", "CosineCutoff", "NeighborEmbedding", "EdgeEmbedding",
        "GatedEquivariantBlock", "EquivariantScalar", "Atomref",
    ):  # fmt: skip
        ours_cls, theirs_cls = getattr(mod, name), getattr(theirs, name)
        _same_params(ours_cls.__init__, theirs_cls.__init__)
        if name not in ("ViS_MP_Vertex", "EquivariantScalar"):
            _same_params(ours_cls.forward, theirs_cls.forward)
    ours, pyg_model = pair(pyg, lmax=2, vertex=True, vecnorm_type="max_min", num_layers=3)
    assert repr(ours) == repr(pyg_model)
    assert ours.state_dict().keys() == pyg_model.state_dict().keys()


def _same_params(ours, theirs) -> None:
    """The same parameter names, order, kinds and defaults."""
    a, b = inspect.signature(ours).parameters, inspect.signature(theirs).parameters
    assert list(a) == list(b), (list(a), list(b))
    assert [p.default for p in a.values()] == [p.default for p in b.values()]
    assert [p.kind for p in a.values()] == [p.kind for p in b.values()]


# -- physics -----------------------------------------------------------------------------
def small_model(**kwargs) -> ViSNet:
    torch.manual_seed(0)
    return ViSNet(derivative=True, **{**SMALL, **kwargs}).double()


def test_forces_are_minus_the_energy_gradient():
    model = small_model(lmax=2, vertex=True, vecnorm_type="max_min")
    z, pos, batch = molecules([4], seed=4, dtype=torch.float64)
    _, forces = model(z, pos.clone(), batch)
    h = 1e-6
    for atom, axis in ((0, 0), (2, 1), (3, 2)):
        step = torch.zeros_like(pos)
        step[atom, axis] = h
        e_plus, _ = model(z, pos + step, batch)
        e_minus, _ = model(z, pos - step, batch)
        numeric = -(e_plus - e_minus).item() / (2 * h)
        assert math.isclose(forces[atom, axis].item(), numeric, rel_tol=1e-5, abs_tol=1e-7)


@pytest.mark.parametrize("config", [dict(), dict(lmax=2, vertex=True, vecnorm_type="max_min")])
def test_energy_invariant_and_forces_equivariant(config):
    model = small_model(**config)
    z, pos, batch = molecules([6, 5], seed=5, dtype=torch.float64)
    rot, shift = rotation(1), torch.tensor([0.3, -2.0, 1.1], dtype=torch.float64)
    e, f = model(z, pos.clone(), batch)
    e_rot, f_rot = model(z, pos @ rot.T + shift, batch)
    torch.testing.assert_close(e_rot, e, atol=1e-10, rtol=1e-9)
    torch.testing.assert_close(f_rot, f @ rot.T, atol=1e-10, rtol=1e-8)
    assert f.abs().max() > 1e-3  # the check is not vacuous


def test_batch_equals_molecules_one_by_one():
    model = small_model(lmax=2)
    z, pos, batch = molecules([3, 1, 6], seed=6, dtype=torch.float64)
    e, f = model(z, pos.clone(), batch)
    start = 0
    for g, n in enumerate((3, 1, 6)):
        sl = slice(start, start + n)
        e_g, f_g = model(z[sl], pos[sl].clone(), torch.zeros(n, dtype=torch.long))
        torch.testing.assert_close(e[g : g + 1], e_g, atol=1e-12, rtol=1e-10)
        torch.testing.assert_close(f[sl], f_g, atol=1e-12, rtol=1e-10)
        start += n
    # batch=None: one molecule
    e_none, f_none = model(z[:3], pos[:3].clone(), None)
    torch.testing.assert_close(e_none, e[:1], atol=1e-12, rtol=1e-10)


def test_empty_and_single_atom_molecules():
    model = small_model()
    empty = torch.zeros(0, dtype=torch.long)
    e, f = model(empty, torch.zeros(0, 3, dtype=torch.float64), empty)
    assert e.shape == (0, 1) and f.shape == (0, 3)
    e, f = model(torch.tensor([6]), torch.randn(1, 3, dtype=torch.float64), torch.tensor([0]))
    assert (
        e.shape == (1, 1)
        and torch.isfinite(e).all()
        and torch.equal(f, torch.zeros(1, 3, dtype=torch.float64))
    )
    # far-apart atoms: no neighbours at all, the same energy wherever they are
    z, pos = torch.tensor([1, 6, 8]), torch.tensor([[0.0, 0, 0], [20, 0, 0], [0, 0, 40]], dtype=torch.float64)
    e1, f1 = model(z, pos.clone(), torch.zeros(3, dtype=torch.long))
    e2, _ = model(z, pos * 2, torch.zeros(3, dtype=torch.long))
    torch.testing.assert_close(e1, e2)
    assert torch.equal(f1, torch.zeros_like(f1))


def test_int32_indices_non_contiguous_positions_and_no_grad():
    model = small_model()
    z, pos, batch = molecules([4, 5], seed=7, dtype=torch.float64)
    e, f = model(z, pos.clone(), batch)
    pos_t = pos.t().contiguous().t()  # non-contiguous view of the same values
    assert not pos_t.is_contiguous()
    with torch.no_grad():  # forces still come out under no_grad
        e2, f2 = model(z.int(), pos_t, batch.int())
    torch.testing.assert_close(e2, e)
    torch.testing.assert_close(f2, f)


def test_bad_input():
    model = small_model()
    z, pos, batch = molecules([3], dtype=torch.float64)
    with pytest.raises(ValueError, match="'pos'"):
        model(z, pos[:, :2], batch)
    with pytest.raises(TypeError, match="'pos'"):
        model(z, pos.long(), batch)
    with pytest.raises(TypeError, match="'z'"):
        model(z.double(), pos, batch)
    with pytest.raises(ValueError, match="'z'"):
        model(z[:2], pos, batch)
    with pytest.raises(v.IndexRangeError, match="'z'"):
        model(torch.tensor([1, 2, 100]), pos, batch)
    with pytest.raises(ValueError, match="'batch'"):
        model(z, pos, batch[:2])
    with pytest.raises(ValueError, match="'lmax'"):
        ViSNet(lmax=3)
    with pytest.raises(ValueError, match="divisible"):
        ViSNet(hidden_channels=10, num_heads=3)
    with pytest.raises(ValueError, match="'vecnorm_type'"):
        ViSNet(vecnorm_type="layer")
    with pytest.raises(ValueError, match="'reduce_op'"):
        ViSNet(reduce_op="median")
    with pytest.raises(ValueError, match="'cutoff'"):
        ViSNet(cutoff=-1.0)
    with pytest.raises(TypeError, match="'num_layers'"):
        ViSNet(num_layers=2.0)
    with pytest.raises(ValueError, match="'vec'"):
        mod.VecLayerNorm(4, False)(torch.zeros(2, 5, 4))


def test_force_training_gradients_same_with_kernels_and_pure_torch():
    """Training on forces differentiates every sum over edges twice: at a size where gnn-kernels'
    reductions run (when installed), the parameter gradients equal those on pure torch."""
    from gnn.core import ops

    model = small_model(hidden_channels=32, num_heads=4)
    z, pos, batch = molecules([40], seed=8, dtype=torch.float64, spread=1.5)
    grads = []
    for forced in (False, True):
        model.zero_grad()
        with ops.backend("torch") if forced else torch.enable_grad():
            e, f = model(z, pos.clone(), batch)
            (e.sum() + (f**2).sum()).backward()
        grads.append({k: p.grad.clone() for k, p in model.named_parameters()})
    for name, g in grads[1].items():
        torch.testing.assert_close(grads[0][name], g, atol=1e-9, rtol=1e-7, msg=name)
