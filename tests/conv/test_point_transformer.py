"""PointTransformerConv against a per-node loop reference (per-node and per-edge paths), PyG,
sparse inputs, bipartite graphs, torch.compile and bad input."""

from __future__ import annotations

import pytest
import torch
import torch._dynamo as dynamo

from gnn.conv import PointTransformerConv
from gnn.core import ops, testing

N, E, F, C = 10, 32, 4, 5


def graph(seed: int, n: int = N, e: int = E, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, F, generator=g, dtype=dtype)
    pos = torch.randn(n, 3, generator=g, dtype=dtype)
    ei = torch.randint(0, n, (2, e), generator=g)
    ei[:, :3] = torch.tensor([[0, 4, 4], [0, 4, 4]])
    ei[:, 3] = ei[:, 4]
    return x, pos, ei


def build(kind: str, in_channels=F) -> PointTransformerConv:
    torch.manual_seed(0)
    kw = {
        "default": {},
        "attn": {"attn_nn": torch.nn.Sequential(torch.nn.Linear(C, C), torch.nn.ReLU())},
        "pos_mlp": {
            "pos_nn": torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.ReLU(), torch.nn.Linear(8, C))
        },
        "no_loops": {"add_self_loops": False},
    }[kind]
    return PointTransformerConv(in_channels, C, **kw).double()


def loop_reference(conv, x_src, x_dst, pos_src, pos_dst, ei, loops=True):
    """sum_j softmax_j(attn_nn(W1 x_i - W2 x_j + d_ij)) * (W3 x_j + d_ij), d_ij = pos_nn(p_i - p_j)."""
    out = []
    num_loops = min(pos_src.size(0), pos_dst.size(0))
    with torch.no_grad():
        for i in range(pos_dst.size(0)):
            src = ei[0][ei[1] == i].tolist()
            if loops:
                src = [j for j in src if j != i] + ([i] if i < num_loops else [])
            if not src:
                out.append(torch.zeros(C, dtype=x_src.dtype))
                continue
            idx = torch.tensor(src)
            delta = conv.pos_nn(pos_dst[i] - pos_src[idx])
            score = conv.lin_dst(x_dst[i]) - conv.lin_src(x_src[idx]) + delta
            if conv.attn_nn is not None:
                score = conv.attn_nn(score)
            alpha = torch.softmax(score, dim=0)  # per channel over the neighbours
            out.append((alpha * (conv.lin(x_src[idx]) + delta)).sum(0))
    return torch.stack(out)


@pytest.mark.parametrize("kind", ["default", "attn", "pos_mlp", "no_loops"])
def test_matches_loop_reference_on_both_paths(kind):
    x, pos, ei = graph(1)
    conv = build(kind)
    expected = loop_reference(conv, x, x, pos, pos, ei, loops=kind != "no_loops")
    testing.assert_close(conv(x, pos, ei), expected, atol=1e-10, rtol=1e-8)
    seen: list[int] = []
    handle = conv.register_message_forward_hook(lambda m, inputs, out: seen.append(out.size(0)))
    testing.assert_close(conv(x, pos, ei), expected, atol=1e-10, rtol=1e-8)
    handle.remove()
    given_loops = int((ei[0] == ei[1]).sum())
    assert seen == [E if kind == "no_loops" else E - given_loops + N]


def test_extreme_scores_take_the_per_row_attention(monkeypatch):
    x, pos, ei = graph(10)
    conv = build("default")
    with torch.no_grad():
        conv.lin_src.weight.mul_(2000.0)  # scores spread over thousands: one shift cannot serve all rows
    calls: list[int] = []
    real = ops.node_score_attention
    monkeypatch.setattr(ops, "node_score_attention", lambda *a, **k: calls.append(1) or real(*a, **k))
    testing.assert_close(conv(x, pos, ei), loop_reference(conv, x, x, pos, pos, ei), atol=1e-10, rtol=1e-8)
    assert calls == [1]
    calls.clear()
    conv = build("default")  # ordinary scores: the shared shift, no attention op
    testing.assert_close(conv(x, pos, ei), loop_reference(conv, x, x, pos, pos, ei), atol=1e-10, rtol=1e-8)
    assert calls == []


def test_bipartite_and_isolated_targets():
    g = torch.Generator().manual_seed(2)
    x_src, x_dst = (
        torch.randn(8, F, generator=g, dtype=torch.float64),
        torch.randn(6, 3, generator=g).double(),
    )
    pos_src, pos_dst = torch.randn(8, 3, generator=g).double(), torch.randn(6, 3, generator=g).double()
    ei = torch.stack([torch.randint(0, 8, (14,), generator=g), torch.randint(0, 4, (14,), generator=g)])
    for kind in ("default", "no_loops"):
        torch.manual_seed(0)
        conv = PointTransformerConv((F, 3), C, add_self_loops=kind == "default").double()
        expected = loop_reference(conv, x_src, x_dst, pos_src, pos_dst, ei, loops=kind == "default")
        testing.assert_close(conv((x_src, x_dst), (pos_src, pos_dst), ei), expected)
    assert expected[4:].abs().max() == 0  # targets without neighbours (no loops) get 0


