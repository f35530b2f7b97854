"""TransformerConv: loop reference, PyG parity, input formats, beta gate, compile, bad input."""

from __future__ import annotations

import inspect
import math

import pytest
import torch

from gnn.conv.transformer import TransformerConv
from gnn.core import testing

N, E, F_IN, C = 9, 36, 5, 3


def graph(seed: int = 0, dtype: torch.dtype = torch.float64, duplicates: bool = True):
    x, edge_index = testing.random_graph(N, E, F_IN, seed=seed, dtype=dtype, duplicates=duplicates)
    edge_attr = torch.randn(E, 2, generator=torch.Generator().manual_seed(seed + 1), dtype=dtype)
    return x, edge_index, edge_attr


def lin(layer, x):
    out = x @ layer.weight.T
    return out if layer.bias is None else out + layer.bias


def reference(conv: TransformerConv, x_src, edge_index, edge_attr=None, x_dst=None):
    """Per-target loop: softmax_j(<q_i, k_j + e_ij> / sqrt(C)), sum of alpha * (v_j + e_ij), skip / gate."""
    H, Cc = conv.heads, conv.out_channels
    x_dst = x_src if x_dst is None else x_dst
    q = lin(conv.lin_query, x_dst).view(-1, H, Cc)
    k = lin(conv.lin_key, x_src).view(-1, H, Cc)
    v = lin(conv.lin_value, x_src).view(-1, H, Cc)
    n_dst = x_dst.size(0)
    out = torch.zeros(n_dst, H, Cc, dtype=x_src.dtype)
    for i in range(n_dst):
        incoming = [e for e in range(edge_index.size(1)) if int(edge_index[1, e]) == i]
        if not incoming:
            continue
        scores, values = [], []
        for e in incoming:
            j = int(edge_index[0, e])
            emb = 0.0
            if edge_attr is not None:
                emb = (conv.lin_edge.weight @ edge_attr[e]).view(H, Cc)
            scores.append(((k[j] + emb) * q[i]).sum(-1) / math.sqrt(Cc))
            values.append(v[j] + emb)
        alpha = torch.softmax(torch.stack(scores), dim=0)
        out[i] = (alpha.unsqueeze(-1) * torch.stack(values)).sum(0)
    out = out.reshape(n_dst, H * Cc) if conv.concat else out.mean(1)
    if conv.root_weight:
        r = lin(conv.lin_skip, x_dst)
        if conv.beta:
            gate = torch.sigmoid(torch.cat([out, r, out - r], -1) @ conv.lin_beta.weight.T)
            out = gate * r + (1 - gate) * out
        else:
            out = out + r
    return out


CONFIGS = [
    dict(heads=1),
    dict(heads=3),
    dict(heads=2, concat=False),
    dict(heads=2, edge_dim=2),
    dict(heads=2, edge_dim=2, beta=True),
    dict(heads=2, concat=False, beta=True),
    dict(heads=2, root_weight=False, bias=False),
]


@pytest.mark.parametrize("kwargs", CONFIGS, ids=str)
def test_matches_loop_reference(kwargs):
    torch.manual_seed(0)
    conv = TransformerConv(F_IN, C, **kwargs).double().eval()
    x, edge_index, edge_attr = graph()
    ea = edge_attr if "edge_dim" in kwargs else None
    testing.assert_close(conv(x, edge_index, ea), reference(conv, x, edge_index, ea), atol=1e-10, rtol=1e-8)


def test_bipartite_matches_loop_reference():
    torch.manual_seed(0)
    conv = TransformerConv((F_IN, 4), C, heads=2, beta=True).double().eval()
    g = torch.Generator().manual_seed(3)
    x_src, x_dst = torch.randn(7, F_IN, generator=g).double(), torch.randn(5, 4, generator=g).double()
    edge_index = torch.stack(
        [torch.randint(0, 7, (20,), generator=g), torch.randint(0, 5, (20,), generator=g)]
    )
    expected = reference(conv, x_src, edge_index, x_dst=x_dst)
    testing.assert_close(conv((x_src, x_dst), edge_index), expected, atol=1e-10, rtol=1e-8)


def test_root_weight_false_keeps_lin_skip_like_pyg_but_ignores_it():
    conv = TransformerConv(F_IN, C, root_weight=False, beta=True).double().eval()
    assert conv.beta is False and conv.lin_beta is None and conv.lin_skip is not None
    x, edge_index, _ = graph()
    expected = conv(x, edge_index)
    with torch.no_grad():
        conv.lin_skip.weight.add_(1.0)
    testing.assert_close(conv(x, edge_index), expected)


