"""Small graphs: forward+backward of GCN, SAGE, GIN and GAT on a 30-node, 60-edge graph, gnn vs
PyG side by side (the core consolidation issue's overhead target: at least PyG's speed).

Mini-batches of small graphs are what many users train on; at this size a layer call is
dominated by per-call Python and dispatch overhead, not by arithmetic. Both libraries run
one thread; calls of gnn and PyG alternate (interleaved), each timed with the thread's CPU
clock (``time.thread_time``), which a loaded machine disturbs less than the wall clock.
Validation stays on (gnn's default). Prints a markdown table of medians (us) and PyG / gnn.

Usage: python benchmarks/bench_small.py [--nodes 30] [--edges 60] [--features 32]
       [--repeat 15] [--calls 200] [--layers GCN SAGE]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import gnn.nn as ours

try:
    import torch_geometric.nn as pyg
except ImportError:  # pragma: no cover - PyG is the reference of this benchmark
    raise SystemExit("bench_small.py compares with PyG: pip install torch_geometric==2.8.1") from None


def build(lib, name: str, features: int) -> torch.nn.Module:
    if name == "GCN":
        return lib.GCNConv(features, features)
    if name == "SAGE":
        return lib.SAGEConv(features, features)
    if name == "GIN":
        mlp = torch.nn.Sequential(
            torch.nn.Linear(features, features), torch.nn.ReLU(), torch.nn.Linear(features, features)
        )
        return lib.GINConv(mlp)
    if name == "GAT":
        return lib.GATConv(features, features, heads=1)
    raise ValueError(f"unknown layer {name!r}")


def cpu_median_us(fns: dict[str, object], repeat: int, calls: int) -> dict[str, float]:
    """Median thread CPU time per call (us), the functions interleaved block by block."""
    for fn in fns.values():
        for _ in range(calls // 2):
            fn()
    times: dict[str, list[float]] = {key: [] for key in fns}
    for _ in range(repeat):
        for key, fn in fns.items():
            start = time.thread_time()
            for _ in range(calls):
                fn()
            times[key].append((time.thread_time() - start) / calls * 1e6)
    return {key: statistics.median(values) for key, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=30)
    parser.add_argument("--edges", type=int, default=60)
    parser.add_argument("--features", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--layers", nargs="+", default=["GCN", "SAGE", "GIN", "GAT"])
    args = parser.parse_args()
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(args.nodes, args.features, generator=g)
    edge_index = torch.randint(0, args.nodes, (2, args.edges), generator=g)
    print(f"{args.nodes} nodes, {args.edges} edges, {args.features} features; fwd+bwd, 1 thread, CPU time\n")
    print("| layer | gnn (us) | PyG (us) | PyG / gnn |")
    print("| --- | ---: | ---: | ---: |")
    for name in args.layers:
        torch.manual_seed(0)
        layers = {"gnn": build(ours, name, args.features), "pyg": build(pyg, name, args.features)}

        def step(layer: torch.nn.Module):
            return lambda: layer(x, edge_index).sum().backward()

        med = cpu_median_us({key: step(layer) for key, layer in layers.items()}, args.repeat, args.calls)
        print(f"| {name} | {med['gnn']:.0f} | {med['pyg']:.0f} | {med['pyg'] / med['gnn']:.2f}x |")


if __name__ == "__main__":
    main()
