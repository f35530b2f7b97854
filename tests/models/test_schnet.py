"""SchNet: parity with PyG after a strict state_dict load (energies and forces), its pieces
against their formulas, invariance / equivariance, batching, empty and single-atom inputs,
bad input, signatures and repr.

PyG's default interaction graph needs torch-cluster, which is not installed: PyG's SchNet is
given the brute-force radius graph written here through its ``interaction_graph`` hook."""

from __future__ import annotations

import inspect
import math

import pytest
import torch

from gnn.core import testing
from gnn.models import SchNet
from gnn.models.schnet import (
    CFConv,
    GaussianSmearing,
    InteractionBlock,
    RadiusInteractionGraph,
    ShiftedSoftplus,
    qm9_target_dict,
)


def params(fn):
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]


def brute_radius_graph(pos, r, batch, max_num_neighbors=32):
    """Edges j -> i for every pair of the same molecule closer than r, at most
    max_num_neighbors sources per target (the smallest indices), grouped by target."""
    rows, cols = [], []
    n = pos.size(0)
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


def pyg_graph(cutoff, max_num_neighbors=32):
    def graph(pos, batch):
        ei = brute_radius_graph(pos.detach(), cutoff, batch, max_num_neighbors)
        return ei, (pos[ei[0]] - pos[ei[1]]).norm(dim=-1)

    return graph


def molecules(sizes=(5, 7, 1, 4), seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    n = sum(sizes)
    z = torch.randint(1, 10, (n,), generator=g)
    pos = (torch.rand(n, 3, generator=g, dtype=dtype) * 3.0).requires_grad_()
    batch = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))
    return z, pos, batch


def energy_forces(model, z, pos, batch=None):
    out = model(z, pos, batch)
    forces = -torch.autograd.grad(out.sum(), pos, create_graph=True)[0]
    return out, forces


def pair(**kwargs):
    pyg = pytest.importorskip("torch_geometric.nn.models.schnet")
    torch.manual_seed(0)
    cutoff = kwargs.get("cutoff", 10.0)
    theirs = pyg.SchNet(interaction_graph=pyg_graph(cutoff), **kwargs).double()
    ours = SchNet(**kwargs).double()
    testing.load_pyg_state(ours, theirs)
    return ours, theirs


# -- parity --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs",
    [
        dict(hidden_channels=16, num_filters=8, num_interactions=2, num_gaussians=10, cutoff=2.5),
        dict(
            hidden_channels=8,
            num_filters=12,
            num_interactions=1,
            num_gaussians=6,
            cutoff=2.0,
            readout="mean",
            mean=0.3,
            std=1.7,
            atomref=torch.randn(100, 1),
        ),
    ],
)
def test_energies_and_forces_match_pyg(kwargs):
    ours, theirs = pair(**kwargs)
    assert repr(ours) == repr(theirs)
    with torch.no_grad():  # non-trivial output weights
        theirs.lin2.weight.normal_()
        ours.lin2.weight.copy_(theirs.lin2.weight)
    z, pos, batch = molecules()
    e1, f1 = energy_forces(ours, z, pos, batch)
    e2, f2 = energy_forces(theirs, z, pos, batch)
    assert e1.shape == e2.shape == (4, 1)
    testing.assert_close(e1, e2, atol=1e-10, rtol=1e-8)
    testing.assert_close(f1, f2, atol=1e-10, rtol=1e-8)
    assert f1.abs().max() > 1e-3  # forces are not trivially zero
    # the double backward reaches the same weight gradients
    (f1.square().sum() + e1.sum()).backward()
    (f2.square().sum() + e2.sum()).backward()
    theirs_grads = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        testing.assert_close(p.grad, theirs_grads[name].grad, atol=1e-9, rtol=1e-7, msg=name)


def test_dipole_matches_pyg():
    pytest.importorskip("ase")
    ours, theirs = pair(
        hidden_channels=8, num_filters=8, num_interactions=1, num_gaussians=5, cutoff=2.5, dipole=True
    )
    assert "atomic_mass" in dict(ours.named_buffers())
    z, pos, batch = molecules()
    e1, f1 = energy_forces(ours, z, pos, batch)
    e2, f2 = energy_forces(theirs, z, pos, batch)
    testing.assert_close(e1, e2, atol=1e-10, rtol=1e-8)
    testing.assert_close(f1, f2, atol=1e-10, rtol=1e-8)


