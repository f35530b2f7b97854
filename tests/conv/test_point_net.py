"""PointNetConv against a per-node loop reference (both the per-node and the per-edge path), PyG,
sparse inputs, bipartite graphs, PyG's exact edge set under hooks, and bad input."""

from __future__ import annotations

import pytest
import torch

from gnn.conv import PointNetConv
from gnn.core import testing

N, E, F = 10, 32, 4
REDUCE = {"max": "amax", "min": "amin", "mean": "mean", "add": "sum"}


def graph(seed: int, n: int = N, e: int = E) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, F, generator=g, dtype=torch.float64)
    pos = torch.randn(n, 3, generator=g, dtype=torch.float64)
    ei = torch.randint(0, n, (2, e), generator=g)
    ei[:, :3] = torch.tensor([[0, 4, 4], [0, 4, 4]])  # self loops, one twice
    ei[:, 3] = ei[:, 4]  # a duplicate edge
    return x, pos, ei


def local_nns() -> dict[str, torch.nn.Module | None]:
    torch.manual_seed(0)
    return {
        "none": None,
        "linear": torch.nn.Linear(F + 3, 5).double(),
        "mlp": torch.nn.Sequential(
            torch.nn.Linear(F + 3, 6), torch.nn.ReLU(), torch.nn.Linear(6, 5)
        ).double(),
    }


def loop_reference(conv, x_src, pos_src, pos_dst, ei, aggr, loops=True):
    """reduce over j in N(i) (+ i itself) of local_nn([x_j, pos_j - pos_i]); given loops dropped."""
    out = []
    num_loops = min(pos_src.size(0), pos_dst.size(0))
    with torch.no_grad():
        for i in range(pos_dst.size(0)):
            src = ei[0][ei[1] == i].tolist()
            if loops:
                src = [j for j in src if j != i] + ([i] if i < num_loops else [])
            feats = pos_src.new_zeros(0, (0 if x_src is None else x_src.size(1)) + 3)
            if src:
                idx = torch.tensor(src)
                rel = pos_src[idx] - pos_dst[i]
                feats = rel if x_src is None else torch.cat([x_src[idx], rel], dim=1)
            msgs = feats if conv.local_nn is None else conv.local_nn(feats)
            if not src:
                out.append(msgs.new_zeros(msgs.size(1)))
            else:
                out.append(getattr(torch, REDUCE[aggr])(msgs, dim=0))
        res = torch.stack(out)
        return res if conv.global_nn is None else conv.global_nn(res)


@pytest.mark.parametrize("aggr", ["max", "mean", "add", "min"])
@pytest.mark.parametrize("kind", ["none", "linear", "mlp"])
def test_matches_loop_reference_on_both_paths(aggr, kind):
    x, pos, ei = graph(1)
    conv = PointNetConv(local_nns()[kind], aggr=aggr)
    expected = loop_reference(conv, x, pos, pos, ei, aggr)
    testing.assert_close(conv(x, pos, ei), expected, atol=1e-10, rtol=1e-8)
    seen: list[int] = []
    handle = conv.register_message_forward_hook(lambda m, inputs, out: seen.append(out.size(0)))
    testing.assert_close(conv(x, pos, ei), expected, atol=1e-10, rtol=1e-8)  # the per-edge path
    handle.remove()
    given_loops = int((ei[0] == ei[1]).sum())
    assert seen == [E - given_loops + N]  # PyG's edge set: the given loops removed, one per node added
    conv.add_self_loops = False
    testing.assert_close(conv(x, pos, ei), loop_reference(conv, x, pos, pos, ei, aggr, loops=False))


def test_without_features_and_global_nn():
    x, pos, ei = graph(2)
    conv = PointNetConv(None, torch.nn.Linear(3, 2).double(), aggr="mean")
    testing.assert_close(conv(None, pos, ei), loop_reference(conv, None, pos, pos, ei, "mean"))


@pytest.mark.parametrize("kind", ["linear", "mlp"])
def test_bipartite(kind):
    g = torch.Generator().manual_seed(3)
    x_src = torch.randn(8, F, generator=g, dtype=torch.float64)
    pos_src, pos_dst = (
        torch.randn(8, 3, generator=g, dtype=torch.float64),
        torch.randn(5, 3, dtype=torch.float64),
    )
    ei = torch.stack([torch.randint(0, 8, (20,), generator=g), torch.randint(0, 5, (20,), generator=g)])
    ei[:, 0] = 2  # a self loop (2 -> 2)
    conv = PointNetConv(local_nns()[kind], aggr="mean")
    expected = loop_reference(conv, x_src, pos_src, pos_dst, ei, "mean")
    testing.assert_close(conv((x_src, None), (pos_src, pos_dst), ei), expected)


