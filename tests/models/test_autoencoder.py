"""Autoencoders and contrastive models: InnerProductDecoder, GAE, VGAE, ARGA, ARGVA,
DeepGraphInfomax, SignedGCN. Losses by formula and against PyG with the same explicit negatives
(PyG's samplers patched to return them), the torch AUC/AP against loop references, the negative
samplers' guarantees, bad inputs."""

from __future__ import annotations

import inspect
import itertools

import pytest
import torch

from gnn.conv import GCNConv
from gnn.core import testing
from gnn.models import (
    ARGA,
    ARGVA,
    GAE,
    VGAE,
    DeepGraphInfomax,
    InnerProductDecoder,
    SignedGCN,
    _utils,
)

N, E, C, D = 12, 40, 5, 4
EPS = 1e-15


def graph(seed: int = 0):
    return testing.random_graph(N, E, C, seed=seed)


def negatives(seed: int = 1, count: int = 30):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, N, (2, count), generator=g)


def signature(obj) -> list:
    return [(p.name, p.default) for p in inspect.signature(obj).parameters.values()]


class VariationalEncoder(torch.nn.Module):
    """``(mu, logstd)`` from two ``conv(C, D)`` layers (gnn's GCNConv, or PyG's for the parity runs)."""

    def __init__(self, conv=GCNConv):
        super().__init__()
        self.mu = conv(C, D)
        self.logstd = conv(C, D)

    def forward(self, x, edge_index):
        return self.mu(x, edge_index), self.logstd(x, edge_index)


# -- decoders and GAE ---------------------------------------------------------------------------------------
def test_inner_product_decoder():
    z = torch.randn(N, D)
    pairs = negatives()
    dec = InnerProductDecoder()
    expected = torch.stack([z[i] @ z[j] for i, j in pairs.t()])
    testing.assert_close(dec(z, pairs, sigmoid=False), expected)
    testing.assert_close(dec(z, pairs), expected.sigmoid())
    testing.assert_close(dec.forward_all(z), (z @ z.t()).sigmoid())
    with pytest.raises(ValueError, match="edge_index"):
        dec(z, pairs + N)


def test_gae_recon_loss_by_formula_and_pyg():
    x, edge_index = graph(2)
    neg = negatives(3)
    model = GAE(GCNConv(C, D))
    z = model.encode(x, edge_index)
    p_pos = torch.stack([torch.sigmoid(z[i] @ z[j]) for i, j in edge_index.t()])
    p_neg = torch.stack([torch.sigmoid(z[i] @ z[j]) for i, j in neg.t()])
    expected = -torch.log(p_pos + EPS).mean() - torch.log(1 - p_neg + EPS).mean()
    testing.assert_close(model.recon_loss(z, edge_index, neg), expected)
    pyg = pytest.importorskip("torch_geometric")
    theirs = pyg.nn.GAE(pyg.nn.GCNConv(C, D))
    testing.load_pyg_state(model, theirs)
    z_p = theirs.encode(x, edge_index)
    z = model.encode(x, edge_index)
    testing.assert_close(z, z_p)
    testing.assert_close(model.recon_loss(z, edge_index, neg), theirs.recon_loss(z_p, edge_index, neg))
    for method in ("__init__", "recon_loss", "test"):
        assert signature(getattr(GAE, method)) == signature(getattr(pyg.nn.GAE, method))


def test_gae_recon_loss_with_sampled_negatives_equals_the_loss_on_those_negatives(monkeypatch):
    x, edge_index = graph(4)
    model = GAE(GCNConv(C, D))
    z = model.encode(x, edge_index)
    drawn = []
    real = _utils.negative_sampling
    monkeypatch.setattr(_utils, "negative_sampling", lambda *a, **k: drawn.append(real(*a, **k)) or drawn[-1])
    loss = model.recon_loss(z, edge_index)
    assert len(drawn) == 1 and drawn[0].size(1) == E
    testing.assert_close(loss, model.recon_loss(z, edge_index, drawn[0]))


