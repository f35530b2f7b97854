"""Building blocks: JumpingKnowledge, MetaLayer, DeepGCNLayer, GraphUNet, GroupAddRev, MaskLabel:
formulas written here, PyG parity, gradients (gradcheck for the reversible block), bad inputs."""

from __future__ import annotations

import inspect

import pytest
import torch
import torch.nn.functional as F

from gnn.conv import GCNConv, SAGEConv
from gnn.core import testing
from gnn.models import DeepGCNLayer, GraphUNet, GroupAddRev, JumpingKnowledge, MaskLabel, MetaLayer

N, E, C = 10, 36, 6


def graph(seed: int = 0, dtype: torch.dtype = torch.float32):
    return testing.random_graph(N, E, C, seed=seed, dtype=dtype)


def signature(obj) -> list:
    return [(p.name, p.default) for p in inspect.signature(obj).parameters.values()]


# -- JumpingKnowledge --------------------------------------------------------------------------------
def test_jumping_knowledge_formulas():
    xs = [torch.randn(5, 4, dtype=torch.float64) for _ in range(3)]
    testing.assert_close(JumpingKnowledge("cat")(xs), torch.cat(xs, -1))
    testing.assert_close(JumpingKnowledge("max")(xs), torch.maximum(torch.maximum(xs[0], xs[1]), xs[2]))
    jk = JumpingKnowledge("lstm", channels=4, num_layers=3).double()
    stacked = torch.stack(xs, dim=1)
    h, _ = jk.lstm(stacked)
    alpha = torch.softmax(h @ jk.att.weight.t() + jk.att.bias, dim=1)  # [N, T, 1]
    testing.assert_close(jk(xs), (stacked * alpha).sum(1))
    assert jk.lstm.hidden_size == 6 and jk.lstm.bidirectional


@pytest.mark.parametrize("mode", ["cat", "max", "lstm"])
def test_jumping_knowledge_matches_pyg(mode):
    pyg = pytest.importorskip("torch_geometric")
    xs = [torch.randn(5, 4, requires_grad=True) for _ in range(3)]
    theirs = pyg.nn.JumpingKnowledge(mode, 4, 3)
    ours = JumpingKnowledge(mode, 4, 3)
    testing.load_pyg_state(ours, theirs)
    assert repr(ours) == repr(theirs)
    assert signature(JumpingKnowledge.__init__) == signature(pyg.nn.JumpingKnowledge.__init__)
    out, out_p = ours(xs), theirs(xs)
    testing.assert_close(out, out_p)
    g = torch.autograd.grad(out.sum(), xs)
    g_p = torch.autograd.grad(out_p.sum(), xs)
    testing.assert_close(g, g_p)


def test_jumping_knowledge_errors():
    with pytest.raises(ValueError, match="mode"):
        JumpingKnowledge("sum")
    with pytest.raises(ValueError, match="channels"):
        JumpingKnowledge("lstm", num_layers=2)
    with pytest.raises(ValueError, match="num_layers"):
        JumpingKnowledge("lstm", channels=2)
    with pytest.raises(ValueError, match="xs"):
        JumpingKnowledge("cat")([])