def test_pieces_match_pyg_and_formulas():
    pyg = pytest.importorskip("torch_geometric.nn.models.schnet")
    d = torch.rand(50, dtype=torch.float64) * 5
    smear = GaussianSmearing(0.0, 5.0, 11).double()
    step = 0.5
    expected = torch.exp(
        -0.5 * (d.view(-1, 1) - torch.arange(11, dtype=torch.float64) * step).square() / step**2
    )
    testing.assert_close(smear(d), expected, atol=1e-12, rtol=1e-10)
    testing.assert_close(smear(d), pyg.GaussianSmearing(0.0, 5.0, 11).double()(d), atol=1e-12, rtol=1e-10)
    # float32: tails under e^-50 are exact zeros (no subnormals), the rest is unchanged
    d32 = torch.linspace(0, 5, 200)
    ours32, theirs32 = GaussianSmearing()(d32), pyg.GaussianSmearing()(d32)
    testing.assert_close(ours32, theirs32, atol=1e-20, rtol=1e-5)
    assert ours32[(ours32 > 0) & (ours32 < 1e-30)].numel() == 0
    x = torch.randn(30, dtype=torch.float64)
    testing.assert_close(ShiftedSoftplus()(x), torch.log1p(torch.exp(x)) - math.log(2.0))
    assert repr(ShiftedSoftplus()) == "ShiftedSoftplus()" and repr(GaussianSmearing()) == "GaussianSmearing()"
    for ours_cls, theirs_cls in [
        (CFConv, pyg.CFConv),
        (InteractionBlock, pyg.InteractionBlock),
        (RadiusInteractionGraph, pyg.RadiusInteractionGraph),
        (GaussianSmearing, pyg.GaussianSmearing),
    ]:
        assert params(ours_cls.__init__) == params(theirs_cls.__init__), ours_cls
        assert params(ours_cls.forward) == params(theirs_cls.forward), ours_cls


def test_interaction_block_against_dense_reference():
    torch.manual_seed(1)
    block = InteractionBlock(6, 5, 4, cutoff=3.0).double()
    x = torch.randn(7, 6, dtype=torch.float64)
    pos = torch.rand(7, 3, dtype=torch.float64) * 3
    ei = brute_radius_graph(pos, 3.0, torch.zeros(7, dtype=torch.long))
    dist = (pos[ei[0]] - pos[ei[1]]).norm(dim=-1)
    attr = GaussianSmearing(0.0, 3.0, 5).double()(dist)
    out = block(x, ei, dist, attr)
    ssp = ShiftedSoftplus()
    W = block.mlp[2](ssp(block.mlp[0](attr))) * (0.5 * (torch.cos(dist * math.pi / 3.0) + 1)).view(-1, 1)
    h = block.conv.lin1(x)
    agg = torch.zeros(7, 4, dtype=torch.float64)
    for e in range(ei.size(1)):
        agg[ei[1, e]] += h[ei[0, e]] * W[e]
    expected = block.lin(ssp(block.conv.lin2(agg)))
    testing.assert_close(out, expected, atol=1e-12, rtol=1e-10)
    assert block.mlp is block.conv.nn


def test_radius_interaction_graph_matches_brute_force():
    z, pos, batch = molecules(sizes=(6, 9), seed=3)
    graph = RadiusInteractionGraph(cutoff=2.0, max_num_neighbors=3)
    ei, w = graph(pos.detach(), batch)
    expected = brute_radius_graph(pos.detach(), 2.0, batch, 3)
    assert torch.equal(ei, expected)
    testing.assert_close(w, (pos[ei[0]] - pos[ei[1]]).norm(dim=-1).detach())
    model = SchNet(8, 8, 1, 5, cutoff=2.0, max_num_neighbors=3)
    assert model.interaction_graph.max_num_neighbors == 3 and model.interaction_graph.cutoff == 2.0


def test_custom_interaction_graph_is_used():
    calls = []

    def graph(pos, batch):
        calls.append(pos.size(0))
        ei = torch.tensor([[0, 1], [1, 0]])
        return ei, (pos[ei[0]] - pos[ei[1]]).norm(dim=-1)

    model = SchNet(8, 8, 2, 5, cutoff=2.0, interaction_graph=graph)
    model(torch.tensor([1, 6, 8]), torch.randn(3, 3))
    assert calls == [3] and model.interaction_graph is graph


