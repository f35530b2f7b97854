"""Graph-wise normalization layers (GraphNorm, LayerNorm, InstanceNorm, PairNorm,
MeanSubtractionNorm, GraphSizeNorm): per-graph loop references, PyG parity in training and
evaluation mode, empty and one-node graphs, unsorted batches, the fused autograd engine
(gradcheck in float64, block by block) and torch.compile."""

from __future__ import annotations

import pytest
import torch

from gnn.conv.norm import (
    GraphNorm,
    GraphSizeNorm,
    InstanceNorm,
    LayerNorm,
    MeanSubtractionNorm,
    PairNorm,
    _segment,
)
from gnn.conv.norm.graph_norm import _graph_norm_stats
from gnn.conv.norm.layer_norm import _graph_layer_norm_stats as _layer_stats
from gnn.conv.norm.pair_norm import _pair_norm_stats as _pair_stats
from gnn.core import testing

F = 6
B = 5
#: sorted batch with an empty graph (2), a one-node graph (3) and graph 4 empty at the end
BATCH = torch.tensor([0] * 7 + [1] * 9 + [3] + [5] * 6)
SIZE = 7  # graphs 2, 4 and 6 are empty


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch):
    """Blocks of a few rows, so that every test walks the multi-block CPU path too."""
    monkeypatch.setattr(_segment, "BLOCK_ELEMENTS", 3 * F)
    monkeypatch.setattr(_segment, "SERIAL_BLOCK_ELEMENTS", 3 * F)


def features(n: int = BATCH.numel(), seed: int = 0, dtype=torch.float64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, F, generator=g, dtype=dtype) * 2 + 3


def per_graph(x: torch.Tensor, batch: torch.Tensor | None, size: int, fn) -> torch.Tensor:
    """The loop reference: ``fn`` applied to the rows of every graph in turn."""
    if batch is None:
        return fn(x)
    out = torch.empty_like(x)
    for g in range(size):
        mask = batch == g
        if mask.any():
            out[mask] = fn(x[mask])
    return out


def perturbed(module: torch.nn.Module) -> torch.nn.Module:
    """``module`` with its parameters moved off their initial ones and zeros."""
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.rand(p.shape, generator=g, dtype=p.dtype))
    return module


# -- loop references ------------------------------------------------------------------------------
def ref_graph_norm(xg, m):
    centred = xg - m.mean_scale * xg.mean(0)
    return centred / (centred.pow(2).mean(0) + m.eps).sqrt() * m.weight + m.bias


def ref_layer_norm(eps_outside):
    def fn(xg, m):
        centred = xg - xg.mean()
        var = centred.pow(2).mean()
        out = centred / (var.sqrt() + m.eps) if eps_outside else centred / (var + m.eps).sqrt()
        return out if m.weight is None else out * m.weight + m.bias

    return fn


def ref_instance_norm(xg, m):
    out = (xg - xg.mean(0)) / (xg.var(0, unbiased=False) + m.eps).sqrt()
    return out if m.weight is None else out * m.weight + m.bias


def ref_pair_norm(xg, m):
    centred = xg - xg.mean(0)
    if m.scale_individually:
        return m.scale * centred / (m.eps + centred.norm(dim=-1, keepdim=True))
    return m.scale * centred / (m.eps + centred.pow(2).sum(-1).mean()).sqrt()


LAYERS = {
    "graph_norm": (lambda: perturbed(GraphNorm(F)), ref_graph_norm),
    "layer_norm": (lambda: perturbed(LayerNorm(F)), ref_layer_norm(False)),
    "layer_norm_plain": (lambda: LayerNorm(F, affine=False), ref_layer_norm(False)),
    "instance_norm": (lambda: InstanceNorm(F), ref_instance_norm),
    "instance_norm_affine": (lambda: perturbed(InstanceNorm(F, affine=True)), ref_instance_norm),
    "pair_norm": (lambda: PairNorm(scale=1.5), ref_pair_norm),
    "pair_norm_si": (lambda: PairNorm(scale=1.5, scale_individually=True), ref_pair_norm),
    "mean_subtraction": (MeanSubtractionNorm, lambda xg, m: xg - xg.mean(0)),
    "graph_size": (GraphSizeNorm, lambda xg, m: xg / xg.size(0) ** 0.5),
}