def test_gae_test_returns_auc_and_ap_of_the_scores():
    x, edge_index = graph(5)
    model = GAE(GCNConv(C, D))
    z = model.encode(x, edge_index).detach()
    neg = negatives(6)
    auc, ap = model.test(z, edge_index, neg)
    scores = torch.cat([model.decode(z, edge_index), model.decode(z, neg)])
    labels = torch.cat([torch.ones(E), torch.zeros(neg.size(1))])
    assert auc == pytest.approx(loop_auc(labels, scores), abs=1e-12)
    assert ap == pytest.approx(loop_ap(labels, scores), abs=1e-12)


# -- the metrics against loop references ------------------------------------------------------------------
def loop_auc(y, s) -> float:
    """P(s+ > s-) + P(s+ = s-) / 2 over all positive/negative pairs."""
    pos = [float(a) for a, t in zip(s, y) if t > 0.5]
    neg = [float(a) for a, t in zip(s, y) if t <= 0.5]
    wins = sum(1.0 if p > q else 0.5 if p == q else 0.0 for p, q in itertools.product(pos, neg))
    return wins / (len(pos) * len(neg))


def loop_ap(y, s) -> float:
    """sum over distinct thresholds (descending) of (recall gain) * precision."""
    pairs = [(float(a), float(t) > 0.5) for a, t in zip(s, y)]
    total = sum(t for _, t in pairs)
    ap, prev_recall = 0.0, 0.0
    for threshold in sorted({a for a, _ in pairs}, reverse=True):
        chosen = [t for a, t in pairs if a >= threshold]
        precision = sum(chosen) / len(chosen)
        recall = sum(chosen) / total
        ap += (recall - prev_recall) * precision
        prev_recall = recall
    return ap


@pytest.mark.parametrize("seed", range(4))
def test_auc_and_ap_match_loop_references_with_ties(seed):
    g = torch.Generator().manual_seed(seed)
    y = (torch.rand(40, generator=g) < 0.4).double()
    y[0], y[1] = 1.0, 0.0
    s = torch.randint(0, 6, (40,), generator=g).double() / 5  # many ties
    assert _utils.roc_auc(y, s) == pytest.approx(loop_auc(y, s), abs=1e-12)
    assert _utils.average_precision(y, s) == pytest.approx(loop_ap(y, s), abs=1e-12)
    assert _utils.roc_auc(torch.tensor([0.0, 1.0]), torch.tensor([0.1, 0.9])) == 1.0
    with pytest.raises(ValueError, match="positive"):
        _utils.roc_auc(torch.zeros(3), torch.rand(3))


# -- negative samplers ---------------------------------------------------------------------------------
def test_negative_sampling_guarantees():
    x, edge_index = graph(7)
    existing = {tuple(e) for e in edge_index.t().tolist()}
    neg = _utils.negative_sampling(edge_index, N, num_neg_samples=50)
    pairs = [tuple(e) for e in neg.t().tolist()]
    assert len(pairs) == 50 and len(set(pairs)) == 50
    assert not (set(pairs) & existing) and all(i != j for i, j in pairs)
    # a nearly complete graph: only the missing pairs can come back
    full = torch.tensor([(i, j) for i in range(5) for j in range(5) if i != j and (i, j) != (1, 3)]).t()
    assert _utils.negative_sampling(full, 5).t().tolist() == [[1, 3]]
    assert _utils.negative_sampling(edge_index[:, :0], 1).shape == (2, 0)


def test_structured_negative_sampling_guarantees():
    _, edge_index = graph(8)
    existing = {tuple(e) for e in edge_index.t().tolist()}
    for loops in (True, False):
        i, j, k = _utils.structured_negative_sampling(edge_index, N, contains_neg_self_loops=loops)
        assert torch.equal(i, edge_index[0]) and torch.equal(j, edge_index[1])
        assert all((a, b) not in existing for a, b in zip(i.tolist(), k.tolist()))
        if not loops:
            assert bool((i != k).all())