# -- physics -------------------------------------------------------------------------------------
def test_rotation_translation_invariance_and_force_equivariance():
    torch.manual_seed(0)
    model = SchNet(16, 16, 2, 12, cutoff=2.5).double()
    with torch.no_grad():
        model.lin2.weight.normal_()
    z, pos, batch = molecules()
    q, _ = torch.linalg.qr(torch.randn(3, 3, dtype=torch.float64))
    shift = torch.randn(1, 3, dtype=torch.float64)
    e1, f1 = energy_forces(model, z, pos, batch)
    moved = (pos.detach() @ q.t() + shift).requires_grad_()
    e2, f2 = energy_forces(model, z, moved, batch)
    testing.assert_close(e2, e1, atol=1e-10, rtol=1e-8)
    testing.assert_close(f2, f1 @ q.t(), atol=1e-10, rtol=1e-8)


def test_batching_equals_separate_molecules_and_edge_cases():
    torch.manual_seed(0)
    model = SchNet(8, 8, 2, 6, cutoff=2.5).double()
    z, pos, batch = molecules()
    together = model(z, pos, batch)
    start = 0
    for b, n in enumerate((5, 7, 1, 4)):
        alone = model(z[start : start + n], pos[start : start + n])
        testing.assert_close(together[b : b + 1], alone, atol=1e-12, rtol=1e-10)
        start += n
    # a single atom: no edges, an output, zero force
    pos1 = torch.zeros(1, 3, dtype=torch.float64, requires_grad=True)
    e, f = energy_forces(model, torch.tensor([6]), pos1)
    assert e.shape == (1, 1) and torch.equal(f, torch.zeros(1, 3, dtype=torch.float64))
    # no atoms at all
    empty = model(torch.empty(0, dtype=torch.long), torch.empty(0, 3, dtype=torch.float64))
    assert empty.shape == (0, 1)
    out = model(
        torch.empty(0, dtype=torch.long),
        torch.empty(0, 3, dtype=torch.float64),
        torch.empty(0, dtype=torch.long),
    )
    assert out.shape == (0, 1)
    # int32 batch and atomic numbers, non-contiguous positions, float32
    model32 = SchNet(8, 8, 1, 6, cutoff=2.5)
    pos_nc = torch.rand(3, 8).t()[:, :3]
    assert not pos_nc.is_contiguous()
    out32 = model32(z[:8].int(), pos_nc, torch.tensor([0, 0, 0, 1, 1, 1, 1, 1], dtype=torch.int32))
    testing.assert_close(out32, model32(z[:8], pos_nc.contiguous(), torch.tensor([0, 0, 0, 1, 1, 1, 1, 1])))


def test_double_backward_gradgradcheck():
    torch.manual_seed(0)
    model = SchNet(4, 4, 1, 4, cutoff=3.0).double()
    with torch.no_grad():
        model.lin2.weight.normal_()
    z = torch.tensor([1, 6, 8, 1])
    pos = torch.tensor([[0.0, 0, 0], [1.1, 0.1, 0], [0.2, 1.3, 0.1], [1.0, 1.0, 0.9]], dtype=torch.float64)
    pos.requires_grad_()
    assert torch.autograd.gradgradcheck(lambda p: model(z, p).sum(), (pos,))


# -- API -----------------------------------------------------------------------------------------
def test_signatures_and_repr():
    pyg = pytest.importorskip("torch_geometric.nn.models.schnet")
    assert params(SchNet.__init__) == params(pyg.SchNet.__init__)
    assert params(SchNet.forward) == params(pyg.SchNet.forward)
    assert params(SchNet.from_qm9_pretrained) == params(pyg.SchNet.from_qm9_pretrained)
    assert SchNet.url == pyg.SchNet.url
    assert qm9_target_dict == pyg.qm9_target_dict
    ours = SchNet(cutoff=5.0)
    theirs = pyg.SchNet(cutoff=5.0)
    assert (
        repr(ours)
        == repr(theirs)
        == ("SchNet(hidden_channels=128, num_filters=128, num_interactions=6, num_gaussians=50, cutoff=5.0)")
    )
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert repr(ours.interactions[0]) == repr(theirs.interactions[0])
    assert repr(ours.readout) == repr(theirs.readout)
    assert ours.embedding.padding_idx == 0


