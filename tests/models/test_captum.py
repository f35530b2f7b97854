"""Captum bridges: the wrapped models' numbers (without captum), and Integrated Gradients
attributions against PyG's helpers on the same weights (with captum)."""

from __future__ import annotations

import inspect

import pytest
import torch

from gnn.conv import GCNConv, SAGEConv
from gnn.core import testing
from gnn.models import captum_output_to_dicts, to_captum_input, to_captum_model
from gnn.models.captum import CaptumHeteroModel, CaptumModel, MaskLevelType, clear_masks


class TwoLayer(torch.nn.Module):
    def __init__(self, conv, cin=5, hidden=8, cout=3):
        super().__init__()
        self.conv1, self.conv2 = conv(cin, hidden), conv(hidden, cout)

    def forward(self, x, edge_index):
        return self.conv2(self.conv1(x, edge_index).relu(), edge_index)


class Hetero(torch.nn.Module):
    """The layout of to_hetero / HeteroConv: one layer per edge type in a ModuleDict."""

    def __init__(self, conv):
        super().__init__()
        self.convs = torch.nn.ModuleDict({"a__to__b": conv((4, 3), 6), "b__back__a": conv((3, 4), 6)})

    def forward(self, x_dict, edge_index_dict):
        b = self.convs["a__to__b"]((x_dict["a"], x_dict["b"]), edge_index_dict[("a", "to", "b")])
        a = self.convs["b__back__a"]((x_dict["b"], x_dict["a"]), edge_index_dict[("b", "back", "a")])
        return torch.cat([a.sum(0, keepdim=True), b], 0)


def graph():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(7, 5, generator=g)
    ei = torch.tensor([[0, 1, 1, 2, 3, 4, 5, 6, 2, 3], [1, 0, 2, 1, 4, 3, 6, 5, 2, 0]])  # with a self loop
    return x, ei


def hetero_graph():
    g = torch.Generator().manual_seed(1)
    x = {"a": torch.randn(5, 4, generator=g), "b": torch.randn(4, 3, generator=g)}
    ei = {
        ("a", "to", "b"): torch.tensor([[0, 1, 2, 3, 4, 4], [0, 0, 1, 2, 3, 1]]),
        ("b", "back", "a"): torch.tensor([[0, 1, 2, 3], [4, 3, 2, 0]]),
    }
    return x, ei, (["a", "b"], [("a", "to", "b"), ("b", "back", "a")])


def test_signatures_match_pyg():
    pytest.importorskip("torch_geometric")
    import torch_geometric.explain.algorithm.captum as theirs
    import torch_geometric.nn as pyg

    def params(fn):
        return [(p.name, p.kind, p.default if not isinstance(p.default, MaskLevelType) else p.default.value)
                for p in inspect.signature(fn).parameters.values()]  # fmt: skip

    def their_params(fn):
        return [
            (p.name, p.kind, getattr(p.default, "value", p.default))
            for p in inspect.signature(fn).parameters.values()
        ]

    assert params(to_captum_model) == their_params(pyg.to_captum_model)
    assert params(to_captum_input) == their_params(pyg.to_captum_input)
    assert params(captum_output_to_dicts) == their_params(pyg.captum_output_to_dicts)
    assert params(CaptumModel.__init__) == their_params(theirs.CaptumModel.__init__)
    assert params(CaptumHeteroModel.__init__) == their_params(theirs.CaptumHeteroModel.__init__)


def test_edge_mask_scales_messages_without_captum():
    torch.manual_seed(0)
    x, ei = graph()
    conv = SAGEConv(5, 4, aggr="sum")
    mask = torch.rand(ei.size(1))
    wrapped = to_captum_model(conv, "edge", output_idx=None)
    out = wrapped(mask.unsqueeze(0), x, ei)
    dense = torch.zeros(7, 7).index_put_((ei[1], ei[0]), mask, accumulate=True)
    expected = conv.lin_l(dense @ x) + conv.lin_r(x)
    torch.testing.assert_close(out, expected)
    assert conv._edge_mask is None and not conv.explain  # cleared after the call
    # node mask: the model on the given features; output_idx keeps a leading dimension
    wrapped = to_captum_model(conv, "node", output_idx=2)
    torch.testing.assert_close(wrapped(x.unsqueeze(0), ei), conv(x, ei)[2].unsqueeze(0))
    # node_and_edge: features and mask together
    wrapped = to_captum_model(conv, "node_and_edge")
    torch.testing.assert_close(wrapped(x.unsqueeze(0), mask.unsqueeze(0), ei), expected)


