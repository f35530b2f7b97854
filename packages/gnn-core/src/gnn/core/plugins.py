"""The plugin manager of gnn (see the README of gnn-core).

Distributions advertise a plugin module in the entry-point group ``gnn``::

    [project.entry-points.gnn]
    myplugin = "my_pkg.plugin"

The module implements any of the hooks below with :data:`hookimpl`; each hook
receives a ``register(obj, name=None, **meta)`` callback. gnn's own
distributions use exactly the same mechanism.

Discovery runs once, lazily (first registry use or :func:`load`), is cached
and thread-safe. A plugin that fails to import, raises in a hook or registers
something malformed is skipped with a :class:`PluginWarning`; everything else
keeps working. ``GNN_DISABLE_PLUGINS=name,...`` skips entry points by name
(or by distribution name, in any spelling PEP 503 treats as equal).
"""

from __future__ import annotations

import os
import re
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

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


_lock = threading.RLock()
_loaded = False
_loading = False
_plugins: list[PluginInfo] = []
_manager: pluggy.PluginManager | None = None


def _canonical_dist(name: str) -> str:
    """A distribution name normalized as PEP 503 does: ``GNN_Conv``, ``gnn.conv`` -> ``gnn-conv``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _disabled_names() -> tuple[set[str], set[str]]:
    """``GNN_DISABLE_PLUGINS`` as (entry-point names, normalized distribution names).

    Entry-point names are matched exactly; every part is also read as a
    distribution name, in PEP 503 normal form.
    """
    parts = [part.strip() for part in os.environ.get("GNN_DISABLE_PLUGINS", "").split(",")]
    names = {part for part in parts if part}
    return names, {_canonical_dist(name) for name in names}


def _warn(info: PluginInfo, what: str, error: BaseException | str) -> None:
    info.status = "failed" if info.status == "ok" and not info.registered else info.status
    info.error = f"{what}: {error}"
    warnings.warn(
        f"gnn plugin {info.name!r} from {info.dist} {info.version} ({info.module}): "
        f"{what}: {type(error).__name__ + ': ' if isinstance(error, BaseException) else ''}{error}",
        PluginWarning,
        stacklevel=3,
    )


def _entry_points() -> list[metadata.EntryPoint]:
    eps = list(metadata.entry_points(group=ENTRY_POINT_GROUP))

    # first-party distributions first, so that their names are reserved
    # before any third-party plugin is looked at; otherwise a stable order
    def key(ep: metadata.EntryPoint) -> tuple[int, str]:
        dist = _canonical_dist(ep.dist.name) if ep.dist is not None else ""
        return (0 if dist in FIRST_PARTY else 1, f"{dist}:{ep.name}")

    seen: set[tuple[str, str]] = set()
    unique = []
    for ep in sorted(eps, key=key):
        dist = ep.dist.name if ep.dist is not None else ""
        if (dist, ep.name) in seen:  # the same dist seen through two sys.path entries
            continue
        seen.add((dist, ep.name))
        unique.append(ep)
    return unique


def manager() -> pluggy.PluginManager:
    """The one ``PluginManager("gnn")`` (plugins loaded on first call)."""
    load()
    assert _manager is not None
    return _manager


def load() -> None:
    """Discover and load every plugin once; later calls return at once."""
    global _loaded, _loading
    if _loaded:
        return
    with _lock:
        # _loading: a plugin that uses a registry while it is being imported re-enters
        # here on the same thread; it sees what is registered so far (first-party
        # distributions load first) instead of starting discovery again
        if _loaded or _loading:
            return
        _loading = True
        try:
            _load_all()
            _loaded = True
        finally:
            _loading = False


def plugins() -> list[PluginInfo]:
    """Information about every discovered entry point (loads plugins)."""
    load()
    return list(_plugins)


def _load_all() -> None:
    global _manager
    from . import registry

    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(HookSpecs)
    _manager = pm
    disabled_names, disabled_dists = _disabled_names()
    for ep in _entry_points():
        dist = _canonical_dist(ep.dist.name) if ep.dist is not None else "unknown"
        version = ep.dist.version if ep.dist is not None else "?"
        info = PluginInfo(name=ep.name, dist=dist, version=version, module=ep.value)
        _plugins.append(info)
        if ep.name in disabled_names or dist in disabled_dists:
            info.status = "disabled"
            continue
        try:
            module = ep.load()
        except Exception as error:  # noqa: BLE001 - any import error skips the plugin
            _warn(info, "failed to import", error)
            info.status = "failed"
            continue
        try:
            pm.register(module, name=f"{dist}:{ep.name}")
        except Exception as error:  # noqa: BLE001 - invalid hook implementations
            _warn(info, "invalid hook implementation", error)
            info.status = "failed"
            continue
        for hook_name, family in HOOK_FAMILIES.items():
            impls = [i for i in getattr(pm.hook, hook_name).get_hookimpls() if i.plugin is module]
            for impl in impls:
                _run_hook(info, family, impl.function, registry.get(family))


def _run_hook(info: PluginInfo, family: str, function: Callable[..., Any], reg: Any) -> None:
    """Call one hook with a staging ``register``; commit only if it succeeds."""
    staged: list[tuple[object, str | None, dict[str, Any]]] = []

    def register(obj: object, name: str | None = None, **meta: Any) -> None:
        staged.append((obj, name, meta))

    try:
        function(register=register)
        entries = [reg.make_entry(obj, name, meta, info.dist, info.version) for obj, name, meta in staged]
    except MalformedComponent as error:
        _warn(info, f"registered a malformed component in {family}", error)
        return
    except Exception as error:  # noqa: BLE001 - a raising hook skips only this hook
        _warn(info, f"hook {function.__name__} raised", error)
        return
    for entry in entries:
        message = reg.add(entry)
        info.registered.setdefault(family, []).append(entry.name)
        if message:
            _warn(info, "name conflict", message)


def _reset_for_tests() -> None:
    """Forget every loaded plugin (tests only)."""
    global _loaded, _manager
    from . import registry

    with _lock:
        _loaded = False
        _manager = None
        _plugins.clear()
        registry.clear_all()
