"""HGTConv against a per-edge loop reference of the HGT formula, against PyG (strict load), the
fused path against the general one, gradcheck through the fused kernels, and partial inputs."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from gnn.core import MessagePassing
from gnn.hetero import HGTConv


def reference(conv: HGTConv, x_dict: dict, ei_dict: dict) -> dict:
    """HGT written out edge by edge: scores of every incoming edge of every type, softmax per
    destination node and head over all of them, weighted sum, GELU, output layer, gated skip."""
    H, F_out = conv.heads, conv.out_channels
    D, R = F_out // H, len(conv.edge_types)
    kqv = {t: conv.kqv_lin.lins[t](x) for t, x in x_dict.items()}
    k = {t: a[:, :F_out].reshape(-1, H, D) for t, a in kqv.items()}
    q = {t: a[:, F_out : 2 * F_out].reshape(-1, H, D) for t, a in kqv.items()}
    v = {t: a[:, 2 * F_out :].reshape(-1, H, D) for t, a in kqv.items()}
    w_k = conv.k_rel.weight.view(H, R, D, D)
    w_v = conv.v_rel.weight.view(H, R, D, D)
    out = {}
    for t in x_dict:
        if t not in conv.dst_node_types:
            continue
        n = x_dict[t].size(0)
        scores, values, dst = [], [], []
        for e, ei in ei_dict.items():
            if e[2] != t:
                continue
            r = conv.edge_types.index(e)
            src, i = ei[0], ei[1]
            k_j = torch.einsum("ehd,hdf->ehf", k[e[0]][src], w_k[:, r])
            v_j = torch.einsum("ehd,hdf->ehf", v[e[0]][src], w_v[:, r])
            prior = conv.p_rel["__".join(e)].view(H)
            scores.append((q[t][i] * k_j).sum(-1) * prior / math.sqrt(D))
            values.append(v_j)
            dst.append(i)
        agg = torch.zeros(n, H, D, dtype=x_dict[t].dtype)
        if scores:
            s, val, idx = torch.cat(scores), torch.cat(values), torch.cat(dst)
            for node in range(n):
                mask = idx == node
                if mask.any():
                    alpha = torch.softmax(s[mask], dim=0)  # [deg, H]
                    agg[node] = (alpha.unsqueeze(-1) * val[mask]).sum(0)
        res = conv.out_lin.lins[t](F.gelu(agg.reshape(n, F_out)))
        if res.size(-1) == x_dict[t].size(-1):
            gate = torch.sigmoid(conv.skip[t])
            res = gate * res + (1 - gate) * x_dict[t]
        out[t] = res
    return out


def _conv(metadata, heads=2, in_channels=-1, seed=0):
    torch.manual_seed(seed)
    conv = HGTConv(in_channels, 8, metadata, heads=heads).double()
    return conv


def _init(conv, data):
    conv(data["x"], data["edge_index"])  # lazy sizes
    with torch.no_grad():
        for p in conv.parameters():
            p.mul_(1 + 0.3 * torch.randn_like(p))
    return conv


@pytest.mark.parametrize("heads", [1, 2])
def test_matches_the_loop_reference(heads, graph, metadata, close):
    data = graph(features={"paper": 8, "author": 3})  # paper: same size as the output (skip)
    conv = _init(_conv(metadata, heads), data)
    close(conv(data["x"], data["edge_index"]), reference(conv, data["x"], data["edge_index"]))


@pytest.mark.parametrize("heads", [1, 4])
def test_matches_pyg(heads, graph, metadata, parity, close):
    pyg = pytest.importorskip("torch_geometric.nn")
    data = graph(features={"paper": 8, "author": 3})
    ours, theirs = HGTConv(-1, 8, metadata, heads=heads), pyg.HGTConv(-1, 8, metadata, heads=heads)
    a, b = parity(ours, theirs, data["x"], data["edge_index"])
    close(a, b)


def test_fused_and_general_paths_agree(graph, metadata, close):
    data = graph()
    conv = _init(_conv(metadata), data)
    fused = conv(data["x"], data["edge_index"])
    seen = []
    handle = conv.register_message_forward_hook(lambda m, inputs, out: seen.append(out.shape))
    general = conv(data["x"], data["edge_index"])
    handle.remove()
    assert seen and seen[0][1:] == (2, 4)  # per-edge messages [E, H, D] on the general path
    close(fused, general)


def test_gradcheck_through_the_fused_kernels(metadata):
    g = torch.Generator().manual_seed(3)
    x = {
        t: torch.randn(n, 4, generator=g, dtype=torch.float64, requires_grad=True)
        for t, n in [("paper", 4), ("author", 3)]
    }
    ei = {
        ("paper", "cites", "paper"): torch.tensor([[0, 1, 2, 3, 1], [1, 2, 3, 0, 0]]),
        ("author", "writes", "paper"): torch.tensor([[0, 1, 2, 2], [0, 0, 1, 3]]),
        ("paper", "rev_writes", "author"): torch.tensor([[0, 0, 1, 3], [0, 1, 2, 2]]),
        ("author", "knows", "author"): torch.tensor([[0, 1], [1, 2]]),
    }
    torch.manual_seed(0)
    conv = HGTConv(4, 4, metadata, heads=2).double()
    with torch.no_grad():
        for p in conv.parameters():
            p.mul_(1 + 0.3 * torch.randn_like(p))

    def fn(xp, xa):
        out = conv({"paper": xp, "author": xa}, ei)
        return out["paper"], out["author"]

    assert torch.autograd.gradcheck(fn, (x["paper"], x["author"]), eps=1e-6, atol=1e-5)
    # the relation priors and matrices get gradients as well
    sum(o.sum() for o in fn(x["paper"], x["author"])).backward()
    assert conv.p_rel["author__writes__paper"].grad is not None and conv.k_rel.weight.grad.abs().sum() > 0


def test_missing_and_empty_edge_types(graph, metadata, close):
    data = graph(features={"paper": 8, "author": 3})
    conv = _init(_conv(metadata), data)
    partial = {e: ei for e, ei in data["edge_index"].items() if e != ("author", "writes", "paper")}
    close(conv(data["x"], partial), reference(conv, data["x"], partial))
    empty = dict(data["edge_index"])
    empty[("paper", "cites", "paper")] = torch.zeros(2, 0, dtype=torch.long)
    close(conv(data["x"], empty), reference(conv, data["x"], empty))


def test_missing_and_empty_edge_types_match_pyg(graph, metadata, parity, close):
    pyg = pytest.importorskip("torch_geometric.nn")
    data = graph(features={"paper": 8, "author": 3})
    partial = {e: ei for e, ei in data["edge_index"].items() if e != ("author", "writes", "paper")}
    partial[("paper", "cites", "paper")] = torch.zeros(2, 0, dtype=torch.long)
    a, b = parity(
        HGTConv(-1, 8, metadata, heads=2), pyg.HGTConv(-1, 8, metadata, heads=2), data["x"], partial
    )
    close(a, b)


def test_node_types_that_receive_nothing_are_left_out(graph):
    metadata = (["paper", "author"], [("author", "writes", "paper"), ("paper", "cites", "paper")])
    data = graph(edge_types=metadata[1])
    out = HGTConv(-1, 8, metadata).double()(data["x"], data["edge_index"])
    assert set(out) == {"paper"}


def test_sparse_and_int32_inputs(graph, metadata, close):
    data = graph()
    conv = _init(_conv(metadata), data)
    expected = conv(data["x"], data["edge_index"])
    sizes = {"paper": 9, "author": 6}
    adj = {
        e: torch.sparse_coo_tensor(ei.flip(0), torch.ones(ei.size(1)), (sizes[e[2]], sizes[e[0]])).coalesce()
        for e, ei in data["edge_index"].items()
    }
    # a coalesced adjacency merges duplicate edges: compare against the deduplicated edge_index
    dedup = {e: a.indices().flip(0) for e, a in adj.items()}
    close(conv(data["x"], adj), conv(data["x"], dedup))
    close(conv(data["x"], {e: ei.int() for e, ei in data["edge_index"].items()}), expected)


def test_errors_name_the_type(graph, metadata):
    data = graph()
    conv = _conv(metadata)
    with pytest.raises(ValueError, match="'x_dict'.*'author'"):
        conv({"paper": data["x"]["paper"]}, data["edge_index"])
    with pytest.raises(ValueError, match=r"edge type \('paper', 'likes', 'paper'\)"):
        conv(data["x"], {("paper", "likes", "paper"): data["edge_index"][("paper", "cites", "paper")]})
    with pytest.raises(ValueError, match="divisible"):
        HGTConv(-1, 6, metadata, heads=4)
    with pytest.raises(TypeError, match="x_dict"):
        conv(data["x"]["paper"], data["edge_index"])
    with pytest.raises(ValueError, match="edge_index"):
        conv(data["x"], {("paper", "cites", "paper"): torch.tensor([[0, 99], [1, 2]])})


def test_is_a_message_passing_layer_with_pyg_parameter_names(metadata):
    conv = HGTConv({"paper": 5, "author": 3}, 8, metadata, heads=2)
    assert isinstance(conv, MessagePassing)
    keys = set(conv.state_dict())
    assert {"k_rel.weight", "v_rel.weight", "skip.paper", "p_rel.author__writes__paper"} <= keys
    assert conv.k_rel.weight.shape == (2 * 4, 4, 4)