# -- VGAE, ARGA, ARGVA ----------------------------------------------------------------------------------------
def test_vgae_encode_and_kl_loss_by_formula_and_pyg():
    x, edge_index = graph(9)
    model = VGAE(VariationalEncoder()).eval()
    z = model.encode(x, edge_index)
    mu, logstd = model.encoder(x, edge_index)
    testing.assert_close(z, mu)
    logstd = logstd.clamp(max=10)
    kl = -0.5 * (1 + 2 * logstd - mu**2 - logstd.exp() ** 2).sum(1).mean()
    testing.assert_close(model.kl_loss(), kl)
    testing.assert_close(model.kl_loss(mu, logstd), kl)
    model.train()
    torch.manual_seed(0)
    z = model.encode(x, edge_index)
    torch.manual_seed(0)
    testing.assert_close(z, mu + torch.randn_like(logstd) * logstd.exp())
    pyg = pytest.importorskip("torch_geometric")
    theirs = pyg.nn.VGAE(VariationalEncoder(pyg.nn.GCNConv))
    testing.load_pyg_state(model, theirs)
    for m in (model, theirs):
        torch.manual_seed(1)
        m.encode(x, edge_index)
    testing.assert_close(model.kl_loss(), theirs.kl_loss())
    testing.assert_close(model.__mu__, theirs.__mu__)


def test_vgae_errors():
    model = VGAE(GCNConv(C, D))
    x, edge_index = graph(10)
    with pytest.raises(TypeError, match="mu, logstd"):
        model.encode(x, edge_index)
    with pytest.raises(ValueError, match="encode"):
        VGAE(GCNConv(C, D)).kl_loss()


def discriminator() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(D, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))


@pytest.mark.parametrize("variational", [False, True])
def test_arga_and_argva_losses_by_formula_and_pyg(variational):
    x, edge_index = graph(11)
    encoder = VariationalEncoder() if variational else GCNConv(C, D)
    model = (ARGVA if variational else ARGA)(encoder, discriminator())
    z = model.encode(x, edge_index)
    disc = model.discriminator
    testing.assert_close(model.reg_loss(z), -torch.log(torch.sigmoid(disc(z)) + EPS).mean())
    torch.manual_seed(2)
    loss = model.discriminator_loss(z)
    torch.manual_seed(2)
    real = torch.sigmoid(disc(torch.randn_like(z)))
    fake = torch.sigmoid(disc(z.detach()))
    testing.assert_close(loss, -torch.log(real + EPS).mean() - torch.log(1 - fake + EPS).mean())
    if variational:
        assert model.__mu__ is model.VGAE.__mu__
        testing.assert_close(model.kl_loss(), model.VGAE.kl_loss())
    pyg = pytest.importorskip("torch_geometric")
    their_encoder = VariationalEncoder(pyg.nn.GCNConv) if variational else pyg.nn.GCNConv(C, D)
    theirs = (pyg.nn.ARGVA if variational else pyg.nn.ARGA)(their_encoder, discriminator())
    testing.load_pyg_state(model, theirs)  # (ARGVA: the VGAE.* keys too)
    for m in (model, theirs):
        m.eval()
    z, z_p = model.encode(x, edge_index), theirs.encode(x, edge_index)
    testing.assert_close(z, z_p)
    testing.assert_close(model.reg_loss(z), theirs.reg_loss(z_p))
    torch.manual_seed(3)
    a = model.discriminator_loss(z)
    torch.manual_seed(3)
    testing.assert_close(a, theirs.discriminator_loss(z_p))
    neg = negatives(12)
    testing.assert_close(model.recon_loss(z, edge_index, neg), theirs.recon_loss(z_p, edge_index, neg))


# -- DeepGraphInfomax --------------------------------------------------------------------------------------------
def corruption(x, edge_index):
    return x.flip(0), edge_index


def summary(z, *args, **kwargs):
    return torch.sigmoid(z.mean(dim=0))