def test_formats_agree_and_attention_weights():
    conv = TransformerConv(F_IN, C, heads=2).double().eval()
    x, edge_index, _ = graph(duplicates=False)

    def call(adj):
        out, att = conv(x, adj, return_attention_weights=True)
        return out, testing.dense_attention(att, N)

    testing.assert_formats_agree(call, edge_index, N, atol=1e-10, rtol=1e-8)
    x, edge_index, _ = graph()
    testing.assert_formats_agree(lambda adj: conv(x, adj), edge_index, N, atol=1e-10, rtol=1e-8)
    _, (ei, alpha) = conv(x, edge_index, return_attention_weights=True)
    assert torch.equal(ei, edge_index)  # no self loops added
    has_in = torch.zeros(N, dtype=torch.bool)
    has_in[edge_index[1]] = True
    sums = torch.zeros(N, 2, dtype=alpha.dtype).index_add_(0, ei[1], alpha)
    testing.assert_close(sums[has_in], torch.ones_like(sums[has_in]))


def test_edge_permutation_invariance():
    conv = TransformerConv(F_IN, C, heads=2, edge_dim=2, beta=True).double().eval()
    x, edge_index, edge_attr = graph()
    perm = torch.randperm(E, generator=torch.Generator().manual_seed(5))
    testing.assert_close(
        conv(x, edge_index[:, perm], edge_attr[perm]), conv(x, edge_index, edge_attr), atol=1e-10, rtol=1e-8
    )


def test_dropout_train_vs_eval():
    x, edge_index, _ = graph()
    conv = TransformerConv(F_IN, C, heads=2).double()
    testing.assert_close(conv.train()(x, edge_index), conv.eval()(x, edge_index))
    conv = TransformerConv(F_IN, C, heads=2, dropout=0.5).double()
    expected = conv.eval()(x, edge_index)
    torch.manual_seed(0)
    assert not torch.allclose(conv.train()(x, edge_index), expected)


def test_lazy_and_reset():
    torch.manual_seed(0)
    lazy = TransformerConv(-1, C, heads=2, beta=True).double()
    x, edge_index, _ = graph()
    out = lazy(x, edge_index)
    eager = TransformerConv(F_IN, C, heads=2, beta=True).double()
    eager.load_state_dict(lazy.state_dict())
    testing.assert_close(eager(x, edge_index), out)
    torch.manual_seed(3)
    eager.reset_parameters()
    first = {k: v.clone() for k, v in eager.state_dict().items()}
    torch.manual_seed(3)
    eager.reset_parameters()
    assert all(torch.equal(v, first[k]) for k, v in eager.state_dict().items())


def test_bad_input():
    conv = TransformerConv(F_IN, C)
    x, edge_index, _ = graph(dtype=torch.float32)
    with pytest.raises(TypeError, match="edge_index"):
        conv(x, edge_index.to(torch.float32))
    with pytest.raises(ValueError, match="edge_index"):
        conv(x, edge_index[0])
    with pytest.raises(ValueError, match="edge_index"):
        conv(x, torch.cat([edge_index, torch.tensor([[0], [N + 3]])], 1))
    with pytest.raises(ValueError, match=r"x\[1\]"):
        conv((x, torch.randn(N, F_IN + 2)), edge_index)
    with pytest.raises(ValueError, match="edge_attr"):
        conv(x, edge_index, torch.randn(E, 2))
    with pytest.raises(ValueError, match="edge_attr"):
        TransformerConv(F_IN, C, edge_dim=2)(x, edge_index, torch.randn(E + 1, 2))


def test_torch_compile_no_graph_breaks():
    conv = TransformerConv(F_IN, C, heads=2, edge_dim=2, beta=True).eval()
    x, edge_index, edge_attr = graph(dtype=torch.float32)
    expected = conv(x, edge_index, edge_attr)
    torch._dynamo.reset()
    compiled = torch.compile(conv, fullgraph=True, backend="aot_eager")  # raises on a graph break
    testing.assert_close(compiled(x, edge_index, edge_attr), expected)


PYG_CONFIGS = CONFIGS + [dict(heads=2, flow="target_to_source"), dict(heads=2, root_weight=False, beta=True)]


@pytest.mark.parametrize("kwargs", PYG_CONFIGS, ids=str)
def test_pyg_parity(kwargs):
    pyg = pytest.importorskip("torch_geometric")
    torch.manual_seed(0)
    theirs = pyg.nn.TransformerConv(F_IN, C, **kwargs).eval()
    ours = TransformerConv(F_IN, C, **kwargs).eval()
    x, edge_index, edge_attr = graph(dtype=torch.float32)
    testing.assert_attention_parity(ours, theirs, x, edge_index, edge_attr if "edge_dim" in kwargs else None)


