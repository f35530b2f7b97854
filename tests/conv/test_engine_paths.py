"""Every conv of the registry: the path MessagePassing picks by default (a fused plan where one
is declared) and the general per-edge path give the same numbers.

A registered message hook is what forces the general path (nothing else a user does
changes the path); it also makes the layers build PyG's exact edge set (``exact_edges``),
so the comparison covers both self-loop strategies. Every layer that gnn-conv registers
must have an entry in ``CALLS``: a new layer without one fails ``test_every_conv_is_covered``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch

import gnn.conv as C
from gnn.core import MessagePassing, registry, testing

N, E, F = 12, 40, 8

#: class name -> (builder of the layer, call of the layer on (x, edge_index, edge_attr, batch))
Build = Callable[[], torch.nn.Module]
Call = Callable[[torch.nn.Module, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], Any]


def _plain(m, x, ei, ea, batch):
    return m(x, ei)


def _weighted(m, x, ei, ea, batch):
    return m(x, ei, ea[:, 0].abs() + 0.1)


def _attr(m, x, ei, ea, batch):
    return m(x, ei, ea)


def _first(out: Any) -> torch.Tensor:
    return out[0] if isinstance(out, tuple) else out


CALLS: dict[str, tuple[Build, Call]] = {
    "SimpleConv": (lambda: C.SimpleConv("mean", combine_root="self_loop"), _weighted),
    "GCNConv": (lambda: C.GCNConv(F, F), _weighted),
    "ChebConv": (lambda: C.ChebConv(F, F, 3), _weighted),
    "SAGEConv": (lambda: C.SAGEConv(F, F), _plain),
    "GraphConv": (lambda: C.GraphConv(F, F), _weighted),
    "TAGConv": (lambda: C.TAGConv(F, F), _weighted),
    "SGConv": (lambda: C.SGConv(F, F, K=2), _weighted),
    "SSGConv": (lambda: C.SSGConv(F, F, 0.2, K=2), _weighted),
    "APPNP": (lambda: C.APPNP(3, 0.1), _weighted),
    "ClusterGCNConv": (lambda: C.ClusterGCNConv(F, F), _plain),
    "LGConv": (lambda: C.LGConv(), _weighted),
    "GCN2Conv": (lambda: C.GCN2Conv(F, 0.1, 0.5, 2), lambda m, x, ei, ea, b: m(x, x, ei)),
    "MixHopConv": (lambda: C.MixHopConv(F, F), _weighted),
    "ARMAConv": (lambda: C.ARMAConv(F, F, num_stacks=2, num_layers=2), _weighted),
    "LEConv": (lambda: C.LEConv(F, F), _weighted),
    "GINConv": (lambda: C.GINConv(torch.nn.Linear(F, F)), _plain),
    "GINEConv": (lambda: C.GINEConv(torch.nn.Linear(F, F), edge_dim=3), _attr),
    "WLConv": (lambda: C.WLConv(), lambda m, x, ei, ea, b: m(x.argmax(1), ei).to(torch.float64)),
    "WLConvContinuous": (lambda: C.WLConvContinuous(), _plain),
    "GATConv": (lambda: C.GATConv(F, 4, heads=2, edge_dim=3), _attr),
    "GATv2Conv": (lambda: C.GATv2Conv(F, 4, heads=2, edge_dim=3), _attr),
    "TransformerConv": (lambda: C.TransformerConv(F, 4, heads=2, edge_dim=3), _attr),
    "AGNNConv": (lambda: C.AGNNConv(), _plain),
    "SuperGATConv": (lambda: C.SuperGATConv(F, 4, heads=2), _plain),
    "FAConv": (lambda: C.FAConv(F), lambda m, x, ei, ea, b: m(x, x, ei)),
    "ResGatedGraphConv": (lambda: C.ResGatedGraphConv(F, F), _plain),
    "GatedGraphConv": (lambda: C.GatedGraphConv(F, 2), _weighted),
    "GeneralConv": (lambda: C.GeneralConv(F, F, in_edge_channels=3, attention=True), _attr),
    "EGConv": (lambda: C.EGConv(F, F, aggregators=["symnorm", "max"], num_heads=2), _plain),
    "PDNConv": (lambda: C.PDNConv(F, F, 3, 4), _attr),
    "FiLMConv": (lambda: C.FiLMConv(F, F), _plain),
    "MFConv": (lambda: C.MFConv(F, F), _plain),
    "NNConv": (lambda: C.NNConv(F, F, torch.nn.Linear(3, F * F)), _attr),
    "CGConv": (lambda: C.CGConv(F, dim=3), _attr),
    "EdgeConv": (lambda: C.EdgeConv(torch.nn.Linear(2 * F, F)), _plain),
    "PNAConv": (
        lambda: C.PNAConv(F, F, ["mean", "max", "std"], ["identity", "amplification"], torch.arange(6)),
        _plain,
    ),
    "GENConv": (lambda: C.GENConv(F, F, edge_dim=3), _attr),
    "PANConv": (lambda: C.PANConv(F, F, 2), _plain),
    "SignedConv": (lambda: C.SignedConv(F, 4, first_aggr=True), lambda m, x, ei, ea, b: m(x, ei, ei.flip(0))),
    "AntiSymmetricConv": (lambda: C.AntiSymmetricConv(F), _weighted),
    "DirGNNConv": (lambda: C.DirGNNConv(C.GCNConv(F, F)), _plain),
    "GPSConv": (
        lambda: C.GPSConv(F, C.GINConv(torch.nn.Linear(F, F)), heads=2),
        lambda m, x, ei, ea, b: m(x, ei, b),
    ),
}


def _graph(seed: int) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(N, F, generator=g, dtype=torch.float64)
    ei = torch.randint(0, N, (2, E), generator=g)
    ei[:, :3] = torch.tensor([[0, 4, 4], [0, 4, 4]])  # self loops, one of them twice
    ei[:, 3] = ei[:, 4]  # a duplicate edge
    edge_attr = torch.randn(E, 3, generator=g, dtype=torch.float64)
    batch = torch.tensor([0] * 5 + [1] * 7)
    return x, ei, edge_attr, batch


def _hooks(module: torch.nn.Module, seen: list[int]) -> list[Any]:
    handles = []
    for sub in module.modules():
        if isinstance(sub, MessagePassing):
            handles.append(sub.register_message_forward_hook(lambda m, inputs, out: seen.append(1)))
    return handles


def test_every_conv_is_covered():
    entries = {e.target.split(":")[1] for e in registry.convs.entries() if e.dist == "gnn-conv"}
    assert entries - set(CALLS) == set(), "add the new layers to CALLS"


@pytest.mark.parametrize("name", sorted(CALLS))
def test_fused_and_general_paths_agree(name):
    build, call = CALLS[name]
    torch.manual_seed(0)
    conv = build().double().eval()
    x, ei, edge_attr, batch = _graph(1)
    default = _first(call(conv, x, ei, edge_attr, batch))
    seen: list[int] = []
    handles = _hooks(conv, seen)
    general = _first(call(conv, x, ei, edge_attr, batch))
    for h in handles:
        h.remove()
    if name not in ("WLConv", "WLConvContinuous"):  # they aggregate without per-edge messages
        assert seen, "the message hook never fired: the general path did not run"
    testing.assert_close(general, default, atol=1e-9, rtol=1e-7)
    again = _first(call(conv, x, ei, edge_attr, batch))  # hooks gone: the default path again
    testing.assert_close(again, default, atol=1e-12, rtol=0)
