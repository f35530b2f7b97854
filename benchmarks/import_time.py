"""How much time gnn adds to ``import torch`` (``import gnn.core`` loads no plugin).

Each measurement runs in a fresh interpreter that first imports torch, then
times one step with ``time.perf_counter``; the median over ``--runs``
interpreters is reported. Steps:

* ``import gnn.core``            the budget is 0.15 s
* ``import gnn.nn``              the lazy facade
* ``gnn.core.MessagePassing``    first attribute access (imports message passing and ops)
* ``plugins.load()``             entry-point discovery of every installed plugin
* ``import torch_geometric.nn``  PyG, side by side, when installed

Usage: ``python benchmarks/import_time.py [--runs 7] [--check]`` (``--check``
exits 1 when ``import gnn.core`` exceeds the budget).
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys

BUDGET_S = 0.15

STEPS = {
    "import gnn.core": ("", "import gnn.core"),
    "import gnn.nn": ("", "import gnn.nn"),
    "gnn.core.MessagePassing": ("import gnn.core", "gnn.core.MessagePassing"),
    "plugins.load() (discovery)": ("from gnn.core import plugins", "plugins.load()"),
    "import torch_geometric.nn (PyG)": ("", "import torch_geometric.nn"),
}

TEMPLATE = """
import time, warnings
warnings.simplefilter("ignore")
import torch
{setup}
start = time.perf_counter()
{step}
print(time.perf_counter() - start)
"""


def measure(setup: str, step: str, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        script = TEMPLATE.format(setup=setup, step=step)
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
        times.append(float(out.stdout.strip().splitlines()[-1]))
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--check", action="store_true", help="exit 1 if import gnn.core is over budget")
    args = parser.parse_args()

    print(f"added import time beyond `import torch`, median of {args.runs} fresh interpreters")
    results = {}
    for name, (setup, step) in STEPS.items():
        if "torch_geometric" in step and importlib.util.find_spec("torch_geometric") is None:
            print(f"  {name:<34} (not installed)")
            continue
        times = measure(setup, step, args.runs)
        results[name] = statistics.median(times)
        print(
            f"  {name:<34} {1000 * results[name]:8.1f} ms   (min {1000 * min(times):.1f}, max {1000 * max(times):.1f})"
        )
    core = results["import gnn.core"]
    verdict = "within" if core <= BUDGET_S else "OVER"
    print(f"import gnn.core: {1000 * core:.1f} ms, {verdict} the {1000 * BUDGET_S:.0f} ms budget")
    return 1 if args.check and core > BUDGET_S else 0


if __name__ == "__main__":
    sys.exit(main())
