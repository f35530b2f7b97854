"""HeteroBatchNorm and HeteroLayerNorm against per-type loop references and PyG (outputs,
gradients, running statistics), type_vec and type_ptr inputs, and errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from gnn.hetero import HeteroBatchNorm, HeteroLayerNorm

N, C, T = 20, 6, 3


def _inputs(seed=0, sort=False):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(N, C, generator=g, dtype=torch.float64) * 3 + 1
    type_vec = torch.randint(0, T - 1, (N,), generator=g)  # type T-1 absent from the batch
    if sort:
        type_vec = type_vec.sort().values
    return x, type_vec


def _affine(norm):
    with torch.no_grad():
        norm.weight.normal_()
        norm.bias.normal_()
    return norm


def test_batch_norm_training_matches_the_per_type_formula():
    x, tv = _inputs()
    norm = _affine(HeteroBatchNorm(C, T).double())
    out = norm(x, tv)
    for t in range(T - 1):
        rows = x[tv == t]
        mean, var = rows.mean(0), rows.var(0, unbiased=False)
        expected = (rows - mean) / var.clamp(min=1e-5).sqrt() * norm.weight[t] + norm.bias[t]
        torch.testing.assert_close(out[tv == t], expected)
        torch.testing.assert_close(norm.running_mean[t], 0.1 * mean)
        torch.testing.assert_close(norm.running_var[t], 0.9 + 0.1 * var)
    # the absent type keeps its running statistics
    assert torch.equal(norm.running_mean[T - 1], torch.zeros(C, dtype=torch.float64))
    norm.eval()
    expected = (x - norm.running_mean[tv]) / norm.running_var[tv].clamp(min=1e-5).sqrt()
    torch.testing.assert_close(norm(x, tv), expected * norm.weight[tv] + norm.bias[tv])


@pytest.mark.parametrize(
    "kwargs", [{}, {"momentum": None}, {"affine": False}, {"track_running_stats": False}], ids=str
)
def test_batch_norm_matches_pyg(kwargs):
    pyg = pytest.importorskip("torch_geometric.nn")
    ours, theirs = HeteroBatchNorm(C, T, **kwargs).double(), pyg.HeteroBatchNorm(C, T, **kwargs).double()
    assert repr(ours) == repr(theirs)
    if ours.affine:
        _affine(theirs)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    for seed in range(3):
        x, tv = _inputs(seed)
        xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
        a, b = ours(xa, tv), theirs(xb, tv)
        torch.testing.assert_close(a, b)
        grad = torch.randn_like(a)
        a.backward(grad)
        b.backward(grad)
        torch.testing.assert_close(xa.grad, xb.grad)  # batch statistics are constants, as in PyG
    for key, value in theirs.state_dict().items():
        torch.testing.assert_close(ours.state_dict()[key], value)
    ours.eval()
    theirs.eval()
    x, tv = _inputs(5)
    torch.testing.assert_close(ours(x, tv), theirs(x, tv))


def test_layer_norm_matches_the_formula_with_type_vec_and_type_ptr():
    x, tv = _inputs(sort=True)
    norm = _affine(HeteroLayerNorm(C, T).double())
    expected = F.layer_norm(x, (C,), eps=1e-5) * norm.weight[tv] + norm.bias[tv]
    torch.testing.assert_close(norm(x, tv), expected)
    ptr = torch.tensor([0, int((tv == 0).sum()), N, N])
    torch.testing.assert_close(norm(x, type_ptr=ptr), expected)
    torch.testing.assert_close(norm(x, type_ptr=ptr.tolist()), expected)
    plain = HeteroLayerNorm(C, T, affine=False).double()
    torch.testing.assert_close(plain(x, tv), F.layer_norm(x, (C,), eps=1e-5))


def test_layer_norm_matches_pyg():
    pyg = pytest.importorskip("torch_geometric.nn")
    x, tv = _inputs(sort=True)
    ours, theirs = HeteroLayerNorm(C, T).double(), _affine(pyg.HeteroLayerNorm(C, T).double())
    assert repr(ours) == repr(theirs)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    ptr = torch.tensor([0, int((tv == 0).sum()), N, N])
    torch.testing.assert_close(ours(x, tv), theirs(x, tv))
    torch.testing.assert_close(ours(x, type_ptr=ptr), theirs(x, type_ptr=ptr))


def test_empty_input_and_int32_types():
    norm = HeteroBatchNorm(C, T).double()
    out = norm(torch.zeros(0, C, dtype=torch.float64), torch.zeros(0, dtype=torch.long))
    assert out.shape == (0, C)
    x, tv = _inputs()
    torch.testing.assert_close(
        HeteroLayerNorm(C, T).double()(x, tv.int()), HeteroLayerNorm(C, T).double()(x, tv)
    )


def test_errors_name_the_argument():
    x, tv = _inputs()
    with pytest.raises(ValueError, match="type_vec"):
        HeteroBatchNorm(C, T).double()(x, tv[:-1])
    with pytest.raises(ValueError, match="type_vec"):
        HeteroBatchNorm(C, T).double()(x, tv + T)
    with pytest.raises(ValueError, match="'x'"):
        HeteroBatchNorm(C, T).double()(x[:, :2], tv)
    with pytest.raises(ValueError, match="type_vec' or 'type_ptr"):
        HeteroLayerNorm(C, T)(x.float())
    with pytest.raises(ValueError, match="type_ptr"):
        HeteroLayerNorm(C, T).double()(x, type_ptr=[0, 3])
    with pytest.raises(ValueError, match="mode"):
        HeteroLayerNorm(C, T, mode="graph")
