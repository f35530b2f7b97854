"""Every name of gnn-models imports lazily from gnn.models and, where gnn.nn lists it, from gnn.nn."""

from __future__ import annotations

import subprocess
import sys

import gnn.models
from gnn.nn._names import NAMES

PART1 = [
    "MLP", "GCN", "GraphSAGE", "GIN", "GAT", "PNA", "EdgeCNN", "JumpingKnowledge", "MetaLayer",
    "DeepGCNLayer", "GraphUNet", "GroupAddRev", "MaskLabel", "InnerProductDecoder", "GAE", "VGAE",
    "ARGA", "ARGVA", "DeepGraphInfomax", "SignedGCN", "LabelPropagation", "CorrectAndSmooth", "LINKX",
    "PMLP", "RECT_L", "PositionalEncoding", "TemporalEncoding", "bro", "gini",
]  # fmt: skip


def test_part1_names_import_from_gnn_models_and_gnn_nn():
    import gnn.nn

    for name in PART1:
        obj = getattr(gnn.models, name)
        assert name in gnn.models.__all__
        assert NAMES[name] == ("gnn.models", "gnn-models"), name
        assert getattr(gnn.nn, name) is obj, name
    assert gnn.models.MLP is __import__("gnn.core", fromlist=["MLP"]).MLP
    assert "GNN" in gnn.models.__all__ and "BasicGNN" in gnn.models.__all__


def test_every_export_resolves():
    for name in gnn.models.__all__:
        assert getattr(gnn.models, name) is not None, name


def test_import_is_lazy():
    code = "import sys, gnn.models; print(any(m.startswith('gnn.models.') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