def test_dgi_by_formula_and_pyg():
    x, edge_index = graph(13)
    model = DeepGraphInfomax(D, GCNConv(C, D), summary=summary, corruption=corruption)
    pos, neg, s = model(x, edge_index)
    testing.assert_close(pos, model.encoder(x, edge_index))
    testing.assert_close(neg, model.encoder(x.flip(0), edge_index))
    w = model.weight
    expected = (
        -torch.log(torch.sigmoid(pos @ (w @ s)) + EPS).mean()
        - torch.log(1 - torch.sigmoid(neg @ (w @ s)) + EPS).mean()
    )
    testing.assert_close(model.loss(pos, neg, s), expected)
    testing.assert_close(model.discriminate(pos, s.view(1, -1), sigmoid=False), (pos @ w @ s).view(-1, 1))
    assert w.abs().max() <= 1 / D**0.5
    pyg = pytest.importorskip("torch_geometric")
    theirs = pyg.nn.DeepGraphInfomax(D, pyg.nn.GCNConv(C, D), summary=summary, corruption=corruption)
    testing.load_pyg_state(model, theirs)
    assert repr(model) == repr(theirs)
    out, out_p = model(x, edge_index), theirs(x, edge_index)
    testing.assert_close(out, out_p)
    testing.assert_close(model.loss(*out), theirs.loss(*out_p))
    # keyword arguments are corrupted too
    testing.assert_close(model(x, edge_index=edge_index), theirs(x, edge_index=edge_index))
    for method in ("__init__", "forward", "discriminate", "loss", "test"):
        assert signature(getattr(DeepGraphInfomax, method)) == signature(
            getattr(pyg.nn.DeepGraphInfomax, method)
        )


def test_dgi_test_is_a_logistic_regression_accuracy():
    g = torch.Generator().manual_seed(14)
    centers = torch.tensor([[3.0, 0.0], [-3.0, 0.0], [0.0, 3.0]])
    y = torch.randint(0, 3, (150,), generator=g)
    z = centers[y] + 0.5 * torch.randn(150, 2, generator=g)
    model = DeepGraphInfomax(2, torch.nn.Identity(), summary=summary, corruption=corruption)
    assert model.test(z[:100], y[:100], z[100:], y[100:]) == 1.0
    flipped = y[100:].roll(1)
    acc = model.test(z[:100], y[:100], z[100:], flipped)
    assert acc == pytest.approx(float((y[100:] == flipped).double().mean()))
    with pytest.raises(ValueError, match="solver"):
        model.test(z, y, z, y, solver="liblinear")
    with pytest.raises(TypeError, match="penalty"):
        model.test(z, y, z, y, penalty="l1")


# -- SignedGCN -----------------------------------------------------------------------------------------------------
def signed_graph(seed: int = 15):
    g = torch.Generator().manual_seed(seed)
    pos = torch.randint(0, N, (2, 30), generator=g)
    neg = torch.randint(0, N, (2, 20), generator=g)
    return torch.randn(N, C, generator=g), pos, neg


def test_signed_gcn_forward_and_losses_match_pyg(monkeypatch):
    pyg = pytest.importorskip("torch_geometric")
    import torch_geometric.nn.models.signed_gcn as their_module

    x, pos, neg = signed_graph()
    torch.manual_seed(0)
    theirs = pyg.nn.SignedGCN(C, 8, num_layers=2, lamb=3.0)
    ours = SignedGCN(C, 8, num_layers=2, lamb=3.0)
    testing.load_pyg_state(ours, theirs)
    assert repr(ours) == repr(theirs)
    for method in ("__init__", "forward", "discriminate", "loss", "test", "split_edges"):
        assert signature(getattr(SignedGCN, method)) == signature(getattr(pyg.nn.SignedGCN, method))
    z, z_p = ours(x, pos, neg), theirs(x, pos, neg)
    testing.assert_close(z, z_p)
    testing.assert_close(ours.discriminate(z, pos), theirs.discriminate(z_p, pos))

    # the same explicit negatives for both: PyG's samplers and ours are patched to return them
    none = _utils.negative_sampling(torch.cat([pos, neg], 1), N)
    k_pos = _utils.structured_negative_sampling(pos, N)
    k_neg = _utils.structured_negative_sampling(neg, N)

    def structured(edge_index, num_nodes=None, contains_neg_self_loops=True):
        return k_pos if edge_index.size(1) == pos.size(1) else k_neg

    for module in (_utils, their_module):
        monkeypatch.setattr(module, "negative_sampling", lambda *a, **k: none)
        monkeypatch.setattr(module, "structured_negative_sampling", structured)
    testing.assert_close(ours.nll_loss(z, pos, neg), theirs.nll_loss(z_p, pos, neg))
    testing.assert_close(ours.pos_embedding_loss(z, pos), theirs.pos_embedding_loss(z_p, pos))
    testing.assert_close(ours.neg_embedding_loss(z, neg), theirs.neg_embedding_loss(z_p, neg))
    loss, loss_p = ours.loss(z, pos, neg), theirs.loss(z_p, pos, neg)
    testing.assert_close(loss, loss_p)
    grads = torch.autograd.grad(loss, list(ours.parameters()))
    grads_p = torch.autograd.grad(loss_p, list(theirs.parameters()))
    testing.assert_close(grads, grads_p)
    # the embedding losses by formula
    i, j, k = k_pos
    expected = ((z[i] - z[j]).pow(2).sum(1) - (z[i] - z[k]).pow(2).sum(1)).clamp(min=0).mean()
    testing.assert_close(ours.pos_embedding_loss(z, pos), expected)


