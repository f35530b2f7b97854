"""Read-only registries of named components (see the README of gnn-core).

``aggregations``, ``convs``, ``norms`` and ``kernels`` map a normalized name
to a component. Names are normalized by lower-casing, dropping ``_``, ``-``
and spaces, and stripping the family suffix: ``LogSumExpAggregation`` ->
``logsumexp``, ``GCNConv`` -> ``gcn``, ``batch_norm`` -> ``batch``.

``resolve(query, *args, **kwargs)`` accepts an instance (returned as is), a
class (instantiated with the arguments) or a string (looked up, then
instantiated). ``"dist:name"`` selects the component of one distribution
when a name is ambiguous or reserved by gnn itself.

Example::

    >>> from gnn.core import registry
    >>> registry.aggregations.resolve("MeanAggregation")
    MeanAggregation()
"""

from __future__ import annotations

import difflib
import importlib
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from . import discovery
from .hooks import FIRST_PARTY, MalformedComponent


def normalize(name: str, suffixes: tuple[str, ...] = ()) -> str:
    """Lower-case, drop separators, strip one family suffix."""
    key = name.lower().replace("_", "").replace("-", "").replace(" ", "")
    for suffix in suffixes:
        if key.endswith(suffix) and len(key) > len(suffix):
            return key[: -len(suffix)]
    return key


@dataclass
class Entry:
    """One registered component; ``target`` may be a lazy ``"module:attr"``."""

    name: str
    target: Any
    dist: str
    version: str
    meta: dict[str, Any] = field(default_factory=dict)
    _loaded: Any = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def is_lazy(self) -> bool:
        return isinstance(self.target, str)

    @property
    def reserved(self) -> bool:
        return self.dist in FIRST_PARTY

    def load(self) -> Any:
        if not self.is_lazy:
            return self.target
        if self._loaded is None:
            with self._lock:
                if self._loaded is None:
                    module_name, _, attr = self.target.partition(":")
                    module = importlib.import_module(module_name)
                    obj = module
                    for part in attr.split("."):
                        obj = getattr(obj, part)
                    self._loaded = obj
        return self._loaded


