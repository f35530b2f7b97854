"""CuGraphRGCNConv: a per-relation loop reference written here, PyG's class (its state_dict loads
strict; PyG's forward needs pylibcugraphops, so numbers are compared with PyG's RGCNConv holding
the same matrices), every graph form (PyG's EdgeIndex, [2, E], the CSC tuple), bipartite
message-flow graphs and bad inputs."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from gnn.conv import CuGraphRGCNConv
from gnn.core import testing
from gnn.core import validation as v

N, E, F_IN, F_OUT, R = 10, 45, 5, 4, 3


def graph(seed: int = 0) -> tuple[Tensor, Tensor, Tensor]:
    x, edge_index = testing.random_graph(N, E, F_IN, seed=seed, dtype=torch.float64)
    edge_type = torch.randint(0, R, (E,), generator=torch.Generator().manual_seed(seed + 7))
    return x, edge_index, edge_type


def loop_reference(conv: CuGraphRGCNConv, x, edge_index, edge_type, num_dst: int) -> Tensor:
    """``W_root x_i + sum_r aggr_{j in N_r(i)} x_j W_r + b`` with one loop per node and relation."""
    mats = conv.weight.detach()
    if conv.comp is not None:
        rel = torch.einsum("rb,bio->rio", conv.comp.detach(), mats[: conv.num_bases])
    else:
        rel = mats[:R]
    out = torch.zeros(num_dst, F_OUT, dtype=torch.float64)
    for i in range(num_dst):
        for r in range(R):
            senders = edge_index[0][(edge_index[1] == i) & (edge_type == r)]
            if senders.numel():
                agg = x[senders].sum(0) if conv.aggr in ("sum", "add") else x[senders].mean(0)
                out[i] += agg @ rel[r]
        if conv.root_weight:
            out[i] += x[i] @ mats[-1]
    return out if conv.bias is None else out + conv.bias.detach()


@pytest.mark.parametrize(
    "kwargs", [{}, {"num_bases": 2}, {"aggr": "sum"}, {"root_weight": False, "bias": False}]
)
def test_loop_reference_and_graph_forms(kwargs):
    x, edge_index, edge_type = graph(1)
    torch.manual_seed(0)
    conv = CuGraphRGCNConv(F_IN, F_OUT, R, **kwargs).double()
    if conv.bias is not None:
        torch.nn.init.normal_(conv.bias)
    expected = loop_reference(conv, x, edge_index, edge_type, N)
    testing.assert_close(conv(x, edge_index, edge_type), expected, atol=1e-10, rtol=1e-9)
    csc, csc_type = CuGraphRGCNConv.to_csc(edge_index, (N, N), edge_type)
    testing.assert_close(conv(x, csc, csc_type, max_num_neighbors=8), expected, atol=1e-10, rtol=1e-9)
    assert CuGraphRGCNConv.to_csc(edge_index)[2] == N


def test_bipartite_message_flow_graph():
    """The targets are the first ``N_dst`` rows of ``x`` (cugraph-ops' convention)."""
    x, edge_index, edge_type = graph(2)
    num_dst = 4
    keep = edge_index[1] < num_dst
    ei, et = edge_index[:, keep], edge_type[keep]
    conv = CuGraphRGCNConv(F_IN, F_OUT, R).double()
    expected = loop_reference(conv, x, ei, et, num_dst)
    csc, csc_type = CuGraphRGCNConv.to_csc(ei, (N, num_dst), et)
    testing.assert_close(conv(x, csc, csc_type), expected, atol=1e-10, rtol=1e-9)


def test_signature_and_pyg_state_dict(monkeypatch):
    pyg = pytest.importorskip("torch_geometric")
    from torch_geometric import EdgeIndex
    from torch_geometric.nn.conv.cugraph import base

    theirs_cls = pyg.nn.CuGraphRGCNConv
    testing.assert_signatures_match(CuGraphRGCNConv, theirs_cls)
    # PyG's constructor asks for pylibcugraphops, which it only needs in forward
    monkeypatch.setattr(base, "HAS_PYLIBCUGRAPHOPS", True)
    x, edge_index, edge_type = graph(3)
    x = x.float()
    for kwargs in ({}, {"num_bases": 2, "aggr": "add"}, {"root_weight": False, "bias": False}):
        theirs = theirs_cls(F_IN, F_OUT, R, **kwargs)
        ours = CuGraphRGCNConv(F_IN, F_OUT, R, **kwargs)
        testing.load_pyg_state(ours, theirs)
        assert repr(ours) == repr(theirs)
        # the same matrices in PyG's RGCNConv (which runs here) give the same outputs
        bases = kwargs.get("num_bases")
        reference = pyg.nn.RGCNConv(
            F_IN,
            F_OUT,
            R,
            num_bases=bases,
            aggr=kwargs.get("aggr", "mean"),
            root_weight=kwargs.get("root_weight", True),
            bias=kwargs.get("bias", True),
        )
        state = {"weight": theirs.weight[: bases or R]}
        if bases:
            state["comp"] = theirs.comp
        if reference.root is not None:
            state["root"] = theirs.weight[-1]
        if reference.bias is not None:
            state["bias"] = theirs.bias
        reference.load_state_dict(state, strict=True)
        expected = reference(x, edge_index, edge_type)
        testing.assert_close(ours(x, edge_index, edge_type), expected)
        testing.assert_close(ours(x, EdgeIndex(edge_index, sparse_size=(N, N)), edge_type), expected)


def test_sparse_input_edge_order_and_grad():
    x, edge_index, edge_type = graph(4)
    conv = CuGraphRGCNConv(F_IN, F_OUT, R).double()
    expected = conv(x, edge_index, edge_type)
    adj = torch.sparse_coo_tensor(edge_index.flip(0), edge_type, (N, N))
    testing.assert_close(conv(x, adj, None), expected, atol=1e-10, rtol=1e-9)
    perm = torch.randperm(E, generator=torch.Generator().manual_seed(0))
    testing.assert_close(conv(x, edge_index[:, perm], edge_type[perm]), expected, atol=1e-10, rtol=1e-9)
    testing.assert_close(conv(x, edge_index[:, :0], edge_type[:0]), x @ conv.weight[-1] + conv.bias)
    xg = x.clone().requires_grad_()
    conv(xg, edge_index, edge_type).sum().backward()
    assert xg.grad is not None and conv.weight.grad is not None


def test_bad_inputs_raise():
    x, edge_index, edge_type = graph(5)
    conv = CuGraphRGCNConv(F_IN, F_OUT, R).double()
    with pytest.raises(ValueError, match="Aggregation"):
        CuGraphRGCNConv(F_IN, F_OUT, R, aggr="max")
    with pytest.raises(ValueError, match="'edge_type'"):
        conv(x, edge_index, None)
    with pytest.raises(v.IndexRangeError, match="'edge_type'"):
        conv(x, edge_index, edge_type + R)
    with pytest.raises(ValueError, match="'x'"):
        conv(x[:, :2], edge_index, edge_type)
    with pytest.raises(ValueError, match="CSC"):
        conv(x, (edge_index[0], edge_index[1]), edge_type)
    with pytest.raises(ValueError, match="colptr"):
        conv(x, (edge_index[0], torch.tensor([0, 5, 3]), N), edge_type)
    with pytest.raises(ValueError, match="first rows of 'x'"):
        conv(x[:3], CuGraphRGCNConv.to_csc(edge_index, (N, N)), edge_type)
    with pytest.raises(TypeError, match="max_num_neighbors"):
        conv(x, edge_index, edge_type, max_num_neighbors=2.5)
