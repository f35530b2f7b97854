"""DimeNet and DimeNet++: parity with PyG after a strict state_dict load (energies and forces),
closed-form bases against their definitions (SciPy's spherical Bessel functions and Legendre
polynomials) and PyG's sympy-built ones, triplets against a loop, invariance / equivariance,
batching, empty and single-atom inputs, bad input, signatures and repr.

PyG's DimeNet needs torch-cluster (radius graph) and torch-sparse (triplets), which are not
installed: inside this module only, PyG's module-level ``radius_graph`` and ``triplets`` are
replaced by the brute-force versions written here."""

from __future__ import annotations

import inspect
import math

import pytest
import torch

from gnn.core import testing
from gnn.models import DimeNet, DimeNetPlusPlus
from gnn.models import _spherical as sph
from gnn.models import dimenet as dn
from gnn.models.schnet import ShiftedSoftplus


def params(fn):
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]


def brute_radius_graph(pos, r, batch=None, max_num_neighbors=32):
    n = pos.size(0)
    batch = torch.zeros(n, dtype=torch.long) if batch is None else batch
    rows, cols = [], []
    for i in range(n):
        found = [
            j
            for j in range(n)
            if j != i and batch[j] == batch[i] and float((pos[i] - pos[j]).pow(2).sum()) < r * r
        ]
        for j in found[:max_num_neighbors]:
            rows.append(j)
            cols.append(i)
    return torch.tensor([rows, cols], dtype=torch.long).view(2, -1)


def loop_triplets(edge_index, num_nodes):
    """Per edge e = (j -> i), every edge f = (k -> j) with k != i, ordered by e then k."""
    row, col = edge_index.tolist()
    found = [[] for _ in range(5)]
    for e, (j, i) in enumerate(zip(row, col)):
        for k, f in sorted((row[f], f) for f in range(len(row)) if col[f] == j and row[f] != i):
            for lst, value in zip(found, (i, j, k, f, e)):
                lst.append(value)
    idx = [torch.tensor(x, dtype=torch.long) for x in found]
    return (edge_index[1], edge_index[0], *idx)


@pytest.fixture
def pyg_dimenet(monkeypatch):
    mod = pytest.importorskip("torch_geometric.nn.models.dimenet")
    pytest.importorskip("sympy")
    pytest.importorskip("scipy")

    def radius_graph(pos, r, batch=None, max_num_neighbors=32, **kwargs):
        return brute_radius_graph(pos.detach(), r, batch, max_num_neighbors)

    monkeypatch.setattr(mod, "radius_graph", radius_graph)
    monkeypatch.setattr(mod, "triplets", lambda edge_index, num_nodes: loop_triplets(edge_index, num_nodes))
    return mod


@pytest.fixture
def pyg_zeros(monkeypatch, pyg_dimenet):
    """Our models built with PyG's Bessel zeros (found by PyG in float32 precision, ~1e-6 off
    the exact ones that gnn uses and that are tested against SciPy above). PyG evaluates its
    sympy expressions from float32-exact constants, so ~1e-7 relative differences remain."""
    utils = pytest.importorskip("torch_geometric.nn.models.dimenet_utils")
    monkeypatch.setattr(
        dn, "spherical_bessel_zeros", lambda n, k: tuple(map(tuple, utils.Jn_zeros(n, k).tolist()))
    )


