"""Parity with PyG 2.8.1 where groups are empty (gaps and trailing groups beyond the last index)
and aggregations carry learnable parameters loaded from a PyG checkpoint.

Empty groups scaled by ``amplification`` / ``linear`` give 0 in PyG (they scale by the true
degree 0); ``attenuation`` / ``inverse_linear`` divide by the degree clamped to 1.
"""

from __future__ import annotations

import pytest
import torch

import gnn.aggr as G
from gnn.core import testing

CASES = [
    (torch.tensor([0, 0, 1, 1, 1]), 4),  # trailing empty groups
    (torch.tensor([1, 1, 3, 3, 3]), 6),  # gaps and trailing groups
    (torch.tensor([2, 2, 2, 2, 2]), 3),  # one group only
]
BUILDERS = {
    "set_transformer": lambda L: L.SetTransformerAggregation(8, num_seed_points=2, heads=2, layer_norm=True),
    "patch_transformer": lambda L: L.PatchTransformerAggregation(
        8, 8, patch_size=2, hidden_channels=8, heads=2, aggr=["mean", "max"]
    ),
    "scaler_softmax": lambda L: L.DegreeScalerAggregation(
        ["softmax"],
        ["identity", "amplification", "attenuation"],
        torch.tensor([0, 2, 3, 1.0]),
        aggr_kwargs=[dict(learn=True, channels=8)],
    ),
    "scaler_powermean": lambda L: L.DegreeScalerAggregation(
        ["powermean", "softmax"],
        ["identity", "linear", "inverse_linear", "amplification"],
        torch.tensor([0, 2, 3, 1.0]),
        aggr_kwargs=[dict(learn=True, channels=8), dict(learn=True)],
    ),
}


@pytest.mark.parametrize("name", sorted(BUILDERS))
@pytest.mark.parametrize("case", range(len(CASES)))
def test_empty_groups_and_learned_parameters_match_pyg(name, case):
    pyg = pytest.importorskip("torch_geometric.nn.aggr")
    torch.manual_seed(0)
    theirs, ours = BUILDERS[name](pyg).double(), BUILDERS[name](G).double()
    with torch.no_grad():  # parameters away from their initial values (powermean p < 0 included)
        g = torch.Generator().manual_seed(case)
        for p in theirs.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * 0.5 - 0.1)
    testing.load_pyg_state(ours, theirs)
    theirs.eval(), ours.eval()
    index, dim_size = CASES[case]
    x = torch.rand(index.numel(), 8, dtype=torch.float64) + 0.1
    expected, got = theirs(x, index, dim_size=dim_size), ours(x, index, dim_size=dim_size)
    assert torch.equal(expected.isnan(), got.isnan())
    testing.assert_close(got.nan_to_num(), expected.nan_to_num(), rtol=1e-6, atol=1e-8)
