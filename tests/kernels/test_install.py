"""gnn-kernels installs as its own distribution (CONTRIBUTING.md, "Packages").

Runs in every environment that has gnn-kernels, including the one nox builds
with gnn-kernels and its dependencies only.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
from importlib import metadata
from pathlib import Path

import gnn
import gnn.kernels

DIST = "gnn-kernels"
VERSION = "0.1.0"
#: the gnn distributions gnn-kernels depends on directly (CONTRIBUTING.md, the package table)
GNN_DEPENDENCIES = []


def test_version() -> None:
    assert gnn.kernels.__version__ == VERSION
    assert metadata.version(DIST) == VERSION


def test_gnn_is_a_namespace_package() -> None:
    assert getattr(gnn, "__file__", None) is None
    assert gnn.__spec__ is not None and gnn.__spec__.origin in (None, "namespace")
    assert not any((Path(p) / "__init__.py").exists() for p in gnn.__path__)
    files = metadata.files(DIST) or []
    assert not [f for f in files if str(f).replace("\\", "/") == "gnn/__init__.py"]


def test_entry_point_is_advertised_and_loads() -> None:
    eps = [ep for ep in metadata.entry_points(group="gnn") if ep.dist is not None and ep.dist.name == DIST]
    assert [(ep.name, ep.value) for ep in eps] == [("kernels", "gnn.kernels._plugin")]
    eps[0].load()  # importable without gnn-core (gnn-kernels depends on torch only)
    if importlib.util.find_spec("gnn.core") is None:
        return  # nobody to offer kernels to
    plugins = importlib.import_module("gnn.core.plugins")
    info = {p.dist: p for p in plugins.plugins()}[DIST]
    assert (info.name, info.version, info.status, info.error) == ("kernels", VERSION, "ok", "")


def test_declared_gnn_dependencies_are_compatible_ranges() -> None:
    requirements = [r for r in metadata.requires(DIST) or [] if r.startswith("gnn-")]
    names = sorted(re.match(r"[A-Za-z0-9._-]+", r).group(0) for r in requirements)
    assert names == GNN_DEPENDENCIES
    for requirement in requirements:
        assert "==" not in requirement and ">=0.1" in requirement and "<0.2" in requirement, requirement
    for dependency in GNN_DEPENDENCIES:  # installed alongside, as pip resolved them
        assert metadata.version(dependency) == VERSION
