"""GATv2Conv: loop reference, PyG parity, input formats, dropout, compile, bad input."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from gnn.conv.gatv2 import GATv2Conv
from gnn.core import testing

N, E, F_IN, C = 9, 36, 5, 3


def graph(seed: int = 0, dtype: torch.dtype = torch.float64, duplicates: bool = True):
    x, edge_index = testing.random_graph(N, E, F_IN, seed=seed, dtype=dtype, duplicates=duplicates)
    edge_attr = torch.randn(E, 2, generator=torch.Generator().manual_seed(seed + 1), dtype=dtype)
    return x, edge_index, edge_attr


def lin(layer, x):
    out = x @ layer.weight.T
    return out if layer.bias is None else out + layer.bias


def reference(conv: GATv2Conv, x_src, edge_index, edge_attr=None, x_dst=None):
    """Per-target loop: a^T leaky_relu(W_l x_j + W_r x_i (+ W_e e)), softmax over incoming edges."""
    H, Cc = conv.heads, conv.out_channels
    x_dst = x_src if x_dst is None else x_dst
    hl = lin(conv.lin_l, x_src).view(-1, H, Cc)
    hr = lin(conv.lin_r, x_dst).view(-1, H, Cc)
    n_dst = x_dst.size(0)
    out = torch.zeros(n_dst, H, Cc, dtype=x_src.dtype)
    for i in range(n_dst):
        incoming = []
        for e in range(edge_index.size(1)):
            j, t = int(edge_index[0, e]), int(edge_index[1, e])
            if t == i and not (conv.add_self_loops and j == t):
                incoming.append((j, None if edge_attr is None else edge_attr[e]))
        if conv.add_self_loops and i < min(x_src.size(0), n_dst):
            attrs = [a for _, a in incoming if a is not None]
            loop = None
            if edge_attr is not None:
                loop = torch.stack(attrs).mean(0) if attrs else torch.zeros_like(edge_attr[0])
            incoming.append((i, loop))
        if not incoming:
            continue
        scores = []
        for j, a in incoming:
            z = hl[j] + hr[i]
            if a is not None and conv.lin_edge is not None:
                z = z + (conv.lin_edge.weight @ a).view(H, Cc)
            scores.append((F.leaky_relu(z, conv.negative_slope) * conv.att[0]).sum(-1))
        alpha = torch.softmax(torch.stack(scores), dim=0)
        for k, (j, _) in enumerate(incoming):
            out[i] += alpha[k].unsqueeze(-1) * hl[j]
    out = out.reshape(n_dst, H * Cc) if conv.concat else out.mean(1)
    if conv.res is not None:
        out = out + x_dst @ conv.res.weight.T
    if conv.bias is not None:
        out = out + conv.bias
    return out


CONFIGS = [
    dict(heads=1),
    dict(heads=3, concat=False),
    dict(heads=2, edge_dim=2),
    dict(heads=2, edge_dim=2, residual=True, share_weights=True),
    dict(heads=2, add_self_loops=False, bias=False),
]


def randomize_biases(conv):
    with torch.no_grad():
        for name, p in conv.named_parameters():
            if name.endswith("bias"):
                p.normal_()


@pytest.mark.parametrize("kwargs", CONFIGS, ids=str)
def test_matches_loop_reference(kwargs):
    torch.manual_seed(0)
    conv = GATv2Conv(F_IN, C, **kwargs).double().eval()
    randomize_biases(conv)
    x, edge_index, edge_attr = graph()
    ea = edge_attr if "edge_dim" in kwargs else None
    testing.assert_close(conv(x, edge_index, ea), reference(conv, x, edge_index, ea), atol=1e-10, rtol=1e-8)


def test_bipartite_matches_loop_reference():
    torch.manual_seed(0)
    conv = GATv2Conv((F_IN, 4), C, heads=2, residual=True).double().eval()
    randomize_biases(conv)
    g = torch.Generator().manual_seed(3)
    x_src, x_dst = torch.randn(7, F_IN, generator=g).double(), torch.randn(5, 4, generator=g).double()
    edge_index = torch.stack(
        [torch.randint(0, 7, (20,), generator=g), torch.randint(0, 5, (20,), generator=g)]
    )
    expected = reference(conv, x_src, edge_index, x_dst=x_dst)
    testing.assert_close(conv((x_src, x_dst), edge_index), expected, atol=1e-10, rtol=1e-8)


def test_formats_agree_and_attention_weights():
    conv = GATv2Conv(F_IN, C, heads=2).double().eval()
    x, edge_index, _ = graph(duplicates=False)

    def call(adj):
        out, att = conv(x, adj, return_attention_weights=True)
        return out, testing.dense_attention(att, N)

    testing.assert_formats_agree(call, edge_index, N, atol=1e-10, rtol=1e-8)
    x, edge_index, _ = graph()
    testing.assert_formats_agree(lambda adj: conv(x, adj), edge_index, N, atol=1e-10, rtol=1e-8)
    _, (ei, alpha) = conv(x, edge_index, return_attention_weights=True)
    sums = torch.zeros(N, 2, dtype=alpha.dtype).index_add_(0, ei[1], alpha)
    testing.assert_close(sums, torch.ones_like(sums))


def test_edge_permutation_invariance():
    conv = GATv2Conv(F_IN, C, heads=2, edge_dim=2).double().eval()
    x, edge_index, edge_attr = graph()
    perm = torch.randperm(E, generator=torch.Generator().manual_seed(5))
    testing.assert_close(
        conv(x, edge_index[:, perm], edge_attr[perm]), conv(x, edge_index, edge_attr), atol=1e-10, rtol=1e-8
    )


def test_dropout_train_vs_eval():
    x, edge_index, _ = graph()
    conv = GATv2Conv(F_IN, C, heads=2).double()
    testing.assert_close(conv.train()(x, edge_index), conv.eval()(x, edge_index))
    conv = GATv2Conv(F_IN, C, heads=2, dropout=0.5).double()
    expected = conv.eval()(x, edge_index)
    torch.manual_seed(0)
    assert not torch.allclose(conv.train()(x, edge_index), expected)


def test_lazy_and_reset():
    torch.manual_seed(0)
    lazy = GATv2Conv(-1, C, heads=2).double()
    x, edge_index, _ = graph()
    out = lazy(x, edge_index)
    eager = GATv2Conv(F_IN, C, heads=2).double()
    eager.load_state_dict(lazy.state_dict())
    testing.assert_close(eager(x, edge_index), out)
    torch.manual_seed(3)
    eager.reset_parameters()
    first = {k: v.clone() for k, v in eager.state_dict().items()}
    torch.manual_seed(3)
    eager.reset_parameters()
    assert all(torch.equal(v, first[k]) for k, v in eager.state_dict().items())
    assert torch.equal(eager.bias, torch.zeros_like(eager.bias))


def test_share_weights_shares_one_module():
    conv = GATv2Conv(F_IN, C, share_weights=True)
    assert conv.lin_l is conv.lin_r
    assert set(conv.state_dict()) >= {"lin_l.weight", "lin_r.weight"}


def test_bad_input():
    conv = GATv2Conv(F_IN, C)
    x, edge_index, _ = graph(dtype=torch.float32)
    with pytest.raises(TypeError, match="edge_index"):
        conv(x, edge_index.float())
    with pytest.raises(ValueError, match="edge_index"):
        conv(x, edge_index.t())
    with pytest.raises(ValueError, match="edge_index"):
        conv(x, torch.cat([edge_index, torch.tensor([[N], [0]])], 1))
    with pytest.raises(ValueError, match="x"):
        conv(torch.randn(N, 2), edge_index)
    with pytest.raises(ValueError, match="edge_attr"):
        conv(x, edge_index, torch.randn(E, 2))  # no edge_dim
    with pytest.raises(ValueError, match="edge_attr"):
        GATv2Conv(F_IN, C, edge_dim=2)(x, edge_index, torch.randn(3, 2))


def test_torch_compile_no_graph_breaks():
    conv = GATv2Conv(F_IN, C, heads=2, edge_dim=2, residual=True).eval()
    x, edge_index, edge_attr = graph(dtype=torch.float32)
    expected = conv(x, edge_index, edge_attr)
    torch._dynamo.reset()
    compiled = torch.compile(conv, fullgraph=True, backend="aot_eager")  # raises on a graph break
    testing.assert_close(compiled(x, edge_index, edge_attr), expected)


PYG_CONFIGS = CONFIGS + [
    dict(heads=2, edge_dim=2, fill_value="max"),
    dict(heads=2, flow="target_to_source", residual=True),
]


@pytest.mark.parametrize("kwargs", PYG_CONFIGS, ids=str)
def test_pyg_parity(kwargs):
    pyg = pytest.importorskip("torch_geometric")
    torch.manual_seed(0)
    theirs = pyg.nn.GATv2Conv(F_IN, C, **kwargs).eval()
    ours = GATv2Conv(F_IN, C, **kwargs).eval()
    x, edge_index, edge_attr = graph(dtype=torch.float32)
    testing.assert_attention_parity(ours, theirs, x, edge_index, edge_attr if "edge_dim" in kwargs else None)


def test_pyg_parity_bipartite():
    pyg = pytest.importorskip("torch_geometric")
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(3)
    x_src, x_dst = torch.randn(7, F_IN, generator=g), torch.randn(5, 4, generator=g)
    edge_index = torch.stack(
        [torch.randint(0, 7, (20,), generator=g), torch.randint(0, 5, (20,), generator=g)]
    )
    theirs = pyg.nn.GATv2Conv((F_IN, 4), C, heads=2, residual=True, concat=False).eval()
    ours = GATv2Conv((F_IN, 4), C, heads=2, residual=True, concat=False).eval()
    testing.load_pyg_state(ours, theirs)
    assert repr(ours) == repr(theirs)
    testing.assert_close(ours((x_src, x_dst), edge_index), theirs((x_src, x_dst), edge_index))


def test_pyg_signature():
    pyg = pytest.importorskip("torch_geometric")
    testing.assert_signatures_match(GATv2Conv, pyg.nn.GATv2Conv, ("__init__",))
    testing.assert_signatures_match(GATv2Conv, pyg.nn.GATv2Conv, ("forward",), defaults=False)


# -- the fused gatv2_attention path ------------------------------------------------------------
FUSED_CASES = [
    dict(kwargs=dict(heads=2), self_loops=True),
    dict(kwargs=dict(heads=2), self_loops=False),
    dict(kwargs=dict(heads=2, edge_dim=2, fill_value="max"), self_loops=True),
    dict(kwargs=dict(heads=3, concat=False, add_self_loops=False, edge_dim=2), self_loops=True),
    dict(kwargs=dict(heads=2, residual=True), bipartite=True),
    dict(kwargs=dict(heads=2, flow="target_to_source", edge_dim=2), sparse=False),
]


@pytest.mark.parametrize("case", FUSED_CASES, ids=str)
def test_fused_path_matches_per_edge_path(monkeypatch, case):
    """Every input format, with/without edge features and self loops, bipartite: fused == per-edge."""
    torch.manual_seed(0)
    kwargs = case["kwargs"]
    in_channels = (F_IN, 4) if case.get("bipartite") else F_IN
    fused = GATv2Conv(in_channels, C, **kwargs).double().eval()
    randomize_biases(fused)
    g = torch.Generator().manual_seed(4)
    if case.get("bipartite"):
        x = (torch.randn(7, F_IN, generator=g).double(), torch.randn(5, 4, generator=g).double())
        edge_index = torch.stack(
            [torch.randint(0, 7, (20,), generator=g), torch.randint(0, 5, (20,), generator=g)]
        )
        edge_index[0, :2] = edge_index[1, :2]  # given self loops
        sizes = (7, 5)
    else:
        x, edge_index = testing.random_graph(
            N, E, F_IN, seed=2, dtype=torch.float64, self_loops=case.get("self_loops", True)
        )
        sizes = N
    x = tuple(t.requires_grad_() for t in x) if isinstance(x, tuple) else x.requires_grad_()
    edge_attr = torch.randn(edge_index.size(1), 2, generator=g).double() if "edge_dim" in kwargs else None
    out_rows = 5 if case.get("bipartite") else N
    weight = torch.randn(out_rows, 1, generator=g).double()
    inputs = [("edge_index", edge_index)]
    if case.get("sparse", True):
        inputs += list(testing.edge_index_formats(edge_index, sizes, edge_attr))
    testing.assert_fused_matches_per_edge(
        monkeypatch, fused, "additive_attention", x, inputs, edge_attr, weight
    )


def test_fused_path_skipped_for_attention_dropout_and_hooks(monkeypatch):
    x, edge_index, _ = graph()
    testing.assert_fused_skipped_for_dropout_and_hooks(
        monkeypatch, GATv2Conv, "additive_attention", x, edge_index
    )


def test_fused_path_compiles_without_graph_breaks_and_matches_eager():
    """Forward and backward of the compiled fused layer equal eager (given self loops included)."""
    conv = GATv2Conv(F_IN, C, heads=2, edge_dim=2).eval()
    x, edge_index, edge_attr = graph(dtype=torch.float32)
    testing.assert_compiles_like_eager(conv, x, edge_index, edge_attr)


def test_fused_path_pyg_parity_with_gradients():
    """Edge features enter the score inside the leaky ReLU, as in PyG; gradients agree too."""
    pyg = pytest.importorskip("torch_geometric")
    torch.manual_seed(0)
    theirs = pyg.nn.GATv2Conv(F_IN, C, heads=2, edge_dim=2).double().eval()
    ours = GATv2Conv(F_IN, C, heads=2, edge_dim=2).double().eval()
    x, edge_index, edge_attr = graph()
    testing.assert_gradients_match_pyg(ours, theirs, x, edge_index, edge_attr)
