"""Third-party plugins end to end (see the README of gnn-core).

Registries are process-global, so every scenario runs in a fresh interpreter.
Plugins are real installed distributions: a ``<name>-<version>.dist-info``
folder (METADATA + entry_points.txt) next to the plugin's module, on the
subprocess's ``PYTHONPATH`` — exactly what ``importlib.metadata`` finds after
``pip install``. The example plugin of ``examples/plugin`` is used as
installed when it is, else installed the same way from its sources, so these
tests run in every environment that has gnn-core.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "plugin"


def install_dist(
    root: Path, dist: str, version: str, entry_points: dict[str, str], files: dict[str, str]
) -> None:
    """Install a distribution into ``root`` the way pip lays it out (without pip)."""
    root.mkdir(parents=True, exist_ok=True)
    for relative, source in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    lines = "".join(f"{name} = {target}\n" for name, target in entry_points.items())
    (info / "entry_points.txt").write_text(f"[gnn]\n{lines}")


@pytest.fixture(scope="module")
def example_paths(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """``PYTHONPATH`` entries that make gnn-example-plugin installed."""
    if importlib.util.find_spec("gnn_example_plugin") is not None:
        return []
    project = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]
    root = tmp_path_factory.mktemp("example-plugin")
    package = EXAMPLE / "src" / "gnn_example_plugin"
    files = {f"gnn_example_plugin/{p.name}": p.read_text() for p in package.glob("*.py")}
    install_dist(root, project["name"], project["version"], project["entry-points"]["gnn"], files)
    return [str(root)]


def _environ(paths: list[str], **env: str) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if k not in ("GNN_DISABLE_PLUGINS", "GNN_KERNELS")}
    environ["PYTHONPATH"] = os.pathsep.join([*paths, *filter(None, [os.environ.get("PYTHONPATH")])])
    environ.update(env)
    return environ


def cli(paths: list[str]) -> subprocess.CompletedProcess[str]:
    """``python -m gnn.core plugins`` with ``paths`` installed."""
    proc = subprocess.run(
        [sys.executable, "-m", "gnn.core", "plugins"],
        capture_output=True,
        text=True,
        env=_environ(paths),
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return proc


def run(script: str, paths: list[str], strict: bool = True, **env: str) -> dict:
    """Run ``script`` in a fresh interpreter; it prints one JSON object last.

    With ``strict``, a :class:`PluginWarning` the script does not catch is an error.
    """
    proc = subprocess.run(
        [sys.executable, "-c", (PRELUDE if strict else "") + textwrap.dedent(script)],
        capture_output=True,
        text=True,
        env=_environ(paths, **env),
        timeout=120,
    )
    assert proc.returncode == 0, f"subprocess failed:\n{proc.stdout}\n{proc.stderr}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


# A PluginWarning the scenario does not catch itself fails it; those of gnn's own
# distributions (say, gnn-kernels installed without its compiled library) are not
# what these tests are about.
FIRST_PARTY = re.compile(r" from gnn-(core|aggr|conv|pool|models|hetero|kernels) ")
PRELUDE = """
import json, sys, warnings
from gnn.core import PluginWarning
warnings.simplefilter("error", PluginWarning)
warnings.filterwarnings(
    "ignore", message=r".* from gnn-(core|aggr|conv|pool|models|hetero|kernels) ", category=PluginWarning
)
"""


# -- the example plugin ---------------------------------------------------------------------
def test_cli_lists_example_plugin(example_paths: list[str]) -> None:
    proc = cli(example_paths)
    rows = [line.split(None, 4) for line in proc.stdout.splitlines()]
    row = next(r for r in rows if r[0] == "example")
    assert row[1:4] == ["gnn-example-plugin", "0.1.0", "ok"]
    assert row[4] == "aggregations: logsumexp; convs: hiddenmean"
    assert proc.stderr == ""  # no PluginWarning


@pytest.fixture(scope="module")
def example_run(example_paths: list[str]) -> dict:
    """One fresh interpreter exercising discovery, laziness and resolution."""
    return run(
        """
        import torch
        from gnn.core import MessagePassing, plugins, registry

        out = {}
        out["loaded_before"] = plugins.is_loaded()
        plugins.load()
        out["conv_module_after_discovery"] = "gnn_example_plugin.conv" in sys.modules
        out["aggr_module_after_discovery"] = "gnn_example_plugin.aggr" in sys.modules
        info = [p for p in plugins.plugins() if p.name == "example"]
        out["info"] = [[p.dist, p.version, p.module, p.status, p.registered] for p in info]

        from gnn_example_plugin.aggr import LogSumExpAggregation
        names = {}
        for query in ["logsumexp", "LogSumExpAggregation", "LOGSUMEXP", "log_sum_exp",
                      "gnn-example-plugin:logsumexp", "gnn_example_plugin:LogSumExpAggregation"]:
            names[query] = registry.aggregations.lookup(query) is LogSumExpAggregation
        out["conv_module_before_resolution"] = "gnn_example_plugin.conv" in sys.modules
        conv = registry.convs.resolve("hiddenmean", 3, 5)
        out["conv_module_after_resolution"] = "gnn_example_plugin.conv" in sys.modules
        from gnn_example_plugin.conv import HiddenMeanConv
        for query in ["hiddenmean", "HiddenMeanConv", "gnn-example-plugin:hiddenmean"]:
            names[query] = registry.convs.lookup(query) is HiddenMeanConv
        out["names"] = names
        out["conv_repr"] = repr(conv)

        class Plain(MessagePassing):
            def forward(self, x, edge_index):
                return self.propagate(edge_index, x=x)

        torch.manual_seed(0)
        x = torch.randn(6, 3) * 10  # large values: the shifted form must not overflow
        edge_index = torch.tensor([[0, 1, 2, 3, 4, 0, 5, 5], [1, 1, 1, 2, 2, 4, 4, 0]])
        results = {}
        for aggr in ["logsumexp", "LogSumExpAggregation", "gnn-example-plugin:logsumexp"]:
            layer = Plain(aggr=aggr)
            results[aggr] = [type(layer.aggr_module).__name__, layer(x, edge_index).tolist()]
        out["mp"] = results
        out["x"] = x.tolist()
        out["edge_index"] = edge_index.tolist()
        print(json.dumps(out))
        """,
        example_paths,
    )


def test_discovery_records_distribution_and_version(example_run: dict) -> None:
    assert example_run["loaded_before"] is False
    [[dist, version, module, status, registered]] = example_run["info"]
    assert (dist, version, module, status) == (
        "gnn-example-plugin",
        "0.1.0",
        "gnn_example_plugin.plugin",
        "ok",
    )
    assert registered == {"aggregations": ["logsumexp"], "convs": ["hiddenmean"]}


def test_lazy_component_is_imported_only_on_resolution(example_run: dict) -> None:
    assert example_run["aggr_module_after_discovery"] is True  # registered eagerly
    assert example_run["conv_module_after_discovery"] is False
    assert example_run["conv_module_before_resolution"] is False
    assert example_run["conv_module_after_resolution"] is True
    assert example_run["conv_repr"] == "HiddenMeanConv(3, 5)"


def test_short_long_and_distribution_qualified_names(example_run: dict) -> None:
    assert example_run["names"] == dict.fromkeys(example_run["names"], True)
    assert len(example_run["names"]) == 9


def test_message_passing_with_plugin_aggregation(example_run: dict) -> None:
    import torch

    x = torch.tensor(example_run["x"], dtype=torch.float64)
    src, dst = example_run["edge_index"]
    expected = torch.zeros(6, 3, dtype=torch.float64)
    for i in range(6):
        incoming = [x[j] for j, k in zip(src, dst) if k == i]
        if incoming:  # log(sum(exp)) written out, per feature, in float64
            expected[i] = torch.stack(incoming).exp().sum(0).log()
    assert set(example_run["mp"]) == {"logsumexp", "LogSumExpAggregation", "gnn-example-plugin:logsumexp"}
    for name, (cls, out) in example_run["mp"].items():
        assert cls == "LogSumExpAggregation", name
        torch.testing.assert_close(torch.tensor(out, dtype=torch.float64), expected, rtol=1e-5, atol=1e-5)
    assert expected[3].abs().sum() == 0 and expected[5].abs().sum() == 0  # isolated receivers give 0


# -- broken plugins ---------------------------------------------------------------------------
def _aggregation_module(
    class_name: str, body: str = "return self.reduce(x, index, ptr, dim_size, dim)"
) -> str:
    return f"""
    from gnn.core import Aggregation, hookimpl

    class {class_name}(Aggregation):
        def forward(self, x, index=None, ptr=None, dim_size=None, dim=-2):
            {body}
    """


def install_broken(root: Path) -> None:
    install_dist(
        root, "gnn-bad-import", "0.0.1", {"badimport": "gnn_bad_import"},
        {"gnn_bad_import.py": "import gnn_module_that_does_not_exist\n"},
    )  # fmt: skip
    install_dist(
        root, "gnn-bad-hook", "0.0.2", {"badhook": "gnn_bad_hook"},
        {"gnn_bad_hook.py": _aggregation_module("GoodPartAggregation") + """
    @hookimpl
    def gnn_register_aggregations(register):
        register(GoodPartAggregation)

    @hookimpl
    def gnn_register_convs(register):
        raise RuntimeError("hook exploded")
    """},
    )  # fmt: skip
    install_dist(
        root, "gnn-bad-reserved", "0.0.3", {"badreserved": "gnn_bad_reserved"},
        {"gnn_bad_reserved.py": _aggregation_module("ReservedMean", "return x.new_full((dim_size, x.size(-1)), 42.0)")
         + """
    @hookimpl
    def gnn_register_aggregations(register):
        register(ReservedMean, name="mean")
    """},
    )  # fmt: skip
    install_dist(
        root, "gnn-bad-malformed", "0.0.4", {"badmalformed": "gnn_bad_malformed"},
        {"gnn_bad_malformed.py": """
    from gnn.core import hookimpl

    @hookimpl
    def gnn_register_aggregations(register):
        register(42)
    """},
    )  # fmt: skip


def test_broken_plugins_warn_and_everything_else_works(tmp_path: Path, example_paths: list[str]) -> None:
    install_broken(tmp_path)
    out = run(
        """
        import json, warnings
        import torch
        from gnn.core import MeanAggregation, PluginWarning, plugins, registry

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            plugins.load()
        out = {"warnings": [[w.category.__name__, str(w.message)] for w in caught]}
        out["status"] = {p.name: p.status for p in plugins.plugins()}
        out["mean_is_core"] = registry.aggregations.lookup("mean") is MeanAggregation
        x = torch.tensor([[1.0], [3.0]])
        index = torch.tensor([0, 0])
        out["mean"] = registry.aggregations.resolve("mean")(x, index).tolist()
        out["qualified_mean"] = registry.aggregations.resolve("gnn-bad-reserved:mean")(x, index).tolist()
        out["core_mean"] = registry.aggregations.lookup("gnn-core:mean") is MeanAggregation
        out["goodpart"] = registry.aggregations.lookup("goodpart").__name__
        out["logsumexp"] = registry.aggregations.resolve("logsumexp")(x, index).tolist()
        out["convs"] = sorted({e.dist for e in registry.convs.entries()})
        print(json.dumps(out))
        """,
        [str(tmp_path), *example_paths],
    )
    messages = [message for category, message in out["warnings"] if not FIRST_PARTY.search(message)]
    assert {category for category, _ in out["warnings"]} == {"PluginWarning"}, out["warnings"]
    expected = {
        "badimport": ("gnn-bad-import", "0.0.1", "gnn_module_that_does_not_exist"),
        "badhook": ("gnn-bad-hook", "0.0.2", "hook exploded"),
        "badreserved": ("gnn-bad-reserved", "0.0.3", "reachable only as 'gnn-bad-reserved:mean'"),
        "badmalformed": ("gnn-bad-malformed", "0.0.4", "42"),
    }
    assert len(messages) == len(expected), messages
    for entry_point, (dist, version, detail) in expected.items():
        [message] = [m for m in messages if f"'{entry_point}'" in m]
        assert f"{dist} {version}" in message and detail in message, message
    assert out["status"]["badimport"] == "failed"
    assert out["status"]["badmalformed"] == "failed"
    assert out["status"]["example"] == "ok" and out["status"]["core"] == "ok"
    # everything else keeps working; the reserved name stays gnn-core's
    assert out["mean_is_core"] and out["core_mean"]
    assert out["mean"] == [[2.0]]
    assert out["qualified_mean"] == [[42.0]]
    assert out["goodpart"] == "GoodPartAggregation"  # the bad hook's other hook succeeded
    assert out["logsumexp"][0] == pytest.approx([math.log(math.exp(1.0) + math.exp(3.0))])
    assert "gnn-bad-hook" not in out["convs"]


def test_cli_reports_broken_plugins(tmp_path: Path) -> None:
    install_broken(tmp_path)
    proc = cli([str(tmp_path)])
    table = proc.stdout.split("\n\n")[0]
    rows = {line.split()[0]: line.split(None, 4) for line in table.splitlines()}
    assert rows["badimport"][1:4] == ["gnn-bad-import", "0.0.1", "failed"]
    assert rows["badreserved"][1:5] == ["gnn-bad-reserved", "0.0.3", "ok", "aggregations: mean"]
    assert "badimport (gnn-bad-import 0.0.1): failed to import" in proc.stdout
    warnings = [
        line
        for line in proc.stderr.splitlines()
        if line.startswith("warning: ") and not FIRST_PARTY.search(line)
    ]
    assert len(warnings) == 4, proc.stderr


def test_same_new_name_from_two_plugins_is_ambiguous(tmp_path: Path) -> None:
    for letter, value in (("a", 1.0), ("b", 2.0)):
        install_dist(
            tmp_path, f"gnn-dup-{letter}", "1.0", {f"dup{letter}": f"gnn_dup_{letter}"},
            {f"gnn_dup_{letter}.py": _aggregation_module("Twin", f"return x.new_full((dim_size, x.size(-1)), {value})")
             + """
    @hookimpl
    def gnn_register_aggregations(register):
        register(Twin, name="twin")
    """},
        )  # fmt: skip
    out = run(
        """
        import torch
        from gnn.core import MessagePassing, registry
        out = {}
        try:
            registry.aggregations.lookup("twin")
        except ValueError as error:
            out["error"] = str(error)
        try:
            MessagePassing(aggr="twin")
        except ValueError as error:
            out["mp_error"] = str(error)
        x, index = torch.ones(2, 1), torch.tensor([0, 0])
        out["a"] = registry.aggregations.resolve("gnn-dup-a:twin")(x, index).tolist()
        out["b"] = MessagePassing(aggr="gnn-dup-b:twin").aggr_module(x, index).tolist()
        out["contains"] = "twin" in registry.aggregations
        print(json.dumps(out))
        """,
        [str(tmp_path)],
    )
    for key in ("error", "mp_error"):
        assert "gnn-dup-a" in out[key] and "gnn-dup-b" in out[key], out
        assert "'gnn-dup-a:twin'" in out[key]
    assert out["a"] == [[1.0]] and out["b"] == [[2.0]]
    assert out["contains"] is False  # ambiguous: not resolvable as a bare name


@pytest.mark.parametrize("disabled", ["example", "someother, gnn-example-plugin", "GNN_Example.plugin"])
def test_disable_plugins_by_entry_point_or_distribution(example_paths: list[str], disabled: str) -> None:
    out = run(
        """
        from gnn.core import plugins, registry
        out = {"status": {p.name: p.status for p in plugins.plugins()}}
        out["plugin_imported"] = "gnn_example_plugin.plugin" in sys.modules
        out["logsumexp"] = "logsumexp" in registry.aggregations
        out["mean"] = "mean" in registry.aggregations
        try:
            registry.aggregations.lookup("logsumexp")
        except ValueError as error:
            out["error"] = str(error)
        print(json.dumps(out))
        """,
        example_paths,
        GNN_DISABLE_PLUGINS=disabled,
    )
    assert out["status"]["example"] == "disabled"
    assert out["status"]["core"] == "ok"
    assert out["plugin_imported"] is False
    assert out["logsumexp"] is False and out["mean"] is True
    assert "unknown aggregations name 'logsumexp'" in out["error"]


def test_concurrent_discovery_loads_each_plugin_once(tmp_path: Path, example_paths: list[str]) -> None:
    install_dist(
        tmp_path, "gnn-slow", "0.2", {"slow": "gnn_slow"},
        {"gnn_slow.py": _aggregation_module("SlowAggregation") + """
    import time
    CALLS = []

    @hookimpl
    def gnn_register_aggregations(register):
        CALLS.append(1)
        time.sleep(0.3)  # widen the window in which a second thread could start discovery again
        register(SlowAggregation)
    """},
    )  # fmt: skip
    out = run(
        """
        import threading
        from gnn.core import plugins, registry
        barrier = threading.Barrier(2)
        found = [None, None]

        def worker(k):
            barrier.wait()
            found[k] = registry.aggregations.lookup("slow" if k else "logsumexp").__name__

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        import gnn_slow
        out = {
            "found": found,
            "calls": len(gnn_slow.CALLS),
            "entries": len(registry.aggregations.entries("slow")),
            "infos": sorted(p.name for p in plugins.plugins()).count("slow"),
            "example_infos": sorted(p.name for p in plugins.plugins()).count("example"),
            "means": len(registry.aggregations.entries("mean")),
        }
        print(json.dumps(out))
        """,
        [str(tmp_path), *example_paths],
    )
    assert out == {
        "found": ["LogSumExpAggregation", "SlowAggregation"],
        "calls": 1,
        "entries": 1,
        "infos": 1,
        "example_infos": 1,
        "means": 1,
    }


def test_plugin_using_a_registry_while_being_loaded(tmp_path: Path) -> None:
    """A plugin may look up a first-party component at import time: discovery still runs once."""
    install_dist(
        tmp_path, "gnn-derived", "0.3", {"derived": "gnn_derived"},
        {"gnn_derived.py": """
    from gnn.core import hookimpl, registry

    class LoudMeanAggregation(registry.aggregations.lookup("mean")):
        pass

    @hookimpl
    def gnn_register_aggregations(register):
        register(LoudMeanAggregation)
    """},
    )  # fmt: skip
    out = run(
        """
        from gnn.core import MeanAggregation, plugins, registry
        infos = [p.name for p in plugins.plugins()]
        out = {
            "loudmean": registry.aggregations.lookup("loudmean").__mro__[1] is MeanAggregation,
            "duplicated_infos": sorted({n for n in infos if infos.count(n) > 1}),
            "means": len(registry.aggregations.entries("mean")),
            "status": [p.status for p in plugins.plugins() if p.name == "derived"],
        }
        print(json.dumps(out))
        """,
        [str(tmp_path)],
    )
    assert out == {"loudmean": True, "duplicated_infos": [], "means": 1, "status": ["ok"]}
