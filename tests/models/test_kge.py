"""KGE models: scores, losses (fixed negatives) and gradients against PyG after a strict
state_dict load, the fused loss against a loop reference and gradcheck, test() metrics."""

from __future__ import annotations

import inspect
import math

import pytest
import torch

from gnn.core import testing
from gnn.models import ComplEx, DistMult, KGEModel, RotatE, TransE
from gnn.models.kge._fused import FusedKGELoss
from gnn.models.kge.loader import KGTripletLoader

MODELS = {
    "TransE": (TransE, {}),
    "TransE-p2": (TransE, {"p_norm": 2.0}),
    "TransE-p3": (TransE, {"p_norm": 3.0, "margin": 0.5}),  # no fused path: scores through forward
    "DistMult": (DistMult, {"margin": 0.7}),
    "ComplEx": (ComplEx, {}),
    "RotatE": (RotatE, {"margin": 2.0}),
}
N, R, D = 40, 5, 6


def triplets(b: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randint(N, (b,), generator=g),
        torch.randint(R, (b,), generator=g),
        torch.randint(N, (b,), generator=g),
    )


def dense_loss(model, h, r, t, nh, nt):
    """The loss written out: scores from the formulas, then the criterion."""
    name = type(model).__name__
    ne = model.node_emb.weight

    def score(hi, ti):
        eh, et, er = ne[hi], ne[ti], model.rel_emb.weight[r]
        if name == "TransE":
            p = model.p_norm
            eh = eh / eh.abs().pow(p).sum(-1, keepdim=True).pow(1 / p).clamp_min(1e-12)
            et = et / et.abs().pow(p).sum(-1, keepdim=True).pow(1 / p).clamp_min(1e-12)
            return -(eh + er - et).abs().pow(p).sum(-1).pow(1 / p)
        if name == "DistMult":
            return (eh * er * et).sum(-1)
        ni = model.node_emb_im.weight
        zh, zt = torch.complex(eh, ni[hi]), torch.complex(et, ni[ti])
        if name == "ComplEx":
            zr = torch.complex(er, model.rel_emb_im.weight[r])
            return (zh * zr * zt.conj()).real.sum(-1)
        return model.margin - (zh * torch.exp(1j * er) - zt).abs().pow(2).sum(-1).sqrt()

    pos, neg = score(h, t), score(nh, nt)
    if name in ("TransE", "DistMult"):
        return torch.clamp(model.margin - pos + neg, min=0).mean()
    logits = torch.cat([pos, neg])
    y = torch.cat([torch.ones_like(pos), torch.zeros_like(neg)])
    return -(
        y * torch.nn.functional.logsigmoid(logits) + (1 - y) * torch.nn.functional.logsigmoid(-logits)
    ).mean()


def params(fn):
    """Names, kinds and defaults of a signature (annotations aside)."""
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]


def test_signatures_and_repr_match_pyg():
    pyg = pytest.importorskip("torch_geometric.nn")
    for cls in (KGEModel, TransE, DistMult, ComplEx, RotatE):
        theirs = getattr(pyg, cls.__name__)
        for name in ("__init__", "forward", "loss", "loader", "test", "random_sample", "reset_parameters"):
            assert params(getattr(cls, name)) == params(getattr(theirs, name)), (cls, name)
    for cls, kwargs in MODELS.values():
        assert repr(cls(N, R, D, **kwargs)) == repr(getattr(pyg, cls.__name__)(N, R, D, **kwargs))


