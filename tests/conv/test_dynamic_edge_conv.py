"""DynamicEdgeConv against a brute-force kNN + EdgeConv loop reference (batches, bipartite inputs),
both kNN backends, PyG (its layer runs here on a brute-force ``pyg::knn`` from conftest.py)
and bad input."""

from __future__ import annotations

import pytest
import torch

from gnn.conv import DynamicEdgeConv
from gnn.core import ops, testing

F = 4


def make_nn() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(2 * F, 6), torch.nn.ReLU(), torch.nn.Linear(6, 5)).double()


def loop_reference(conv, x_src, x_dst, nbrs, reduce="amax"):
    out = []
    with torch.no_grad():
        for i, src in enumerate(nbrs):
            if not src:
                out.append(torch.zeros(5, dtype=torch.float64))
                continue
            xi = x_dst[i].expand(len(src), -1)
            msgs = conv.nn(torch.cat([xi, x_src[torch.tensor(src)] - xi], dim=1))
            out.append(getattr(torch, reduce)(msgs, dim=0))
    return torch.stack(out)


def points(seed: int, n: int = 20):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, F, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("aggr, reduce", [("max", "amax"), ("mean", "mean"), ("add", "sum")])
def test_matches_brute_force_reference(aggr, reduce, brute_knn):
    x = points(1)
    batch = torch.tensor([0] * 6 + [1] * 3 + [2] * 11)  # example 1 has fewer points than k
    conv = DynamicEdgeConv(make_nn(), k=4, aggr=aggr)
    testing.assert_close(conv(x, batch), loop_reference(conv, x, x, brute_knn(x, x, 4, batch, batch), reduce))
    testing.assert_close(conv(x), loop_reference(conv, x, x, brute_knn(x, x, 4), reduce))


def test_bipartite_batches_and_backends(brute_knn):
    x_src, x_dst = points(2, 15), points(3, 9)
    b_src, b_dst = torch.tensor([0] * 7 + [2] * 8), torch.tensor([0] * 3 + [1] * 2 + [2] * 4)
    conv = DynamicEdgeConv(make_nn(), k=3)
    expected = loop_reference(conv, x_src, x_dst, brute_knn(x_src, x_dst, 3, b_src, b_dst))
    testing.assert_close(conv((x_src, x_dst), (b_src, b_dst)), expected)
    assert expected[3:5].abs().max() == 0  # example 1 has no sources
    with ops.backend("torch"):
        testing.assert_close(conv((x_src, x_dst), (b_src, b_dst)), expected)
    testing.assert_close(conv((x_src, x_dst), (b_src.int(), b_dst.int())), expected)


@pytest.mark.parametrize("aggr", ["max", "mean"])
def test_wide_first_layer_applied_per_node(aggr, brute_knn):
    """With 2F >= 16 inputs the first linear layer runs per node; same numbers and gradients as the
    per-edge path (forced by a message hook)."""
    g = torch.Generator().manual_seed(9)
    x = torch.randn(30, 10, generator=g, dtype=torch.float64)
    batch = torch.tensor([0] * 12 + [1] * 18)
    torch.manual_seed(0)
    nn = torch.nn.Sequential(torch.nn.Linear(20, 7), torch.nn.ReLU(), torch.nn.Linear(7, 5)).double()
    conv = DynamicEdgeConv(nn, k=5, aggr=aggr)
    results = []
    for hooked in (False, True):
        xx = x.clone().requires_grad_()
        seen: list[int] = []
        handle = conv.register_message_forward_hook(lambda m, i, o: seen.append(1)) if hooked else None
        out = conv(xx, batch)
        out.square().sum().backward()
        if handle is not None:
            handle.remove()
        assert bool(seen) == hooked
        results.append([out, xx.grad] + [p.grad.clone() for p in conv.parameters()])
        conv.zero_grad()
    for a, b in zip(*results):
        testing.assert_close(a, b, atol=1e-10, rtol=1e-8)
    reference = loop_reference(
        conv, x, x, brute_knn(x, x, 5, batch, batch), "amax" if aggr == "max" else "mean"
    )
    testing.assert_close(results[0][0], reference)


def test_gradients_and_empty():
    x = points(4).requires_grad_()
    conv = DynamicEdgeConv(make_nn(), k=5, aggr="mean")
    torch.autograd.gradcheck(lambda t: conv(t), (x,))
    assert conv(points(5, 0)).shape == (0, 5)
    assert conv((points(5, 0), points(6, 3))).abs().max() == 0


def test_bad_input():
    x = points(6)
    conv = DynamicEdgeConv(make_nn(), k=3)
    with pytest.raises(ValueError, match="batch"):
        conv(x, torch.tensor([1] * 10 + [0] * 10))
    with pytest.raises(ValueError, match="batch"):
        conv(x, torch.zeros(5, dtype=torch.long))
    with pytest.raises(TypeError, match="batch"):
        conv(x, torch.zeros(20))
    with pytest.raises(ValueError, match="batch"):
        conv((x, x[:5]), torch.zeros(20, dtype=torch.long))
    with pytest.raises(ValueError, match="Static graphs"):
        conv(x.view(20, 2, 2))
    with pytest.raises(ValueError, match="x"):
        conv((x, x[:, :2]))
    with pytest.raises(ValueError, match="k"):
        DynamicEdgeConv(make_nn(), k=0)


def test_pyg_parity(pyg_with_knn):
    pyg = pyg_with_knn
    testing.assert_signatures_match(DynamicEdgeConv, pyg.nn.DynamicEdgeConv)
    x, batch = points(7), torch.tensor([0] * 8 + [1] * 12)
    for aggr in ("max", "mean"):
        theirs = pyg.nn.DynamicEdgeConv(make_nn(), k=4, aggr=aggr)
        ours = DynamicEdgeConv(make_nn(), k=4, aggr=aggr)
        assert repr(ours) == repr(theirs)
        testing.assert_gradients_match_pyg(ours, theirs, x, batch)
        testing.assert_close(ours(x), theirs(x))
    x_dst, b_dst = points(8, 6), torch.tensor([0, 0, 1, 1, 1, 1])
    testing.assert_close(ours((x, x_dst), (batch, b_dst)), theirs((x, x_dst), (batch, b_dst)))
