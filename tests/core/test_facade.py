"""The lazy ``gnn.nn`` facade (CONTRIBUTING.md, the package table).

The checks adapt to what is installed (``importlib.util.find_spec``): with
gnn-core alone, core names resolve and every other name gives the install
hint; with all packages, the names they define resolve to the very same
objects. One scenario builds an environment holding only gnn-core (plus an
empty stand-in for gnn-pool) in a temporary folder and runs in it, so the
install hint is checked in every environment.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import textwrap
from importlib import metadata
from pathlib import Path

import pytest

import gnn.core
import gnn.nn
from gnn.core.plugins import FIRST_PARTY
from gnn.nn._names import NAMES, SUBMODULES

BASIC = {"SumAggregation", "MeanAggregation", "MaxAggregation", "MinAggregation", "MulAggregation"}


def installed(module: str) -> bool:
    return importlib.util.find_spec(".".join(module.split(".")[:2])) is not None


# -- the table ------------------------------------------------------------------------------
def test_table_covers_the_reference_names() -> None:
    assert len(NAMES) == 215
    per_dist: dict[str, int] = {}
    for name, (module, dist) in NAMES.items():
        assert dist in FIRST_PARTY, name
        assert module == "gnn." + dist.removeprefix("gnn-"), name  # re-exported at the package root
        per_dist[dist] = per_dist.get(dist, 0) + 1
    assert per_dist == {
        "gnn-core": 12,
        "gnn-aggr": 21,
        "gnn-conv": 80,
        "gnn-pool": 35,
        "gnn-models": 57,
        "gnn-hetero": 10,
    }
    assert {n for n, (_, d) in NAMES.items() if d == "gnn-core"} == BASIC | {
        "MessagePassing",
        "Aggregation",
        "Linear",
        "HeteroLinear",
        "HeteroDictLinear",
        "Sequential",
        "summary",
    }
    for name, (module, dist) in SUBMODULES.items():
        assert dist in FIRST_PARTY and module.startswith("gnn." + dist.removeprefix("gnn-")), name


# -- resolution -----------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(n for n, (_, d) in NAMES.items() if d == "gnn-core"))
def test_core_names_resolve_to_gnn_core(name: str) -> None:
    assert getattr(gnn.nn, name) is getattr(gnn.core, name)


@pytest.mark.parametrize("dist", sorted({d for _, d in NAMES.values()} - {"gnn-core"}))
def test_names_of_other_packages(dist: str) -> None:
    """Installed: the package's own object (or a clear error naming what is missing); else the hint."""
    names = [n for n, (_, d) in NAMES.items() if d == dist]
    module_name = "gnn." + dist.removeprefix("gnn-")
    if not installed(module_name):
        for name in names:
            hint = f"not installed: pip install {dist} \\(from a checkout"
            with pytest.raises(AttributeError, match=hint):
                getattr(gnn.nn, name)
            assert not hasattr(gnn.nn, name)
            with pytest.raises(ImportError, match=hint):  # the same hint for a from-import
                exec(f"from gnn.nn import {name}", {})
        return
    module = importlib.import_module(module_name)
    version = metadata.version(dist)
    for name in names:
        if hasattr(module, name):
            assert getattr(gnn.nn, name) is getattr(module, name)
        else:
            with pytest.raises(AttributeError, match=f"{dist} {version} does not define '{name}'"):
                getattr(gnn.nn, name)
            with pytest.raises(ImportError, match=f"{dist} {version} does not define '{name}'"):
                exec(f"from gnn.nn import {name}", {})


def test_from_import_and_caching() -> None:
    from gnn.nn import MeanAggregation, MessagePassing

    assert MessagePassing is gnn.core.MessagePassing
    assert MeanAggregation is gnn.core.MeanAggregation
    assert "MessagePassing" in vars(gnn.nn)  # resolved once, then a plain attribute
    with pytest.raises(ImportError):
        from gnn.nn import NoSuchLayer  # noqa: F401


def test_unknown_names_raise_attribute_error_with_close_matches() -> None:
    with pytest.raises(AttributeError, match=r"no attribute 'GCNConvv'; did you mean 'GCNConv'"):
        gnn.nn.GCNConvv  # noqa: B018
    with pytest.raises(AttributeError, match=r"'MeanAgregation'; did you mean 'MeanAggregation'"):
        gnn.nn.MeanAgregation  # noqa: B018
    with pytest.raises(AttributeError, match=r"no attribute 'zzzz'$"):
        gnn.nn.zzzz  # noqa: B018
    assert not hasattr(gnn.nn, "__wrapped__")  # dunder probes (inspect, doctest) stay cheap and quiet


@pytest.mark.parametrize("attr", sorted(SUBMODULES))
def test_submodule_attributes(attr: str) -> None:
    module_name, dist = SUBMODULES[attr]
    if not installed(module_name):
        with pytest.raises(AttributeError, match=f"pip install {dist} \\(from a checkout"):
            getattr(gnn.nn, attr)
        with pytest.raises(ImportError, match=f"pip install {dist} \\(from a checkout"):
            exec(f"from gnn.nn import {attr}", {})
    elif importlib.util.find_spec(module_name) is None:
        with pytest.raises(AttributeError, match=f"{dist} .* has no module {module_name}"):
            getattr(gnn.nn, attr)
    else:
        assert getattr(gnn.nn, attr) is importlib.import_module(module_name)


