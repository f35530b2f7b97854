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
