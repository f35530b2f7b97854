"""BatchNorm, MessageNorm and DiffGroupNorm: dense references, PyG parity in training and
evaluation mode (running statistics after several steps), edge cases."""

from __future__ import annotations

import copy

import pytest
import torch

from gnn.conv.norm import BatchNorm, DiffGroupNorm, MessageNorm
from gnn.core import testing

F = 5


def features(n: int = 12, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, F, generator=g, dtype=torch.float64) * 2 + 1


def perturbed(module: torch.nn.Module) -> torch.nn.Module:
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.rand(p.shape, generator=g, dtype=p.dtype))
    return module


def run_steps(mine, theirs, steps: int = 3, n: int = 12) -> None:
    """Train-mode steps on both (same inputs): outputs, input and parameter gradients agree."""
    for step in range(steps):
        x = features(n, seed=step)
        xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
        out_a, out_b = mine(xa), theirs(xb)
        testing.assert_close(out_a, out_b, atol=1e-10, rtol=1e-9)
        grad = torch.randn_like(out_a)
        out_a.backward(grad)
        out_b.backward(grad)
        testing.assert_close(xa.grad, xb.grad, atol=1e-10, rtol=1e-9)
        for (key, p), q in zip(mine.named_parameters(), theirs.parameters()):
            testing.assert_close(p.grad, q.grad, atol=1e-10, rtol=1e-9, msg=key)
        mine.zero_grad()
        theirs.zero_grad()


def assert_same_state(mine, theirs) -> None:
    ours_sd = mine.state_dict()
    for key, value in theirs.state_dict().items():
        testing.assert_close(ours_sd[key], value, atol=1e-12, rtol=1e-10, msg=key)


# -- BatchNorm ------------------------------------------------------------------------------------
BN_CASES = [
    {},
    {"momentum": None},
    {"affine": False},
    {"track_running_stats": False},
    {"allow_single_element": True, "momentum": 0.3},
]


@pytest.mark.parametrize("kwargs", BN_CASES, ids=[str(k) for k in BN_CASES])
def test_batch_norm_pyg_parity(kwargs):
    pyg = pytest.importorskip("torch_geometric.nn.norm")
    theirs = perturbed(pyg.BatchNorm(F, **kwargs).double())
    mine = BatchNorm(F, **kwargs).double()
    testing.load_pyg_state(mine, theirs)
    assert repr(mine) == repr(theirs)
    run_steps(mine, theirs)
    assert_same_state(mine, theirs)
    mine.eval()
    theirs.eval()
    x = features(seed=9)
    testing.assert_close(mine(x), theirs(x))


def test_batch_norm_against_formula_and_single_element():
    norm = perturbed(BatchNorm(F, allow_single_element=True).double())
    x = features()
    m = norm.module
    expected = (x - x.mean(0)) / (x.var(0, unbiased=False) + m.eps).sqrt() * m.weight + m.bias
    testing.assert_close(norm(x), expected)
    testing.assert_close(m.running_mean, 0.1 * x.mean(0))
    # one node in training: normalized with the running statistics, which stay as they are
    before = m.running_mean.clone()
    one = features(1, seed=3)
    expected = (one - m.running_mean) / (m.running_var + m.eps).sqrt() * m.weight + m.bias
    testing.assert_close(norm(one), expected)
    testing.assert_close(m.running_mean, before)
    with pytest.raises(ValueError, match="more than 1 value"):
        BatchNorm(F)(one)  # without allow_single_element: torch's error


def test_batch_norm_reset_and_empty():
    norm = perturbed(BatchNorm(F))
    norm(torch.randn(6, F))
    norm.reset_parameters()
    assert torch.equal(norm.module.weight, torch.ones(F)) and torch.equal(norm.module.bias, torch.zeros(F))
    assert torch.equal(norm.module.running_var, torch.ones(F)) and int(norm.module.num_batches_tracked) == 0
    assert norm(torch.zeros(0, F)).shape == (0, F)


# -- MessageNorm -------------------------------------------------------------------------------------
@pytest.mark.parametrize("learn_scale", [False, True])
@pytest.mark.parametrize("p", [2.0, 1.0, 3.0])
def test_message_norm_formula_and_pyg(learn_scale, p):
    pyg = pytest.importorskip("torch_geometric.nn.norm")
    x, msg = features(), features(seed=1)
    msg[3] = 0  # a zero message stays zero
    mine = MessageNorm(learn_scale).double()
    theirs = pyg.MessageNorm(learn_scale).double()
    with torch.no_grad():
        theirs.scale.fill_(1.7)
    testing.load_pyg_state(mine, theirs)
    assert repr(mine) == repr(theirs)
    expected = msg / msg.norm(p=p, dim=-1, keepdim=True).clamp(min=1e-12) * x.norm(p=p, dim=-1, keepdim=True)
    testing.assert_close(mine(x, msg, p), 1.7 * expected)
    xa, ma = x.clone().requires_grad_(), msg.clone().requires_grad_()
    xb, mb = x.clone().requires_grad_(), msg.clone().requires_grad_()
    mine(xa, ma, p).square().sum().backward()
    theirs(xb, mb, p).square().sum().backward()
    testing.assert_close((xa.grad, ma.grad), (xb.grad, mb.grad))
    assert mine.scale.requires_grad is learn_scale
    if learn_scale:
        testing.assert_close(mine.scale.grad, theirs.scale.grad)
    assert mine(torch.zeros(0, F), torch.zeros(0, F)).shape == (0, F)


