"""Input forms across the models: int32 indices give the int64 result, float64 works, graphs
without edges and isolated nodes give finite outputs."""

from __future__ import annotations

import pytest
import torch

import gnn.models as models
from gnn.conv import GCNConv
from gnn.core import testing

N = 9


def make(name: str) -> tuple[torch.nn.Module, callable]:
    """A model in float64 and a function calling it on (x, edge_index)."""
    torch.manual_seed(0)
    if name == "GraphUNet":
        model = models.GraphUNet(4, 8, 3, depth=2)
        return model, lambda m, x, ei: m(x, ei)
    if name == "LINKX":
        model = models.LINKX(N, 4, 8, 3, 2, num_edge_layers=2)
        return model, lambda m, x, ei: m(x, ei)
    if name == "PMLP":
        model = models.PMLP(4, 8, 3, 2).eval()
        return model, lambda m, x, ei: m(x, ei)
    if name == "RECT_L":
        model = models.RECT_L(4, 8)
        return model, lambda m, x, ei: m(x, ei)
    if name == "SignedGCN":
        model = models.SignedGCN(4, 8, 2)
        return model, lambda m, x, ei: m(x, ei, ei.flip(0)[:, :3])
    if name == "GroupAddRev":
        model = models.GroupAddRev(GCNConv(2, 2), num_groups=2)
        return model, lambda m, x, ei: m(x, ei)
    if name == "DeepGraphInfomax":
        model = models.DeepGraphInfomax(
            4, GCNConv(4, 4), summary=lambda z, *a: z.mean(0), corruption=lambda x, ei: (x.flip(0), ei)
        )
        return model, lambda m, x, ei: m(x, ei)[0]
    if name == "LabelPropagation":
        model = models.LabelPropagation(2, 0.7)
        return model, lambda m, x, ei: m(x.softmax(-1), ei)
    if name == "CorrectAndSmooth":
        model = models.CorrectAndSmooth(2, 0.8, 2, 0.6)
        mask = torch.tensor([0, 4])
        return model, lambda m, x, ei: m(x.softmax(-1), torch.tensor([1, 2]), mask, ei)
    raise KeyError(name)


NAMES = [
    "GraphUNet",
    "LINKX",
    "PMLP",
    "RECT_L",
    "SignedGCN",
    "GroupAddRev",
    "DeepGraphInfomax",
    "LabelPropagation",
    "CorrectAndSmooth",
]


@pytest.mark.parametrize("name", NAMES)
def test_int32_float64_and_graphs_without_edges(name):
    model, call = make(name)
    model = model.double()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(N, 4, generator=g, dtype=torch.float64)
    edge_index = torch.randint(0, N - 1, (2, 24), generator=g)  # node N-1 is isolated
    out = call(model, x, edge_index)
    assert out.dtype == torch.float64 and torch.isfinite(out).all()
    testing.assert_close(call(model, x, edge_index.int()), out)
    empty = call(model, x, edge_index[:, :0])
    assert empty.size(0) == N and torch.isfinite(empty).all()