def test_pyg_parity_bipartite_and_signature():
    pyg = pytest.importorskip("torch_geometric")
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(3)
    x_src, x_dst = torch.randn(7, F_IN, generator=g), torch.randn(5, 4, generator=g)
    edge_index = torch.stack(
        [torch.randint(0, 7, (20,), generator=g), torch.randint(0, 5, (20,), generator=g)]
    )
    theirs = pyg.nn.TransformerConv((F_IN, 4), C, heads=2, beta=True, concat=False).eval()
    ours = TransformerConv((F_IN, 4), C, heads=2, beta=True, concat=False).eval()
    testing.load_pyg_state(ours, theirs)
    assert repr(ours) == repr(theirs)
    testing.assert_close(ours((x_src, x_dst), edge_index), theirs((x_src, x_dst), edge_index))
    ours_sig, theirs_sig = (
        inspect.signature(TransformerConv.__init__),
        inspect.signature(pyg.nn.TransformerConv.__init__),
    )
    assert [(p.name, p.default) for p in ours_sig.parameters.values()] == [
        (p.name, p.default) for p in theirs_sig.parameters.values()
    ]
    assert list(inspect.signature(TransformerConv.forward).parameters) == list(
        inspect.signature(pyg.nn.TransformerConv.forward).parameters
    )


# -- the fused dot_attention path --------------------------------------------------------------
FUSED_CASES = [
    dict(heads=2),
    dict(heads=2, edge_dim=2, beta=True),
    dict(heads=3, concat=False, edge_dim=2, root_weight=False),
    dict(heads=2, bipartite=True),
    dict(heads=2, edge_dim=2, flow="target_to_source"),
]


@pytest.mark.parametrize("case", FUSED_CASES, ids=str)
def test_fused_path_matches_per_edge_path(monkeypatch, case):
    """Every input format, with/without edge features, bipartite: fused == per-edge (values and grads)."""
    torch.manual_seed(0)
    kwargs = dict(case)
    bipartite = kwargs.pop("bipartite", False)
    fused = TransformerConv((F_IN, 4) if bipartite else F_IN, C, **kwargs).double().eval()
    g = torch.Generator().manual_seed(4)
    if bipartite:
        x = (torch.randn(7, F_IN, generator=g).double(), torch.randn(5, 4, generator=g).double())
        edge_index = torch.stack(
            [torch.randint(0, 7, (20,), generator=g), torch.randint(0, 3, (20,), generator=g)]
        )
        sizes = (7, 5)  # targets 3 and 4 receive nothing
    else:
        x, edge_index = testing.random_graph(N, E, F_IN, seed=2, dtype=torch.float64)
        sizes = N
    x = tuple(t.requires_grad_() for t in x) if isinstance(x, tuple) else x.requires_grad_()
    edge_attr = torch.randn(edge_index.size(1), 2, generator=g).double() if "edge_dim" in kwargs else None
    weight = torch.randn(5 if bipartite else N, 1, generator=g).double()
    inputs = [("edge_index", edge_index)]
    if kwargs.get("flow", "source_to_target") == "source_to_target":
        inputs += list(testing.edge_index_formats(edge_index, sizes, edge_attr))
    testing.assert_fused_matches_per_edge(monkeypatch, fused, "dot_attention", x, inputs, edge_attr, weight)


def test_fused_path_skipped_for_attention_dropout_and_hooks(monkeypatch):
    x, edge_index, _ = graph()
    testing.assert_fused_skipped_for_dropout_and_hooks(
        monkeypatch, TransformerConv, "dot_attention", x, edge_index
    )


def test_fused_path_compiles_without_graph_breaks_and_matches_eager():
    conv = TransformerConv(F_IN, C, heads=2, edge_dim=2, beta=True).eval()
    x, edge_index, edge_attr = graph(dtype=torch.float32)
    testing.assert_compiles_like_eager(conv, x, edge_index, edge_attr)


def test_fused_path_pyg_parity_with_gradients():
    """PyG adds the edge embedding to keys and values and scales by 1/sqrt(C); gradients agree too."""
    pyg = pytest.importorskip("torch_geometric")
    torch.manual_seed(0)
    theirs = pyg.nn.TransformerConv(F_IN, C, heads=2, edge_dim=2).double().eval()
    ours = TransformerConv(F_IN, C, heads=2, edge_dim=2).double().eval()
    x, edge_index, edge_attr = graph()
    testing.assert_gradients_match_pyg(ours, theirs, x, edge_index, edge_attr)
