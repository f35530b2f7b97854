"""Discovery of gnn's plugins: entry points of group ``gnn`` loaded once, their hooks run
into the registries.

:mod:`gnn.core.registry` calls :func:`load` on the first use of a registry, passing its
families; :mod:`gnn.core.plugins` re-exports the public functions. Imports nothing of
gnn but :mod:`gnn.core.hooks`.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Callable, Mapping
from importlib import metadata
from typing import Any

import pluggy

from .hooks import (
    ENTRY_POINT_GROUP,
    FIRST_PARTY,
    HOOK_FAMILIES,
    PROJECT,
    HookSpecs,
    MalformedComponent,
    PluginInfo,
    PluginWarning,
    canonical_dist,
)

_lock = threading.RLock()
_loaded = False
_loading = False
_plugins: list[PluginInfo] = []
_manager: pluggy.PluginManager | None = None


def _disabled_names() -> set[str]:
    """``GNN_DISABLE_PLUGINS`` in PEP 503 normal form: each part names an entry point or a
    distribution, spelled any way PEP 503 treats as equal (``gnn_x``, ``gnn-x``, ``GNN.X``)."""
    parts = [part.strip() for part in os.environ.get("GNN_DISABLE_PLUGINS", "").split(",")]
    return {canonical_dist(part) for part in parts if part}


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
        dist = canonical_dist(ep.dist.name) if ep.dist is not None else ""
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


#: family name -> registry, given by gnn.core.registry when it first loads plugins
Families = Mapping[str, Any]


def is_loaded() -> bool:
    """Whether discovery has run."""
    return _loaded


def manager(families: Families) -> pluggy.PluginManager:
    """The one ``PluginManager("gnn")`` (plugins loaded on first call)."""
    load(families)
    assert _manager is not None
    return _manager


def load(families: Families) -> None:
    """Discover and load every plugin once into ``families``; later calls return at once."""
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
            _load_all(families)
            _loaded = True
        finally:
            _loading = False


def plugins(families: Families) -> list[PluginInfo]:
    """Information about every discovered entry point (loads plugins)."""
    load(families)
    return list(_plugins)


def _load_all(families: Families) -> None:
    global _manager

    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(HookSpecs)
    _manager = pm
    disabled = _disabled_names()
    for ep in _entry_points():
        dist = canonical_dist(ep.dist.name) if ep.dist is not None else "unknown"
        version = ep.dist.version if ep.dist is not None else "?"
        info = PluginInfo(name=ep.name, dist=dist, version=version, module=ep.value)
        _plugins.append(info)
        if canonical_dist(ep.name) in disabled or dist in disabled:
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
                _run_hook(info, family, impl.function, families[family])


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


def reset(families: Families) -> None:
    """Forget every loaded plugin and empty ``families`` (tests only)."""
    global _loaded, _manager
    with _lock:
        _loaded = False
        _manager = None
        _plugins.clear()
        for family in families.values():
            family.clear()
