"""dense_diff_pool, dense_mincut_pool, DMoNPooling: loop formulas, PyG parity (outputs, losses, grads)."""

from __future__ import annotations

import math

import pytest
import torch

from gnn.core.testing import load_pyg_state
from gnn.pool import DMoNPooling, dense_diff_pool, dense_mincut_pool

B, N, F, C = 3, 7, 5, 4


def inputs(seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, N, F, generator=g, dtype=dtype)
    adj = (torch.rand(B, N, N, generator=g, dtype=dtype) < 0.4).to(dtype)
    adj = ((adj + adj.transpose(1, 2)) > 0).to(dtype)
    s = torch.randn(B, N, C, generator=g, dtype=dtype)
    mask = torch.ones(B, N, dtype=torch.bool)
    mask[0, 5:] = False
    mask[2, 3:] = False
    adj = adj * mask.unsqueeze(1) * mask.unsqueeze(2)
    return x, adj, s, mask


def test_diff_pool_matches_per_graph_formula():
    x, adj, s, mask = inputs()
    out, out_adj, link, ent = dense_diff_pool(x, adj, s, mask)
    links, ents = 0.0, []
    for b in range(B):
        p = torch.softmax(s[b], -1) * mask[b].unsqueeze(1)
        xb = x[b] * mask[b].unsqueeze(1)
        torch.testing.assert_close(out[b], p.t() @ xb)
        torch.testing.assert_close(out_adj[b], p.t() @ adj[b] @ p)
        links += float(((adj[b] - p @ p.t()) ** 2).sum())
        ents += [-(p[i] * torch.log(p[i] + 1e-15)).sum() for i in range(N)]
    torch.testing.assert_close(link, torch.tensor(math.sqrt(links) / adj.numel(), dtype=x.dtype))
    torch.testing.assert_close(ent, torch.stack(ents).mean())


def test_mincut_pool_matches_per_graph_formula():
    x, adj, s, _ = inputs(1)
    out, out_adj, cut, ortho = dense_mincut_pool(x, adj, s, temp=0.5)
    cuts, orthos = [], []
    for b in range(B):
        p = torch.softmax(s[b] / 0.5, -1)
        a = p.t() @ adj[b] @ p
        cuts.append(-torch.trace(a) / torch.trace(p.t() @ torch.diag(adj[b].sum(1)) @ p))
        ss = p.t() @ p
        orthos.append(
            torch.linalg.norm(ss / torch.linalg.norm(ss) - torch.eye(C, dtype=x.dtype) / math.sqrt(C))
        )
        a = a - torch.diag(torch.diag(a))
        d = a.sum(1).sqrt() + 1e-15
        torch.testing.assert_close(out_adj[b], a / d.view(-1, 1) / d.view(1, -1))
        torch.testing.assert_close(out[b], p.t() @ x[b])
    torch.testing.assert_close(cut, torch.stack(cuts).mean())
    torch.testing.assert_close(ortho, torch.stack(orthos).mean())


@pytest.mark.parametrize("masked", [False, True])
def test_diff_and_mincut_equal_pyg_with_gradients(masked):
    pyg = pytest.importorskip("torch_geometric.nn")
    x, adj, s, mask = inputs(2)
    mask = mask if masked else None
    for ours, theirs, kwargs in [
        (dense_diff_pool, pyg.dense_diff_pool, {}),
        (dense_diff_pool, pyg.dense_diff_pool, {"normalize": False}),
        (dense_mincut_pool, pyg.dense_mincut_pool, {}),
        (dense_mincut_pool, pyg.dense_mincut_pool, {"temp": 0.3}),
    ]:
        s1, s2 = s.clone().requires_grad_(), s.clone().requires_grad_()
        a, b = ours(x, adj, s1, mask, **kwargs), theirs(x, adj, s2, mask, **kwargs)
        assert len(a) == len(b) == 4
        for u, w in zip(a, b):
            torch.testing.assert_close(u, w)
        sum(t.sum() for t in a).backward()
        sum(t.sum() for t in b).backward()
        torch.testing.assert_close(s1.grad, s2.grad)


def test_two_dimensional_inputs_are_one_graph():
    pyg = pytest.importorskip("torch_geometric.nn")
    x, adj, s, _ = inputs(3)
    for ours, theirs in [(dense_diff_pool, pyg.dense_diff_pool), (dense_mincut_pool, pyg.dense_mincut_pool)]:
        for u, w in zip(ours(x[0], adj[0], s[0]), theirs(x[0], adj[0], s[0])):
            torch.testing.assert_close(u, w)


@pytest.mark.parametrize("channels", [F, [F, 6]])
@pytest.mark.parametrize("masked", [False, True])
def test_dmon_equals_pyg_after_strict_load(channels, masked):
    pyg = pytest.importorskip("torch_geometric.nn")
    x, adj, _, mask = inputs(4, dtype=torch.float32)
    mask = mask if masked else None
    theirs = pyg.DMoNPooling(channels, C)
    ours = DMoNPooling(channels, C)
    load_pyg_state(ours, theirs)
    assert repr(ours) == repr(theirs)
    a, b = ours(x, adj, mask), theirs(x, adj, mask)
    assert len(a) == len(b) == 6
    for u, w in zip(a, b):
        torch.testing.assert_close(u, w)
    sum(t.sum() for t in a[1:]).backward()
    sum(t.sum() for t in b[1:]).backward()
    grads = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        torch.testing.assert_close(p.grad, grads[name].grad, msg=name)


def test_dmon_losses_match_the_paper_for_one_graph():
    x, adj, _, _ = inputs(5)
    pool = DMoNPooling(F, C).double()
    s, out, _, spectral, ortho, cluster = pool(x[:1], adj[:1])
    p, a = s[0], adj[0]
    d = a.sum(1)
    m = d.sum() / 2
    modularity = torch.trace(p.t() @ (a - torch.outer(d, d) / (2 * m)) @ p) / (2 * m)
    torch.testing.assert_close(spectral, -modularity)
    torch.testing.assert_close(cluster, torch.linalg.norm(p.sum(0)) / N * math.sqrt(C) - 1)
    torch.testing.assert_close(out[0], torch.nn.functional.selu(p.t() @ x[0]))
    assert ortho >= 0


def test_dmon_dropout_only_in_training_and_bad_inputs():
    pool = DMoNPooling(F, C, dropout=0.5)
    x, adj, _, _ = inputs(6, dtype=torch.float32)
    torch.manual_seed(0)
    train = pool(x, adj)[0]
    pool.eval()
    a, b = pool(x, adj), pool(x, adj)
    torch.testing.assert_close(a[0], b[0])
    assert not torch.allclose(train, a[0])
    with pytest.raises(ValueError, match="'adj'"):
        pool(x, adj[:, :3])
    with pytest.raises(ValueError, match="'mask'"):
        pool(x, adj, torch.ones(B, N + 1, dtype=torch.bool))
    with pytest.raises(ValueError, match="'k'"):
        DMoNPooling(F, 0)
    with pytest.raises(ValueError, match="'s'"):
        dense_diff_pool(x, adj, torch.randn(B, N + 1, C))