def test_inputs_and_output_dicts():
    x, ei = graph()
    inputs, extra = to_captum_input(x, ei, "edge", "more")
    assert len(inputs) == 1 and inputs[0].shape == (1, 10) and inputs[0].requires_grad
    assert extra[0] is x and extra[1] is ei and extra[2] == "more"
    inputs, extra = to_captum_input(x, ei, "node_and_edge")
    assert inputs[0].shape == (1, 7, 5) and inputs[1].shape == (1, 10) and extra == (ei,)
    xd, eid, metadata = hetero_graph()
    inputs, extra = to_captum_input(xd, eid, "node_and_edge")
    assert [t.shape for t in inputs] == [(1, 5, 4), (1, 4, 3), (1, 6), (1, 4)] and extra == (eid,)
    nodes, edges = captum_output_to_dicts(inputs, "node_and_edge", metadata)
    assert torch.equal(nodes["b"], xd["b"]) and edges[("b", "back", "a")].shape == (4,)
    assert captum_output_to_dicts(inputs[:2], "node", metadata)[1] is None
    assert captum_output_to_dicts(inputs[2:], "edge", metadata)[0] is None
    with pytest.raises(ValueError, match="captum_attrs"):
        captum_output_to_dicts(inputs, "edge", metadata)
    with pytest.raises(ValueError, match="mask_type"):
        to_captum_input(x, ei, "graph")
    with pytest.raises(ValueError, match="dictionaries"):
        to_captum_input(xd, ei, "node")
    with pytest.raises(ValueError, match="dimension 0"):
        to_captum_model(torch.nn.Identity(), "node")(x, ei)


def test_hetero_masks_reach_each_edge_types_layer():
    torch.manual_seed(0)
    xd, eid, metadata = hetero_graph()
    model = Hetero(lambda c_in, c_out: SAGEConv(c_in, c_out, aggr="sum"))
    wrapped = to_captum_model(model, "edge", None, metadata)
    zero_back = (torch.ones(1, 6), torch.full((1, 4), -1e4))  # as in PyG, hetero masks pass a sigmoid
    out = wrapped(*zero_back, xd, eid)
    conv = model.convs["b__back__a"]
    expected_a = conv.lin_l(torch.zeros(5, 3)) + conv.lin_r(xd["a"])  # every message into "a" is masked out
    torch.testing.assert_close(out[0], expected_a.sum(0))
    assert all(m._edge_mask is None for m in model.convs.values())
    clear_masks(model)


@pytest.mark.parametrize("mask_type", ["edge", "node", "node_and_edge"])
def test_integrated_gradients_on_gcn_match_pyg(mask_type):
    captum_attr = pytest.importorskip("captum.attr")
    pyg = pytest.importorskip("torch_geometric.nn")
    torch.manual_seed(0)
    x, ei = graph()
    ours, theirs = TwoLayer(GCNConv), TwoLayer(pyg.GCNConv)
    testing.load_pyg_state(ours, theirs)
    results = []
    for model, to_model, to_input in ((ours, to_captum_model, to_captum_input),
                                      (theirs, pyg.to_captum_model, pyg.to_captum_input)):  # fmt: skip
        captum_model = to_model(model, mask_type, output_idx=2)
        inputs, extra = to_input(x, ei, mask_type)
        ig = captum_attr.IntegratedGradients(captum_model)
        results.append(
            ig.attribute(inputs, target=1, additional_forward_args=extra, internal_batch_size=1, n_steps=20)
        )
    for a, b in zip(*results):
        assert a.abs().sum() > 0
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("mask_type", ["edge", "node_and_edge"])
def test_integrated_gradients_on_hetero_model_match_pyg(mask_type):
    captum_attr = pytest.importorskip("captum.attr")
    pyg = pytest.importorskip("torch_geometric.nn")
    torch.manual_seed(0)
    xd, eid, metadata = hetero_graph()
    ours = Hetero(lambda c_in, c_out: SAGEConv(c_in, c_out))
    theirs = Hetero(lambda c_in, c_out: pyg.SAGEConv(c_in, c_out))
    testing.load_pyg_state(ours, theirs)
    dicts = []
    for model, to_model, to_input, to_dicts in (
        (ours, to_captum_model, to_captum_input, captum_output_to_dicts),
        (theirs, pyg.to_captum_model, pyg.to_captum_input, pyg.captum_output_to_dicts),
    ):
        captum_model = to_model(model, mask_type, 1, metadata)
        inputs, extra = to_input(xd, eid, mask_type)
        attr = captum_attr.IntegratedGradients(captum_model).attribute(
            inputs, target=2, additional_forward_args=extra, internal_batch_size=1, n_steps=10
        )
        dicts.append(to_dicts(attr, mask_type, metadata))
    for a, b in zip(*dicts):
        if a is None:
            assert b is None
            continue
        assert a.keys() == b.keys()
        for key in a:
            torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-6)
