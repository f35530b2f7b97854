"""gnn.models.GNN over a third-party conv: the example plugin's "hiddenmean" (examples/plugin),
resolved through the conv registry in a fresh interpreter."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

# the example plugin is installed (as pip would lay it out) by the helpers of test_plugins.py
_spec = importlib.util.spec_from_file_location(
    "_gnn_test_plugins", Path(__file__).with_name("test_plugins.py")
)
_plugins = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_plugins)


@pytest.fixture(scope="module")
def example_paths(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    return _plugins.example_paths.__wrapped__(tmp_path_factory)


SCRIPT = r"""
import json, torch
from gnn.models import GNN
from gnn_example_plugin.conv import HiddenMeanConv

torch.manual_seed(0)
x = torch.randn(6, 4)
edge_index = torch.tensor([[0, 1, 2, 3, 4, 5, 0], [1, 2, 3, 4, 5, 0, 3]])
model = GNN("hiddenmean", 4, 8, num_layers=3, out_channels=2, jk="cat", norm="batch_norm")
assert all(type(c) is HiddenMeanConv for c in model.convs)
# the same stack written out by hand
h, hs = x, []
for conv, norm in zip(model.convs, model.norms):
    h = torch.relu(norm(conv(h, edge_index)))
    hs.append(h)
expected = model.lin(torch.cat(hs, -1))
out = model(x, edge_index)
print(json.dumps({"repr": repr(model), "err": float((out - expected).abs().max()),
                  "edge_weight": model.supports_edge_weight, "shape": list(out.shape)}))
"""


def test_gnn_over_the_example_plugins_conv(example_paths: list[str]) -> None:
    env = _plugins._environ(example_paths)
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=180
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["repr"] == "GNN(HiddenMeanConv, 4, 2, num_layers=3)"
    assert result["err"] < 1e-5 and result["shape"] == [6, 2] and result["edge_weight"] is False
