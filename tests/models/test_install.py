"""gnn-models installs as its own distribution (CONTRIBUTING.md, "Packages").

Runs in every environment that has gnn-models, including the one nox builds
with gnn-models and its dependencies only. The checks live in gnn.core.testing.
"""

from __future__ import annotations

from gnn.core import testing

DIST = "gnn-models"
VERSION = "0.1.0"
#: the gnn distributions gnn-models depends on directly (CONTRIBUTING.md, the package table)
GNN_DEPENDENCIES = ["gnn-aggr", "gnn-conv", "gnn-core", "gnn-pool"]


def test_version() -> None:
    testing.assert_distribution_version(DIST, "gnn.models", VERSION)


def test_gnn_is_a_namespace_package() -> None:
    testing.assert_namespace_intact(DIST)


def test_entry_point_is_advertised_and_loads() -> None:
    testing.assert_entry_point_loads(DIST, "models", "gnn.models._plugin", VERSION)


def test_declared_gnn_dependencies_are_compatible_ranges() -> None:
    testing.assert_gnn_dependencies(DIST, GNN_DEPENDENCIES, VERSION)
