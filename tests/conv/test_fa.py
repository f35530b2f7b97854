"""FAConv: dense reference (tanh attention x GCN normalization), PyG parity, caching, formats, bad input."""

from __future__ import annotations

import pytest
import torch

from gnn.conv.fa import FAConv
from gnn.core import testing
from gnn.core.utils import is_sparse

N, E, F_IN = 9, 36, 5


def graph(dtype=torch.float64, duplicates=True):
    x, edge_index = testing.random_graph(N, E, F_IN, seed=0, dtype=dtype, duplicates=duplicates)
    x0 = torch.randn(N, F_IN, generator=torch.Generator().manual_seed(2), dtype=dtype)
    return x, x0, edge_index


def reference(conv: FAConv, x, x0, edge_index, edge_weight=None):
    """Edge list with PyG's self loops, GCN degrees, tanh(a_l x_j + a_r x_i) coefficients."""
    src, dst = edge_index.tolist()
    w = [1.0] * len(src) if edge_weight is None else edge_weight.tolist()
    edges = list(zip(src, dst, w))
    if conv.normalize and conv.add_self_loops:
        loops = {i: 1.0 for i in range(N)}
        for j, i, we in edges:
            if i == j:
                loops[i] = we
        edges = [(j, i, we) for j, i, we in edges if i != j] + [(i, i, loops[i]) for i in range(N)]
    if conv.normalize:
        deg = [0.0] * N
        for _, i, we in edges:
            deg[i] += we
        edges = [(j, i, we / (deg[i] * deg[j]) ** 0.5 if deg[i] * deg[j] > 0 else 0.0) for j, i, we in edges]
    al, ar = x @ conv.att_l.weight.T, x @ conv.att_r.weight.T
    out = conv.eps * x0.clone()
    alphas = []
    for j, i, we in edges:
        a = torch.tanh(al[j, 0] + ar[i, 0])
        alphas.append(a)
        out[i] += a * we * x[j]
    return out, torch.tensor([[j for j, _, _ in edges], [i for _, i, _ in edges]]), torch.stack(alphas)


@pytest.mark.parametrize(
    "kwargs", [{}, dict(add_self_loops=False), dict(eps=0.4), dict(normalize=False)], ids=str
)
def test_matches_loop_reference(kwargs):
    torch.manual_seed(0)
    conv = FAConv(F_IN, **kwargs).double().eval()
    x, x0, edge_index = graph()
    w = torch.rand(E, dtype=torch.float64) if kwargs.get("normalize") is False else None
    out, (ei, alpha) = conv(x, x0, edge_index, w, return_attention_weights=True)
    ref, ref_ei, ref_alpha = reference(conv, x, x0, edge_index, w)
    testing.assert_close(out, ref, atol=1e-10)
    assert torch.equal(ei, ref_ei)
    testing.assert_close(alpha, ref_alpha, atol=1e-10)


def test_edge_weight_with_normalize_and_sparse_values():
    conv = FAConv(F_IN).double().eval()
    x, x0, edge_index = graph(duplicates=False)
    w = torch.rand(E, dtype=torch.float64) + 0.1
    testing.assert_close(conv(x, x0, edge_index, w), reference(conv, x, x0, edge_index, w)[0], atol=1e-10)
    testing.assert_formats_agree(
        lambda adj: conv(x, x0, adj, None if is_sparse(adj) else w), edge_index, N, edge_weight=w, atol=1e-10
    )


def test_formats_agree_with_attention():
    conv = FAConv(F_IN).double().eval()
    x, x0, edge_index = graph(duplicates=False)

    def call(adj):
        out, att = conv(x, x0, adj, return_attention_weights=True)
        if isinstance(att, tuple) and not is_sparse(att[0]):
            dense = torch.zeros(N, N, dtype=x.dtype).index_put_(
                (att[0][1], att[0][0]), att[1], accumulate=True
            )
        else:  # (torch.sparse adj, alpha), or a lone SparseTensor holding alpha (PyG's forms)
            dense = testing.to_dense(att[0] if isinstance(att, tuple) else att)
        return out, dense

    testing.assert_formats_agree(call, edge_index, N, atol=1e-10)


def test_cached_and_reset():
    conv = FAConv(F_IN, cached=True).double()
    x, x0, edge_index = graph()
    out = conv(x, x0, edge_index)
    testing.assert_close(conv(x, x0, edge_index), out)
    assert conv._cached_edge_index is not None  # PyG's attribute
    other = edge_index.flip(0)  # another graph is normalized again (PyG would reuse the first)
    expected = FAConv(F_IN).double()
    expected.load_state_dict(conv.state_dict())
    testing.assert_close(conv(x, x0, other), expected(x, x0, other))
    conv.reset_parameters()
    assert conv._cached_edge_index is None
    fresh = FAConv(F_IN).double()
    fresh.load_state_dict(conv.state_dict())
    testing.assert_close(conv(x, x0, other), fresh(x, x0, other))


def test_dropout_train_vs_eval():
    x, x0, edge_index = graph()
    conv = FAConv(F_IN).double()
    testing.assert_close(conv.train()(x, x0, edge_index), conv.eval()(x, x0, edge_index))
    conv = FAConv(F_IN, dropout=0.5).double()
    expected = conv.eval()(x, x0, edge_index)
    torch.manual_seed(0)
    assert not torch.allclose(conv.train()(x, x0, edge_index), expected)


def test_bad_input():
    conv = FAConv(F_IN)
    x, x0, edge_index = graph(torch.float32)
    with pytest.raises(TypeError, match="edge_index"):
        conv(x, x0, edge_index.float())
    with pytest.raises(ValueError, match="edge_index"):
        conv(x, x0, edge_index[:1])
    with pytest.raises(ValueError, match="edge_index"):
        conv(x, x0, torch.cat([edge_index, torch.tensor([[N], [0]])], 1))
    with pytest.raises(ValueError, match="x"):
        conv(torch.randn(N, 2), x0, edge_index)
    with pytest.raises(ValueError, match="x_0"):
        conv(x, x0[:3], edge_index)
    with pytest.raises(ValueError, match="edge_weight"):
        FAConv(F_IN, normalize=False)(x, x0, edge_index)
    with pytest.raises(ValueError, match="edge_weight"):
        conv(x, x0, edge_index, torch.rand(E + 1))


@pytest.mark.parametrize(
    "kwargs", [{}, dict(add_self_loops=False), dict(eps=0.3), dict(normalize=False)], ids=str
)
def test_pyg_parity(kwargs):
    pyg = pytest.importorskip("torch_geometric")
    torch.manual_seed(0)
    theirs, ours = pyg.nn.FAConv(F_IN, **kwargs).eval(), FAConv(F_IN, **kwargs).eval()
    testing.load_pyg_state(ours, theirs)
    assert repr(ours) == repr(theirs)
    x, x0, edge_index = graph(torch.float32)
    w = torch.rand(E) if kwargs.get("normalize") is False else None
    out, (ei, alpha) = ours(x, x0, edge_index, w, return_attention_weights=True)
    out_p, (ei_p, alpha_p) = theirs(x, x0, edge_index, w, return_attention_weights=True)
    testing.assert_close(out, out_p)
    assert torch.equal(ei, ei_p)
    testing.assert_close(alpha, alpha_p)
    testing.assert_signatures_match(FAConv, pyg.nn.FAConv, ("__init__",))
