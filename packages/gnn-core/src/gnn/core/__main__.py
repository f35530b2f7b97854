"""Command line of gnn-core: ``python -m gnn.core {plugins,info}``.

``plugins``
    One row per entry point of group ``gnn``: entry point, distribution,
    version, status (``ok``, ``failed`` or ``disabled``) and what it
    registered per family, followed by the warnings discovery raised.

``info``
    Versions of the installed gnn distributions, Python, torch and CUDA, the
    kernel backend that runs each op of :mod:`gnn.core.ops` and the number of
    names in each registry.

Both accept ``--json`` for a machine-readable dump.

Example::

    $ python -m gnn.core plugins
    entry point  distribution  version  status  registered
    core         gnn-core      0.1.0    ok      aggregations: sum, add, mean, max, min, mul
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import warnings
from collections.abc import Sequence
from typing import Any

from . import plugins as _plugins
from . import registry

FAMILIES = ("aggregations", "convs", "norms", "kernels")


def _load_with_warnings() -> list[str]:
    """Load every plugin; return the :class:`PluginWarning` messages it raised."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", _plugins.PluginWarning)
        _plugins.load()
    messages = []
    for w in caught:
        if issubclass(w.category, _plugins.PluginWarning):
            messages.append(str(w.message))
        else:  # not ours: show it as Python would
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    return messages


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def plugins_report() -> dict[str, Any]:
    """What ``python -m gnn.core plugins`` shows, as data."""
    messages = _load_with_warnings()
    return {
        "plugins": [
            {
                "entry_point": info.name,
                "distribution": info.dist,
                "version": info.version,
                "module": info.module,
                "status": info.status,
                "error": info.error,
                "registered": {family: list(names) for family, names in info.registered.items()},
            }
            for info in _plugins.plugins()
        ],
        "warnings": messages,
    }


def _gnn_versions() -> dict[str, str | None]:
    from importlib import metadata

    versions: dict[str, str | None] = {}
    for dist in sorted(_plugins.FIRST_PARTY, key=lambda d: (d != "gnn-core", d)):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    return versions


def info_report() -> dict[str, Any]:
    """What ``python -m gnn.core info`` shows, as data."""
    import torch

    from .ops import backends

    messages = _load_with_warnings()
    cuda_available = torch.cuda.is_available()
    return {
        "gnn": _gnn_versions(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "cuda": {
            "available": cuda_available,
            "built_with": torch.version.cuda,
            "devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
            if cuda_available
            else [],
        },
        "kernel_backends": backends.available(),
        "ops": backends.describe(),
        "registries": {family: len(registry.get(family)) for family in FAMILIES},
        "warnings": messages,
    }


def _print_plugins(report: dict[str, Any]) -> None:
    rows = [["entry point", "distribution", "version", "status", "registered"]]
    for p in report["plugins"]:
        registered = "; ".join(
            f"{fam}: {', '.join(names)}" for fam, names in p["registered"].items() if names
        )
        rows.append([p["entry_point"], p["distribution"], p["version"], p["status"], registered or "-"])
    print(_table(rows))
    failed = [p for p in report["plugins"] if p["error"]]
    if failed:
        print()
        for p in failed:
            print(f"{p['entry_point']} ({p['distribution']} {p['version']}): {p['error']}")
    for message in report["warnings"]:
        print(f"warning: {message}", file=sys.stderr)


def _print_info(report: dict[str, Any]) -> None:
    print("gnn distributions:")
    for dist, version in report["gnn"].items():
        print(f"  {dist:<12} {version or 'not installed'}")
    print(f"python:  {report['python']} ({report['platform']})")
    print(f"torch:   {report['torch']}")
    cuda = report["cuda"]
    if cuda["available"]:
        print(f"CUDA:    available, CUDA {cuda['built_with']}, devices: {', '.join(cuda['devices'])}")
    else:
        built = (
            f"torch built with CUDA {cuda['built_with']}" if cuda["built_with"] else "CPU-only torch build"
        )
        print(f"CUDA:    not available ({built})")
    print(f"kernel backends: {', '.join(report['kernel_backends'])}")
    print("active backend per op (float32, CPU):")
    for op, name in report["ops"].items():
        print(f"  {op:<15} {name}")
    print("registered names:")
    for family, count in report["registries"].items():
        print(f"  {family:<13} {count}")
    for message in report["warnings"]:
        print(f"warning: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m gnn.core``; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m gnn.core", description="gnn-core tools")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("plugins", "list the plugins of entry-point group 'gnn' and what they registered"),
        ("info", "versions, torch/CUDA details and the active kernel backend per op"),
    ):
        command = sub.add_parser(name, help=text, description=text)
        command.add_argument("--json", action="store_true", help="print JSON instead of text")
    args = parser.parse_args(argv)
    report = plugins_report() if args.command == "plugins" else info_report()
    if args.json:
        print(json.dumps(report, indent=2))
    elif args.command == "plugins":
        _print_plugins(report)
    else:
        _print_info(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
