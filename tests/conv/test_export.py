"""Deployment: ``torch.export`` with a dynamic number of nodes and edges.

The exported program must not be specialized on the example graph: run on a graph of
another size, it gives what the eager layer gives.
"""

from __future__ import annotations

import pytest
import torch
from torch.export import Dim, export

import gnn.conv as C

F = 8

LAYERS = {
    "GCNConv": lambda: C.GCNConv(F, F),
    "SAGEConv": lambda: C.SAGEConv(F, F),
    "GINConv": lambda: C.GINConv(torch.nn.Sequential(torch.nn.Linear(F, F), torch.nn.ReLU())),
    "GATConv": lambda: C.GATConv(F, 4, heads=2),
    "GATv2Conv": lambda: C.GATv2Conv(F, 4, heads=2),
    "TransformerConv": lambda: C.TransformerConv(F, 4, heads=2),
    "GraphConv": lambda: C.GraphConv(F, F),
}


def _graph(n: int, e: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, F, generator=g), torch.randint(0, n, (2, e), generator=g)


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_export_with_dynamic_node_and_edge_counts(name):
    torch.manual_seed(0)
    conv = LAYERS[name]().eval()
    x, edge_index = _graph(10, 30, seed=1)
    nodes, edges = Dim("nodes", min=2), Dim("edges", min=2)
    program = export(conv, (x, edge_index), dynamic_shapes=({0: nodes}, {1: edges}))
    for n, e, seed in ((17, 55, 2), (3, 4, 3)):
        x2, ei2 = _graph(n, e, seed)
        torch.testing.assert_close(program.module()(x2, ei2), conv(x2, ei2), atol=1e-5, rtol=1e-5)