def test_bad_input():
    model = SchNet(8, 8, 1, 5, cutoff=2.0)
    pos = torch.randn(3, 3)
    with pytest.raises(TypeError, match="'z'"):
        model(torch.tensor([1.0, 2.0, 3.0]), pos)
    with pytest.raises(ValueError, match="'z'"):
        model(torch.tensor([1, 2, 100]), pos)
    with pytest.raises(ValueError, match="'pos'"):
        model(torch.tensor([1, 2, 3]), torch.randn(3, 2))
    with pytest.raises(ValueError, match="'pos'"):
        model(torch.tensor([1, 2]), pos)
    with pytest.raises(ValueError, match="'batch'"):
        model(torch.tensor([1, 2, 3]), pos, torch.tensor([1, 0, 0]))
    with pytest.raises(ValueError, match="'batch'"):
        model(torch.tensor([1, 2, 3]), pos, torch.tensor([0, 0]))
    with pytest.raises(TypeError, match="'pos'"):
        model(torch.tensor([1, 2, 3]), [[0.0, 0.0, 0.0]] * 3)


def test_from_qm9_pretrained_never_downloads(tmp_path):
    with pytest.raises(FileNotFoundError, match="trained_schnet_models.*qm9_homo"):
        SchNet.from_qm9_pretrained(str(tmp_path), dataset=None, target=2)
    with pytest.raises(ValueError, match="'target'"):
        SchNet.from_qm9_pretrained(str(tmp_path), dataset=None, target=12)
    assert list(tmp_path.iterdir()) == []  # nothing was fetched or created


def test_from_qm9_pretrained_reads_local_files(tmp_path):
    """With the extracted archive present, the split and the SchNetPack weights are read (a
    stand-in object with SchNetPack 0.3's attribute layout replaces the pickled model here)."""
    np = pytest.importorskip("numpy")
    from types import SimpleNamespace as NS

    torch.manual_seed(0)
    lin = torch.nn.Linear
    interactions = [
        NS(
            filter_network=[lin(50, 128), lin(128, 128)],
            cfconv=NS(in2f=lin(128, 128, bias=False), f2out=lin(128, 128)),
            dense=lin(128, 128),
            cutoff_network=NS(cutoff=torch.tensor(10.0)),
        )
        for _ in range(6)
    ]
    out = NS(
        out_net=[None, NS(out_net=[lin(128, 64), lin(64, 1)])],
        atom_pool=NS(average=False),
        standardize=NS(mean=torch.tensor(0.5), stddev=torch.tensor(2.0)),
        atomref=torch.nn.Embedding(100, 1),
    )
    state = NS(
        representation=NS(embedding=torch.nn.Embedding(100, 128), interactions=interactions),
        output_modules=[out],
    )
    folder = tmp_path / "trained_schnet_models" / "qm9_energy_U0"
    folder.mkdir(parents=True)
    torch.save(state, folder / "best_model")
    np.savez(
        folder / "split.npz", train_idx=np.array([0, 2]), val_idx=np.array([1]), test_idx=np.array([3, 4])
    )
    dataset = torch.arange(10) * 10
    model, train, val, test = SchNet.from_qm9_pretrained(str(tmp_path), dataset, 7)
    assert train.tolist() == [0, 20] and val.tolist() == [10] and test.tolist() == [30, 40]
    assert (model.mean, model.std, model.dipole) == (0.5, 2.0, False)
    assert repr(model.readout) == "SumAggregation()"
    testing.assert_close(model.embedding.weight, state.representation.embedding.weight)
    testing.assert_close(model.interactions[3].mlp[2].weight, interactions[3].filter_network[1].weight)
    testing.assert_close(model.interactions[5].conv.lin1.weight, interactions[5].cfconv.in2f.weight)
    testing.assert_close(model.interactions[0].lin.bias, interactions[0].dense.bias)
    testing.assert_close(model.lin2.weight, out.out_net[1].out_net[1].weight)
    testing.assert_close(model.atomref.weight, out.atomref.weight)


