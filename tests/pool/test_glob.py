"""global_add/mean/max_pool: per-graph loop reference, sorted/unsorted paths, PyG parity, edge cases."""

from __future__ import annotations

import pytest
import torch

from gnn.core import ops
from gnn.pool import global_add_pool, global_max_pool, global_mean_pool

POOLS = {"sum": global_add_pool, "mean": global_mean_pool, "max": global_max_pool}


def loop_reference(x, batch, size, reduce):
    """One graph at a time, with plain tensor reductions (empty graphs give 0)."""
    rows = []
    for g in range(size):
        part = x[batch == g]
        if part.size(0) == 0:
            rows.append(x.new_zeros(x.shape[1:]))
        elif reduce == "sum":
            rows.append(part.sum(0))
        elif reduce == "mean":
            rows.append(part.mean(0))
        else:
            rows.append(part.amax(0))
    return torch.stack(rows) if rows else x.new_zeros((0,) + x.shape[1:])


def graphs(sorted_batch: bool, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    batch = torch.randint(0, 6, (40,), generator=g)
    batch[batch == 3] = 4  # graph 3 is empty
    if sorted_batch:
        batch = batch.sort().values
    x = torch.randn(40, 5, generator=g, dtype=torch.float64)
    return x, batch


@pytest.mark.parametrize("reduce", ["sum", "mean", "max"])
@pytest.mark.parametrize("sorted_batch", [True, False])
def test_matches_loop_over_graphs(reduce, sorted_batch):
    x, batch = graphs(sorted_batch)
    size = int(batch.max()) + 1
    out = POOLS[reduce](x, batch)
    torch.testing.assert_close(out, loop_reference(x, batch, size, reduce))
    out = POOLS[reduce](x, batch, size=size + 2)  # trailing empty graphs
    torch.testing.assert_close(out, loop_reference(x, batch, size + 2, reduce))


@pytest.mark.parametrize("reduce", ["sum", "mean", "max"])
def test_sorted_batch_takes_segment_and_unsorted_scatter(monkeypatch, reduce):
    calls = []
    real_segment, real_scatter = ops.segment, ops.scatter
    monkeypatch.setattr(ops, "segment", lambda *a, **k: calls.append("segment") or real_segment(*a, **k))
    monkeypatch.setattr(ops, "scatter", lambda *a, **k: calls.append("scatter") or real_scatter(*a, **k))
    x, batch = graphs(True)
    POOLS[reduce](x, batch)
    assert calls == ["segment"]
    calls.clear()
    x, batch = graphs(False)
    POOLS[reduce](x, batch)
    assert calls == ["scatter"]


@pytest.mark.parametrize("reduce", ["sum", "mean", "max"])
@pytest.mark.parametrize("sorted_batch", [True, False])
def test_pyg_parity_with_gradients(reduce, sorted_batch):
    pyg = pytest.importorskip("torch_geometric.nn")
    theirs = {"sum": pyg.global_add_pool, "mean": pyg.global_mean_pool, "max": pyg.global_max_pool}[reduce]
    x, batch = graphs(sorted_batch, seed=3)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    for size in (None, 8):
        out, ref = POOLS[reduce](x1, batch, size), theirs(x2, batch, size)
        torch.testing.assert_close(out, ref)
        weight = torch.randn_like(ref)
        (out * weight).sum().backward()
        (ref * weight).sum().backward()
        torch.testing.assert_close(x1.grad, x2.grad)  # no ties in random features
        x1.grad = x2.grad = None


@pytest.mark.parametrize("reduce", ["sum", "mean", "max"])
def test_without_batch_and_higher_dimensional_x(reduce):
    pyg = pytest.importorskip("torch_geometric.nn")
    theirs = {"sum": pyg.global_add_pool, "mean": pyg.global_mean_pool, "max": pyg.global_max_pool}[reduce]
    for shape in [(7,), (7, 3), (2, 7, 3)]:
        x = torch.randn(shape)
        out = POOLS[reduce](x, None)
        torch.testing.assert_close(out, theirs(x, None))
    x, batch = torch.randn(2, 7, 3), torch.tensor([0, 0, 1, 1, 1, 2, 2])
    torch.testing.assert_close(POOLS[reduce](x, batch), theirs(x, batch))
    x = torch.randn(7)
    torch.testing.assert_close(POOLS[reduce](x, batch), theirs(x, batch))


def test_one_graph_equals_plain_reductions():
    x = torch.randn(9, 4)
    torch.testing.assert_close(global_add_pool(x, None), x.sum(0, keepdim=True))
    torch.testing.assert_close(global_mean_pool(x, None), x.mean(0, keepdim=True))
    torch.testing.assert_close(global_max_pool(x, None), x.amax(0, keepdim=True))


@pytest.mark.parametrize("reduce", ["sum", "mean", "max"])
def test_empty_inputs(reduce):
    pool = POOLS[reduce]
    empty = torch.empty(0, 3)
    assert pool(empty, torch.empty(0, dtype=torch.long)).shape == (0, 3)
    torch.testing.assert_close(pool(empty, torch.empty(0, dtype=torch.long), 2), torch.zeros(2, 3))
    torch.testing.assert_close(pool(empty, None), torch.zeros(1, 3))  # PyG: nan (mean), error (max)


def test_int32_batch_noncontiguous_x_and_integer_mean():
    x = torch.randn(3, 8)[:, ::2]
    batch = torch.tensor([0, 1, 1], dtype=torch.int32)
    torch.testing.assert_close(global_mean_pool(x, batch), torch.stack([x[0], x[1:].mean(0)]))
    out = global_mean_pool(torch.tensor([[1], [2], [4]]), torch.tensor([0, 0, 1]))
    assert out.dtype == torch.get_default_dtype()
    torch.testing.assert_close(out, torch.tensor([[1.5], [4.0]]))


def test_bad_inputs_name_the_argument():
    x = torch.randn(4, 2)
    with pytest.raises(ValueError, match="'batch'"):
        global_mean_pool(x, torch.tensor([0, 0, 1]))  # one entry short
    with pytest.raises(TypeError, match="'batch'"):
        global_mean_pool(x, torch.tensor([0.0, 0.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match="'batch'"):
        global_add_pool(x, torch.tensor([0, 0, 1, 5]), size=2)  # sorted path: graph 5 of 2
    with pytest.raises(ValueError, match="'index'"):
        global_add_pool(x, torch.tensor([0, 5, 1, 0]), size=2)  # unsorted path: scatter's check
    with pytest.raises(TypeError, match="'x'"):
        global_max_pool([[1.0]], None)
    with pytest.raises(TypeError, match="'size'"):
        global_max_pool(x, None, size=1.5)


def test_compiles_with_dynamic_sizes():
    def fn(x, batch):
        return global_mean_pool(x, batch, 3) + global_max_pool(x, batch, 3)

    compiled = torch.compile(fn, backend="aot_eager", dynamic=True, fullgraph=True)
    for n in (10, 17):
        x, batch = torch.randn(n, 4), torch.arange(n) % 3
        torch.testing.assert_close(compiled(x, batch), fn(x, batch))


def test_max_gradient_with_ties_keeps_the_upstream_gradient():
    """Equal maxima: the unsorted (scatter) path splits the gradient evenly (as PyG); the sorted path
    splits it (pure torch) or gives it to one of them (gnn-kernels' segment argmax). Either way each
    graph and channel passes on exactly its upstream gradient."""
    x = torch.tensor([[1.0, 2.0], [1.0, 0.0], [3.0, 3.0]], dtype=torch.float64)
    upstream = torch.tensor([[2.0, 5.0], [7.0, 11.0]], dtype=torch.float64)
    for batch, tied in ((torch.tensor([0, 0, 1]), [0, 1]), (torch.tensor([0, 1, 0]), [0, 2])):
        leaf = (x if tied == [0, 1] else x[[0, 2, 1]]).clone().requires_grad_()
        (global_max_pool(leaf, batch) * upstream).sum().backward()
        per_graph = torch.zeros(2, 2, dtype=torch.float64).index_add_(0, batch, leaf.grad)
        torch.testing.assert_close(per_graph, upstream)
        shares = sorted(leaf.grad[tied, 0].tolist())
        if tied == [0, 2]:  # unsorted
            assert shares == [1.0, 1.0]
        else:
            assert shares in ([1.0, 1.0], [0.0, 2.0])


@pytest.mark.parametrize("reduce", ["sum", "mean"])
def test_sorted_path_backward_gradcheck(reduce):
    """The sorted add/mean path has its own backward (a gather by ``batch``): float64 gradcheck,
    with an empty graph, trailing empty graphs and 3-D features."""
    batch = torch.tensor([0, 0, 0, 2, 2, 3])
    x = torch.randn(6, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: POOLS[reduce](t, batch, 6), (x,))
    x3 = torch.randn(2, 6, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: POOLS[reduce](t, batch), (x3,))
    assert torch.autograd.gradgradcheck(lambda t: POOLS[reduce](t, batch), (x,))
