"""knn_interpolate: brute-force inverse-distance reference, PyG's own code path, gradients."""

from __future__ import annotations

import pytest
import torch

from gnn.pool import knn, knn_interpolate


def brute(x, pos_x, pos_y, bx, by, k):
    out = []
    for i in range(pos_y.size(0)):
        d = ((pos_x - pos_y[i]) ** 2).sum(1)
        d[bx != by[i]] = float("inf")
        nb = sorted(range(pos_x.size(0)), key=lambda j: (float(d[j]), j))[:k]
        nb = [j for j in nb if bx[j] == by[i]]
        if not nb:
            out.append(torch.zeros(x.size(1), dtype=x.dtype))
            continue
        w = 1 / d[nb].clamp(min=1e-16)
        out.append((w.view(-1, 1) * x[nb]).sum(0) / w.sum())
    return torch.stack(out)


def data(seed=0):
    g = torch.Generator().manual_seed(seed)
    pos_x = torch.rand(30, 3, generator=g, dtype=torch.float64)
    pos_y = torch.rand(50, 3, generator=g, dtype=torch.float64)
    x = torch.randn(30, 4, generator=g, dtype=torch.float64)
    bx = torch.tensor([0] * 12 + [1] * 18)
    by = torch.tensor([0] * 20 + [1] * 30)
    return x, pos_x, pos_y, bx, by


@pytest.mark.parametrize("k", [1, 3, 40])
def test_matches_brute_force(k):
    x, pos_x, pos_y, bx, by = data()
    out = knn_interpolate(x, pos_x, pos_y, bx, by, k=k)
    torch.testing.assert_close(out, brute(x, pos_x, pos_y, bx, by, k))


def test_pyg_code_path_with_our_knn(monkeypatch):
    """PyG's knn_interpolate needs torch-cluster's knn; run its own code with ours substituted."""
    pytest.importorskip("torch_geometric")
    import importlib

    module = importlib.import_module("torch_geometric.nn.unpool.knn_interpolate")
    monkeypatch.setattr(module, "knn", knn)
    x, pos_x, pos_y, bx, by = data(1)
    ref = module.knn_interpolate(x, pos_x, pos_y, bx, by, k=3)
    torch.testing.assert_close(knn_interpolate(x, pos_x, pos_y, bx, by, k=3), ref)


def test_point_on_a_source_point_takes_its_features_and_gradient():
    x = torch.tensor([[1.0, 2.0], [5.0, -1.0], [0.0, 3.0]], dtype=torch.float64, requires_grad=True)
    pos_x = torch.tensor([[0.0], [1.0], [3.0]], dtype=torch.float64)
    out = knn_interpolate(x, pos_x, torch.tensor([[1.0], [2.0]], dtype=torch.float64), k=2)
    torch.testing.assert_close(out[0], x[1].detach(), atol=1e-12, rtol=0)
    torch.testing.assert_close(out[1], (x[1] + x[2]).detach() / 2)
    assert torch.autograd.gradcheck(
        lambda t: knn_interpolate(t, pos_x, torch.tensor([[0.4], [2.2]], dtype=torch.float64), k=2), (x,)
    )


def test_empty_graph_of_known_points_gives_zero_and_bad_inputs():
    x, pos_x = torch.randn(2, 3), torch.rand(2, 2)
    out = knn_interpolate(x, pos_x, torch.rand(3, 2), torch.tensor([0, 0]), torch.tensor([0, 1, 1]))
    assert torch.equal(out[1:], torch.zeros(2, 3))
    assert knn_interpolate(x, pos_x, torch.empty(0, 2)).shape == (0, 3)
    with pytest.raises(ValueError, match="'x'"):
        knn_interpolate(torch.randn(3, 3), pos_x, torch.rand(3, 2))
    with pytest.raises(ValueError, match="'k'"):
        knn_interpolate(x, pos_x, torch.rand(3, 2), k=0)
