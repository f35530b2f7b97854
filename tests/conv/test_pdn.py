"""PDNConv: dense reference (MLP edge weights, GCN normalization), PyG parity, formats, bad input."""

from __future__ import annotations

import pytest
import torch

from gnn.conv.pdn import PDNConv
from gnn.core import testing
from gnn.core.utils import is_sparse

N, E, F_IN, C, D, HID = 9, 36, 5, 4, 3, 6


def graph(dtype=torch.float64):
    x, edge_index = testing.random_graph(N, E, F_IN, seed=0, dtype=dtype)
    return x, edge_index, torch.randn(E, D, generator=torch.Generator().manual_seed(1), dtype=dtype)


def reference(conv: PDNConv, x, edge_index, edge_attr):
    l1, l2 = conv.mlp[0], conv.mlp[2]
    w = torch.sigmoid(torch.relu(edge_attr @ l1.weight.T + l1.bias) @ l2.weight.T + l2.bias).view(-1).tolist()
    edges = [(int(edge_index[0, e]), int(edge_index[1, e]), w[e]) for e in range(E)]
    if conv.normalize:
        if conv.add_self_loops:
            loops = {i: 1.0 for i in range(N)}
            for j, i, we in edges:
                if i == j:
                    loops[i] = we
            edges = [(j, i, we) for j, i, we in edges if i != j] + [(i, i, loops[i]) for i in range(N)]
        deg = [sum(we for _, t, we in edges if t == n) for n in range(N)]
        edges = [(j, i, we / (deg[i] * deg[j]) ** 0.5 if deg[i] * deg[j] > 0 else 0.0) for j, i, we in edges]
    h = x @ conv.lin.weight.T
    a = torch.zeros(N, N, dtype=x.dtype)
    for j, i, we in edges:
        a[i, j] += we
    out = a @ h
    return out + conv.bias if conv.bias is not None else out


CONFIGS = [{}, dict(normalize=False), dict(add_self_loops=False), dict(normalize=False, bias=False)]


@pytest.mark.parametrize("kwargs", CONFIGS, ids=str)
def test_matches_dense_reference(kwargs):
    torch.manual_seed(0)
    conv = PDNConv(F_IN, C, D, HID, **kwargs).double()
    with torch.no_grad():
        if conv.bias is not None:
            conv.bias.normal_()
    x, edge_index, edge_attr = graph()
    testing.assert_close(
        conv(x, edge_index, edge_attr), reference(conv, x, edge_index, edge_attr), atol=1e-10
    )


def test_formats_and_permutation():
    conv = PDNConv(F_IN, C, 1, HID).double()
    x, edge_index, edge_attr = graph()
    w = edge_attr[:, 0].contiguous()
    testing.assert_formats_agree(
        lambda adj: conv(x, adj, None if is_sparse(adj) else w), edge_index, N, edge_weight=w, atol=1e-10
    )
    perm = torch.randperm(E, generator=torch.Generator().manual_seed(2))
    testing.assert_close(conv(x, edge_index[:, perm], w[perm]), conv(x, edge_index, w), atol=1e-10)


def test_lazy_and_reset():
    torch.manual_seed(0)
    lazy = PDNConv(-1, C, D, HID).double()
    x, edge_index, edge_attr = graph()
    out = lazy(x, edge_index, edge_attr)
    eager = PDNConv(F_IN, C, D, HID).double()
    eager.load_state_dict(lazy.state_dict())
    testing.assert_close(eager(x, edge_index, edge_attr), out)
    torch.manual_seed(1)
    eager.reset_parameters()
    first = {k: v.clone() for k, v in eager.state_dict().items()}
    torch.manual_seed(1)
    eager.reset_parameters()
    assert all(torch.equal(v, first[k]) for k, v in eager.state_dict().items())
    assert torch.equal(eager.bias, torch.zeros(C, dtype=torch.float64))


def test_bad_input():
    conv = PDNConv(F_IN, C, D, HID)
    x, edge_index, edge_attr = graph(torch.float32)
    with pytest.raises(ValueError, match="edge_attr"):
        conv(x, edge_index)
    with pytest.raises(ValueError, match="edge_attr"):
        conv(x, edge_index, edge_attr[:-1])
    with pytest.raises(TypeError, match="edge_index"):
        conv(x, edge_index.float(), edge_attr)
    with pytest.raises(ValueError, match="edge_index"):
        conv(x, torch.cat([edge_index, torch.tensor([[N], [0]])], 1), torch.cat([edge_attr, edge_attr[:1]]))
    with pytest.raises(ValueError, match="x"):
        conv(torch.randn(N, 1), edge_index, edge_attr)


@pytest.mark.parametrize("kwargs", CONFIGS, ids=str)
def test_pyg_parity(kwargs):
    pyg = pytest.importorskip("torch_geometric")
    torch.manual_seed(0)
    theirs, ours = pyg.nn.PDNConv(F_IN, C, D, HID, **kwargs), PDNConv(F_IN, C, D, HID, **kwargs)
    testing.load_pyg_state(ours, theirs)
    assert repr(ours) == repr(theirs)
    x, edge_index, edge_attr = graph(torch.float32)
    testing.assert_close(ours(x, edge_index, edge_attr), theirs(x, edge_index, edge_attr))
    testing.assert_signatures_match(PDNConv, pyg.nn.PDNConv, ("__init__",))