@pytest.mark.parametrize("name", list(MODELS))
def test_scores_losses_and_gradients_match_pyg(name):
    pyg = pytest.importorskip("torch_geometric.nn")
    cls, kwargs = MODELS[name]
    theirs = getattr(pyg, cls.__name__)(N, R, D, **kwargs).double()
    ours = cls(N, R, D, **kwargs).double()
    testing.load_pyg_state(ours, theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    h, r, t = triplets(25)
    torch.testing.assert_close(ours(h, r, t), theirs(h, r, t))
    torch.manual_seed(3)  # the same negatives: both draw them with one randint
    expected = theirs.loss(h, r, t)
    expected.backward()
    torch.manual_seed(3)
    got = ours.loss(h, r, t)
    got.backward()
    torch.testing.assert_close(got, expected)
    for (key, a), b in zip(ours.named_parameters(), theirs.parameters()):
        torch.testing.assert_close(a.grad, b.grad, msg=key)
    torch.manual_seed(4)
    nh, nr, nt = theirs.random_sample(h, r, t)
    torch.manual_seed(4)
    mh, mr, mt = ours.random_sample(h, r, t)
    assert torch.equal(nh, mh) and torch.equal(nr, mr) and torch.equal(nt, mt)


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("b", [1, 2, 9])
def test_loss_matches_the_formula(name, b):
    cls, kwargs = MODELS[name]
    torch.manual_seed(0)
    model = cls(N, R, D, **kwargs).double()
    h, r, t = triplets(b, seed=b)
    torch.manual_seed(1)
    nh, _, nt = model.random_sample(h, r, t)
    torch.manual_seed(1)
    got = model.loss(h, r, t)
    got.backward()
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    expected = dense_loss(model, h, r, t, nh, nt)
    expected.backward()
    torch.testing.assert_close(got, expected)
    for a, p in zip(grads, model.parameters()):
        torch.testing.assert_close(a, p.grad)


@pytest.mark.parametrize("name", [n for n in MODELS if n != "TransE-p3"])
def test_fused_loss_gradcheck(name):
    cls, kwargs = MODELS[name]
    torch.manual_seed(0)
    model = cls(12, 3, 4, **kwargs).double()
    rows = model._make_rows()
    h, r, t = torch.randint(12, (7,)), torch.randint(3, (7,)), torch.randint(12, (7,))
    z = torch.randint(12, (7,))
    tables = [w.detach().clone().requires_grad_() for w in model._node_tables() + model._rel_tables()]
    n_node = len(model._node_tables())
    margin = float(getattr(model, "margin", 0.0)) if name != "RotatE" else 0.0

    def fn(*weights):
        return FusedKGELoss.apply(rows, margin, torch.cat([h, t, z]), r, False, n_node, *weights)

    assert torch.autograd.gradcheck(fn, tables, eps=1e-6, atol=1e-5)


def test_sparse_embeddings_get_sparse_gradients():
    pyg = pytest.importorskip("torch_geometric.nn")
    theirs = pyg.ComplEx(N, R, D, sparse=True)
    ours = ComplEx(N, R, D, sparse=True)
    testing.load_pyg_state(ours, theirs)
    h, r, t = triplets(10)
    torch.manual_seed(0)
    theirs.loss(h, r, t).backward()
    torch.manual_seed(0)
    ours.loss(h, r, t).backward()
    for a, b in zip(ours.parameters(), theirs.parameters()):
        assert a.grad.is_sparse
        torch.testing.assert_close(a.grad.to_dense(), b.grad.to_dense())


def test_subclass_with_its_own_score_uses_it():
    class Scaled(DistMult):
        def forward(self, head_index, rel_type, tail_index):
            return 2 * super().forward(head_index, rel_type, tail_index)

    torch.manual_seed(0)
    model = Scaled(N, R, D)
    h, r, t = triplets(8)
    torch.manual_seed(5)
    nh, nr, nt = model.random_sample(h, r, t)
    torch.manual_seed(5)
    got = model.loss(h, r, t)
    expected = torch.clamp(model.margin - model(h, r, t) + model(nh, nr, nt), min=0).mean()
    torch.testing.assert_close(got, expected)


def loop_ranks(model, h, r, t):
    ranks = []
    for i in range(h.numel()):
        scores = model(h[i].repeat(N), r[i].repeat(N), torch.arange(N)).tolist()
        s = scores[int(t[i])]
        ranks.append(sum(1 for j, x in enumerate(scores) if x > s or (x == s and j < int(t[i]))))
    return ranks


@pytest.mark.parametrize("name", ["TransE", "RotatE"])
def test_test_metrics(name, capsys):
    cls, kwargs = MODELS[name]
    torch.manual_seed(0)
    model = cls(N, R, D, **kwargs)
    h, r, t = triplets(15)
    mean_rank, mrr, hits = model.test(h, r, t, batch_size=7, k=5, log=False)
    ranks = loop_ranks(model, h, r, t)
    assert mean_rank == pytest.approx(sum(ranks) / 15)
    assert mrr == pytest.approx(sum(1 / (x + 1) for x in ranks) / 15, rel=1e-6)
    assert hits == pytest.approx(sum(x < 5 for x in ranks) / 15)
    pyg = pytest.importorskip("torch_geometric.nn")
    theirs = getattr(pyg, cls.__name__)(N, R, D, **kwargs)
    theirs.load_state_dict(model.state_dict())
    expected = theirs.test(h, r, t, batch_size=7, k=5, log=False)
    assert (mean_rank, mrr, hits) == pytest.approx(expected)


def test_test_progress_bar(capsys, monkeypatch):
    import sys

    torch.manual_seed(0)
    model = DistMult(N, R, D)
    h, r, t = triplets(4)
    monkeypatch.setitem(sys.modules, "tqdm", None)  # the text fallback
    model.test(h, r, t, batch_size=N, log=True)
    assert "4/4" in capsys.readouterr().err
    model.test(h, r, t, batch_size=N, log=False)
    assert capsys.readouterr().err == ""


def test_loader_batches_match_pyg():
    h, r, t = triplets(11)
    model = TransE(N, R, D)
    loader = model.loader(h, r, t, batch_size=4, shuffle=False)
    assert isinstance(loader, KGTripletLoader)
    batches = list(loader)
    assert len(batches) == 3
    got = [torch.cat(x) for x in zip(*batches)]
    assert torch.equal(got[0], h) and torch.equal(got[1], r) and torch.equal(got[2], t)
    pyg = pytest.importorskip("torch_geometric.nn")
    theirs = list(pyg.TransE(N, R, D).loader(h, r, t, batch_size=4))
    for a, b in zip(batches, theirs):
        assert all(torch.equal(x, y) for x, y in zip(a, b))


def test_bad_inputs_raise():
    model = DistMult(N, R, D)
    h, r, t = triplets(5)
    with pytest.raises(IndexError, match="head_index"):
        model.loss(h + N, r, t)
    with pytest.raises(IndexError, match="rel_type"):
        model.loss(h, r + R, t)
    with pytest.raises(ValueError, match="tail_index"):
        model.loss(h, r, t[:3])
    with pytest.raises(TypeError, match="head_index"):
        model.loss(h.float(), r, t)
    with pytest.raises(ValueError, match="batch_size"):
        model.test(h, r, t, batch_size=0)
    with pytest.raises(ValueError, match="num_nodes"):
        TransE(0, R, D)
    with pytest.raises(TypeError, match="hidden_channels"):
        RotatE(N, R, 2.5)


def test_int32_and_empty_batches():
    torch.manual_seed(0)
    model = RotatE(N, R, D)
    h, r, t = triplets(6)
    torch.manual_seed(1)
    a = model.loss(h, r, t)
    torch.manual_seed(1)
    b = model.loss(h.int(), r.int(), t.int())
    torch.testing.assert_close(a, b)
    empty = torch.empty(0, dtype=torch.long)
    assert math.isnan(float(model.loss(empty, empty, empty).detach()))  # a mean over nothing, as in PyG
    assert model.test(empty, empty, empty, batch_size=4, log=False)[2] == 0.0


@pytest.mark.parametrize("model", [TransE, DistMult, ComplEx, RotatE])
def test_fused_loss_only_for_the_score_it_reproduces(model):
    """The fused loss runs for the package's own score; a subclass with its own forward (whose
    score the fused scorer does not know) gets the plain path."""

    class OwnScore(model):
        def forward(self, head_index, rel_type, tail_index):
            return super().forward(head_index, rel_type, tail_index) * 2

    assert model(10, 3, 8)._uses_fused_loss()
    assert not OwnScore(10, 3, 8)._uses_fused_loss()