def test_dipole_without_ase_names_the_extra(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "ase", None)
    monkeypatch.setitem(sys.modules, "ase.data", None)
    with pytest.raises(ImportError, match=r"gnn-models\[ase\]"):
        SchNet(8, 8, 1, 5, dipole=True)
    SchNet(8, 8, 1, 5)  # the rest works without it


def test_gaussian_smearing_function_gradchecks():
    from gnn.models.schnet import _Smearing

    dist = (torch.rand(9, dtype=torch.float64) * 5).requires_grad_()
    offset = torch.linspace(0, 5, 6, dtype=torch.float64)
    coeff = -0.5 / 1.0**2
    fn = lambda d: _Smearing.apply(d, offset, coeff)  # noqa: E731
    testing.assert_close(
        fn(dist), torch.exp(coeff * (dist.view(-1, 1) - offset).square()), atol=1e-15, rtol=1e-12
    )
    assert torch.autograd.gradcheck(fn, (dist,))
    assert torch.autograd.gradgradcheck(fn, (dist,))


def test_float32_forces_match_pyg():
    ours, theirs = pair(hidden_channels=16, num_filters=16, num_interactions=2, num_gaussians=20, cutoff=2.5)
    ours, theirs = ours.float(), theirs.float()
    with torch.no_grad():
        theirs.lin2.weight.normal_()
        ours.lin2.weight.copy_(theirs.lin2.weight)
    z, pos, batch = molecules()
    pos = pos.detach().float().requires_grad_()
    e1, f1 = energy_forces(ours, z, pos, batch)
    e2, f2 = energy_forces(theirs, z, pos, batch)
    testing.assert_close(e1, e2, atol=1e-4, rtol=1e-4)
    testing.assert_close(f1, f2, atol=1e-4, rtol=1e-4)
    (f1.square().sum()).backward()
    (f2.square().sum()).backward()
    theirs_grads = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        testing.assert_close(p.grad, theirs_grads[name].grad, atol=1e-3, rtol=1e-3, msg=name)


def _as_linear(w, b):
    layer = type("Lin", (), {})()
    layer.weight, layer.bias = w, b
    return layer


def test_lean_filter_network_gradchecks_and_steps_aside_for_hooks():
    from gnn.models._lean_dense import dense_act_dense

    torch.manual_seed(0)
    lin1, lin2 = torch.nn.Linear(5, 4).double(), torch.nn.Linear(4, 3).double()
    x = torch.randn(6, 5, dtype=torch.float64, requires_grad=True)
    leaves = [t.detach().clone().requires_grad_() for t in (lin1.weight, lin1.bias, lin2.weight, lin2.bias)]

    def fn(x, w1, b1, w2, b2):
        return dense_act_dense(x, _as_linear(w1, b1), ShiftedSoftplus(), _as_linear(w2, b2))

    testing.assert_close(fn(x, *leaves), lin2(ShiftedSoftplus()(lin1(x))), atol=1e-12, rtol=1e-12)
    assert torch.autograd.gradcheck(fn, (x, *leaves))
    assert torch.autograd.gradgradcheck(fn, (x, *leaves))

    def third(f):  # a third derivative: weights' gradient of a loss on the second derivatives
        (gx,) = torch.autograd.grad(f(x, *leaves).sin().sum(), x, create_graph=True)
        second = torch.autograd.grad(gx.cos().sum(), (x, *leaves), create_graph=True)
        return torch.autograd.grad(sum(t.square().sum() for t in second), (x, *leaves))

    plain = lambda x, w1, b1, w2, b2: torch.nn.functional.linear(  # noqa: E731
        ShiftedSoftplus()(torch.nn.functional.linear(x, w1, b1)), w2, b2
    )
    for ours, expected in zip(third(fn), third(plain), strict=True):
        testing.assert_close(ours, expected, atol=1e-10, rtol=1e-10)
    # the first backward alone (its own backward is the double backward of the block)
    from gnn.models._lean_dense import _DenseActDenseGrad

    g = torch.randn(6, 3, dtype=torch.float64, requires_grad=True)
    needs = (True,) * 5

    def first(g, x, w1, b1, w2):
        return _DenseActDenseGrad.apply(
            g, x, w1, b1, w2, leaves[3], torch.nn.functional.linear(x, w1, b1), ShiftedSoftplus(), needs
        )

    assert torch.autograd.gradcheck(first, (g, x, *leaves[:3]))
    # tanh without a closed-form derivative: autograd on the activation
    assert torch.autograd.gradgradcheck(
        lambda x, w1: dense_act_dense(x, _as_linear(w1, leaves[1]), torch.tanh, _as_linear(leaves[2], None)),
        (x, leaves[0]),
    )

    block = InteractionBlock(6, 5, 4, cutoff=3.0)
    seen = []
    block.mlp[1].register_forward_hook(lambda *a: seen.append(1))
    pos = torch.rand(5, 3) * 2
    ei = brute_radius_graph(pos, 3.0, torch.zeros(5, dtype=torch.long))
    dist = (pos[ei[0]] - pos[ei[1]]).norm(dim=-1)
    block(torch.randn(5, 6), ei, dist, GaussianSmearing(0.0, 3.0, 5)(dist))
    assert seen == [1]


