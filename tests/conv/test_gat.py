"""GATConv: loop reference, PyG parity, input formats, self loops, dropout, compile, bad input."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from gnn.conv.gat import GATConv
from gnn.core import testing
from gnn.core.utils import is_sparse

N, E, F_IN, C = 9, 36, 5, 3


def graph(seed: int = 0, dtype: torch.dtype = torch.float64, duplicates: bool = True):
    x, edge_index = testing.random_graph(N, E, F_IN, seed=seed, dtype=dtype, duplicates=duplicates)
    edge_attr = torch.randn(E, 2, generator=torch.Generator().manual_seed(seed + 1), dtype=dtype)
    return x, edge_index, edge_attr


def reference(conv: GATConv, x, edge_index, edge_attr=None, x_dst=None):
    """Per-target loop: leaky-relu scores, softmax over the incoming edges (own loop), weighted sum."""
    H, Cc = conv.heads, conv.out_channels
    x_src = x
    x_dst = x if x_dst is None else x_dst
    if conv.lin is not None:
        hs = (x_src @ conv.lin.weight.T).view(-1, H, Cc)
        hd = (x_dst @ conv.lin.weight.T).view(-1, H, Cc)
    else:
        hs = (x_src @ conv.lin_src.weight.T).view(-1, H, Cc)
        hd = (x_dst @ conv.lin_dst.weight.T).view(-1, H, Cc)
    n_dst = x_dst.size(0)
    edges = [(int(edge_index[0, e]), int(edge_index[1, e]), e) for e in range(edge_index.size(1))]
    out = torch.zeros(n_dst, H, Cc, dtype=x.dtype)
    for i in range(n_dst):
        incoming = []  # (j, edge feature or None)
        for j, t, e in edges:
            if t != i or (conv.add_self_loops and j == t):
                continue
            incoming.append((j, None if edge_attr is None else edge_attr[e]))
        if conv.add_self_loops and i < min(x_src.size(0), n_dst):
            loop_attr = None
            if edge_attr is not None:
                attrs = [a for _, a in incoming]
                loop_attr = torch.stack(attrs).mean(0) if attrs else torch.zeros_like(edge_attr[0])
            incoming.append((i, loop_attr))
        if not incoming:
            continue
        scores = []
        for j, a in incoming:
            s = (hs[j] * conv.att_src[0]).sum(-1) + (hd[i] * conv.att_dst[0]).sum(-1)
            if a is not None and conv.lin_edge is not None:
                emb = (conv.lin_edge.weight @ a).view(H, Cc)
                s = s + (emb * conv.att_edge[0]).sum(-1)
            scores.append(F.leaky_relu(s, conv.negative_slope))
        alpha = torch.softmax(torch.stack(scores), dim=0)  # [deg, H]
        for k, (j, _) in enumerate(incoming):
            out[i] += alpha[k].unsqueeze(-1) * hs[j]
    out = out.reshape(n_dst, H * Cc) if conv.concat else out.mean(1)
    if conv.res is not None:
        out = out + x_dst @ conv.res.weight.T
    if conv.bias is not None:
        out = out + conv.bias
    return out


CONFIGS = [
    dict(heads=1),
    dict(heads=3),
    dict(heads=2, concat=False),
    dict(heads=2, edge_dim=2),
    dict(heads=2, edge_dim=2, concat=False, residual=True),
    dict(heads=2, add_self_loops=False, bias=False),
    dict(heads=2, negative_slope=0.5, residual=True),
]


@pytest.mark.parametrize("kwargs", CONFIGS, ids=str)
def test_matches_loop_reference(kwargs):
    torch.manual_seed(0)
    conv = GATConv(F_IN, C, **kwargs).double().eval()
    with torch.no_grad():
        if conv.bias is not None:
            conv.bias.normal_()
    x, edge_index, edge_attr = graph()
    ea = edge_attr if "edge_dim" in kwargs else None
    testing.assert_close(conv(x, edge_index, ea), reference(conv, x, edge_index, ea), atol=1e-10, rtol=1e-8)


def test_bipartite_matches_loop_reference():
    torch.manual_seed(0)
    conv = GATConv((F_IN, 4), C, heads=2, residual=True).double().eval()
    g = torch.Generator().manual_seed(3)
    x_src, x_dst = torch.randn(7, F_IN, generator=g).double(), torch.randn(5, 4, generator=g).double()
    edge_index = torch.stack(
        [torch.randint(0, 7, (20,), generator=g), torch.randint(0, 5, (20,), generator=g)]
    )
    expected = reference(conv, x_src, edge_index, x_dst=x_dst)
    testing.assert_close(conv((x_src, x_dst), edge_index), expected, atol=1e-10, rtol=1e-8)


def test_attention_weights_are_a_softmax_over_incoming_edges():
    conv = GATConv(F_IN, C, heads=2).double().eval()
    x, edge_index, _ = graph()
    out, (ei, alpha) = conv(x, edge_index, return_attention_weights=True)
    # self loops replaced: no loop among the given edges, then exactly one per node
    num_loops = int((edge_index[0] == edge_index[1]).sum())
    assert ei.size(1) == E - num_loops + N
    assert torch.equal(ei[:, -N:], torch.arange(N).repeat(2, 1))
    sums = torch.zeros(N, 2, dtype=alpha.dtype).index_add_(0, ei[1], alpha)
    testing.assert_close(sums, torch.ones(N, 2, dtype=alpha.dtype))
    assert out.shape == (N, 2 * C)
    # False / None give the plain tensor
    assert isinstance(conv(x, edge_index, return_attention_weights=False), torch.Tensor)


def test_fill_value_variants_match_reference_mean_and_constant():
    torch.manual_seed(0)
    x, edge_index, edge_attr = graph()
    conv = GATConv(F_IN, C, heads=2, edge_dim=2, fill_value=0.5).double().eval()
    # a constant fill equals adding the loops by hand with that attribute
    manual = GATConv(F_IN, C, heads=2, edge_dim=2, add_self_loops=False).double().eval()
    manual.load_state_dict(conv.state_dict())
    keep = edge_index[0] != edge_index[1]
    ei = torch.cat([edge_index[:, keep], torch.arange(N).repeat(2, 1)], 1)
    ea = torch.cat([edge_attr[keep], torch.full((N, 2), 0.5, dtype=edge_attr.dtype)])
    testing.assert_close(conv(x, edge_index, edge_attr), manual(x, ei, ea), atol=1e-10, rtol=1e-8)
    for fill in ("add", "max", "min", "mul", torch.tensor([0.1, -0.2])):
        conv.fill_value = fill
        keep_attr = edge_attr[keep]
        loops = torch.zeros(N, 2, dtype=edge_attr.dtype)
        for i in range(N):
            rows = keep_attr[edge_index[1, keep] == i]
            if isinstance(fill, torch.Tensor):
                loops[i] = fill
            elif len(rows):
                red = {
                    "add": rows.sum(0),
                    "max": rows.max(0).values,
                    "min": rows.min(0).values,
                    "mul": rows.prod(0),
                }
                loops[i] = red[fill]
        ea = torch.cat([keep_attr, loops])
        testing.assert_close(conv(x, edge_index, edge_attr), manual(x, ei, ea), atol=1e-10, rtol=1e-8)


def test_empty_graph_attends_to_self_only():
    conv = GATConv(F_IN, C, heads=2).double().eval()
    x = torch.randn(4, F_IN, dtype=torch.float64)
    out = conv(x, torch.empty(2, 0, dtype=torch.long))
    testing.assert_close(out, x @ conv.lin.weight.T + conv.bias)
    out = GATConv(F_IN, C, add_self_loops=False).double()(x, torch.empty(2, 0, dtype=torch.long))
    testing.assert_close(out, torch.zeros(4, C, dtype=torch.float64))


def _dense_attention(att, n_src, n_dst):
    """Dense [N_dst, N_src, H] attention from any returned form."""
    if isinstance(att, tuple) and not is_sparse(att[0]):
        ei, alpha = att
        dense = torch.zeros(n_dst, n_src, alpha.size(1), dtype=alpha.dtype)
        dense.index_put_((ei[1], ei[0]), alpha, accumulate=True)
        return dense
    adj = att[0] if isinstance(att, tuple) else att
    return testing.to_dense(adj)


@pytest.mark.parametrize("kwargs", [dict(heads=2), dict(heads=2, add_self_loops=False)], ids=str)
def test_formats_agree(kwargs):
    conv = GATConv(F_IN, C, **kwargs).double().eval()
    x, edge_index, _ = graph(duplicates=False)

    def call(adj):
        out, att = conv(x, adj, return_attention_weights=True)
        if is_sparse(adj) and isinstance(adj, torch.Tensor):
            assert att[0].layout == adj.layout
        return out, _dense_attention(att, N, N)

    testing.assert_formats_agree(call, edge_index, N, atol=1e-10, rtol=1e-8)
    # duplicate edges stay separate in every form
    x, edge_index, _ = graph(duplicates=True)
    testing.assert_formats_agree(lambda adj: conv(x, adj), edge_index, N, atol=1e-10, rtol=1e-8)


def test_sparse_values_are_edge_attr_with_edge_dim_1():
    conv = GATConv(F_IN, C, heads=2, edge_dim=1, add_self_loops=False).double().eval()
    x, edge_index, _ = graph(duplicates=False)
    w = torch.rand(E, dtype=torch.float64)
    testing.assert_formats_agree(
        lambda adj: conv(x, adj, None if is_sparse(adj) else w), edge_index, N, edge_weight=w, atol=1e-10
    )


def test_edge_permutation_invariance():
    conv = GATConv(F_IN, C, heads=2, edge_dim=2).double().eval()
    x, edge_index, edge_attr = graph()
    perm = torch.randperm(E, generator=torch.Generator().manual_seed(5))
    out, (ei, alpha) = conv(x, edge_index, edge_attr, return_attention_weights=True)
    out_p, (ei_p, alpha_p) = conv(x, edge_index[:, perm], edge_attr[perm], return_attention_weights=True)
    testing.assert_close(out_p, out, atol=1e-10, rtol=1e-8)
    testing.assert_close(_dense_attention((ei_p, alpha_p), N, N), _dense_attention((ei, alpha), N, N))


def test_dropout_train_vs_eval():
    x, edge_index, _ = graph()
    conv = GATConv(F_IN, C, heads=2, dropout=0.0).double()
    expected = conv.eval()(x, edge_index)
    testing.assert_close(conv.train()(x, edge_index), expected)
    conv = GATConv(F_IN, C, heads=2, dropout=0.5).double()
    expected = conv.eval()(x, edge_index)
    testing.assert_close(conv(x, edge_index), expected)  # eval is deterministic
    torch.manual_seed(0)
    _, (_, alpha) = conv.train()(x, edge_index, return_attention_weights=True)
    assert (alpha == 0).any()
    assert not torch.allclose(conv(x, edge_index), expected)


def test_lazy_in_channels():
    torch.manual_seed(0)
    lazy = GATConv(-1, C, heads=2, residual=True).double()
    assert repr(lazy) == "GATConv(-1, 3, heads=2)"
    x, edge_index, _ = graph()
    out = lazy(x, edge_index)
    assert lazy.lin.weight.shape == (2 * C, F_IN) and lazy.res.weight.shape == (2 * C, F_IN)
    eager = GATConv(F_IN, C, heads=2, residual=True).double()
    eager.load_state_dict(lazy.state_dict())
    testing.assert_close(eager(x, edge_index), out)
    bip = GATConv((-1, -1), C)
    x_dst = torch.randn(N, 4)
    assert bip((x.float(), x_dst), edge_index).shape == (N, C)
    assert bip.lin_dst.weight.shape == (C, 4)


def test_reset_parameters():
    conv = GATConv(F_IN, C, heads=2, edge_dim=2, residual=True)
    torch.manual_seed(7)
    conv.reset_parameters()
    first = {k: v.clone() for k, v in conv.state_dict().items()}
    with torch.no_grad():
        for p in conv.parameters():
            p.add_(1.0)
    torch.manual_seed(7)
    conv.reset_parameters()
    for k, v in conv.state_dict().items():
        assert torch.equal(v, first[k]), k
    assert torch.equal(conv.bias, torch.zeros_like(conv.bias))
    bound = (6.0 / (2 + C)) ** 0.5  # glorot over the last two dims [H, C]
    for p in (conv.att_src, conv.att_dst, conv.att_edge):
        assert 0 < p.abs().max() <= bound


def test_bad_input():
    conv = GATConv(F_IN, C)
    x, edge_index, _ = graph(dtype=torch.float32)
    with pytest.raises(TypeError, match="edge_index"):
        conv(x, edge_index.float())
    with pytest.raises(ValueError, match="edge_index"):
        conv(x, edge_index[:1])
    with pytest.raises(ValueError, match="edge_index"):
        conv(x, torch.cat([edge_index, torch.tensor([[0], [N]])], 1))
    with pytest.raises(ValueError, match="edge_index"):
        conv(x, torch.cat([edge_index, torch.tensor([[-1], [0]])], 1))
    with pytest.raises(ValueError, match="x"):
        conv(torch.randn(N, F_IN + 1), edge_index)
    with pytest.raises(TypeError, match="x"):
        conv([1, 2], edge_index)
    with pytest.raises(ValueError, match="edge_attr"):
        GATConv(F_IN, C, edge_dim=2)(x, edge_index, torch.randn(E - 1, 2))


def test_torch_compile_no_graph_breaks():
    conv = GATConv(F_IN, C, heads=2, edge_dim=2).eval()
    x, edge_index, edge_attr = graph(dtype=torch.float32)
    expected = conv(x, edge_index, edge_attr)  # eager first (loads the kernel registry)
    torch._dynamo.reset()
    # fullgraph=True raises on any graph break (self loops are replaced without data-dependent shapes)
    compiled = torch.compile(conv, fullgraph=True, backend="aot_eager")
    testing.assert_close(compiled(x, edge_index, edge_attr), expected)
    x_c, x_e = x.clone().requires_grad_(), x.clone().requires_grad_()
    compiled(x_c, edge_index, edge_attr).square().sum().backward()
    conv(x_e, edge_index, edge_attr).square().sum().backward()
    testing.assert_close(x_c.grad, x_e.grad)


# -- PyG parity ------------------------------------------------------------------------------
PYG_CONFIGS = CONFIGS + [
    dict(heads=2, edge_dim=2, fill_value=0.5),
    dict(heads=2, edge_dim=2, fill_value="add"),
    dict(heads=2, flow="target_to_source"),
    dict(heads=2, dropout=0.3),
]


@pytest.mark.parametrize("kwargs", PYG_CONFIGS, ids=str)
def test_pyg_parity(kwargs):
    pyg = pytest.importorskip("torch_geometric")
    torch.manual_seed(0)
    theirs = pyg.nn.GATConv(F_IN, C, **kwargs).eval()
    ours = GATConv(F_IN, C, **kwargs).eval()
    x, edge_index, edge_attr = graph(dtype=torch.float32)
    testing.assert_attention_parity(ours, theirs, x, edge_index, edge_attr if "edge_dim" in kwargs else None)


def test_pyg_parity_bipartite_and_size():
    pyg = pytest.importorskip("torch_geometric")
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(3)
    x_src, x_dst = torch.randn(7, F_IN, generator=g), torch.randn(5, 4, generator=g)
    edge_index = torch.stack(
        [torch.randint(0, 7, (20,), generator=g), torch.randint(0, 5, (20,), generator=g)]
    )
    theirs = pyg.nn.GATConv((F_IN, 4), C, heads=2, residual=True, edge_dim=3).eval()
    ours = GATConv((F_IN, 4), C, heads=2, residual=True, edge_dim=3).eval()
    testing.load_pyg_state(ours, theirs)
    assert repr(ours) == repr(theirs)
    ea = torch.randn(20, 3, generator=g)
    testing.assert_close(ours((x_src, x_dst), edge_index, ea), theirs((x_src, x_dst), edge_index, ea))
    # shared weights with a bipartite input, and a missing target side with an explicit size
    theirs = pyg.nn.GATConv(F_IN, C, heads=2).eval()
    ours = GATConv(F_IN, C, heads=2).eval()
    testing.load_pyg_state(ours, theirs)
    xs2 = x_dst[:, :1].repeat(1, F_IN)
    testing.assert_close(ours((x_src, xs2), edge_index), theirs((x_src, xs2), edge_index))
    testing.assert_close(
        ours((x_src, None), edge_index, size=(7, 5)), theirs((x_src, None), edge_index, size=(7, 5))
    )


def test_pyg_signature_and_state_dict():
    pyg = pytest.importorskip("torch_geometric")
    testing.assert_signatures_match(GATConv, pyg.nn.GATConv, ("__init__",))
    testing.assert_signatures_match(GATConv, pyg.nn.GATConv, ("forward",), defaults=False)
    for kwargs in ({}, dict(edge_dim=2, residual=True, bias=False), dict(concat=False)):
        a, b = GATConv((4, 6), C, heads=2, **kwargs), pyg.nn.GATConv((4, 6), C, heads=2, **kwargs)
        assert {k: v.shape for k, v in a.state_dict().items()} == {
            k: v.shape for k, v in b.state_dict().items()
        }


def test_int32_indices_zero_nodes_and_half_precision():
    conv = GATConv(F_IN, C, heads=2, edge_dim=2).eval()
    x, edge_index, edge_attr = graph(dtype=torch.float32)
    expected = conv(x, edge_index, edge_attr)
    testing.assert_close(conv(x, edge_index.int(), edge_attr), expected)
    out = conv(x[:0], edge_index[:, :0], edge_attr[:0])
    assert out.shape == (0, 2 * C)
    half = GATConv(F_IN, C, heads=2, edge_dim=2).eval()
    half.load_state_dict(conv.state_dict())
    half = half.to(torch.bfloat16)
    out = half(x.bfloat16(), edge_index, edge_attr.bfloat16())
    assert out.dtype == torch.bfloat16
    testing.assert_close(out.float(), expected, atol=0.1, rtol=0.05)
