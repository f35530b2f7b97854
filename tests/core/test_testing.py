"""gnn.core.testing: the helpers other tests rely on must themselves be right."""

from __future__ import annotations

import pytest
import torch

from gnn.core import testing, utils


def _graph_with_duplicates():
    # 64 edges among 4 nodes: every pair, self loops included, repeats; long enough that an
    # unstable sort (SparseTensor's) reorders equal keys
    edge_index = torch.randint(0, 4, (2, 64), generator=torch.Generator().manual_seed(0))
    value = torch.arange(1.0, 65.0)  # every edge, duplicates included, has its own value
    return edge_index, value


def test_every_format_keeps_duplicate_edges_in_their_original_order():
    # a layer that keeps "the last" of several equal edges (gcn_norm's self loops) must see the
    # same last edge in every form: duplicates stay in edge order, whichever form (SparseTensor
    # included, whose own constructor sorts unstably)
    edge_index, value = _graph_with_duplicates()
    expected = {}
    for e in range(edge_index.size(1)):
        expected.setdefault(tuple(edge_index[:, e].tolist()), []).append(float(value[e]))
    names = []
    for name, adj in testing.edge_index_formats(edge_index, 4, value):
        names.append(name)
        ei, val = utils.to_edge_index(adj)
        found = {}
        for e in range(ei.size(1)):
            found.setdefault(tuple(ei[:, e].tolist()), []).append(float(val[e]))
        assert found == expected, name
    assert names[:3] == ["torch.sparse_coo", "torch.sparse_csr", "torch.sparse_csc"]


class _AssigningSparse:
    """The interface of ``torch_sparse.SparseTensor`` that :func:`testing.to_dense` reads."""

    def __init__(self, row, col, value, sizes):
        self._coo, self._sizes = (row, col, value), sizes

    def coo(self):
        return self._coo

    def sparse_sizes(self):
        return self._sizes


def test_to_dense_sums_duplicate_entries_in_every_form():
    edge_index, value = _graph_with_duplicates()
    expected = torch.zeros(4, 4)
    for e in range(edge_index.size(1)):  # [N_dst, N_src], duplicates summed
        expected[edge_index[1, e], edge_index[0, e]] += value[e]
    for name, adj in testing.edge_index_formats(edge_index, 4, value):
        torch.testing.assert_close(testing.to_dense(adj), expected, msg=name)
    stand_in = _AssigningSparse(edge_index[1], edge_index[0], value, (4, 4))
    torch.testing.assert_close(testing.to_dense(stand_in), expected)
    # [E, H] values (attention heads) become a trailing dimension
    heads = torch.stack([value, -value], dim=1)
    dense = testing.to_dense(_AssigningSparse(edge_index[1], edge_index[0], heads, (4, 4)))
    torch.testing.assert_close(dense, torch.stack([expected, -expected], dim=-1))
    for name, adj in testing.edge_index_formats(edge_index, 4, heads):
        torch.testing.assert_close(testing.to_dense(adj), torch.stack([expected, -expected], -1), msg=name)


def test_assert_signatures_match_checks_names_order_and_defaults():
    class Ours:
        def __init__(self, a, b=1):
            pass

        def forward(self, x, edge_index=None):
            pass

    class SameNamesOtherDefault:
        def __init__(self, a, b=2):
            pass

        def forward(self, x, edge_index=None):
            pass

    class OtherOrder:
        def __init__(self, b=1, a=None):
            pass

        def forward(self, x, edge_index=None):
            pass

    testing.assert_signatures_match(Ours, Ours)
    with pytest.raises(AssertionError, match="__init__"):
        testing.assert_signatures_match(Ours, SameNamesOtherDefault)
    testing.assert_signatures_match(Ours, SameNamesOtherDefault, defaults=False)
    testing.assert_signatures_match(Ours, SameNamesOtherDefault, ("forward",))
    with pytest.raises(AssertionError, match="__init__"):
        testing.assert_signatures_match(Ours, OtherOrder, defaults=False)


def test_bspline_kernel_weights_hand_values_and_partition_of_unity():
    # open, degree 1, 5 knots: v = u * 4; u = 0.3 -> v = 1.2 -> 0.8 on kernel 1, 0.2 on kernel 2
    expected = torch.tensor([0.0, 0.8, 0.2, 0.0, 0.0], dtype=torch.float64)
    torch.testing.assert_close(testing.bspline_kernel_weights([0.3], [5], [True], 1), expected)
    # closed, degree 1, 4 knots: v = u * 4; u = 0.9 -> v = 3.6 -> 0.4 on kernel 3, 0.6 wraps to kernel 0
    expected = torch.tensor([0.6, 0.0, 0.0, 0.4], dtype=torch.float64)
    torch.testing.assert_close(testing.bspline_kernel_weights([0.9], [4], [False], 1), expected)
    # 2-D: dimension 0 varies fastest, and the weights of any point sum to one
    w = testing.bspline_kernel_weights([0.3, 0.9], [5, 4], [True, False], 1)
    torch.testing.assert_close(w.view(4, 5)[3, 1], torch.tensor(0.8 * 0.4, dtype=torch.float64))
    for degree in (1, 2, 3):
        w = testing.bspline_kernel_weights([0.37, 0.81], [6, 5], [True, False], degree)
        torch.testing.assert_close(w.sum(), torch.tensor(1.0, dtype=torch.float64))
