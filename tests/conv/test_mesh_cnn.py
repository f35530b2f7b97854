"""MeshCNNConv: the MeshCNN formula (written out per mesh edge), the kernels list as PyG takes it,
PyG parity after a strict state_dict load, dtypes, empty meshes and validation."""

from __future__ import annotations

import inspect

import pytest
import torch
from torch.nn import Linear, ModuleList, Sequential, Sigmoid

from gnn.conv import MeshCNNConv
from gnn.core import testing

# a tetrahedron: 6 edges, each with its neighbours (a, b, c, d)
NEIGHBOURS = torch.tensor(
    [[1, 2, 3, 4], [2, 0, 4, 5], [5, 3, 0, 1], [2, 5, 4, 0], [0, 3, 5, 1], [1, 4, 3, 2]]
)
EDGE_INDEX = torch.stack([torch.arange(6).repeat_interleave(4), NEIGHBOURS.flatten()])


def formula(conv, x):
    k = conv.kernels
    a, b, c, d = (x[NEIGHBOURS[:, r]] for r in range(4))
    return k[0](x) + k[1]((a - c).abs()) + k[2](a + c) + k[3]((b - d).abs()) + k[4](b + d)


def test_matches_the_formula_and_keeps_dtype():
    torch.manual_seed(0)
    conv = MeshCNNConv(5, 3).double()
    x = torch.randn(6, 5, dtype=torch.float64)
    out = conv(x, EDGE_INDEX)
    assert out.dtype == torch.float64
    testing.assert_close(out, formula(conv, x), atol=1e-12)
    # symmetric under swapping the two faces (a, b) <-> (c, d)
    swapped = torch.stack([torch.arange(6).repeat_interleave(4), NEIGHBOURS[:, [2, 3, 0, 1]].flatten()])
    testing.assert_close(conv(x, swapped), out, atol=1e-12)


def test_custom_kernels_and_their_checks():
    torch.manual_seed(1)
    kernels = ModuleList([Sequential(Linear(4, 2), Sigmoid()) for _ in range(5)])
    with pytest.warns(UserWarning, match="does not have attribute"):
        conv = MeshCNNConv(4, 2, kernels)
    assert repr(conv) == "MeshCNNConv(4, 2)"
    x = torch.randn(6, 4)
    testing.assert_close(conv(x, EDGE_INDEX), formula(conv, x))
    with pytest.raises(TypeError, match="kernels"):
        MeshCNNConv(4, 2, ModuleList([Linear(4, 2)] * 4))
    with pytest.raises(TypeError, match="kernels"):
        MeshCNNConv(4, 2, [Linear(4, 2)] * 5)
    with pytest.raises(ValueError, match="kernels\\[2\\]"):
        MeshCNNConv(4, 2, ModuleList([Linear(4, 2), Linear(4, 2), Linear(3, 2), Linear(4, 2), Linear(4, 2)]))


def test_pyg_checkpoint_loads_and_matches_on_its_row_convention():
    """PyG 2.8.1's class reads row 1 of edge_index as the receiving edge (the transposed adjacency of its
    own docstring): given edge_index.flip(0) it computes the documented formula, which gnn computes from
    the documented layout."""
    pyg = pytest.importorskip("torch_geometric")
    for ours, theirs in (
        (MeshCNNConv.__init__, pyg.nn.MeshCNNConv.__init__),
        (MeshCNNConv.forward, pyg.nn.MeshCNNConv.forward),
    ):
        assert list(inspect.signature(ours).parameters) == list(inspect.signature(theirs).parameters)
    torch.manual_seed(2)
    theirs = pyg.nn.MeshCNNConv(5, 3)
    ours = MeshCNNConv(5, 3)
    testing.load_pyg_state(ours, theirs)
    assert repr(ours) == repr(theirs)
    x = torch.randn(6, 5)
    out = ours(x, EDGE_INDEX)
    testing.assert_close(out, theirs(x, EDGE_INDEX.flip(0)))
    testing.assert_close(out, formula(ours, x))


def test_general_path_hooks_and_empty_mesh():
    conv = MeshCNNConv(5, 3)
    seen = []
    conv.register_message_forward_hook(lambda m, inp, out: seen.append(out.shape))
    x = torch.randn(6, 5)
    conv(x, EDGE_INDEX)
    assert seen == [torch.Size([24, 3])]
    empty = conv(torch.empty(0, 5), torch.empty(2, 0, dtype=torch.long))
    assert empty.shape == (0, 3)
    testing.assert_close(conv(x, EDGE_INDEX.int()), conv(x, EDGE_INDEX))


def test_validation():
    conv = MeshCNNConv(5, 3)
    x = torch.randn(6, 5)
    with pytest.raises(ValueError, match="4 columns"):
        conv(x, EDGE_INDEX[:, :20])
    with pytest.raises(ValueError, match="edge_index"):
        conv(x, EDGE_INDEX[:, torch.randperm(24, generator=torch.Generator().manual_seed(0))])
    with pytest.raises(IndexError, match="edge_index"):
        conv(x, torch.stack([EDGE_INDEX[0], EDGE_INDEX[1] + 6]))
    with pytest.raises(ValueError, match="x"):
        conv(torch.randn(6, 4), EDGE_INDEX)