def test_submodule_style_import() -> None:
    from gnn.nn import core

    assert core is gnn.core and core.MeanAggregation is gnn.nn.MeanAggregation
    if installed("gnn.aggr"):
        from gnn.nn import aggr

        assert aggr is importlib.import_module("gnn.aggr")


def test_dir_lists_every_name() -> None:
    listing = dir(gnn.nn)
    assert set(NAMES) <= set(listing) and set(SUBMODULES) <= set(listing)
    assert listing == sorted(listing)


# -- an environment holding only gnn-core -----------------------------------------------------
def _core_only_env(root: Path) -> dict[str, str]:
    """``root/site``: the current site-packages minus gnn; ``root/gnn-env``: gnn-core + empty gnn-pool."""
    import pluggy
    import torch

    site = root / "site"
    site.mkdir()
    for base in {Path(torch.__file__).parents[1], Path(pluggy.__file__).parents[1]}:
        for entry in base.iterdir():
            lowered = entry.name.lower()
            if lowered.startswith(("gnn", "__editable__")) or (site / entry.name).exists():
                continue
            (site / entry.name).symlink_to(entry)
    env = root / "gnn-env"
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(Path(gnn.core.__file__).parent, env / "gnn" / "core", ignore=ignore)
    shutil.copytree(Path(gnn.nn.__file__).parent, env / "gnn" / "nn", ignore=ignore)
    (env / "gnn" / "pool").mkdir()
    (env / "gnn" / "pool" / "__init__.py").write_text('__version__ = "0.0.9"\n')
    for dist, version, entry_points in (
        ("gnn_core", "0.1.0", "[gnn]\ncore = gnn.core._plugin\n"),
        ("gnn_pool", "0.0.9", ""),
    ):
        info = env / f"{dist}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {dist.replace('_', '-')}\nVersion: {version}\n"
        )
        (info / "entry_points.txt").write_text(entry_points)
    return {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": os.pathsep.join([str(env), str(site)])}


def test_core_only_environment_gives_install_hints(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import json, sys
        out = {"gnn_path": list(__import__("gnn").__path__)}
        import gnn.nn
        from gnn.nn import MessagePassing, MeanAggregation
        out["core"] = MessagePassing.__module__ + "," + MeanAggregation.__module__
        out["errors"] = {}
        out["hasattr"] = {}
        for name in ["GCNConv", "MultiAggregation", "TopKPooling", "GCN", "HeteroConv", "conv", "kernels", "pool",
                     "NoSuchName"]:
            try:
                getattr(gnn.nn, name)
            except (ImportError, AttributeError) as error:
                kind = "AttributeError" if isinstance(error, AttributeError) else type(error).__name__
                out["errors"][name] = [kind, str(error)]
                try:
                    exec(f"from gnn.nn import {name}", {})
                except ImportError as imported:
                    out["errors"][name].append(str(imported))
            out["hasattr"][name] = hasattr(gnn.nn, name)
        out["all"] = gnn.nn.__all__
        from gnn.core import registry
        out["mean"] = registry.aggregations.lookup("mean").__name__
        print(json.dumps(out))
        """
    )
    proc = subprocess.run(
        [sys.executable, "-S", "-c", script],
        capture_output=True,
        text=True,
        env=_core_only_env(tmp_path),
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.splitlines()[-1])
    assert out["gnn_path"] == [str(tmp_path / "gnn-env" / "gnn")]  # really only our copy
    assert out["core"] == "gnn.core.message_passing,gnn.core.aggr.basic"
    errors = out["errors"]
    hint = (
        "gnn.nn.{} is provided by the distribution '{}', which is not installed: pip install {} (from a "
        "checkout of gnn: pip install ./packages/{} together with the ./packages/gnn-* folders it depends "
        "on, or pip install --find-links dist {} after nox -s build)"
    )
    for name, dist in [("GCNConv", "gnn-conv"), ("MultiAggregation", "gnn-aggr"), ("GCN", "gnn-models"),
                       ("HeteroConv", "gnn-hetero"), ("conv", "gnn-conv"), ("kernels", "gnn-kernels")]:  # fmt: skip
        message = hint.format(name, dist, dist, dist, dist)
        assert errors[name] == ["AttributeError", message, message]  # attribute access and from-import
        assert out["hasattr"][name] is False
    assert errors["TopKPooling"][1] == (
        "gnn.nn.TopKPooling: the installed distribution gnn-pool 0.0.9 does not define 'TopKPooling' "
        "in gnn.pool yet; a newer gnn-pool may (pip install -U gnn-pool, or reinstall it from a newer "
        "checkout: pip install ./packages/gnn-pool)"
    )
    assert "pool" not in errors  # gnn.pool exists (empty)
    assert errors["NoSuchName"][0] == "AttributeError"
    assert errors["NoSuchName"][2].startswith("cannot import name 'NoSuchName'")  # Python's own message
    # with gnn-core alone, ``import *`` gives exactly the core names that gnn.core defines
    expected = [n for n, (_, d) in NAMES.items() if d == "gnn-core" and hasattr(gnn.core, n)]
    assert out["all"] == expected
    assert out["mean"] == "MeanAggregation"
