"""gnn.conv._utils.check_edge_attr: the one per-edge feature check the conv layers share."""

from __future__ import annotations

import pytest
import torch

from gnn.conv import _attention as att
from gnn.conv import _utils
from gnn.conv._utils import check_edge_attr

EDGE_INDEX = torch.tensor([[0, 1, 2, 2, 0], [1, 2, 0, 0, 0]])


def test_valid_inputs_pass_unchanged():
    attr = torch.randn(5, 3)
    assert check_edge_attr(None, EDGE_INDEX, features=3) is None
    assert check_edge_attr(attr, EDGE_INDEX, features=3) is attr
    assert check_edge_attr(attr, 5) is attr
    weight = torch.rand(5)
    assert check_edge_attr(weight, EDGE_INDEX, "edge_weight", features=1) is weight
    # a sparse adjacency (or a malformed edge_index, reported later by name) skips the row count
    adj_t = torch.sparse_coo_tensor(EDGE_INDEX.flip(0), torch.ones(5), (3, 3))
    assert check_edge_attr(torch.randn(7, 3), adj_t, features=3) is not None
    assert check_edge_attr(torch.randn(7, 3), EDGE_INDEX.t()) is not None


def test_errors_name_the_argument_and_the_expectation():
    with pytest.raises(TypeError, match="'edge_attr' must be a torch.Tensor or None"):
        check_edge_attr([[1.0]] * 5, EDGE_INDEX)
    with pytest.raises(ValueError, match=r"'edge_attr' must have one row per edge of 'edge_index' \(5\)"):
        check_edge_attr(torch.randn(4, 3), EDGE_INDEX)
    with pytest.raises(ValueError, match=r"'edge_weight' must have one row per edge"):
        check_edge_attr(torch.randn(6), 5, "edge_weight")
    with pytest.raises(ValueError, match="'edge_attr' must have one row per edge"):
        check_edge_attr(torch.tensor(1.0), None)
    with pytest.raises(ValueError, match=r"'edge_attr' must have 3 features \(edge_dim\)"):
        check_edge_attr(torch.randn(5, 2), EDGE_INDEX, features=3, why="edge_dim")
    # a 1-D value stands for one feature unless the caller forbids it
    with pytest.raises(ValueError, match="must have 2 features"):
        check_edge_attr(torch.randn(5), EDGE_INDEX, features=2)
    with pytest.raises(ValueError, match=r"must have 1 features \(out_channels\)"):
        check_edge_attr(torch.randn(5), EDGE_INDEX, features=1, why="out_channels", allow_vector=False)


def test_attention_helpers_reexport_the_shared_check():
    assert att.check_edge_attr is _utils.check_edge_attr


def test_cached_gcn_norm_reuses_only_for_the_same_graph(monkeypatch):
    from gnn.conv import GCNConv
    from gnn.core import testing
    from gnn.core.utils import gcn_norm

    calls: list[int] = []
    real = _utils.gcn_norm
    monkeypatch.setattr(_utils, "gcn_norm", lambda *a, **k: calls.append(1) or real(*a, **k))
    _, edge_index = testing.random_graph(6, 12, 1, seed=0)
    weight = torch.rand(12)
    args = (6, False, True, "source_to_target", torch.float32)
    expected = gcn_norm(edge_index, weight, *args)
    layer = GCNConv(1, 1, cached=True)
    first = _utils.cached_gcn_norm(layer, edge_index, weight, *args)
    assert _utils.cached_gcn_norm(layer, edge_index, weight, *args) is first and len(calls) == 1
    assert layer._cached_edge_index is first  # PyG's attribute holds it
    testing.assert_close(first, expected)
    _utils.cached_gcn_norm(layer, edge_index.clone(), weight, *args)  # another graph object: recomputed
    assert len(calls) == 2
    layer._cached_edge_index = None  # PyG users reset the cache by hand
    _utils.cached_gcn_norm(layer, edge_index, weight, *args)
    assert len(calls) == 3
    plain = GCNConv(1, 1)  # cached=False: every call normalizes
    for _ in range(2):
        testing.assert_close(_utils.cached_gcn_norm(plain, edge_index, weight, *args), expected)
    assert len(calls) == 5
