"""What plugins of gnn implement and what discovery records: the hook specifications, the
``@hookimpl`` marker, :class:`PluginWarning`, :class:`PluginInfo`.

This module imports nothing of gnn; :mod:`gnn.core.discovery` loads the plugins and
:mod:`gnn.core.plugins` is the public face of both.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import pluggy

PROJECT = "gnn"
ENTRY_POINT_GROUP = "gnn"
FIRST_PARTY = frozenset(
    {"gnn-core", "gnn-aggr", "gnn-conv", "gnn-pool", "gnn-models", "gnn-hetero", "gnn-kernels"}
)

hookspec = pluggy.HookspecMarker(PROJECT)
#: Marker for hook implementations in plugin modules: ``@hookimpl``.
hookimpl = pluggy.HookimplMarker(PROJECT)


class PluginWarning(UserWarning):
    """A plugin could not be (fully) loaded; the rest of gnn keeps working."""


class HookSpecs:
    """The hooks a plugin module may implement."""

    @hookspec
    def gnn_register_aggregations(self, register: Callable[..., None]) -> None:
        """Register :class:`~gnn.core.Aggregation` subclasses."""

    @hookspec
    def gnn_register_convs(self, register: Callable[..., None]) -> None:
        """Register message-passing layers."""

    @hookspec
    def gnn_register_norms(self, register: Callable[..., None]) -> None:
        """Register normalization layers."""

    @hookspec
    def gnn_register_kernels(self, register: Callable[..., None]) -> None:
        """Register op backends for :mod:`gnn.core.ops`."""


#: hook name -> registry family
HOOK_FAMILIES = {
    "gnn_register_aggregations": "aggregations",
    "gnn_register_convs": "convs",
    "gnn_register_norms": "norms",
    "gnn_register_kernels": "kernels",
}


@dataclass
class PluginInfo:
    """What discovery learned about one entry point."""

    name: str
    dist: str
    version: str
    module: str
    status: str = "ok"  # ok | failed | disabled
    error: str = ""
    registered: dict[str, list[str]] = field(default_factory=dict)

    @property
    def first_party(self) -> bool:
        return self.dist in FIRST_PARTY


class MalformedComponent(ValueError):
    """A plugin tried to register something that is not a component."""


def canonical_dist(name: str) -> str:
    """A distribution name normalized as PEP 503 does: ``GNN_Conv``, ``gnn.conv`` -> ``gnn-conv``."""
    return re.sub(r"[-_.]+", "-", name).lower()
