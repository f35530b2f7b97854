"""gnn-conv installs as its own distribution (CONTRIBUTING.md, "Packages").

Runs in every environment that has gnn-conv, including the one nox builds
with gnn-conv and its dependencies only. The checks live in gnn.core.testing.
"""

from __future__ import annotations

from gnn.core import testing

DIST = "gnn-conv"
VERSION = "0.1.0"
#: the gnn distributions gnn-conv depends on directly (CONTRIBUTING.md, the package table)
GNN_DEPENDENCIES = ["gnn-aggr", "gnn-core"]


def test_version() -> None:
    testing.assert_distribution_version(DIST, "gnn.conv", VERSION)


def test_gnn_is_a_namespace_package() -> None:
    testing.assert_namespace_intact(DIST)


def test_entry_point_is_advertised_and_loads() -> None:
    testing.assert_entry_point_loads(DIST, "conv", "gnn.conv._plugin", VERSION)


def test_declared_gnn_dependencies_are_compatible_ranges() -> None:
    testing.assert_gnn_dependencies(DIST, GNN_DEPENDENCIES, VERSION)
