"""gnn-conv's entry point: every layer is registered lazily and resolves by name."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

import gnn.conv
from gnn.conv._plugin import CONVS, NORMS
from gnn.core import registry

#: (query, args, kwargs, class name) for the GCN-family layers
CASES = [
    ("simple", (), {"aggr": "mean"}, "SimpleConv"),
    ("gcn", (16, 32), {}, "GCNConv"),
    ("GCNConv", (16, 32), {"improved": True}, "GCNConv"),
    ("cheb", (16, 32, 3), {}, "ChebConv"),
    ("sage", (16, 32), {"aggr": "max"}, "SAGEConv"),
    ("graph", (16, 32), {}, "GraphConv"),
    ("GraphConv", (16, 32), {}, "GraphConv"),
    ("tag", (16, 32), {"K": 2}, "TAGConv"),
    ("sg", (16, 32), {}, "SGConv"),
    ("ssg", (16, 32, 0.1), {}, "SSGConv"),
    ("appnp", (), {"K": 3, "alpha": 0.1}, "APPNP"),
    ("APPNP", (), {"K": 3, "alpha": 0.1}, "APPNP"),
    ("clustergcn", (16, 32), {}, "ClusterGCNConv"),
    ("cluster_gcn", (16, 32), {}, "ClusterGCNConv"),
    ("lg", (), {}, "LGConv"),
    ("gcn2", (16, 0.1), {}, "GCN2Conv"),
    ("mixhop", (16, 32), {}, "MixHopConv"),
    ("arma", (16, 32), {"num_stacks": 2}, "ARMAConv"),
    ("le", (16, 32), {}, "LEConv"),
    ("gin", (torch.nn.Linear(16, 32),), {}, "GINConv"),
    ("gine", (torch.nn.Linear(16, 32),), {"edge_dim": 4}, "GINEConv"),
    ("wl", (), {}, "WLConv"),
    ("wlconvcontinuous", (), {}, "WLConvContinuous"),
]


@pytest.mark.parametrize("query, args, kwargs, name", CASES, ids=[c[0] for c in CASES])
def test_resolve_by_name(query, args, kwargs, name):
    conv = registry.convs.resolve(query, *args, **kwargs)
    assert type(conv) is getattr(gnn.conv, name)
    assert type(conv).__module__ == f"gnn.conv.{CONVS[name]}"


def test_resolved_layer_runs():
    conv = registry.convs.resolve("gcn", 16, 32)
    out = conv(torch.randn(5, 16), torch.tensor([[0, 1, 2], [1, 2, 3]]))
    assert out.shape == (5, 32)
    # an instance is returned as is, a class is instantiated
    assert registry.convs.resolve(conv) is conv
    assert type(registry.convs.resolve(gnn.conv.SAGEConv, 4, 8)) is gnn.conv.SAGEConv


def test_all_62_layers_registered_by_gnn_conv():
    entries = [e for e in registry.convs.entries() if e.dist == "gnn-conv"]
    targets = {e.target for e in entries}
    assert targets == {f"gnn.conv.{module}:{name}" for name, module in CONVS.items()}
    assert len(CONVS) == 62
    names = {e.name for e in entries}
    assert {"gcn", "appnp", "gatv2", "gine", "wlconvcontinuous", "mixhop", "dirgnn", "gps"} <= names
    dense_and_attention = {
        "DenseGCNConv",
        "DenseGINConv",
        "DenseGraphConv",
        "DenseSAGEConv",
        "DenseGATConv",
        "PerformerAttention",
        "QFormer",
        "SGFormerAttention",
        "PolynormerAttention",
    }
    assert set(CONVS) | set(NORMS) | dense_and_attention | {"MessagePassing"} == set(gnn.conv.__all__)


def test_message_passing_is_reexported():
    from gnn.core import MessagePassing

    assert gnn.conv.MessagePassing is MessagePassing


def test_unknown_name_lists_close_matches():
    with pytest.raises(ValueError, match="gcn"):
        registry.convs.resolve("gcnn", 16, 32)
    with pytest.raises(AttributeError, match="NoSuchConv"):
        gnn.conv.NoSuchConv  # noqa: B018


def test_discovery_imports_no_layer_module():
    code = (
        "import sys, gnn.conv; from gnn.core import registry; "
        "assert len(registry.convs.entries()) >= 41; "
        "loaded = [m for m in sys.modules if m.startswith('gnn.conv.') and m not in "
        "('gnn.conv._plugin',)]; "
        "assert not loaded, loaded; "
        "registry.convs.lookup('gcn'); assert 'gnn.conv.gcn' in sys.modules and 'gnn.conv.sage' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