def test_sparse_formats_and_permutation():
    x, pos, ei = graph(3)
    for kind in ("default", "attn"):
        conv = build(kind)
        testing.assert_formats_agree(lambda adj: conv(x, pos, adj), ei, N)
        perm = torch.randperm(E, generator=torch.Generator().manual_seed(0))
        testing.assert_close(conv(x, pos, ei[:, perm]), conv(x, pos, ei))
        testing.assert_close(conv(x, pos, ei.int()), conv(x, pos, ei))


def test_gradients_of_both_paths_agree():
    x, pos, ei = graph(4)
    conv = build("default")
    grads = []
    for hook in (False, True):
        conv.zero_grad()
        xx = x.clone().requires_grad_()
        handle = conv.register_message_forward_hook(lambda m, i, o: None) if hook else None
        conv(xx, pos, ei).square().sum().backward()
        if handle is not None:
            handle.remove()
        grads.append([xx.grad] + [p.grad.clone() for p in conv.parameters()])
    for a, b in zip(*grads):
        testing.assert_close(a, b, atol=1e-10, rtol=1e-8)


def test_empty_graphs():
    x, pos, _ = graph(5)
    no_edges = torch.empty(2, 0, dtype=torch.long)
    conv = build("default")
    # only self loops: the softmax of one entry is 1, so out = W3 x_i + pos_nn(0)
    testing.assert_close(conv(x, pos, no_edges), conv.lin(x) + conv.pos_nn(torch.zeros_like(pos)))
    assert conv(x[:0], pos[:0], no_edges).shape == (0, C)
    conv.add_self_loops = False
    testing.assert_close(conv(x, pos, no_edges), torch.zeros(N, C, dtype=torch.float64))


def test_compiles_without_graph_breaks():
    x, pos, ei = graph(6, dtype=torch.float32)
    testing.assert_compiles_like_eager(build("default").float(), x, pos, ei)  # the per-node path
    dynamo.reset()
    explanation = dynamo.explain(build("attn").float())(x, pos, ei)  # the per-edge path
    assert explanation.graph_break_count == 0, [r.reason for r in explanation.break_reasons]


def test_compiled_with_dynamic_sizes():
    conv = build("default").float()
    compiled = torch.compile(conv, backend="aot_eager", dynamic=True, fullgraph=True)
    dynamo.reset()
    for n, e in ((12, 40), (17, 55)):
        x, pos, ei = graph(7, n, e, dtype=torch.float32)
        testing.assert_close(compiled(x, pos, ei), conv(x, pos, ei))


def test_lazy_and_bad_input():
    x, pos, ei = graph(8)
    conv = PointTransformerConv(-1, C).double()
    assert conv(x, pos, ei).shape == (N, C)
    conv = build("default")
    with pytest.raises(ValueError, match="x"):
        conv(torch.randn(N, F + 1, dtype=torch.float64), pos, ei)
    with pytest.raises(ValueError, match="x"):
        conv(x[:4], pos, ei)
    with pytest.raises(ValueError, match="pos"):
        conv(x, pos[:, 0], ei)
    with pytest.raises(ValueError, match="edge_index"):
        conv(x, pos, torch.tensor([[0, -1], [1, 2]]))


def test_pyg_parity():
    pyg = pytest.importorskip("torch_geometric")
    testing.assert_signatures_match(PointTransformerConv, pyg.nn.PointTransformerConv)
    x, pos, ei = graph(9)
    for kind in ("default", "attn", "pos_mlp", "no_loops"):
        ours = build(kind)
        kw = {"pos_nn": None if kind != "pos_mlp" else build(kind).pos_nn, "attn_nn": build(kind).attn_nn}
        theirs = pyg.nn.PointTransformerConv(F, C, add_self_loops=kind != "no_loops", **kw).double()
        assert repr(ours) == repr(theirs)
        assert list(ours.state_dict()) == list(theirs.state_dict())
        testing.assert_gradients_match_pyg(ours, theirs, x, pos, ei)
    theirs = pyg.nn.PointTransformerConv((F, 3), C).double()
    ours = PointTransformerConv((F, 3), C).double()
    testing.load_pyg_state(ours, theirs)
    x_dst, pos_dst = torch.randn(6, 3, dtype=torch.float64), pos[:6]
    bip = ei[:, ei[1] < 6]
    testing.assert_close(ours((x, x_dst), (pos, pos_dst), bip), theirs((x, x_dst), (pos, pos_dst), bip))


def test_explain_mode_matches_pyg():
    pyg = pytest.importorskip("torch_geometric")
    x, pos, ei = graph(11)
    mask = torch.randn(E, dtype=torch.float64)
    theirs, ours = pyg.nn.PointTransformerConv(F, C).double(), build("default")
    testing.load_pyg_state(ours, theirs)
    for m in (ours, theirs):  # as PyG's explainers set them: loops are masked out, added loops get 1
        m.explain, m._edge_mask, m._loop_mask = True, mask, ei[0] != ei[1]
    testing.assert_close(ours(x, pos, ei), theirs(x, pos, ei))
