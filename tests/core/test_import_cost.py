"""``import gnn.core`` (and ``import gnn.nn``) stay cheap and load no plugin (see the README of gnn-core).

Checked by what a fresh interpreter has imported, not by timing (see
``benchmarks/import_time.py`` for the numbers).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

SCRIPT = """
import json, sys
import torch
before = set(sys.modules)
import {target}
new = sorted(set(sys.modules) - before)
state = {{"new": new}}
{after}
print(json.dumps(state))
"""

HEAVY = ("pluggy", "gnn.core.plugins", "gnn.core.registry", "gnn.core.message_passing", "gnn.core.ops")


def fresh(target: str, after: str = "") -> dict:
    script = SCRIPT.format(target=target, after=textwrap.dedent(after))
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])


@pytest.mark.parametrize("target", ["gnn.core", "gnn.nn"])
def test_import_loads_nothing_heavy(target: str) -> None:
    new = fresh(target)["new"]
    assert not [m for m in new if m.startswith(HEAVY)], new
    assert not [m for m in new if m.endswith("._plugin")], new
    # nothing of gnn but the package itself (and the facade's static table)
    allowed = {"gnn", "gnn.core", "gnn.nn", "gnn.nn._names"}
    assert {m for m in new if m.split(".")[0] == "gnn"} <= allowed, new
    assert target in new


def test_public_attribute_access_does_not_discover_plugins() -> None:
    state = fresh(
        "gnn.core",
        """
        import gnn.core
        gnn.core.MessagePassing, gnn.core.MeanAggregation, gnn.core.hookimpl
        import gnn.nn
        gnn.nn.MessagePassing
        from gnn.core import plugins
        state["loaded"] = plugins.is_loaded()
        state["plugin_modules"] = [m for m in sys.modules if m.endswith("._plugin")]
        from gnn.core import registry
        registry.aggregations.lookup("mean")
        state["loaded_after_lookup"] = plugins.is_loaded()
        """,
    )
    assert state["loaded"] is False
    assert state["plugin_modules"] == []
    assert state["loaded_after_lookup"] is True  # discovery happens on first registry use