@pytest.mark.parametrize("name", list(LAYERS))
@pytest.mark.parametrize("with_batch", [True, False], ids=["batch", "one-graph"])
def test_matches_per_graph_loop(name, with_batch):
    make, ref = LAYERS[name]
    module = make().double()
    x = features()
    batch = BATCH if with_batch else None
    out = module(x, batch, SIZE) if with_batch else module(x)
    if not with_batch and name.startswith("layer_norm"):
        ref = ref_layer_norm(True)  # without batch, PyG divides by (std + eps)
    expected = per_graph(x, batch, SIZE, lambda xg: ref(xg, module))
    testing.assert_close(out, expected, atol=1e-10, rtol=1e-9)


@pytest.mark.parametrize("name", list(LAYERS))
def test_unsorted_batch_equals_sorted_permuted(name):
    make, _ = LAYERS[name]
    module = make().double()
    x = features().requires_grad_()
    perm = torch.randperm(x.size(0), generator=torch.Generator().manual_seed(3))
    out = module(x, BATCH, SIZE)
    grad = torch.randn_like(out)
    (gx,) = torch.autograd.grad(out, x, grad)
    x_perm = x.detach()[perm].requires_grad_()
    out_perm = module(x_perm, BATCH[perm], SIZE)
    (gx_perm,) = torch.autograd.grad(out_perm, x_perm, grad[perm])
    testing.assert_close(out_perm, out[perm], atol=1e-12, rtol=1e-10)
    testing.assert_close(gx_perm, gx[perm], atol=1e-12, rtol=1e-10)


@pytest.mark.parametrize("name", list(LAYERS))
def test_empty_input_and_one_node_graphs(name):
    make, ref = LAYERS[name]
    module = make().double()
    empty = torch.zeros(0, F, dtype=torch.float64)
    assert module(empty).shape == (0, F)
    assert module(empty, torch.zeros(0, dtype=torch.long)).shape == (0, F)
    assert module(empty, torch.zeros(0, dtype=torch.long), 3).shape == (0, F)
    # every graph a single node: the reference on each row alone
    x = features(4).requires_grad_()
    batch = torch.arange(4)
    out = module(x, batch, 6)
    expected = per_graph(x.detach(), batch, 6, lambda xg: ref(xg, module))
    testing.assert_close(out, expected, atol=1e-10, rtol=1e-9)
    out.square().sum().backward()
    assert torch.isfinite(x.grad).all()
    for p in module.parameters():
        assert p.grad is None or torch.isfinite(p.grad).all()


@pytest.mark.parametrize("name", list(LAYERS))
def test_int32_batch_and_non_contiguous_x(name):
    make, _ = LAYERS[name]
    module = make().double()
    x = features()
    wide = torch.stack([x, -x], dim=2).reshape(x.size(0), 2 * F)[:, ::2]  # strided view of x
    assert not wide.is_contiguous()
    testing.assert_close(module(wide, BATCH.int(), SIZE), module(x, BATCH, SIZE), atol=1e-12, rtol=1e-10)


