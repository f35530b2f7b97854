"""Propagation models: LabelPropagation and CorrectAndSmooth against references written here
(and PyG), LINKX, PMLP and RECT_L against PyG after a strict state_dict load; input forms, the
fused path, bad inputs."""

from __future__ import annotations

import inspect

import pytest
import torch

from gnn.core import testing
from gnn.models import LINKX, PMLP, RECT_L, CorrectAndSmooth, LabelPropagation

N, E, K = 14, 50, 3


def graph(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    edge_index = torch.randint(0, N, (2, E), generator=g)
    y = torch.randint(0, K, (N,), generator=g)
    y[:K] = torch.arange(K)  # every class occurs
    mask = torch.rand(N, generator=g) < 0.5
    y_soft = torch.softmax(torch.randn(N, K, generator=g), dim=-1)
    weight = torch.rand(E, generator=g) + 0.1
    return edge_index, y, mask, y_soft, weight


def signature(obj) -> list:
    return [(p.name, p.default) for p in inspect.signature(obj).parameters.values()]


def dense_norm_adj(edge_index, weight=None) -> torch.Tensor:
    """A[dst, src] (duplicates summed), D^-1/2 A D^-1/2 with in-degrees, no self loops added."""
    a = torch.zeros(N, N, dtype=torch.float64)
    w = torch.ones(edge_index.size(1)) if weight is None else weight
    for (s, d), value in zip(edge_index.t().tolist(), w.tolist()):
        a[d, s] += value
    if weight is not None:
        return a
    deg = a.sum(1)
    inv = torch.where(deg > 0, deg.pow(-0.5), torch.zeros_like(deg))
    return inv.view(-1, 1) * a * inv.view(1, -1)


def label_prop_reference(y, a, mask, layers, alpha, post=None):
    y0 = torch.zeros_like(y)
    y0[mask] = y[mask]
    out = y0
    for _ in range(layers):
        out = alpha * (a @ out) + (1 - alpha) * y0
        out = post(out) if post is not None else out.clamp(0, 1)
    return out


# -- LabelPropagation ------------------------------------------------------------------------------------
@pytest.mark.parametrize("weighted", [False, True])
def test_label_propagation_reference(weighted):
    edge_index, y, mask, _, weight = graph(1)
    w = weight if weighted else None
    prop = LabelPropagation(num_layers=4, alpha=0.7)
    out = prop(y, edge_index, mask, edge_weight=w)
    y1 = torch.nn.functional.one_hot(y, K).double()
    expected = label_prop_reference(y1, dense_norm_adj(edge_index, w), mask, 4, 0.7)
    testing.assert_close(out.double(), expected)
    assert not out.requires_grad
    # one-hot scores given directly, and an index mask
    testing.assert_close(prop(y1.float(), edge_index, mask.nonzero().view(-1), w), out)
    # without a mask every label is known
    testing.assert_close(
        prop(y, edge_index, edge_weight=w).double(),
        label_prop_reference(y1, dense_norm_adj(edge_index, w), torch.ones(N, dtype=torch.bool), 4, 0.7),
    )


def test_label_propagation_post_step_and_sparse_inputs():
    edge_index, y, mask, _, _ = graph(2)
    prop = LabelPropagation(num_layers=3, alpha=0.9)
    y1 = torch.nn.functional.one_hot(y, K).double()
    a = dense_norm_adj(edge_index)
    expected = label_prop_reference(y1, a, mask, 3, 0.9, post=lambda t: t * 0.5)
    testing.assert_close(prop(y, edge_index, mask, post_step=lambda t: t * 0.5).double(), expected)
    # a torch.sparse adjacency (unit values) is normalized the same way
    ones = torch.ones(E)
    for _, adj in testing.edge_index_formats(edge_index, N, ones):
        if adj.layout == torch.strided or not isinstance(adj, torch.Tensor):
            continue
        testing.assert_close(prop(y, adj, mask), prop(y, edge_index, mask))


def test_label_propagation_runs_the_fused_spmm(monkeypatch):
    edge_index, y, mask, _, _ = graph(3)
    prop = LabelPropagation(num_layers=3, alpha=0.5)
    calls = testing.spy_spmm(monkeypatch, prop)
    prop(y, edge_index, mask)
    assert len(calls) == 3


def test_label_propagation_matches_pyg():
    pyg = pytest.importorskip("torch_geometric")
    edge_index, y, mask, _, weight = graph(4)
    ours, theirs = LabelPropagation(3, 0.8), pyg.nn.LabelPropagation(3, 0.8)
    assert repr(ours) == repr(theirs)
    assert signature(LabelPropagation.forward) == signature(pyg.nn.LabelPropagation.forward)
    for w in (None, weight):
        testing.assert_close(ours(y, edge_index, mask, w), theirs(y, edge_index, mask, w))


def test_label_propagation_empty_and_bad_inputs():
    prop = LabelPropagation(2, 0.5)
    y = torch.tensor([0, 1, 1])
    out = prop(y, torch.zeros(2, 0, dtype=torch.long))
    testing.assert_close(out, 0.5 * torch.nn.functional.one_hot(y, 2).float())
    assert prop(torch.zeros(0, 2), torch.zeros(2, 0, dtype=torch.long)).shape == (0, 2)
    with pytest.raises(ValueError, match="edge_index"):
        prop(y, torch.tensor([[0, 5], [1, 1]]))
    with pytest.raises(ValueError, match="y"):
        prop(torch.zeros(3, 2, 2), torch.tensor([[0], [1]]))
    with pytest.raises(ValueError, match="num_layers"):
        LabelPropagation(-1, 0.5)


# -- CorrectAndSmooth ---------------------------------------------------------------------------------------
def cs_reference(y_soft, y, mask, a1, a2, autoscale, scale, l1=3, alpha1=0.8, l2=2, alpha2=0.6):
    y_soft = y_soft.double()
    y_true = torch.nn.functional.one_hot(y[mask], K).double()
    error = torch.zeros_like(y_soft)
    error[mask] = y_true - y_soft[mask]
    if autoscale:
        smoothed = label_prop_reference(
            error, a1, torch.ones(N, dtype=torch.bool), l1, alpha1, lambda t: t.clamp(-1, 1)
        )
        sigma = error[mask].abs().sum() / int(mask.sum())
        s = sigma / smoothed.abs().sum(1, keepdim=True)
        s[s.isinf() | (s > 1000)] = 1.0
        corrected = y_soft + s * smoothed
    else:

        def reset(t):
            t = t.clone()
            t[mask] = error[mask]
            return t

        smoothed = label_prop_reference(error, a1, torch.ones(N, dtype=torch.bool), l1, alpha1, reset)
        corrected = y_soft + scale * smoothed
    smooth_in = corrected.clone()
    smooth_in[mask] = y_true
    return corrected, label_prop_reference(smooth_in, a2, torch.ones(N, dtype=torch.bool), l2, alpha2)


@pytest.mark.parametrize("autoscale", [True, False])
@pytest.mark.parametrize("weighted", [False, True])
def test_correct_and_smooth_reference(autoscale, weighted):
    edge_index, y, mask, y_soft, weight = graph(5)
    w = weight if weighted else None
    a = dense_norm_adj(edge_index, w)
    cs = CorrectAndSmooth(3, 0.8, 2, 0.6, autoscale=autoscale, scale=0.7)
    corrected, smoothed = cs_reference(y_soft, y, mask, a, a, autoscale, 0.7)
    out = cs.correct(y_soft, y[mask], mask, edge_index, w)
    testing.assert_close(out.double(), corrected)
    testing.assert_close(cs.smooth(out, y[mask], mask, edge_index, w).double(), smoothed)
    testing.assert_close(cs(y_soft, y[mask], mask, edge_index, w).double(), smoothed)
    # one-hot labels and an index mask give the same
    idx = mask.nonzero().view(-1)
    y_hot = torch.nn.functional.one_hot(y[mask], K).float()
    testing.assert_close(cs(y_soft, y_hot, idx, edge_index, w), cs(y_soft, y[mask], mask, edge_index, w))


@pytest.mark.parametrize("autoscale", [True, False])
def test_correct_and_smooth_matches_pyg(autoscale):
    pyg = pytest.importorskip("torch_geometric")
    edge_index, y, mask, y_soft, _ = graph(6)
    ours = CorrectAndSmooth(3, 0.8, 2, 0.6, autoscale=autoscale, scale=0.7)
    theirs = pyg.nn.CorrectAndSmooth(3, 0.8, 2, 0.6, autoscale=autoscale, scale=0.7)
    assert repr(ours) == repr(theirs)
    for method in ("__init__", "correct", "smooth"):
        assert signature(getattr(CorrectAndSmooth, method)) == signature(
            getattr(pyg.nn.CorrectAndSmooth, method)
        )
    testing.assert_close(ours(y_soft, y[mask], mask, edge_index), theirs(y_soft, y[mask], mask, edge_index))


def test_correct_and_smooth_bad_inputs():
    edge_index, y, mask, y_soft, _ = graph(7)
    cs = CorrectAndSmooth(1, 0.5, 1, 0.5)
    with pytest.raises(ValueError, match="y_true"):
        cs.correct(y_soft, y, mask, edge_index)


# -- LINKX -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("edge_layers, node_layers, layers", [(1, 1, 2), (3, 2, 3)])
def test_linkx_matches_pyg(edge_layers, node_layers, layers):
    pyg = pytest.importorskip("torch_geometric")
    edge_index, _, _, _, weight = graph(8)
    x = torch.randn(N, 5)
    torch.manual_seed(0)
    theirs = pyg.nn.LINKX(N, 5, 8, K, layers, edge_layers, node_layers, dropout=0.0)
    ours = LINKX(N, 5, 8, K, layers, edge_layers, node_layers, dropout=0.0)
    testing.load_pyg_state(ours, theirs)
    assert repr(ours) == repr(theirs)
    assert signature(LINKX.__init__) == signature(pyg.nn.LINKX.__init__)
    for args in ((None, edge_index), (x, edge_index), (x, edge_index, weight)):
        out, out_p = ours(*args), theirs(*args)
        testing.assert_close(out, out_p)
    grads = torch.autograd.grad(out.square().sum(), list(ours.parameters()))
    grads_p = torch.autograd.grad(out_p.square().sum(), list(theirs.parameters()))
    testing.assert_close(grads, grads_p)


def test_linkx_sparse_linear_is_adjacency_times_weight(monkeypatch):
    edge_index, _, _, _, weight = graph(9)
    model = LINKX(N, 5, 8, K, 2)
    lin = model.edge_lin
    a = dense_norm_adj(edge_index, weight)
    expected = a @ lin.weight.double() + lin.bias.double()
    testing.assert_close(lin(edge_index, weight).double(), expected)
    calls = testing.spy_spmm(monkeypatch, lin)  # one fused spmm, no [E, C] message
    lin(edge_index, weight)
    assert len(calls) == 1


# -- PMLP ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("norm, bias", [(True, True), (False, False)])
def test_pmlp_matches_pyg_in_train_and_eval(norm, bias):
    pyg = pytest.importorskip("torch_geometric")
    edge_index, _, _, _, _ = graph(10)
    x = torch.randn(N, 5)
    torch.manual_seed(0)
    theirs = pyg.nn.PMLP(5, 8, K, num_layers=3, norm=norm, bias=bias)
    ours = PMLP(5, 8, K, num_layers=3, norm=norm, bias=bias)
    testing.load_pyg_state(ours, theirs)
    assert repr(ours) == repr(theirs)
    assert signature(PMLP.__init__) == signature(pyg.nn.PMLP.__init__)
    testing.assert_close(ours(x), theirs(x))  # training: an MLP
    ours.eval(), theirs.eval()
    testing.assert_close(ours(x, edge_index), theirs(x, edge_index))  # evaluation: a GNN


def test_pmlp_eval_is_mean_propagation_with_self_loops():
    edge_index, _, _, _, _ = graph(11)
    x = torch.randn(N, 5, dtype=torch.float64)
    model = PMLP(5, 8, K, num_layers=2, norm=False).double().eval()
    a = torch.zeros(N, N, dtype=torch.float64)
    for s, d in edge_index.t().tolist():
        a[d, s] += 1
    a += torch.eye(N, dtype=torch.float64)
    mean = a / a.sum(1, keepdim=True)
    h = (mean @ (x @ model.lins[0].weight.t()) + model.lins[0].bias).relu()
    testing.assert_close(model(x, edge_index), mean @ (h @ model.lins[1].weight.t()) + model.lins[1].bias)
    with pytest.raises(ValueError, match="edge_index"):
        model(x)
    with pytest.raises(ValueError, match="num_layers"):
        PMLP(5, 8, K, num_layers=1)


# -- RECT_L ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("normalize", [True, False])
def test_rect_matches_pyg(normalize):
    pyg = pytest.importorskip("torch_geometric")
    edge_index, y, mask, _, weight = graph(12)
    x = torch.randn(N, 5)
    torch.manual_seed(0)
    theirs = pyg.nn.RECT_L(5, 8, normalize=normalize)
    ours = RECT_L(5, 8, normalize=normalize)
    testing.load_pyg_state(ours, theirs)
    assert repr(ours) == repr(theirs)
    for method in ("__init__", "forward", "embed", "get_semantic_labels"):
        assert signature(getattr(RECT_L, method)) == signature(getattr(pyg.nn.RECT_L, method))
    testing.assert_close(ours(x, edge_index, weight), theirs(x, edge_index, weight))
    testing.assert_close(ours.embed(x, edge_index), theirs.embed(x, edge_index))
    testing.assert_close(ours.get_semantic_labels(x, y, mask), theirs.get_semantic_labels(x, y, mask))


def test_rect_semantic_labels_are_class_means():
    edge_index, y, mask, _, _ = graph(13)
    x = torch.randn(N, 5)
    out = RECT_L(5, 8).get_semantic_labels(x, y, mask)
    rows = mask.nonzero().view(-1)
    for k, i in enumerate(rows.tolist()):
        same = rows[y[rows] == y[i]]
        testing.assert_close(out[k], x[same].mean(0))


def test_label_propagation_hooks_see_pygs_messages():
    """With a hook registered the per-edge path runs: the messages are w_ji * y_j (not pre-scaled
    by alpha) and the result is the fused path's."""
    edge_index, y, mask, _, weight = graph(14)
    prop = LabelPropagation(num_layers=2, alpha=0.6)
    expected = prop(y, edge_index, mask, weight)
    seen = []
    prop.register_message_forward_hook(lambda module, inputs, output: seen.append(output))
    testing.assert_close(prop(y, edge_index, mask, weight), expected)
    y0 = torch.nn.functional.one_hot(y, K).float() * mask.view(-1, 1)
    testing.assert_close(seen[0], weight.view(-1, 1) * y0[edge_index[0]])
