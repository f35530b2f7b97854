"""``python -m gnn.core plugins`` and ``python -m gnn.core info`` (see the README of gnn-core).

Each command runs in a subprocess; its output is checked against what the
test process itself finds through the same public API (plugins, registries,
``importlib.metadata``, torch), so the checks hold whichever packages are
installed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import metadata

import pytest
import torch

from gnn.core import plugins, registry
from gnn.core.plugins import FIRST_PARTY


def cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k not in ("GNN_DISABLE_PLUGINS", "GNN_KERNELS")}
    environ.update(env)
    return subprocess.run(
        [sys.executable, "-m", "gnn.core", *args], capture_output=True, text=True, env=environ, timeout=120
    )


def installed_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for dist in FIRST_PARTY:
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    return versions


@pytest.fixture(scope="module")
def plugins_json() -> dict:
    proc = cli("plugins", "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_plugins_json_matches_discovery(plugins_json: dict) -> None:
    expected = {
        info.name: [info.dist, info.version, info.module, info.status, info.registered]
        for info in plugins.plugins()
    }
    got = {
        p["entry_point"]: [p["distribution"], p["version"], p["module"], p["status"], p["registered"]]
        for p in plugins_json["plugins"]
    }
    assert got == expected
    core = got["core"]
    assert core[:4] == ["gnn-core", metadata.version("gnn-core"), "gnn.core._plugin", "ok"]
    assert core[4]["aggregations"][:6] == ["sum", "add", "mean", "max", "min", "mul"]


def test_plugins_table(plugins_json: dict) -> None:
    proc = cli("plugins")
    assert proc.returncode == 0, proc.stderr
    table = proc.stdout.split("\n\n")[0].splitlines()
    header = table[0].split("  ")
    assert [h for h in header if h] == ["entry point", "distribution", "version", "status", "registered"]
    rows = [line.split(None, 4) for line in table[1:]]
    assert len(rows) == len(plugins_json["plugins"])
    for row, p in zip(rows, plugins_json["plugins"]):
        registered = "; ".join(
            f"{fam}: {', '.join(names)}" for fam, names in p["registered"].items() if names
        )
        assert row == [p["entry_point"], p["distribution"], p["version"], p["status"], registered or "-"]
    # every installed first-party distribution shows up with its own version
    for dist, version in installed_versions().items():
        if version is not None:
            assert any(row[1:3] == [dist, version] for row in rows), dist


def test_info_text() -> None:
    proc = cli("info", GNN_KERNELS="torch")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    for dist, version in installed_versions().items():
        assert f"  {dist:<12} {version or 'not installed'}" in lines
    assert f"torch:   {torch.__version__}" in lines
    cuda = [line for line in lines if line.startswith("CUDA:")]
    assert len(cuda) == 1
    assert cuda[0].startswith("CUDA:    available" if torch.cuda.is_available() else "CUDA:    not available")
    if torch.version.cuda:
        assert f"CUDA {torch.version.cuda}" in cuda[0]
    start = lines.index("active backend per op (float32, CPU):")
    ops = dict(line.split() for line in lines[start + 1 : start + 6])
    assert ops == dict.fromkeys(["scatter", "segment", "spmm", "softmax", "segment_matmul"], "torch")
    start = lines.index("registered names:")
    counts = {family: int(n) for family, n in (line.split() for line in lines[start + 1 : start + 5])}
    assert counts == {family: len(registry.get(family)) for family in counts}
    assert set(counts) == {"aggregations", "convs", "norms", "kernels"}
    assert counts["aggregations"] >= 6  # gnn-core's own reductions, registered through its entry point


def test_info_json_matches_the_backends_in_use() -> None:
    from gnn.core.ops import backends

    # the child must select backends as this process did (GNN_KERNELS=torch runs included)
    selection = {"GNN_KERNELS": os.environ["GNN_KERNELS"]} if "GNN_KERNELS" in os.environ else {}
    proc = cli("info", "--json", **selection)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["gnn"] == {dist: installed_versions()[dist] for dist in report["gnn"]}
    assert set(report["gnn"]) == FIRST_PARTY
    assert report["torch"] == torch.__version__
    assert report["cuda"]["available"] is torch.cuda.is_available()
    assert report["cuda"]["built_with"] == torch.version.cuda
    assert report["ops"] == backends.describe()
    assert report["kernel_backends"] == backends.available()
    assert report["kernel_backends"][-1] == "torch"


def test_usage_errors() -> None:
    proc = cli()
    assert proc.returncode == 2 and "usage: python -m gnn.core" in proc.stderr
    proc = cli("frobnicate")
    assert proc.returncode == 2 and "invalid choice: 'frobnicate'" in proc.stderr