@pytest.mark.parametrize("name", ["graph_norm", "layer_norm", "instance_norm", "pair_norm"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_lower_precisions(name, dtype):
    make, _ = LAYERS[name]
    module = make()
    x = features(dtype=torch.float32)
    expected = make().double()(x.double(), BATCH, SIZE)
    out = module.to(dtype)(x.to(dtype), BATCH, SIZE)
    assert out.dtype == dtype
    tol = 1e-4 if dtype == torch.float32 else 5e-2
    testing.assert_close(out.double(), expected, atol=tol, rtol=tol)


# -- the fused engine ---------------------------------------------------------------------------
STATS = {
    "graph_norm": lambda s, m, n, w, b, a: _graph_norm_stats(s, m, n, w, b, a, 1e-5),
    "layer_norm": lambda s, m, n, w, b, a: _layer_stats(s, m, n, w, b, 1e-5, False),
    "pair_norm": lambda s, m, n, w, b, a: _pair_stats(s, m, n, 1.5, 1e-5),
}


@pytest.mark.parametrize("stats", list(STATS))
@pytest.mark.parametrize("layout", ["sorted", "unsorted", "one-graph"])
def test_engine_gradcheck_and_reference(stats, layout):
    """The custom backward of ``_GraphAffine`` against finite differences (float64), and the
    fused forward/backward against the plain reference used under torch.compile."""
    fn = STATS[stats]
    n = 11
    g = torch.Generator().manual_seed(5)
    batch = {"sorted": torch.tensor([0, 0, 0, 1, 1, 3, 3, 3, 3, 3, 3]), "one-graph": None}.get(
        layout, torch.tensor([3, 0, 1, 3, 0, 3, 1, 3, 0, 3, 3])
    )
    x = torch.randn(n, F, generator=g, dtype=torch.float64, requires_grad=True)
    params = [torch.rand(F, generator=g, dtype=torch.float64, requires_grad=True) + 0.5 for _ in range(3)]
    params = [p.detach().requires_grad_() for p in params]

    def fused(x, *ps):
        return _segment.graph_affine(x, _segment.graphs_of(x, batch, 4), fn, *ps)

    def plain(x, *ps):
        return _segment.graph_affine_reference(x, _segment.graphs_of(x, batch, 4), fn, *ps)

    assert torch.autograd.gradcheck(fused, (x, *params))
    out, ref = fused(x, *params), plain(x, *params)
    testing.assert_close(out, ref, atol=1e-12, rtol=1e-10)
    grad = torch.randn(out.shape, generator=g, dtype=torch.float64)
    testing.assert_close(
        torch.autograd.grad(out, (x, *params), grad, allow_unused=True),
        torch.autograd.grad(ref, (x, *params), grad, allow_unused=True),
        atol=1e-11,
        rtol=1e-9,
    )


def test_engine_blocks_cover_rows_and_graphs():
    x = features()
    graphs = _segment.graphs_of(x, BATCH, SIZE)
    blocks = graphs.blocks(F, x.device)
    assert len(blocks) > 3 and blocks[0][0] == 0 and blocks[-1][1] == x.size(0)
    for (s, e, g0, g1, ptr), nxt in zip(blocks, blocks[1:] + [None]):
        assert nxt is None or nxt[0] == e
        assert g0 == int(BATCH[s]) and g1 == int(BATCH[e - 1])
        assert int(ptr[0]) == 0 and int(ptr[-1]) == e - s
    # an unsorted batch is reduced by scatter over all rows at once (B x C is large next to a block)
    perm = torch.randperm(x.size(0), generator=torch.Generator().manual_seed(1))
    unsorted = _segment.graphs_of(x, BATCH[perm], SIZE)
    assert unsorted.ptr is None and unsorted.blocks(F, x.device) == [(0, x.size(0), 0, SIZE - 1, None)]
    testing.assert_close(unsorted.counts, graphs.counts)


@pytest.mark.parametrize("name", ["graph_norm", "layer_norm", "instance_norm_affine", "pair_norm"])
def test_unsorted_blocks_scatter_into_all_graphs(name, monkeypatch):
    """Few graphs and many rows: the unsorted batch is walked in blocks too, each scattering
    into all graphs; same numbers and gradients as the sorted layout."""
    monkeypatch.setattr(_segment, "BLOCK_ELEMENTS", 4 * SIZE * F)
    monkeypatch.setattr(_segment, "SERIAL_BLOCK_ELEMENTS", 4 * SIZE * F)
    g = torch.Generator().manual_seed(4)
    batch = torch.randint(0, SIZE, (200,), generator=g)
    x = features(200).requires_grad_()
    blocks = _segment.graphs_of(x, batch, SIZE).blocks(F, x.device)
    assert len(blocks) > 4 and all(ptr is None and (g0, g1) == (0, SIZE - 1) for _, _, g0, g1, ptr in blocks)
    module = LAYERS[name][0]().double()
    order = batch.argsort(stable=True)
    out = module(x, batch, SIZE)
    x_sorted = x.detach()[order].requires_grad_()
    out_sorted = module(x_sorted, batch[order], SIZE)
    testing.assert_close(out[order], out_sorted, atol=1e-12, rtol=1e-10)
    grad = torch.randn(out.shape, generator=g, dtype=out.dtype)
    (gx,) = torch.autograd.grad(out, x, grad)
    (gx_sorted,) = torch.autograd.grad(out_sorted, x_sorted, grad[order])
    testing.assert_close(gx[order], gx_sorted, atol=1e-12, rtol=1e-10)
    expected = per_graph(x.detach(), batch, SIZE, lambda xg: LAYERS[name][1](xg, module))
    testing.assert_close(out, expected, atol=1e-10, rtol=1e-9)


# -- PyG parity --------------------------------------------------------------------------------------
PYG_CASES = [
    ("GraphNorm", {"in_channels": F}),
    ("LayerNorm", {"in_channels": F}),
    ("LayerNorm", {"in_channels": F, "affine": False}),
    ("LayerNorm", {"in_channels": F, "mode": "node"}),
    ("InstanceNorm", {"in_channels": F}),
    ("InstanceNorm", {"in_channels": F, "affine": True, "track_running_stats": True, "momentum": 0.3}),
    ("PairNorm", {"scale": 2.0}),
    ("PairNorm", {"scale_individually": True}),
    ("MeanSubtractionNorm", {}),
    ("GraphSizeNorm", {}),
]


@pytest.mark.parametrize("with_batch", [True, False], ids=["batch", "one-graph"])
@pytest.mark.parametrize("name, kwargs", PYG_CASES, ids=[f"{n}-{k}" for n, k in PYG_CASES])
def test_pyg_parity_train_and_eval(name, kwargs, with_batch):
    pyg = pytest.importorskip("torch_geometric.nn.norm")
    import gnn.conv.norm as ours

    theirs = perturbed(getattr(pyg, name)(**kwargs).double())
    mine = getattr(ours, name)(**kwargs).double()
    testing.load_pyg_state(mine, theirs)
    assert repr(mine) == repr(theirs)
    batch = BATCH if with_batch else None
    # PyG's batched path fails on empty trailing graphs' max(); give it a batch_size
    args = (batch, SIZE) if with_batch else ()
    for step in range(3):  # several training steps: the running statistics too
        x = features(seed=step)
        xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
        out_a, out_b = mine(xa, *args), theirs(xb, *args)
        testing.assert_close(out_a, out_b, atol=1e-10, rtol=1e-9)
        grad = torch.randn_like(out_a)
        out_a.backward(grad)
        out_b.backward(grad)
        testing.assert_close(xa.grad, xb.grad, atol=1e-10, rtol=1e-9)
        for (key, p), q in zip(mine.named_parameters(), theirs.parameters()):
            if q.grad is None:
                assert p.grad is None, key
            else:
                testing.assert_close(p.grad, q.grad, atol=1e-10, rtol=1e-9, msg=key)
        mine.zero_grad()
        theirs.zero_grad()
    for key, value in theirs.state_dict().items():
        testing.assert_close(mine.state_dict()[key], value.detach(), atol=1e-12, rtol=1e-10, msg=key)
    mine.eval()
    theirs.eval()
    x = features(seed=9)
    testing.assert_close(mine(x, *args), theirs(x, *args), atol=1e-10, rtol=1e-9)


def test_instance_norm_running_stats_against_loop():
    norm = InstanceNorm(F, track_running_stats=True, momentum=0.2).double()
    x = features()
    norm(x, BATCH, SIZE)
    means, variances = [], []
    for g in range(SIZE):
        xg = x[BATCH == g]
        means.append(xg.mean(0) if len(xg) else torch.zeros(F, dtype=x.dtype))
        variances.append(xg.var(0) if len(xg) > 1 else torch.zeros(F, dtype=x.dtype))
    testing.assert_close(norm.running_mean, 0.2 * torch.stack(means).mean(0))
    testing.assert_close(norm.running_var, 0.8 + 0.2 * torch.stack(variances).mean(0))
    assert int(norm.num_batches_tracked) == 0  # as PyG: InstanceNorm counts no batches
    norm.eval()
    expected = (x - norm.running_mean) / (norm.running_var + norm.eps).sqrt()
    testing.assert_close(norm(x, BATCH, SIZE), expected)


def test_instance_norm_momentum_none_is_cumulative():
    norm = InstanceNorm(F, track_running_stats=True, momentum=None).double()
    means = []
    for seed in range(3):
        x = features(seed=seed)
        norm(x)
        means.append(x.mean(0))
    assert int(norm.num_batches_tracked) == 3
    testing.assert_close(norm.running_mean, torch.stack(means).mean(0))


def test_instance_norm_untracked_uses_batch_statistics_in_eval():
    norm = InstanceNorm(F).double().eval()
    x = features()
    testing.assert_close(
        norm(x, BATCH, SIZE), per_graph(x, BATCH, SIZE, lambda xg: ref_instance_norm(xg, norm))
    )


# -- torch.compile ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "make", [lambda: perturbed(GraphNorm(F)), lambda: perturbed(LayerNorm(F))], ids=["GraphNorm", "LayerNorm"]
)
@pytest.mark.parametrize("with_batch", [True, False], ids=["batch", "one-graph"])
def test_compiles_without_graph_breaks(make, with_batch):
    module = make()
    x = features(dtype=torch.float32)
    args = (BATCH, SIZE) if with_batch else ()
    testing.assert_compiles_like_eager(module, x, *args)
