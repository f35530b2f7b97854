"""The normalization layers' API: PyG's signatures and reprs, exports at gnn.conv and gnn.nn,
registry resolution by name, reset_parameters, and errors that name the bad argument."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest
import torch

import gnn.conv.norm as norm
from gnn.conv._plugin import NORMS
from gnn.core import registry
from gnn.core import validation as v

NAMES = sorted(NORMS)


def _params(fn) -> list[tuple[str, object, object]]:
    return [(p.name, p.default, p.kind) for p in inspect.signature(fn).parameters.values()]


@pytest.mark.parametrize("name", NAMES)
def test_signatures_match_pyg(name):
    pyg = pytest.importorskip("torch_geometric.nn.norm")
    ours, theirs = getattr(norm, name), getattr(pyg, name)
    assert _params(ours.__init__) == _params(theirs.__init__)
    assert _params(ours.forward) == _params(theirs.forward)
    assert [m for m in ("reset_parameters", "reset_running_stats") if hasattr(theirs, m)] == [
        m for m in ("reset_parameters", "reset_running_stats") if hasattr(ours, m)
    ]


REPR_CASES = [
    ("BatchNorm", (16,), {}),
    ("BatchNorm", (16,), {"momentum": None, "affine": False, "track_running_stats": False}),
    ("InstanceNorm", (16,), {"affine": True}),
    ("LayerNorm", (16,), {}),
    ("LayerNorm", (16,), {"affine": False, "mode": "node"}),
    ("GraphNorm", (16,), {}),
    ("GraphSizeNorm", (), {}),
    ("PairNorm", (), {"scale": 2.0, "scale_individually": True}),
    ("MeanSubtractionNorm", (), {}),
    ("MessageNorm", (), {}),
    ("MessageNorm", (True,), {}),
    ("DiffGroupNorm", (16, 4), {}),
    ("DiffGroupNorm", (16, 4), {"affine": False, "track_running_stats": False}),
]


@pytest.mark.parametrize("name, args, kwargs", REPR_CASES, ids=[f"{n}{a}{k}" for n, a, k in REPR_CASES])
def test_repr_and_state_dict_layout_match_pyg(name, args, kwargs):
    pyg = pytest.importorskip("torch_geometric.nn.norm")
    ours, theirs = getattr(norm, name)(*args, **kwargs), getattr(pyg, name)(*args, **kwargs)
    assert repr(ours) == repr(theirs)
    assert {k: tuple(t.shape) for k, t in ours.state_dict().items()} == {
        k: tuple(t.shape) for k, t in theirs.state_dict().items()
    }
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert [p.requires_grad for p in ours.parameters()] == [p.requires_grad for p in theirs.parameters()]
    # the initial values too, except the randomly initialized assignment of DiffGroupNorm
    for key, value in theirs.state_dict().items():
        if key != "lin.weight":
            assert torch.equal(ours.state_dict()[key], value), key


@pytest.mark.parametrize("name", NAMES)
def test_exported_at_gnn_conv_and_gnn_nn(name):
    import gnn.nn

    cls = getattr(norm, name)
    assert getattr(gnn.conv, name) is cls
    assert getattr(gnn.nn, name) is cls
    assert getattr(gnn.nn.norm, name) is cls
    assert name in gnn.conv.__all__ and name in norm.__all__
    assert cls.__module__ == f"gnn.conv.{NORMS[name]}"


QUERIES = [
    ("batch_norm", "BatchNorm", (64,)),
    ("BatchNorm", "BatchNorm", (64,)),
    ("batchnorm", "BatchNorm", (64,)),
    ("batch", "BatchNorm", (64,)),
    ("graph_norm", "GraphNorm", (64,)),
    ("GraphNorm", "GraphNorm", (64,)),
    ("layer_norm", "LayerNorm", (64,)),
    ("instance_norm", "InstanceNorm", (64,)),
    ("pair_norm", "PairNorm", ()),
    ("diff_group_norm", "DiffGroupNorm", (64, 10)),
    ("DiffGroupNorm", "DiffGroupNorm", (64, 10)),
    ("graph_size_norm", "GraphSizeNorm", ()),
    ("mean_subtraction_norm", "MeanSubtractionNorm", ()),
    ("message_norm", "MessageNorm", ()),
]


@pytest.mark.parametrize("query, name, args", QUERIES, ids=[q for q, _, _ in QUERIES])
def test_registry_resolves_by_name(query, name, args):
    module = registry.norms.resolve(query, *args)
    assert type(module) is getattr(norm, name)
    assert registry.norms.resolve(module) is module


def test_registry_lists_all_nine_lazily():
    entries = [e for e in registry.norms.entries() if e.dist == "gnn-conv"]
    assert sorted(e.name for e in entries) == sorted(
        [
            "batch",
            "instance",
            "layer",
            "graph",
            "graphsize",
            "pair",
            "meansubtraction",
            "message",
            "diffgroup",
        ]
    )
    assert all(e.is_lazy for e in entries)
    with pytest.raises(ValueError, match="did you mean"):
        registry.norms.resolve("grap_norm", 64)


def test_cli_info_counts_the_norms():
    out = subprocess.run(
        [sys.executable, "-m", "gnn.core", "info", "--json"], capture_output=True, text=True, check=True
    ).stdout
    import json

    assert json.loads(out)["registries"]["norms"] >= 9


def test_reset_parameters_restores_initial_values():
    layers = [
        norm.GraphNorm(4),
        norm.LayerNorm(4),
        norm.InstanceNorm(4, affine=True, track_running_stats=True),
        norm.MessageNorm(True),
        norm.DiffGroupNorm(4, 2),
    ]
    for layer in layers:
        fresh = {k: t.clone() for k, t in layer.state_dict().items()}
        with torch.no_grad():
            for t in layer.state_dict().values():
                t.add_(1)
        layer.reset_parameters()
        for key, value in layer.state_dict().items():
            if key != "lin.weight":
                assert torch.equal(value, fresh[key]), (type(layer).__name__, key)


# -- bad input -----------------------------------------------------------------------------------------
X = torch.randn(6, 4)
BATCH = torch.tensor([0, 0, 1, 1, 1, 2])
GRAPHWISE = [
    norm.GraphNorm(4),
    norm.LayerNorm(4),
    norm.InstanceNorm(4),
    norm.PairNorm(),
    norm.GraphSizeNorm(),
    norm.MeanSubtractionNorm(),
]


@pytest.mark.parametrize("layer", GRAPHWISE, ids=lambda m: type(m).__name__)
def test_graphwise_bad_input_names_the_argument(layer):
    size = "dim_size" if isinstance(layer, norm.MeanSubtractionNorm) else "batch_size"
    with pytest.raises(TypeError, match="'x'"):
        layer([[1.0]], BATCH)
    with pytest.raises(TypeError, match="'x'"):
        layer(torch.ones(6, 4, dtype=torch.long), BATCH)
    with pytest.raises(ValueError, match="'x'"):
        layer(torch.randn(6), BATCH)
    with pytest.raises(ValueError, match="'batch'"):
        layer(X, BATCH[:5])
    with pytest.raises(TypeError, match="'batch'"):
        layer(X, BATCH.float())
    with pytest.raises(v.IndexRangeError, match="'batch'"):
        layer(X, BATCH, 2)
    with pytest.raises(IndexError, match="'batch'"):
        layer(X, BATCH - 1)
    with pytest.raises(ValueError, match=f"'{size}'"):
        layer(X, BATCH, -1)
    with pytest.raises(ValueError, match=f"'{size}'"):
        layer(X, BATCH, 2.5)


def test_other_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="'x'.*in_channels"):
        norm.GraphNorm(5)(X)
    with pytest.raises(ValueError, match="'x'.*in_channels"):
        norm.LayerNorm(5, mode="node")(X)
    with pytest.raises(ValueError, match="'x'.*in_channels"):
        norm.BatchNorm(5)(X)
    with pytest.raises(ValueError, match="'x'.*in_channels"):
        norm.DiffGroupNorm(5, 2)(X)
    with pytest.raises(TypeError, match="'x'"):
        norm.BatchNorm(4)("x")
    with pytest.raises(ValueError, match="'mode'"):
        norm.LayerNorm(4, mode="edge")
    with pytest.raises(ValueError, match="'allow_single_element'"):
        norm.BatchNorm(4, track_running_stats=False, allow_single_element=True)
    with pytest.raises(ValueError, match="'msg'"):
        norm.MessageNorm()(X, torch.randn(5, 4))
    with pytest.raises(TypeError, match="'msg'"):
        norm.MessageNorm()(X, None)
    with pytest.raises(ValueError, match="'x'"):
        norm.InstanceNorm(4)(torch.randn(1, 4))  # one node, no batch: no instance statistics


def test_torch_jit_is_not_needed_for_import():
    # the package imports its layers lazily: importing gnn.conv.norm loads none of them
    code = "import sys, gnn.conv.norm; print(any(m.startswith('gnn.conv.norm.') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
