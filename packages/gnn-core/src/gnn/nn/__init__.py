"""``gnn.nn``: one namespace for every public name of the installed gnn packages.

The facade mirrors ``torch_geometric.nn``: ``from gnn.nn import GCNConv,
TopKPooling`` works whichever distributions provide the names, as long as
they are installed. Nothing is imported until a name is first accessed
(PEP 562 ``__getattr__``); the table of names is static
(:mod:`gnn.nn._names`), so ``import gnn.nn`` costs no more than
``import gnn.core``.

Resolution of ``gnn.nn.<name>``:

* a known name whose distribution is installed -> the object, imported from
  the package that re-exports it (``gnn.nn.GCNConv is gnn.conv.GCNConv``);
* a known name whose distribution is not installed -> :class:`ImportError`
  saying ``pip install gnn-<x>``;
* a known name that the installed distribution does not define ->
  :class:`ImportError` naming the distribution, its version and the name;
* an unknown name -> :class:`AttributeError` listing close matches.

Submodule-style access works too: ``from gnn.nn import aggr`` gives
:mod:`gnn.aggr` (``conv``, ``pool``, ``models``, ``hetero``, ``kernels``,
``norm``, ``dense``, ``attention``, ``inits`` and ``core`` likewise).

Example:
    >>> from gnn.nn import MessagePassing, MeanAggregation
    >>> MeanAggregation()
    MeanAggregation()
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from typing import Any

from ._names import NAMES, SUBMODULES

__version__ = "0.1.0"

_all_cache: list[str] | None = None


class _MissingName(AttributeError):
    """A table name that cannot be provided by the installed distributions.

    An ``AttributeError``, so that ``hasattr(gnn.nn, "X")`` is ``False``;
    ``from gnn.nn import X`` raises a ``ModuleNotFoundError`` (an ``ImportError``)
    with the same message (see :class:`_InstallHints`)."""


class _InstallHints:
    """Import-system finder that gives ``from gnn.nn import X`` the install hint.

    Python's ``from package import X`` looks for a submodule ``package.X`` when the
    attribute is missing; for a known name whose distribution is not installed this
    finder answers that lookup with a ``ModuleNotFoundError`` carrying the hint
    (instead of Python's bare "cannot import name"). It answers for nothing else.
    """

    @staticmethod
    def find_spec(fullname: str, path: Any = None, target: Any = None) -> None:
        package, _, name = fullname.rpartition(".")
        if package != __name__ or (name not in NAMES and name not in SUBMODULES):
            return None
        try:
            _resolve_name(name) if name in NAMES else _resolve_submodule(name)
        except _MissingName as error:
            target = NAMES[name][0] if name in NAMES else SUBMODULES[name][0]
            raise ModuleNotFoundError(str(error), name=target) from None
        return None


def _installed(module: str) -> bool:
    """Whether the top-level gnn package of ``module`` (``gnn.<pkg>``) can be found."""
    top = ".".join(module.split(".")[:2])
    try:
        return importlib.util.find_spec(top) is not None
    except (ImportError, ValueError):
        return False


def _dist_version(dist: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "(version unknown)"


def _install_hint(dist: str) -> str:
    return (
        f"pip install {dist} (from a checkout of gnn: pip install ./packages/{dist} together with the "
        f"./packages/gnn-* folders it depends on, or pip install --find-links dist {dist} after nox -s build)"
    )


def _not_installed(what: str, module: str, dist: str) -> _MissingName:
    return _MissingName(
        f"gnn.nn.{what} is provided by the distribution {dist!r}, which is not installed: {_install_hint(dist)}",
        name=module,
    )


def _resolve_name(name: str) -> Any:
    module_name, dist = NAMES[name]
    if not _installed(module_name):
        raise _not_installed(name, module_name, dist)
    module = importlib.import_module(module_name)
    try:
        return getattr(module, name)
    except AttributeError:
        raise _MissingName(
            f"gnn.nn.{name}: the installed distribution {dist} {_dist_version(dist)} does not define "
            f"{name!r} in {module_name} yet; a newer {dist} may (pip install -U {dist}, or reinstall it "
            f"from a newer checkout: pip install ./packages/{dist})",
            name=module_name,
        ) from None


def _resolve_submodule(name: str) -> Any:
    module_name, dist = SUBMODULES[name]
    if not _installed(module_name):
        raise _not_installed(name, module_name, dist)
    if importlib.util.find_spec(module_name) is None:
        raise _MissingName(
            f"gnn.nn.{name}: the installed distribution {dist} {_dist_version(dist)} has no module "
            f"{module_name} yet; a newer {dist} may (pip install -U {dist}, or reinstall it from a newer "
            f"checkout: pip install ./packages/{dist})",
            name=module_name,
        )
    return importlib.import_module(module_name)


def _compute_all() -> list[str]:
    """The names that resolve with the installed distributions (for ``import *``)."""
    names = []
    for name in NAMES:
        try:
            _resolve_name(name)
        except _MissingName:
            continue
        names.append(name)
    return names


if not any(isinstance(finder, _InstallHints) for finder in sys.meta_path):
    sys.meta_path.append(_InstallHints())


def __getattr__(name: str) -> Any:
    global _all_cache
    if name in NAMES:
        value = _resolve_name(name)
    elif name in SUBMODULES:
        value = _resolve_submodule(name)
    elif name == "__all__":
        if _all_cache is None:
            _all_cache = _compute_all()
        return list(_all_cache)
    else:
        if name.startswith("__"):
            raise AttributeError(f"module 'gnn.nn' has no attribute {name!r}")
        import difflib

        close = difflib.get_close_matches(name, [*NAMES, *SUBMODULES], n=5, cutoff=0.6)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise AttributeError(f"module 'gnn.nn' has no attribute {name!r}{hint}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(NAMES) | set(SUBMODULES))