# -- DiffGroupNorm ------------------------------------------------------------------------------------
def dense_diff_group_norm(module: DiffGroupNorm, x: torch.Tensor) -> torch.Tensor:
    """The definition: batch-normalize the ``[N, G * F]`` columns ``s_g * x`` and sum the groups."""
    s = torch.softmax(x @ module.lin.weight.t(), dim=-1)
    z = (s.unsqueeze(-1) * x.unsqueeze(-2)).reshape(x.size(0), -1)
    norm = module.norm
    mean, var = z.mean(0), z.var(0, unbiased=False)
    if not (module.training or not norm.track_running_stats):
        mean, var = norm.running_mean, norm.running_var
    out = (z - mean) / (var + norm.eps).sqrt()
    if norm.weight is not None:
        out = out * norm.weight + norm.bias
    return x + module.lamda * out.view(x.size(0), module.groups, -1).sum(1)


DGN_CASES = [
    {"groups": 3, "lamda": 0.5},
    {"groups": 1},
    {"groups": 4, "momentum": None},
    {"groups": 2, "affine": False},
    {"groups": 3, "track_running_stats": False},
]


@pytest.mark.parametrize("kwargs", DGN_CASES, ids=[str(k) for k in DGN_CASES])
def test_diff_group_norm_dense_reference_and_pyg(kwargs):
    mine = perturbed(DiffGroupNorm(F, **kwargs).double())
    x = features()
    testing.assert_close(mine(x), dense_diff_group_norm(mine, x), atol=1e-10, rtol=1e-9)
    pyg = pytest.importorskip("torch_geometric.nn.norm")
    theirs = perturbed(pyg.DiffGroupNorm(F, **kwargs).double())
    mine = DiffGroupNorm(F, **kwargs).double()
    testing.load_pyg_state(mine, theirs)
    assert repr(mine) == repr(theirs)
    run_steps(mine, theirs, steps=4)
    assert_same_state(mine, theirs)
    mine.eval()
    theirs.eval()
    x = features(seed=11)
    testing.assert_close(mine(x), theirs(x), atol=1e-10, rtol=1e-9)
    testing.assert_close(mine(x), dense_diff_group_norm(mine, x), atol=1e-10, rtol=1e-9)


def test_diff_group_norm_edge_cases():
    norm = DiffGroupNorm(F, 3).double()
    empty = torch.zeros(0, F, dtype=torch.float64)
    assert norm(empty).shape == (0, F)
    assert int(norm.norm.num_batches_tracked) == 1  # counted, as torch.nn.BatchNorm1d does
    assert torch.equal(norm.norm.running_mean, torch.zeros(3 * F, dtype=torch.float64))
    with pytest.raises(ValueError, match="'x'"):
        norm(features(1))
    norm.eval()
    one = features(1)
    testing.assert_close(norm(one), dense_diff_group_norm(norm, one))
    # float32 with a large mean keeps the batch statistics of the dense definition
    x = (torch.randn(200, F) * 0.5 + 20).float()
    norm32 = perturbed(DiffGroupNorm(F, 3, lamda=1.0))
    expected = dense_diff_group_norm(copy.deepcopy(norm32).double(), x.double())
    testing.assert_close(norm32(x), expected.float(), atol=2e-3, rtol=1e-4)


def test_group_distance_ratio():
    x = features(20)
    y = torch.tensor([0, 1, 2, 3] * 5)
    classes = 4
    dist = torch.cdist(x, x)
    inter = sum(dist[y == i][:, y != i].mean() for i in range(classes)) / (classes - 1) ** 2
    intra = sum(dist[y == i][:, y == i].mean() for i in range(classes)) / classes
    ratio = DiffGroupNorm.group_distance_ratio(x, y)
    assert isinstance(ratio, float)
    assert ratio == pytest.approx(float(inter / (intra + 1e-5)), rel=1e-10)
    assert DiffGroupNorm.group_distance_ratio(x, y.int(), eps=0.5) == pytest.approx(
        float(inter / (intra + 0.5)), rel=1e-10
    )
    pyg = pytest.importorskip("torch_geometric.nn.norm")
    assert ratio == pytest.approx(pyg.DiffGroupNorm.group_distance_ratio(x, y), rel=1e-10)
    with pytest.raises(ValueError, match="'y'"):
        DiffGroupNorm.group_distance_ratio(x, torch.where(y == 2, 3, y))  # class 2 missing
    with pytest.raises(ValueError, match="'y'"):
        DiffGroupNorm.group_distance_ratio(x, torch.zeros(20, dtype=torch.long))  # one class
    with pytest.raises(ValueError, match="'y'"):
        DiffGroupNorm.group_distance_ratio(x, y[:5])