def test_sparse_formats_agree():
    x, pos, ei = graph(4)
    for kind in ("linear", "mlp"):
        conv = PointNetConv(local_nns()[kind], aggr="add")
        testing.assert_formats_agree(lambda adj: conv(x, pos, adj), ei, N)
        conv.add_self_loops = False
        testing.assert_formats_agree(lambda adj: conv(x, pos, adj), ei, N)


def test_edge_permutation_and_index_types():
    x, pos, ei = graph(5)
    conv = PointNetConv(local_nns()["mlp"], aggr="mean")
    expected = conv(x, pos, ei)
    perm = torch.randperm(E, generator=torch.Generator().manual_seed(0))
    testing.assert_close(conv(x, pos, ei[:, perm]), expected)
    testing.assert_close(conv(x, pos, ei.int()), expected)
    wide = torch.cat([x, x], dim=1)[:, ::2]  # non-contiguous
    testing.assert_close(conv(wide.contiguous(), pos.t().contiguous().t(), ei), conv(wide, pos, ei))


def test_empty_graphs():
    x, pos, _ = graph(6)
    no_edges = torch.empty(2, 0, dtype=torch.long)
    conv = PointNetConv(local_nns()["linear"])
    # only the self loops: every node aggregates its own message
    testing.assert_close(conv(x, pos, no_edges), conv.local_nn(torch.cat([x, torch.zeros_like(pos)], 1)))
    conv.add_self_loops = False
    testing.assert_close(conv(x, pos, no_edges), torch.zeros(N, 5, dtype=torch.float64))
    conv.add_self_loops = True
    assert conv(x[:0], pos[:0], no_edges).shape == (0, 5)


def test_static_graph_is_looped_once():
    x, pos, ei = graph(7)
    conv = PointNetConv(local_nns()["mlp"], aggr="add")
    first = conv(x, pos, ei)
    ei[0, 5] = 0  # changed in place: the cached looped graph must not be reused
    testing.assert_close(conv(x, pos, ei), loop_reference(conv, x, pos, pos, ei, "add"))
    assert not torch.equal(first, conv(x, pos, ei))


def test_bad_input():
    x, pos, ei = graph(8)
    conv = PointNetConv(local_nns()["linear"])
    with pytest.raises(ValueError, match="pos"):
        conv(x, pos[:, :2].reshape(-1), ei)
    with pytest.raises(ValueError, match="x"):
        conv(x[:5], pos, ei)
    with pytest.raises(TypeError, match="pos"):
        conv(x, 1.0, ei)
    with pytest.raises(ValueError, match="edge_index"):
        conv(x, pos, torch.tensor([[0, N], [1, 2]]))
    with pytest.raises(TypeError, match="edge_index"):
        conv(x, pos, ei.float())
    with pytest.raises(TypeError, match="edge_index"):
        conv(x, pos, [[0, 1], [1, 0]])


def test_pyg_parity():
    pyg = pytest.importorskip("torch_geometric")
    testing.assert_signatures_match(PointNetConv, pyg.nn.PointNetConv)
    x, pos, ei = graph(9)
    for kind in ("none", "linear", "mlp"):
        for aggr in ("max", "mean"):
            local = local_nns()[kind]
            theirs = pyg.nn.PointNetConv(local, torch.nn.Linear(5 if local else F + 3, 2).double(), aggr=aggr)
            ours = PointNetConv(
                local_nns()[kind], torch.nn.Linear(5 if local else F + 3, 2).double(), aggr=aggr
            )
            assert repr(ours) == repr(theirs)
            testing.assert_gradients_match_pyg(ours, theirs, x, pos, ei)
    x_src, pos_src, pos_dst = x, pos, pos[:6] + 0.5
    bip = ei[:, ei[1] < 6]
    theirs, ours = pyg.nn.PointNetConv(local_nns()["mlp"]), PointNetConv(local_nns()["mlp"])
    testing.load_pyg_state(ours, theirs)
    testing.assert_close(
        ours((x_src, None), (pos_src, pos_dst), bip), theirs((x_src, None), (pos_src, pos_dst), bip)
    )
    adj = torch.sparse_coo_tensor(ei.flip(0), torch.ones(E), (N, N))
    testing.assert_close(ours(x, pos, adj), theirs(x, pos, adj))


def test_explain_mode_matches_pyg():
    pyg = pytest.importorskip("torch_geometric")
    x, pos, ei = graph(10)
    mask = torch.randn(E, dtype=torch.float64)
    theirs = pyg.nn.PointNetConv(local_nns()["mlp"], aggr="add")
    ours = PointNetConv(local_nns()["mlp"], aggr="add")
    testing.load_pyg_state(ours, theirs)
    for m in (ours, theirs):  # as PyG's explainers set them: loops are masked out, added loops get 1
        m.explain, m._edge_mask, m._loop_mask = True, mask, ei[0] != ei[1]
    testing.assert_close(ours(x, pos, ei), theirs(x, pos, ei))