def molecules(sizes=(5, 7, 1, 4), seed=0):
    """Random molecules: atoms on distinct cells of a 0.8 Å lattice, jittered by up to ±0.15 Å
    (at least 0.5 Å apart, as real atoms are; nearly coincident atoms make the 1/d terms of
    the bases blow up)."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randint(1, 10, (sum(sizes),), generator=g)
    parts = []
    for n in sizes:
        cells = torch.randperm(27, generator=g)[:n]
        grid = torch.stack([cells // 9, (cells // 3) % 3, cells % 3], dim=1).double()
        parts.append(grid * 0.8 + (torch.rand(n, 3, generator=g, dtype=torch.float64) - 0.5) * 0.3)
    pos = torch.cat(parts).requires_grad_()
    batch = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))
    return z, pos, batch


def energy_forces(model, z, pos, batch=None):
    out = model(z, pos, batch)
    return out, -torch.autograd.grad(out.sum(), pos, create_graph=True)[0]


DIMENET = dict(hidden_channels=8, out_channels=2, num_blocks=2, num_bilinear=3, num_spherical=3, num_radial=4)
DIMENET_PP = dict(
    hidden_channels=8,
    out_channels=2,
    num_blocks=2,
    int_emb_size=4,
    basis_emb_size=3,
    out_emb_channels=6,
    num_spherical=3,
    num_radial=4,
)


# -- bases ---------------------------------------------------------------------------------------
def test_spherical_bessel_and_zeros_against_scipy():
    special = pytest.importorskip("scipy.special")
    x = torch.linspace(0.3, 25.0, 300, dtype=torch.float64)
    for order in range(7):
        expected = torch.from_numpy(special.spherical_jn(order, x.numpy()))
        # (the closed form cancels for x << order, as sympy's does: ~1e-9 at x = 0.3, order 6)
        testing.assert_close(sph.spherical_bessel(order, x), expected, atol=1e-6, rtol=2e-6)
    zeros = torch.tensor(sph.spherical_bessel_zeros(7, 6), dtype=torch.float64)
    for order in range(7):
        values = torch.from_numpy(special.spherical_jn(order, zeros[order].numpy()))
        assert values.abs().max() < 1e-12
        assert bool((zeros[order][1:] > zeros[order][:-1]).all())
    testing.assert_close(zeros[0], math.pi * torch.arange(1, 7, dtype=torch.float64), atol=1e-12, rtol=0)


def test_spherical_harmonics_against_legendre():
    special = pytest.importorskip("scipy.special")
    t = torch.linspace(-1, 1, 101, dtype=torch.float64)
    y = sph.spherical_harmonics_m0(7, t)
    for deg in range(7):
        expected = math.sqrt((2 * deg + 1) / (4 * math.pi)) * torch.from_numpy(
            special.eval_legendre(deg, t.numpy())
        )
        testing.assert_close(y[:, deg], expected, atol=1e-13, rtol=1e-12)


def test_basis_layers_against_formulas_and_pyg(pyg_dimenet):
    special = pytest.importorskip("scipy.special")
    dist = torch.linspace(0.4, 4.9, 40, dtype=torch.float64)
    cutoff, p = 5.0, 6
    x = dist / cutoff
    env = 1 / x - (p + 1) * (p + 2) / 2 * x ** (p - 1) + p * (p + 2) * x**p - p * (p + 1) / 2 * x ** (p + 1)
    testing.assert_close(dn.Envelope(5)(x), env)
    testing.assert_close(dn.Envelope(5)(x), pyg_dimenet.Envelope(5)(x))
    assert dn.Envelope(5)(torch.tensor([1.0, 1.5])).abs().max() == 0
    rbf = dn.BesselBasisLayer(6, cutoff).double()
    expected = env.view(-1, 1) * torch.sin(torch.arange(1, 7) * math.pi * x.view(-1, 1))
    testing.assert_close(rbf(dist), expected)
    testing.assert_close(rbf(dist), pyg_dimenet.BesselBasisLayer(6, cutoff).double()(dist))

    ours = dn.SphericalBasisLayer(4, 3, cutoff)
    theirs = pyg_dimenet.SphericalBasisLayer(4, 3, cutoff)  # (sympy: slow to build, built once here)
    angle = torch.rand(60, dtype=torch.float64) * math.pi
    idx_kj = torch.randint(0, 40, (60,))
    zeros = torch.tensor(sph.spherical_bessel_zeros(4, 3), dtype=torch.float64)
    expected = torch.empty(60, 4, 3, dtype=torch.float64)
    for deg in range(4):
        legendre = torch.from_numpy(special.eval_legendre(deg, torch.cos(angle).numpy()))
        y = math.sqrt((2 * deg + 1) / (4 * math.pi)) * legendre
        for n in range(3):
            z_ln = zeros[deg, n].item()
            norm = math.sqrt(2) / abs(special.spherical_jn(deg + 1, z_ln))
            j = torch.from_numpy(special.spherical_jn(deg, (z_ln * x[idx_kj]).numpy()))
            expected[:, deg, n] = env[idx_kj] * norm * j * y
    out = ours(dist, angle, idx_kj)
    testing.assert_close(out, expected.view(60, 12), atol=1e-10, rtol=1e-9)
    # PyG's zeros are found in float32 precision (off by ~1e-6): equal to that tolerance
    testing.assert_close(out, theirs(dist, angle, idx_kj), atol=1e-5, rtol=1e-5)
    assert list(ours.state_dict()) == list(theirs.state_dict()) == []


def test_triplets_match_loop_reference():
    z, pos, batch = molecules(sizes=(6, 8, 1, 5), seed=2)
    for max_nb in (32, 2):
        ei = brute_radius_graph(pos.detach(), 2.0, batch, max_nb)
        ours = dn.triplets(ei, z.numel())
        expected = loop_triplets(ei, z.numel())
        for a, b in zip(ours, expected):
            assert torch.equal(a, b)
    # an unsorted, int32 edge list: the same triplets up to order
    perm = torch.randperm(ei.size(1), generator=torch.Generator().manual_seed(0))
    shuffled = ei[:, perm].int()
    got = dn.triplets(shuffled, z.numel())
    ref = loop_triplets(shuffled.long(), z.numel())
    key = lambda t: sorted(zip(*(x.tolist() for x in t[2:])))  # noqa: E731
    assert key(got) == key(ref)
    empty = dn.triplets(torch.empty(2, 0, dtype=torch.long), 3)
    assert all(t.numel() == 0 for t in empty)


# -- parity --------------------------------------------------------------------------------------
@pytest.mark.parametrize("plus", [False, True])
def test_energies_and_forces_match_pyg(pyg_dimenet, pyg_zeros, plus):
    torch.manual_seed(0)
    kwargs = dict(DIMENET_PP if plus else DIMENET, cutoff=2.0, output_initializer="glorot_orthogonal")
    theirs = (pyg_dimenet.DimeNetPlusPlus if plus else pyg_dimenet.DimeNet)(**kwargs).double()
    ours = (DimeNetPlusPlus if plus else DimeNet)(**kwargs).double()
    testing.load_pyg_state(ours, theirs)
    assert repr(ours) == repr(theirs)
    z, pos, batch = molecules()
    e1, f1 = energy_forces(ours, z, pos, batch)
    e2, f2 = energy_forces(theirs, z, pos, batch)
    assert e1.shape == e2.shape == (4, 2)
    testing.assert_close(e1, e2, atol=1e-6, rtol=2e-6)
    testing.assert_close(f1, f2, atol=1e-6, rtol=2e-6)
    assert f1.abs().max() > 1e-2
    e1.sum().backward()
    e2.sum().backward()
    theirs_grads = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        testing.assert_close(p.grad, theirs_grads[name].grad, atol=1e-6, rtol=2e-6, msg=name)
    # without batch: one molecule, a [out_channels] output
    one = ours(z[:5], pos[:5])
    assert one.shape == (2,)
    testing.assert_close(one, theirs(z[:5], pos[:5]), atol=1e-6, rtol=2e-6)


def test_relu_activation_matches_pyg(pyg_dimenet, pyg_zeros):
    torch.manual_seed(0)
    kwargs = dict(DIMENET_PP, cutoff=2.0, act="relu", output_initializer="glorot_orthogonal")
    theirs = pyg_dimenet.DimeNetPlusPlus(**kwargs).double()
    ours = DimeNetPlusPlus(**kwargs).double()
    testing.load_pyg_state(ours, theirs)
    assert repr(ours) == repr(theirs)
    z, pos, batch = molecules()
    testing.assert_close(ours(z, pos, batch), theirs(z, pos, batch), atol=1e-6, rtol=2e-6)


# -- physics -------------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [DimeNet, DimeNetPlusPlus])
def test_invariance_equivariance_batching_and_edge_cases(cls):
    torch.manual_seed(0)
    kwargs = DIMENET if cls is DimeNet else DIMENET_PP
    model = cls(**kwargs, cutoff=2.0, output_initializer="glorot_orthogonal").double()
    z, pos, batch = molecules()
    q, _ = torch.linalg.qr(torch.randn(3, 3, dtype=torch.float64))
    e1, f1 = energy_forces(model, z, pos, batch)
    moved = (pos.detach() @ q.t() + torch.randn(1, 3, dtype=torch.float64)).requires_grad_()
    e2, f2 = energy_forces(model, z, moved, batch)
    testing.assert_close(e2, e1, atol=1e-9, rtol=1e-8)
    testing.assert_close(f2, f1 @ q.t(), atol=1e-9, rtol=1e-8)
    # batching equals one molecule at a time
    start = 0
    for b, n in enumerate((5, 7, 1, 4)):
        testing.assert_close(
            e1[b], model(z[start : start + n], pos[start : start + n]), atol=1e-10, rtol=1e-9
        )
        start += n
    # a single atom: no edges, zero output and force
    p1 = torch.zeros(1, 3, dtype=torch.float64, requires_grad=True)
    e, f = energy_forces(model, torch.tensor([6]), p1)
    assert e.shape == (2,) and not e.any() and not f.any()
    # no atoms
    assert model(torch.empty(0, dtype=torch.long), torch.empty(0, 3, dtype=torch.float64)).shape == (2,)
    none = model(
        torch.empty(0, dtype=torch.long),
        torch.empty(0, 3, dtype=torch.float64),
        torch.empty(0, dtype=torch.long),
    )
    assert none.shape == (0, 2)
    # float32, int32 indices, non-contiguous positions
    m32 = cls(**kwargs, cutoff=2.0, output_initializer="glorot_orthogonal")
    m32.load_state_dict(model.float().state_dict())
    pos32 = pos.detach().float().t().contiguous().t()
    assert not pos32.is_contiguous()
    testing.assert_close(m32(z.int(), pos32, batch.int()), e1.float(), atol=1e-4, rtol=1e-4)


def test_collinear_triplets_have_finite_forces():
    model = DimeNetPlusPlus(**DIMENET_PP, cutoff=3.0, output_initializer="glorot_orthogonal").double()
    pos = torch.tensor([[0.0, 0, 0], [1.0, 0, 0], [2.1, 0, 0]], dtype=torch.float64, requires_grad=True)
    e, f = energy_forces(model, torch.tensor([6, 6, 8]), pos)
    assert torch.isfinite(f).all()
    f.square().sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_double_backward_gradgradcheck():
    torch.manual_seed(0)
    model = DimeNetPlusPlus(
        4, 1, 1, 2, 2, 3, num_spherical=2, num_radial=2, cutoff=3.0, output_initializer="glorot_orthogonal"
    ).double()
    z = torch.tensor([1, 6, 8, 1])
    pos = torch.tensor([[0.0, 0, 0], [1.1, 0.1, 0], [0.2, 1.3, 0.1], [1.0, 1.0, 0.9]], dtype=torch.float64)
    assert torch.autograd.gradgradcheck(lambda p: model(z, p).sum(), (pos.requires_grad_(),))


# -- API -----------------------------------------------------------------------------------------
def test_signatures_and_repr(pyg_dimenet):
    for name in (
        "DimeNet",
        "DimeNetPlusPlus",
        "Envelope",
        "BesselBasisLayer",
        "SphericalBasisLayer",
        "EmbeddingBlock",
        "ResidualLayer",
        "InteractionBlock",
        "InteractionPPBlock",
        "OutputBlock",
        "OutputPPBlock",
    ):
        ours, theirs = getattr(dn, name), getattr(pyg_dimenet, name)
        assert params(ours.__init__) == params(theirs.__init__), name
        assert params(ours.forward) == params(theirs.forward), name
    for name in ("DimeNet", "DimeNetPlusPlus"):
        ours, theirs = getattr(dn, name), getattr(pyg_dimenet, name)
        assert params(ours.from_qm9_pretrained) == params(theirs.from_qm9_pretrained)
        assert ours.url == theirs.url
    assert dn.qm9_target_dict == pyg_dimenet.qm9_target_dict
    ours, theirs = DimeNet(**DIMENET), pyg_dimenet.DimeNet(**DIMENET)
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    # default init as PyG's: zero output weights, frequencies n * pi
    assert not ours.output_blocks[0].lin.weight.any()
    testing.assert_close(ours.rbf.freq.detach(), theirs.rbf.freq.detach())


def test_bad_input(tmp_path):
    with pytest.raises(ValueError, match="num_spherical"):
        DimeNet(8, 1, 1, 2, num_spherical=1, num_radial=3)
    with pytest.raises(ValueError, match="output_initializer"):
        DimeNet(8, 1, 1, 2, 3, 3, output_initializer="ones")
    model = DimeNet(**DIMENET)
    with pytest.raises(ValueError, match="'z'"):
        model(torch.tensor([1, 95]), torch.randn(2, 3))
    with pytest.raises(ValueError, match="'pos'"):
        model(torch.tensor([1, 2]), torch.randn(2, 4))
    with pytest.raises(ValueError, match="'batch'"):
        model(torch.tensor([1, 2]), torch.randn(2, 3), torch.tensor([1, 0]))
    with pytest.raises(FileNotFoundError, match="pretrained_dimenet_pp.*U0"):
        DimeNetPlusPlus.from_qm9_pretrained(str(tmp_path), None, 7)
    with pytest.raises(FileNotFoundError, match="pretrained_dimenet.*homo"):
        DimeNet.from_qm9_pretrained(str(tmp_path), None, 2)
    with pytest.raises(ValueError, match="'target'"):
        DimeNet.from_qm9_pretrained(str(tmp_path), None, 4)
    assert list(tmp_path.iterdir()) == []


_TF_NAMES = [  # gnn module name -> layer name of the authors' implementation
    ("lin_rbf1", "dense_rbf1"),
    ("lin_rbf2", "dense_rbf2"),
    ("lin_sbf1", "dense_sbf1"),
    ("lin_sbf2", "dense_sbf2"),
    ("lin_rbf", "dense_rbf"),
    ("lin_sbf", "dense_sbf"),
    ("lin_kj", "dense_kj"),
    ("lin_ji", "dense_ji"),
    ("lin_down", "down_projection"),
    ("lin_up", "up_projection"),
    ("lins", "dense_layers"),
    ("lin1", "dense_1"),
    ("lin2", "dense_2"),
    ("interaction_blocks", "int_blocks"),
]


def tf_path(module_name):
    parts = module_name.split(".")
    if parts[-1] == "lin":
        parts[-1] = "dense_final" if parts[0] == "output_blocks" else "final_before_skip"
    if parts[0] == "emb":
        parts = ["emb_block", "dense_rbf" if parts[1] == "lin_rbf" else "dense"]
    names = dict(_TF_NAMES)
    return "/".join(names.get(p, p) for p in parts)


@pytest.mark.parametrize("cls", [DimeNet, DimeNetPlusPlus])
def test_checkpoint_conversion_fills_every_weight(cls):
    """The TensorFlow-checkpoint conversion of ``from_qm9_pretrained`` (here with a dict as the
    reader: no TensorFlow needed) puts every variable in its place, kernels transposed, and
    reads every variable once."""
    reference = cls(**dn._QM9_HPARAMS[cls.__name__], output_initializer="glorot_orthogonal")
    stored = {"rbf_layer/frequencies": reference.rbf.freq, "emb_block/embeddings": reference.emb.emb.weight}
    for name, module in reference.named_modules():
        if isinstance(module, torch.nn.Linear):
            stored[f"{tf_path(name)}/kernel"] = module.weight.t()
            if module.bias is not None:
                stored[f"{tf_path(name)}/bias"] = module.bias
    if cls is DimeNet:
        for i, block in enumerate(reference.interaction_blocks):
            stored[f"int_blocks/{i}/bilinear"] = block.W
    read = []

    def reader(path):
        key = path.removesuffix("/.ATTRIBUTES/VARIABLE_VALUE")
        read.append(key)
        return stored[key].detach()

    model = dn._model_from_checkpoint(cls, reader)
    assert sorted(read) == sorted(stored)
    for name, value in reference.state_dict().items():
        torch.testing.assert_close(model.state_dict()[name], value, msg=name)


# -- custom autograd functions -------------------------------------------------------------------
@pytest.mark.parametrize("sorted_index", [False, True])
def test_gather_mul_scatter_matches_reference_and_gradchecks(sorted_index):
    from gnn.core.ops import gather_mul_scatter, ptr_from_sorted_index

    g = torch.Generator().manual_seed(0)
    a = torch.randn(6, 3, dtype=torch.float64, generator=g).requires_grad_()
    s = torch.randn(11, 3, dtype=torch.float64, generator=g).requires_grad_()
    gidx = torch.randint(0, 6, (11,), generator=g)
    sidx = torch.randint(0, 5, (11,), generator=g)
    ptr = None
    if sorted_index:
        sidx = sidx.sort().values
        ptr = ptr_from_sorted_index(sidx, 5)
    expected = torch.zeros(5, 3, dtype=torch.float64)
    for t in range(11):
        expected[sidx[t]] += a[gidx[t]].detach() * s[t].detach()
    fn = lambda a, s: gather_mul_scatter(a, s, gidx, sidx, 5, ptr=ptr)  # noqa: E731
    testing.assert_close(fn(a, s), expected, atol=1e-12, rtol=1e-12)
    assert torch.autograd.gradcheck(fn, (a, s))
    assert torch.autograd.gradgradcheck(fn, (a, s))


def _third_order(fn, x, w, b):
    """A third derivative (the weights' gradient of a loss on forces-like first derivatives)."""
    y = fn(x, w, b)
    (gx,) = torch.autograd.grad(y.sin().sum(), x, create_graph=True)
    second = torch.autograd.grad(gx.cos().sum(), (x, w, b), create_graph=True)
    return torch.autograd.grad(sum(t.square().sum() for t in second), (x, w, b))


@pytest.mark.parametrize("act", [torch.nn.functional.silu, torch.tanh, torch.nn.ReLU(), ShiftedSoftplus()])
def test_dense_act_matches_plain_autograd(act):
    from gnn.models._lean_dense import dense_act

    torch.manual_seed(0)
    lin = torch.nn.Linear(4, 3).double()
    x = torch.randn(7, 4, dtype=torch.float64, requires_grad=True)
    holder = type("Lin", (), {})

    def fn(x, w, b):
        layer = holder()
        layer.weight, layer.bias = w, b
        return dense_act(x, layer, act)

    w, b = lin.weight.detach().clone().requires_grad_(), lin.bias.detach().clone().requires_grad_()
    testing.assert_close(fn(x, w, b), act(torch.nn.functional.linear(x, w, b)), atol=1e-12, rtol=1e-12)
    assert torch.autograd.gradcheck(fn, (x, w, b))
    assert torch.autograd.gradgradcheck(fn, (x, w, b))
    plain = lambda x, w, b: act(torch.nn.functional.linear(x, w, b))  # noqa: E731
    for ours, expected in zip(_third_order(fn, x, w, b), _third_order(plain, x, w, b), strict=True):
        testing.assert_close(ours, expected, atol=1e-10, rtol=1e-10)


def test_dense_act_force_pass_skips_weight_gradients():
    """``autograd.grad(E, x, create_graph=True)`` computes no weight gradient, yet the second
    backward still reaches the weights exactly."""
    from gnn.models._lean_dense import dense_act

    torch.manual_seed(0)
    lin = torch.nn.Linear(4, 3).double()
    x = torch.randn(6, 4, dtype=torch.float64, requires_grad=True)
    from torch.utils._python_dispatch import TorchDispatchMode

    class CountMatmuls(TorchDispatchMode):
        calls = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if func in (torch.ops.aten.mm.default, torch.ops.aten.addmm.default):
                CountMatmuls.calls += 1
            return func(*args, **(kwargs or {}))

    energy = dense_act(x, lin, torch.nn.functional.silu).sum()
    with CountMatmuls():
        (forces,) = torch.autograd.grad(energy, x, create_graph=True)
    assert CountMatmuls.calls == 1  # g_x only: no [out, in] weight gradient
    forces.square().sum().backward()
    plain = torch.nn.functional.silu(lin(x)).sum()
    (f2,) = torch.autograd.grad(plain, x, create_graph=True)
    expected = torch.autograd.grad(f2.square().sum(), (lin.weight, lin.bias))
    testing.assert_close(lin.weight.grad, expected[0], atol=1e-12, rtol=1e-12)
    testing.assert_close(lin.bias.grad, expected[1], atol=1e-12, rtol=1e-12)


def test_hooks_see_the_plain_layers():
    """A forward hook on a block's Linear is called: the lean path steps aside for it."""
    model = DimeNetPlusPlus(**DIMENET_PP, cutoff=2.0)
    seen = []
    model.interaction_blocks[0].layers_before_skip[0].lin1.register_forward_hook(lambda *a: seen.append(1))
    z, pos, batch = molecules()
    model(z, pos.detach().float(), batch)
    assert seen == [1]


def test_triplet_sum_paths_agree():
    """The fused triplet sum (``ops.projected_gather_sum``, triplets sorted by j -> i, no hook on
    ``lin_sbf2``) and the plain one (a hook on ``lin_sbf2``; triplets in another order) give the
    same block output, input gradients and parameter gradients through a double backward."""
    torch.manual_seed(0)
    block = dn.InteractionPPBlock(8, 4, 3, 2, 3, 1, 2, torch.nn.functional.silu).double()
    num_edges, num_triplets = 9, 30
    x = torch.randn(num_edges, 8, dtype=torch.float64, requires_grad=True)
    rbf = torch.randn(num_edges, 3, dtype=torch.float64, requires_grad=True)
    sbf = torch.randn(num_triplets, 6, dtype=torch.float64, requires_grad=True)
    idx_kj = torch.randint(0, num_edges, (num_triplets,))
    idx_ji = torch.sort(torch.randint(0, num_edges, (num_triplets,))).values

    def run(idx_kj, idx_ji, sbf_in):
        block.zero_grad()
        out = block(x, rbf, sbf_in, idx_kj, idx_ji)
        first = torch.autograd.grad(out.square().sum(), (x, rbf, sbf), create_graph=True)
        sum(t.sin().sum() for t in first).backward()
        return (
            out.detach(),
            [t.detach() for t in first],
            {n: p.grad.clone() for n, p in block.named_parameters()},
        )

    fused = run(idx_kj, idx_ji, sbf)
    perm = torch.randperm(num_triplets)
    unsorted = run(idx_kj[perm], idx_ji[perm], sbf[perm])
    seen = []
    handle = block.lin_sbf2.register_forward_hook(lambda *a: seen.append(1))
    hooked = run(idx_kj, idx_ji, sbf)
    handle.remove()
    assert seen == [1]
    for other in (unsorted, hooked):
        testing.assert_close(other[0], fused[0], atol=1e-10, rtol=1e-10)
        for a, b in zip(other[1], fused[1], strict=True):
            testing.assert_close(a, b, atol=1e-10, rtol=1e-10)
        for name, grad in fused[2].items():
            testing.assert_close(other[2][name], grad, atol=1e-10, rtol=1e-10, msg=name)


def test_shared_basis_projection_matches_per_block():
    """DimeNet++ projects the spherical basis for all blocks in one matmul unless a hook watches a
    block's ``lin_sbf1``; both give the same energies, forces and parameter gradients."""
    torch.manual_seed(0)
    model = DimeNetPlusPlus(**DIMENET_PP, cutoff=2.0).double()
    z, pos, batch = molecules()
    pos = pos.detach().double()

    def step():
        model.zero_grad()
        p = pos.clone().requires_grad_()
        energy = model(z, p, batch)
        (forces,) = torch.autograd.grad(energy.sum(), p, create_graph=True)
        (energy.square().sum() + forces.square().sum()).backward()
        return energy.detach(), forces.detach(), {n: q.grad.clone() for n, q in model.named_parameters()}

    shared = step()
    seen = []
    handle = model.interaction_blocks[1].lin_sbf1.register_forward_hook(lambda *a: seen.append(1))
    per_block = step()
    handle.remove()
    assert seen == [1]
    testing.assert_close(per_block[0], shared[0], atol=1e-10, rtol=1e-10)
    testing.assert_close(per_block[1], shared[1], atol=1e-10, rtol=1e-10)
    for name, grad in shared[2].items():
        testing.assert_close(per_block[2][name], grad, atol=1e-10, rtol=1e-10, msg=name)