def _step(model, z, pos, batch):
    """Energy, forces (create_graph) and the parameter gradients of a loss on both."""
    model.zero_grad()
    energy, forces = energy_forces(model, z, pos, batch)
    ((energy**2).sum() + (forces**2).sum()).backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters()}
    return energy.detach(), forces.detach(), grads


def test_fused_and_general_cfconv_paths_agree_through_the_double_backward(monkeypatch):
    from gnn.core import ops

    calls = []
    real = ops.gather_mul_scatter
    monkeypatch.setattr(ops, "gather_mul_scatter", lambda *a, **k: calls.append(1) or real(*a, **k))
    torch.manual_seed(0)
    model = SchNet(8, 6, 2, 7, cutoff=3.0).double()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.5)
    z, pos, batch = molecules()
    fused = _step(model, z, pos, batch)
    assert len(calls) == 2  # the fused op ran in both interactions
    seen = []
    handles = [
        block.conv.register_message_forward_hook(lambda m, inputs, out: seen.append(inputs[0]["W"]))
        for block in model.interactions
    ]
    handles += [block.mlp[1].register_forward_hook(lambda *a: None) for block in model.interactions]
    general = _step(model, z, pos, batch)
    for h in handles:
        h.remove()
    assert len(calls) == 2  # the hooks sent both interactions down the general path
    assert len(seen) == 2 and all(isinstance(w, torch.Tensor) and w.dim() == 2 for w in seen)
    testing.assert_close(general[0], fused[0], atol=1e-10, rtol=1e-9)
    testing.assert_close(general[1], fused[1], atol=1e-10, rtol=1e-9)
    assert general[2].keys() == fused[2].keys()
    for name in fused[2]:
        testing.assert_close(general[2][name], fused[2][name], atol=1e-10, rtol=1e-9, msg=name)


def test_cfconv_hooks_see_pygs_filter_and_bad_edge_weight():
    pyg = pytest.importorskip("torch_geometric.nn.models.schnet")
    torch.manual_seed(0)
    theirs = pyg.CFConv(
        6, 6, 4, torch.nn.Sequential(torch.nn.Linear(5, 4), pyg.ShiftedSoftplus(), torch.nn.Linear(4, 4)), 3.0
    ).double()
    ours = CFConv(
        6, 6, 4, torch.nn.Sequential(torch.nn.Linear(5, 4), ShiftedSoftplus(), torch.nn.Linear(4, 4)), 3.0
    ).double()
    testing.load_pyg_state(ours, theirs)
    pos = torch.rand(6, 3, dtype=torch.float64) * 2
    ei = brute_radius_graph(pos, 3.0, torch.zeros(6, dtype=torch.long))
    dist = (pos[ei[0]] - pos[ei[1]]).norm(dim=-1)
    attr = GaussianSmearing(0.0, 3.0, 5).double()(dist)
    x = torch.randn(6, 6, dtype=torch.float64)
    testing.assert_close(ours(x, ei, dist, attr), theirs(x, ei, dist, attr), atol=1e-12, rtol=1e-10)
    got = {}
    for name, conv in (("ours", ours), ("theirs", theirs)):
        conv.register_propagate_forward_pre_hook(
            lambda m, inputs, name=name: got.__setitem__(name, inputs[2]["W"])
        )
        conv(x, ei, dist, attr)
    testing.assert_close(got["ours"], got["theirs"], atol=1e-12, rtol=1e-10)
    with pytest.raises(ValueError, match="edge_weight"):
        ours(x, ei, dist[:-1], attr)