def test_signed_gcn_test_auc_and_f1():
    x, pos, neg = signed_graph(16)
    model = SignedGCN(C, 8, num_layers=1)
    z = model(x, pos, neg).detach()
    auc, f1 = model.test(z, pos, neg)
    with torch.no_grad():
        pred = torch.cat(
            [model.discriminate(z, pos)[:, :2].argmax(1), model.discriminate(z, neg)[:, :2].argmax(1)]
        )
    pred = 1 - pred
    y = torch.cat([torch.ones(pos.size(1)), torch.zeros(neg.size(1))])
    tp = float((pred * y).sum())
    expected_f1 = 2 * tp / (float(pred.sum()) + float(y.sum())) if pred.sum() > 0 else 0
    assert auc == pytest.approx(loop_auc(y, pred.double()))
    assert f1 == pytest.approx(expected_f1)


def test_signed_gcn_spectral_features_are_the_top_singular_vectors():
    _, pos, neg = signed_graph(17)
    model = SignedGCN(4, 8, num_layers=1)
    feats = model.create_spectral_features(pos, neg, num_nodes=N)
    assert feats.shape == (N, 4) and feats.dtype == torch.float32
    a = torch.zeros(N, N, dtype=torch.float64)
    for (i, j), value in [*zip(pos.t().tolist(), [2.0] * 30), *zip(neg.t().tolist(), [0.0] * 20)]:
        a[i, j] += value
        a[j, i] += value
    nonzero = torch.zeros(N, N, dtype=torch.bool)
    nonzero[torch.cat([pos, neg], 1)[0], torch.cat([pos, neg], 1)[1]] = True
    nonzero = nonzero | nonzero.t()
    a = torch.where(nonzero, a - 1, a)
    _, s, vh = torch.linalg.svd(a)
    assert s[3] > s[4] + 1e-6  # a unique top-4 subspace
    for col in range(4):  # each vector, up to its sign
        ref = vh[col]
        got = feats[:, col].double()
        assert min((got - ref).abs().max(), (got + ref).abs().max()) < 1e-4


def test_signed_gcn_split_edges_and_errors():
    _, pos, _ = signed_graph(18)
    train, test = SignedGCN(C, 8, 1).split_edges(pos, test_ratio=0.2)
    assert test.size(1) == 6 and train.size(1) == 24
    assert sorted(map(tuple, torch.cat([train, test], 1).t().tolist())) == sorted(
        map(tuple, pos.t().tolist())
    )
    with pytest.raises(ValueError, match="num_layers"):
        SignedGCN(C, 8, 0)
    with pytest.raises(ValueError, match="test_ratio"):
        SignedGCN(C, 8, 1).split_edges(pos, 1.5)
    z = torch.randn(N, 8)
    with pytest.raises(ValueError, match="edge_index"):
        SignedGCN(C, 8, 1).discriminate(z, pos + N)


def test_losses_train_an_autoencoder():
    x, edge_index = graph(19)
    model = GAE(GCNConv(C, D))
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    neg = negatives(20)
    first = None
    for _ in range(40):
        opt.zero_grad()
        loss = model.recon_loss(model.encode(x, edge_index), edge_index, neg)
        loss.backward()
        opt.step()
        first = loss.item() if first is None else first
    assert loss.item() < first
