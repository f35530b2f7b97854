"""The plugin manager of gnn (see the README of gnn-core).

Distributions advertise a plugin module in the entry-point group ``gnn``::

    [project.entry-points.gnn]
    myplugin = "my_pkg.plugin"

The module implements any of the hooks of :class:`~gnn.core.hooks.HookSpecs` with
:data:`hookimpl`; each hook receives a ``register(obj, name=None, **meta)`` callback.
gnn's own distributions use exactly the same mechanism.

Discovery runs once, lazily (first registry use or :func:`load`), is cached and
thread-safe. A plugin that fails to import, raises in a hook or registers something
malformed is skipped with a :class:`PluginWarning`; everything else keeps working.
``GNN_DISABLE_PLUGINS=name,...`` skips entry points or whole distributions by name,
in any spelling PEP 503 treats as equal (``gnn_x`` = ``gnn-x``).

This module is the public face of :mod:`gnn.core.hooks` (what plugins implement) and
:mod:`gnn.core.discovery` (how they are loaded into :mod:`gnn.core.registry`).
"""

from __future__ import annotations

import pluggy

from . import discovery, registry
from .hooks import (
    ENTRY_POINT_GROUP,
    FIRST_PARTY,
    HOOK_FAMILIES,
    PROJECT,
    HookSpecs,
    MalformedComponent,
    PluginInfo,
    PluginWarning,
    hookimpl,
    hookspec,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "FIRST_PARTY",
    "HOOK_FAMILIES",
    "PROJECT",
    "HookSpecs",
    "MalformedComponent",
    "PluginInfo",
    "PluginWarning",
    "hookimpl",
    "hookspec",
    "is_loaded",
    "load",
    "manager",
    "plugins",
]


def load() -> None:
    """Discover and load every plugin once; later calls return at once."""
    discovery.load(registry.families())


def plugins() -> list[PluginInfo]:
    """Information about every discovered entry point (loads plugins)."""
    return discovery.plugins(registry.families())


def manager() -> pluggy.PluginManager:
    """The one ``PluginManager("gnn")`` (plugins loaded on first call)."""
    return discovery.manager(registry.families())


def is_loaded() -> bool:
    """Whether plugin discovery has run."""
    return discovery.is_loaded()


def _reset_for_tests() -> None:
    """Forget every loaded plugin (tests only)."""
    discovery.reset(registry.families())