class Registry(Mapping[str, Any]):
    """A read-only mapping from normalized name to component."""

    def __init__(self, family: str, suffixes: tuple[str, ...] = (), base: str | None = None):
        self.family = family
        self.suffixes = suffixes
        self._base_path = base  # "module:Class" of the family's base class
        self._entries: dict[str, list[Entry]] = {}
        self._lock = threading.RLock()

    # -- registration (called by gnn.core.plugins) -------------------------------------
    def make_entry(
        self, obj: object, name: str | None, meta: dict[str, Any], dist: str, version: str
    ) -> Entry:
        if isinstance(obj, str):
            module_name, sep, attr = obj.partition(":")
            if not sep or not module_name or not attr:
                raise MalformedComponent(f"lazy component {obj!r} is not of the form 'module:attr'")
            default = attr.rsplit(".", 1)[-1]
        elif isinstance(obj, type) or callable(obj):
            default = getattr(obj, "__name__", None)
            if not default:
                raise MalformedComponent(f"component {obj!r} has no __name__; pass name=")
        else:
            raise MalformedComponent(f"{obj!r} is neither a class, a callable nor a 'module:attr' string")
        if name is not None and (not isinstance(name, str) or not name.strip()):
            raise MalformedComponent(f"name must be a non-empty string, got {name!r}")
        if name is not None and ":" in name:
            raise MalformedComponent(f"name {name!r} may not contain ':'")
        key = normalize(name if name is not None else default, () if name is not None else self.suffixes)
        if not key:
            raise MalformedComponent(f"name {name!r} normalizes to an empty string")
        return Entry(name=key, target=obj, dist=dist, version=version, meta=dict(meta))

    def add(self, entry: Entry) -> str | None:
        """Add an entry; returns a conflict message for a PluginWarning, if any."""
        with self._lock:
            existing = self._entries.setdefault(entry.name, [])
            existing.append(entry)
            if not entry.reserved and any(e.reserved for e in existing[:-1]):
                return (
                    f"{self.family} name {entry.name!r} is reserved by "
                    f"{next(e.dist for e in existing if e.reserved)}; the plugin's component is "
                    f"reachable only as '{entry.dist}:{entry.name}'"
                )
        return None

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    # -- lookup ------------------------------------------------------------------------
    def _all(self) -> dict[str, list[Entry]]:
        discovery.load(_FAMILIES)
        return self._entries

    def entries(self, name: str | None = None) -> list[Entry]:
        """All entries (of one normalized name), for introspection."""
        table = self._all()
        if name is None:
            return [e for group in table.values() for e in group]
        return list(table.get(name, []))

    def _select(self, key: str, query: str) -> Entry | None:
        group = self._all().get(key)
        if not group:
            return None
        reserved = [e for e in group if e.reserved]
        if reserved:
            return reserved[0]
        if len(group) > 1:
            options = ", ".join(f"'{e.dist}:{e.name}'" for e in group)
            raise ValueError(
                f"{self.family} name {query!r} is registered by several plugins "
                f"({', '.join(e.dist for e in group)}); select one of {options}"
            )
        return group[0]

    def find(self, query: str) -> Entry:
        """The entry a string query names; ``ValueError`` listing close matches."""
        if not isinstance(query, str):
            raise TypeError(f"{self.family} query must be a string, got {type(query).__name__}")
        dist, sep, bare = query.rpartition(":")
        if sep:
            dist = dist.lower().replace("_", "-")
            for key in (normalize(bare), normalize(bare, self.suffixes)):
                for entry in self._all().get(key, []):
                    if entry.dist == dist:
                        return entry
            raise ValueError(
                f"no {self.family} {bare!r} registered by distribution {dist!r}; known: {self._close(bare)}"
            )
        for key in (normalize(query), normalize(query, self.suffixes)):
            entry = self._select(key, query)
            if entry is not None:
                return entry
        raise ValueError(f"unknown {self.family} name {query!r}; {self._close(query)}")

    def _close(self, query: str) -> str:
        names = sorted(self._all())
        close = difflib.get_close_matches(normalize(query, self.suffixes), names, n=5, cutoff=0.5)
        if close:
            return "did you mean " + ", ".join(repr(c) for c in close) + "?"
        return "available: " + ", ".join(names[:40]) + (" ..." if len(names) > 40 else "")

    def lookup(self, query: str) -> Any:
        """The component (class or callable) a string query names."""
        return self.find(query).load()

    def base(self) -> type | None:
        if self._base_path is None:
            return None
        module_name, _, attr = self._base_path.partition(":")
        return getattr(importlib.import_module(module_name), attr)

    def resolve(self, query: Any, *args: Any, **kwargs: Any) -> Any:
        """Instance -> itself; class/callable -> called; string -> looked up and called."""
        if query is None:
            raise ValueError(f"cannot resolve None as {self.family}")
        if isinstance(query, str):
            return self.lookup(query)(*args, **kwargs)
        base = self.base()
        if base is not None and isinstance(query, base):
            return query
        if isinstance(query, type) or callable(query):
            return query(*args, **kwargs)
        return query

    # -- Mapping interface ---------------------------------------------------------------
    def __getitem__(self, name: str) -> Any:
        try:
            return self.lookup(name)
        except ValueError as error:
            raise KeyError(str(error)) from None

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._all()))

    def __len__(self) -> int:
        return len(self._all())

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        try:
            self.find(name)
        except ValueError:
            return False
        return True

    def __repr__(self) -> str:
        return f"Registry({self.family!r}, {len(self)} names)"


class AggregationRegistry(Registry):
    """Aggregations: a list or tuple resolves to ``MultiAggregation``."""

    def resolve(self, query: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(query, (list, tuple)):
            try:
                multi = self.lookup("multi")
            except ValueError:
                raise ImportError(
                    "a list of aggregations needs MultiAggregation: pip install gnn-aggr"
                ) from None
            return multi(list(query), *args, **kwargs)
        return super().resolve(query, *args, **kwargs)


aggregations = AggregationRegistry(
    "aggregations", suffixes=("aggregation", "aggr"), base="gnn.core.aggr.base:Aggregation"
)
convs = Registry("convs", suffixes=("conv",), base="torch.nn:Module")
norms = Registry("norms", suffixes=("norm",), base="torch.nn:Module")
kernels = Registry("kernels", suffixes=("kernels", "backend"))

_FAMILIES = {"aggregations": aggregations, "convs": convs, "norms": norms, "kernels": kernels}


def get(family: str) -> Registry:
    return _FAMILIES[family]


def clear_all() -> None:
    for reg in _FAMILIES.values():
        reg.clear()


def families() -> dict[str, Registry]:
    """Every registry by family name (what plugin discovery fills)."""
    return dict(_FAMILIES)