# -- MetaLayer ---------------------------------------------------------------------------------------
class EdgeModel(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(2 * C + 2 + 3, 2)

    def forward(self, src, dst, edge_attr, u, batch):
        return self.lin(torch.cat([src, dst, edge_attr, u[batch]], dim=1))


class NodeModel(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(C + 2, C)

    def forward(self, x, edge_index, edge_attr, u, batch):
        agg = torch.zeros(x.size(0), 2, dtype=x.dtype).index_add(0, edge_index[1], edge_attr)
        return self.lin(torch.cat([x, agg], dim=1))


class GlobalModel(torch.nn.Module):
    def forward(self, x, edge_index, edge_attr, u, batch):
        return u + torch.stack([x[batch == b].mean(0)[:3] for b in range(u.size(0))])


def test_meta_layer_order_and_arguments():
    x, edge_index = graph(1)
    edge_attr = torch.randn(E, 2)
    u = torch.randn(2, 3)
    batch = torch.tensor([0] * 4 + [1] * 6)
    edge_index = edge_index[:, (batch[edge_index[0]] == batch[edge_index[1]])]
    edge_attr = edge_attr[: edge_index.size(1)]
    edge, node, glob = EdgeModel(), NodeModel(), GlobalModel()
    layer = MetaLayer(edge, node, glob)
    x2, e2, u2 = layer(x, edge_index, edge_attr, u, batch)
    e_ref = edge(x[edge_index[0]], x[edge_index[1]], edge_attr, u, batch[edge_index[0]])
    x_ref = node(x, edge_index, e_ref, u, batch)
    testing.assert_close(e2, e_ref)
    testing.assert_close(x2, x_ref)
    testing.assert_close(u2, glob(x_ref, edge_index, e_ref, u, batch))
    # models left out leave their part unchanged
    x3, e3, u3 = MetaLayer(node_model=node)(x, edge_index, edge_attr, u, batch)
    assert e3 is edge_attr and u3 is u


def test_meta_layer_matches_pyg():
    pyg = pytest.importorskip("torch_geometric")
    x, edge_index = graph(2)
    edge_attr, u, batch = torch.randn(E, 2), torch.randn(1, 3), torch.zeros(N, dtype=torch.long)
    edge, node = EdgeModel(), NodeModel()
    ours, theirs = MetaLayer(edge, node), pyg.nn.MetaLayer(edge, node)
    assert repr(ours) == repr(theirs)
    assert signature(MetaLayer.forward) == signature(pyg.nn.MetaLayer.forward)
    testing.assert_close(ours(x, edge_index, edge_attr, u, batch), theirs(x, edge_index, edge_attr, u, batch))
    with pytest.raises(ValueError, match="edge_index"):
        ours(x, edge_index + N, edge_attr, u, batch)


# -- DeepGCNLayer ------------------------------------------------------------------------------------
@pytest.mark.parametrize("block", ["res+", "res", "dense", "plain"])
def test_deepgcn_blocks_by_formula_and_pyg(block):
    x, edge_index = graph(3, torch.float64)
    conv = GCNConv(C, C).double()
    norm = torch.nn.LayerNorm(C).double()
    layer = DeepGCNLayer(conv, norm, torch.nn.ReLU(), block=block, dropout=0.0)
    if block == "res+":
        expected = x + conv(F.relu(norm(x)), edge_index)
    else:
        h = F.relu(norm(conv(x, edge_index)))
        expected = {"res": x + h, "dense": torch.cat([x, h], -1), "plain": h}[block]
    testing.assert_close(layer(x, edge_index), expected)
    pyg = pytest.importorskip("torch_geometric")
    theirs = pyg.nn.DeepGCNLayer(conv, norm, torch.nn.ReLU(), block=block)
    assert repr(layer) == repr(theirs)
    assert signature(DeepGCNLayer.__init__) == signature(pyg.nn.DeepGCNLayer.__init__)
    testing.assert_close(layer(x, edge_index), theirs(x, edge_index))


def test_deepgcn_checkpointing_gives_the_same_gradients():
    x, edge_index = graph(4, torch.float64)
    x.requires_grad_()
    conv = SAGEConv(C, C).double()
    plain = DeepGCNLayer(conv, torch.nn.LayerNorm(C).double(), torch.nn.ReLU(), ckpt_grad=False)
    ckpt = DeepGCNLayer(conv, plain.norm, plain.act, ckpt_grad=True)
    leaves = [x, *conv.parameters()]
    grads = []
    for layer in (plain, ckpt):  # (reentrant checkpointing supports .backward() only)
        for leaf in leaves:
            leaf.grad = None
        layer(x, edge_index).square().sum().backward()
        grads.append([leaf.grad.clone() for leaf in leaves])
    testing.assert_close(grads[0], grads[1])


def test_deepgcn_errors():
    with pytest.raises(ValueError, match="block"):
        DeepGCNLayer(GCNConv(C, C), block="residual")
    with pytest.raises(ValueError, match="conv"):
        DeepGCNLayer(block="plain")(torch.randn(2, C))


# -- GraphUNet ---------------------------------------------------------------------------------------
def test_graph_unet_augment_adj_is_the_two_hop_square():
    x, edge_index = graph(5, torch.float64)
    weight = torch.rand(E, dtype=torch.float64) + 0.1
    model = GraphUNet(C, 8, 3, depth=1).double()
    index, value = model.augment_adj(edge_index, weight, N)
    a = torch.zeros(N, N, dtype=torch.float64)
    keep = edge_index[0] != edge_index[1]
    a.index_put_((edge_index[0, keep], edge_index[1, keep]), weight[keep], accumulate=True)
    a2 = (a + torch.eye(N, dtype=torch.float64)) @ (a + torch.eye(N, dtype=torch.float64))
    a2.fill_diagonal_(0)
    dense = torch.zeros(N, N, dtype=torch.float64).index_put_((index[0], index[1]), value)
    testing.assert_close(dense, a2)
    assert bool((index[0] != index[1]).all())


@pytest.mark.parametrize("sum_res, depth, ratios", [(True, 2, 0.5), (False, 3, [0.8, 0.6]), (True, 1, 0.7)])
def test_graph_unet_matches_pyg(sum_res, depth, ratios):
    pyg = pytest.importorskip("torch_geometric")
    x, edge_index = graph(6)
    batch = torch.tensor([0] * 4 + [1] * 6)
    torch.manual_seed(0)
    theirs = pyg.nn.GraphUNet(C, 8, 3, depth, pool_ratios=ratios, sum_res=sum_res)
    ours = GraphUNet(C, 8, 3, depth, pool_ratios=ratios, sum_res=sum_res)
    testing.load_pyg_state(ours, theirs)
    assert repr(ours) == repr(theirs)
    assert signature(GraphUNet.__init__) == signature(pyg.nn.GraphUNet.__init__)
    x = x.requires_grad_()
    out, out_p = ours(x, edge_index, batch), theirs(x, edge_index, batch)
    testing.assert_close(out, out_p)
    grads = torch.autograd.grad(out.square().sum(), [x, *ours.parameters()])
    grads_p = torch.autograd.grad(out_p.square().sum(), [x, *theirs.parameters()])
    testing.assert_close(grads, grads_p, atol=1e-4, rtol=1e-3)


def test_graph_unet_errors():
    with pytest.raises(ValueError, match="depth"):
        GraphUNet(C, 8, 3, depth=0)
    model = GraphUNet(C, 8, 3, depth=1)
    x, edge_index = graph(7)
    with pytest.raises(ValueError, match="edge_weight"):
        model(x, edge_index, edge_weight=torch.ones(3))


# -- GroupAddRev ---------------------------------------------------------------------------------------
class GroupFn(torch.nn.Module):
    """A small group function: SAGE convolution with a LayerNorm."""

    def __init__(self, channels: int):
        super().__init__()
        self.norm = torch.nn.LayerNorm(channels)
        self.conv = SAGEConv(channels, channels)

    def reset_parameters(self):
        self.norm.reset_parameters()
        self.conv.reset_parameters()

    def forward(self, x, edge_index, dropout_mask=None):
        x = self.norm(x).relu()
        if dropout_mask is not None:
            x = x * dropout_mask
        return self.conv(x, edge_index)


def test_group_add_rev_formula_and_inverse():
    x, edge_index = graph(8, torch.float64)
    block = GroupAddRev(GroupFn(C // 2), num_groups=2).double()
    f1, f2 = block.convs
    x1, x2 = x.chunk(2, dim=-1)
    y1 = x1 + f1(x2, edge_index)
    y2 = x2 + f2(y1, edge_index)
    y = block(x, edge_index)
    testing.assert_close(y, torch.cat([y1, y2], -1))
    testing.assert_close(block.inverse(y, edge_index), x)
    assert not torch.equal(f1.conv.lin_l.weight, f2.conv.lin_l.weight)  # the copies are re-initialized


def test_group_add_rev_gradcheck():
    x, edge_index = graph(9, torch.float64)
    x = x[:, :4].clone().requires_grad_()
    block = GroupAddRev(GroupFn(2), num_groups=2, num_bwd_passes=10_000).double()

    def fn(x, *params):
        return block(x, edge_index)

    assert torch.autograd.gradcheck(fn, (x, *block.parameters()), eps=1e-6, atol=1e-5)


def test_group_add_rev_gradients_equal_plain_autograd_and_release_memory():
    """Inside a model (an intermediate input): same gradients as ``disable=True``, the input's data
    is released after the forward pass and restored by the backward pass."""
    x, edge_index = graph(10, torch.float64)
    mask = torch.rand(N, C // 3, dtype=torch.float64).round()
    lin = torch.nn.Linear(C, C).double()
    block = GroupAddRev(GroupFn(C // 3), num_groups=3).double()

    def run(disable: bool):
        block.disable = disable
        h = lin(x)
        out = block(h, edge_index, mask)
        released = h.numel() == 0
        out = block(out.relu(), edge_index, mask)  # a second block on the first one's output
        grads = torch.autograd.grad(out.square().sum(), [*lin.parameters(), *block.parameters()])
        return out.detach(), grads, released

    out, grads, released = run(False)
    out_p, grads_p, released_p = run(True)
    assert released and not released_p
    testing.assert_close(out, out_p)
    testing.assert_close(grads, grads_p, atol=1e-10, rtol=1e-8)


def test_group_add_rev_matches_pyg():
    pyg = pytest.importorskip("torch_geometric")
    x, edge_index = graph(11)
    torch.manual_seed(0)
    convs = torch.nn.ModuleList([GCNConv(C // 2, C // 2) for _ in range(2)])
    ours = GroupAddRev(convs)
    theirs = pyg.nn.GroupAddRev(torch.nn.ModuleList([pyg.nn.GCNConv(C // 2, C // 2) for _ in range(2)]))
    testing.load_pyg_state(ours, theirs)
    assert repr(ours) == repr(theirs)
    assert signature(GroupAddRev.__init__) == signature(pyg.nn.GroupAddRev.__init__)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    out, out_p = ours(xa, edge_index), theirs(xb, edge_index)
    testing.assert_close(out, out_p)
    out.sum().backward()
    out_p.sum().backward()
    testing.assert_close(xa.grad, xb.grad)
    for (name, p), q in zip(ours.named_parameters(), theirs.parameters()):
        testing.assert_close(p.grad, q.grad, msg=name)


def test_group_add_rev_leaf_input_is_kept_and_errors():
    x, edge_index = graph(12)
    block = GroupAddRev(GroupFn(C // 2), num_groups=2)
    out = block(x, edge_index)
    assert x.shape == (N, C)  # a leaf (the user's tensor) is never released
    out.sum().backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="num_bwd_passes"):
        out.sum().backward()
    with pytest.raises(ValueError, match="num_groups"):
        GroupAddRev(GroupFn(2))
    with pytest.raises(ValueError, match="at least 2"):
        GroupAddRev(torch.nn.ModuleList([GroupFn(2)]))
    with pytest.raises(ValueError, match="divisible"):
        GroupAddRev(GroupFn(2), num_groups=4)(torch.randn(N, 6), edge_index)
    with torch.no_grad():  # no autograd: plain forward, nothing released
        h = x * 2
        block(h, edge_index)
        assert h.shape == (N, C)


# -- MaskLabel --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["add", "concat"])
def test_mask_label_formula_and_pyg(method):
    x = torch.randn(N, 4)
    y = torch.randint(0, 3, (N,))
    mask = torch.rand(N) < 0.5
    layer = MaskLabel(3, 4, method=method)
    out = layer(x, y, mask)
    emb = layer.emb.weight[y] * mask.view(-1, 1)
    expected = x + emb if method == "add" else torch.cat([x, emb], -1)
    testing.assert_close(out, expected)
    pyg = pytest.importorskip("torch_geometric")
    theirs = pyg.nn.MaskLabel(3, 4, method=method)
    testing.load_pyg_state(layer, theirs)
    assert repr(layer) == repr(theirs)
    testing.assert_close(layer(x, y, mask), theirs(x, y, mask))


def test_mask_label_ratio_mask_and_errors():
    mask = torch.tensor([True, False] * 500)
    kept = MaskLabel.ratio_mask(mask, 0.3)
    assert not bool((kept & ~mask).any())
    assert 100 < int(kept.sum()) < 200
    with pytest.raises(ValueError, match="method"):
        MaskLabel(3, 4, method="mul")
    layer = MaskLabel(3, 4)
    with pytest.raises(ValueError, match="y"):
        layer(torch.randn(4, 4), torch.tensor([0, 1, 5, 0]), torch.ones(4, dtype=torch.bool))
    with pytest.raises(ValueError, match="mask"):
        layer(torch.randn(4, 4), torch.zeros(4, dtype=torch.long), torch.ones(3, dtype=torch.bool))


def test_mask_label_index_mask_equals_bool_mask():
    x, y = torch.randn(N, 4), torch.randint(0, 3, (N,))
    mask = torch.rand(N) < 0.5
    for method in ("add", "concat"):
        layer = MaskLabel(3, 4, method=method)
        testing.assert_close(layer(x, y, mask.nonzero().view(-1)), layer(x, y, mask))
