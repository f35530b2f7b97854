"""HANConv against a per-edge loop reference (node-level attention per edge type, semantic attention
per node type), against PyG, the fused path against the general one, gradcheck, partial inputs."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from gnn.hetero import HANConv


def reference(conv: HANConv, x_dict: dict, ei_dict: dict) -> tuple[dict, dict]:
    H, F_out = conv.heads, conv.out_channels
    D = F_out // H
    h = {t: conv.proj[t](x).view(-1, H, D) for t, x in x_dict.items()}
    per_type: dict[str, list[torch.Tensor]] = {t: [] for t in x_dict}
    for e, ei in ei_dict.items():
        key = "__".join(e)
        a_src = (h[e[0]] * conv.lin_src[key]).sum(-1)
        a_dst = (h[e[2]] * conv.lin_dst[key]).sum(-1)
        n = x_dict[e[2]].size(0)
        out = torch.zeros(n, H, D, dtype=x_dict[e[2]].dtype)
        for node in range(n):
            mask = ei[1] == node
            if mask.any():
                j = ei[0][mask]
                score = F.leaky_relu(a_src[j] + a_dst[node], conv.negative_slope)
                alpha = torch.softmax(score, dim=0)
                out[node] = (alpha.unsqueeze(-1) * h[e[0]][j]).sum(0)
        per_type[e[2]].append(F.relu(out.reshape(n, F_out)))
    result, beta = {}, {}
    for t, outs in per_type.items():
        if not outs:
            result[t], beta[t] = None, None
            continue
        w = torch.stack([(conv.q * torch.tanh(conv.k_lin(o)).mean(0)).sum() for o in outs])
        beta[t] = torch.softmax(w, dim=0)
        result[t] = sum(b * o for b, o in zip(beta[t], outs))
    return result, beta


def _conv(metadata, data, heads=2, seed=0):
    torch.manual_seed(seed)
    conv = HANConv(-1, 8, metadata, heads=heads).double()
    conv(data["x"], data["edge_index"])
    with torch.no_grad():
        for p in conv.parameters():
            p.mul_(1 + 0.3 * torch.randn_like(p))
    return conv


@pytest.mark.parametrize("heads", [1, 2])
def test_matches_the_loop_reference(heads, graph, metadata, close):
    data = graph()
    conv = _conv(metadata, data, heads)
    out, beta = conv(data["x"], data["edge_index"], return_semantic_attention_weights=True)
    ref_out, ref_beta = reference(conv, data["x"], data["edge_index"])
    close(out, ref_out)
    close(beta, ref_beta)


@pytest.mark.parametrize("heads", [1, 4])
def test_matches_pyg(heads, graph, metadata, parity, close):
    pyg = pytest.importorskip("torch_geometric.nn")
    data = graph()
    ours, theirs = HANConv(-1, 8, metadata, heads=heads), pyg.HANConv(-1, 8, metadata, heads=heads)
    a, b = parity(ours, theirs, data["x"], data["edge_index"], return_semantic_attention_weights=True)
    close(a[0], b[0])
    close(a[1], b[1])


def test_fused_and_general_paths_agree(graph, metadata, close):
    data = graph()
    conv = _conv(metadata, data)
    fused = conv(data["x"], data["edge_index"])
    seen = []
    handle = conv.register_message_forward_hook(lambda m, inputs, out: seen.append(1))
    general = conv(data["x"], data["edge_index"])
    handle.remove()
    assert seen
    close(fused, general)


def test_attention_dropout_in_training(graph, metadata):
    data = graph()
    conv = HANConv(-1, 8, metadata, heads=2, dropout=0.5).double()
    conv.eval()
    a = conv(data["x"], data["edge_index"])["paper"]
    conv.train()
    torch.manual_seed(0)
    b = conv(data["x"], data["edge_index"])["paper"]
    assert not torch.allclose(a, b)


def test_gradcheck(metadata):
    g = torch.Generator().manual_seed(2)
    xp = torch.randn(4, 3, generator=g, dtype=torch.float64, requires_grad=True)
    xa = torch.randn(3, 2, generator=g, dtype=torch.float64, requires_grad=True)
    ei = {
        ("paper", "cites", "paper"): torch.tensor([[0, 1, 2, 3, 1], [1, 2, 3, 0, 0]]),
        ("author", "writes", "paper"): torch.tensor([[0, 1, 2, 2], [0, 0, 1, 3]]),
        ("paper", "rev_writes", "author"): torch.tensor([[0, 0, 1, 3], [0, 1, 2, 2]]),
    }
    torch.manual_seed(0)
    conv = HANConv({"paper": 3, "author": 2}, 4, metadata, heads=2).double()

    def fn(p, a):
        out = conv({"paper": p, "author": a}, ei)
        return out["paper"], out["author"]

    assert torch.autograd.gradcheck(fn, (xp, xa), eps=1e-6, atol=1e-5)


def test_partial_and_empty_inputs(graph, metadata, close):
    data = graph()
    conv = _conv(metadata, data)
    partial = {e: ei for e, ei in data["edge_index"].items() if e[2] == "paper"}
    out = conv(data["x"], partial)
    assert out["author"] is None  # no edge type reaches authors
    close(out, reference(conv, data["x"], partial)[0])
    empty = dict(data["edge_index"])
    empty[("paper", "cites", "paper")] = torch.zeros(2, 0, dtype=torch.long)
    close(conv(data["x"], empty), reference(conv, data["x"], empty)[0])
    no_nodes = {"paper": data["x"]["paper"][:0], "author": data["x"]["author"]}
    ei = {("author", "writes", "paper"): torch.zeros(2, 0, dtype=torch.long)}
    assert conv(no_nodes, ei)["paper"].shape == (0, 8)


def test_sparse_input(graph, metadata, close):
    data = graph()
    conv = _conv(metadata, data)
    sizes = {"paper": 9, "author": 6}
    adj = {
        e: torch.sparse_coo_tensor(ei.flip(0), torch.ones(ei.size(1)), (sizes[e[2]], sizes[e[0]])).coalesce()
        for e, ei in data["edge_index"].items()
    }
    dedup = {e: a.indices().flip(0) for e, a in adj.items()}
    close(conv(data["x"], adj), conv(data["x"], dedup))


def test_errors_name_the_type(graph, metadata):
    data = graph()
    conv = HANConv(-1, 8, metadata).double()
    with pytest.raises(ValueError, match="'x_dict'.*'author'"):
        conv({"paper": data["x"]["paper"]}, data["edge_index"])
    with pytest.raises(ValueError, match="'venue'"):
        conv({**data["x"], "venue": torch.randn(2, 2, dtype=torch.float64)}, data["edge_index"])
    with pytest.raises(ValueError, match=r"\('paper', 'likes', 'paper'\)"):
        conv(data["x"], {("paper", "likes", "paper"): data["edge_index"][("paper", "cites", "paper")]})
    with pytest.raises(ValueError, match="heads"):
        HANConv(-1, 6, metadata, heads=4)
