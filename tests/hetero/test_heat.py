"""HEATConv against the concatenation formula of the paper (per edge, literally), against PyG,
gradcheck, and errors naming the argument."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from gnn.hetero import HEATConv

N, E = 10, 36


def _inputs(seed: int = 0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(N, 6, generator=g, dtype=dtype)
    ei = torch.randint(0, N, (2, E), generator=g)
    node_type = torch.randint(0, 2, (N,), generator=g)
    edge_type = torch.randint(0, 3, (E,), generator=g)
    edge_attr = torch.randn(E, 5, generator=g, dtype=dtype)
    return x, ei, node_type, edge_type, edge_attr


def _conv(**kwargs):
    torch.manual_seed(0)
    conv = HEATConv(
        6, 4, 2, 3, edge_type_emb_dim=3, edge_dim=5, edge_attr_emb_dim=2, heads=2, **kwargs
    ).double()
    with torch.no_grad():
        for p in conv.parameters():
            p.mul_(1 + 0.3 * torch.randn_like(p))
    return conv


def reference(conv: HEATConv, x, ei, node_type, edge_type, edge_attr):
    slope = conv.negative_slope
    h = torch.stack(
        [x[i] @ conv.hetero_lin.weight[node_type[i]] + conv.hetero_lin.bias[node_type[i]] for i in range(N)]
    )
    t = F.leaky_relu(conv.edge_type_emb.weight[edge_type], slope)
    a = F.leaky_relu(edge_attr @ conv.edge_attr_emb.weight.t(), slope)
    out = torch.zeros(N, conv.heads, conv.out_channels, dtype=x.dtype)
    for i in range(N):
        mask = ei[1] == i
        if not mask.any():
            continue
        j = ei[0][mask]
        cat = torch.cat([h[i].expand(j.numel(), -1), h[j], t[mask], a[mask]], dim=-1)
        alpha = torch.softmax(F.leaky_relu(cat @ conv.att.weight.t(), slope), dim=0)  # [deg, H]
        value = torch.cat([h[j], a[mask]], dim=-1) @ conv.lin.weight.t() + conv.lin.bias
        out[i] = (alpha.unsqueeze(-1) * value.unsqueeze(1)).sum(0)
    if conv.concat:
        if conv.root_weight:
            out = out + h.unsqueeze(1)
        return out.reshape(N, -1)
    out = out.mean(1)
    return out + h if conv.root_weight else out


@pytest.mark.parametrize("concat, root_weight", [(True, True), (False, True), (True, False), (False, False)])
def test_matches_the_formula(concat, root_weight):
    conv = _conv(concat=concat, root_weight=root_weight)
    inputs = _inputs()
    torch.testing.assert_close(conv(*inputs), reference(conv, *inputs))


@pytest.mark.parametrize("concat", [True, False])
def test_matches_pyg(concat, parity):
    pyg = pytest.importorskip("torch_geometric.nn")
    args = (-1, 4, 2, 3, 3, 5, 2)
    ours, theirs = HEATConv(*args, heads=2, concat=concat), pyg.HEATConv(*args, heads=2, concat=concat)
    a, b = parity(ours, theirs, *_inputs())
    torch.testing.assert_close(a, b)


def test_gradcheck():
    conv = _conv()
    x, ei, nt, et, ea = _inputs(1)
    x.requires_grad_()
    ea.requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: conv(a, ei, nt, et, b), (x, ea), eps=1e-6, atol=1e-5)


def test_isolated_nodes_and_no_edges():
    conv = _conv()
    x, _, nt, _, _ = _inputs()
    ei = torch.zeros(2, 0, dtype=torch.long)
    out = conv(x, ei, nt, torch.zeros(0, dtype=torch.long), torch.zeros(0, 5, dtype=torch.float64))
    h = conv.hetero_lin(x, nt)
    torch.testing.assert_close(out, h.repeat(1, 2))  # only the root term


def test_errors_name_the_argument():
    conv = _conv()
    x, ei, nt, et, ea = _inputs()
    with pytest.raises(ValueError, match="edge_attr"):
        conv(x, ei, nt, et)
    with pytest.raises(ValueError, match="edge_type"):
        conv(x, ei, nt, et[:-1], ea)
    with pytest.raises(ValueError, match="edge_type"):
        conv(x, ei, nt, et + 5, ea)
    with pytest.raises(ValueError, match="edge_attr"):
        conv(x, ei, nt, et, ea[:-1])
    with pytest.raises(ValueError, match="type_vec"):
        conv(x, ei, nt[:-1], et, ea)
