"""Aggregations side by side with PyG (issue 17, "Aggregations at memory speed").

Every row runs, in one process and interleaved (one call of each in turn, median of
``--repeat`` after a warm-up):

  * gnn with the default backend selection (gnn-kernels' compiled kernels when installed),
  * gnn forced to the pure-torch reference (``ops.backend("torch")``, as ``GNN_KERNELS=torch``),
  * PyG 2.8.1, when installed,

on the same inputs: ``x`` ``[elements, features]`` float32 grouped into ``groups`` groups by a
random ``index`` (unsorted) or the same index sorted (``ptr`` rows: a sorted batch vector), and
for PNAConv a random graph of ``--nodes`` nodes and ``--edges`` edges. Before timing, gnn's
output is checked against PyG's (PyG's weights loaded into gnn with ``strict=True``).

Rows (fwd: forward only; fwd+bwd: forward and backward of the output's sum):

  * MaxAggregation fwd (unsorted), SoftmaxAggregation(learn=True) fwd+bwd (unsorted),
    StdAggregation fwd+bwd (unsorted), MultiAggregation(["mean", "max", "std"]) fwd+bwd (sorted),
    PNAConv(64, 64, 4 aggregators, 3 scalers) fwd+bwd;
  * the same with Max/Softmax/Std fwd+bwd (the rows of the earlier table), global mean pooling;
  * sum / mean / max forward on the sorted index against the read-once floor: the time to read
    ``x`` once at this machine's copy bandwidth (``elements * features * 4`` bytes divided by the
    bandwidth of a 256 MB copy, which counts its read and its write).

Peak memory (``--memory``, on by default): the extra resident memory of one call, measured in a
fresh process per row and variant (the kernel's high-water mark reset after set-up), as in
bench_layers.py.

Usage: python benchmarks/bench_aggr.py [--elements 1000000] [--features 64] [--groups 100000]
       [--nodes 100000] [--edges 1000000] [--repeat 3] [--rows NAME ...] [--no-memory] [--markdown]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import torch
from timing import interleaved_median_ms, median_ms, peak_rss_mb

from gnn.core import ops, testing

AGGRS = ["mean", "min", "max", "std"]
SCALERS = ["identity", "amplification", "attenuation"]
ROWS = [
    "MaxAggregation fwd",
    "SoftmaxAggregation fwd+bwd",
    "StdAggregation fwd+bwd",
    "MultiAggregation fwd+bwd sorted",
    "PNAConv fwd+bwd",
    "MaxAggregation fwd+bwd",
    "global_mean_pool fwd+bwd sorted",
    "sum fwd sorted",
    "mean fwd sorted",
    "max fwd sorted",
]


def inputs(args: argparse.Namespace) -> dict:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(args.elements, args.features, generator=g)
    index = torch.randint(0, args.groups, (args.elements,), generator=g)
    return {"x": x, "index": index, "sorted": index.sort().values, "groups": args.groups}


def pna_inputs(args: argparse.Namespace) -> dict:
    x, edge_index = testing.random_graph(args.nodes, args.edges, 64, seed=1)
    in_deg = torch.bincount(edge_index[1], minlength=args.nodes)
    return {"x": x, "edge_index": edge_index, "deg": torch.bincount(in_deg)}


def make(row: str, lib: str, data: dict) -> tuple[torch.nn.Module | None, Callable[[], torch.Tensor]]:
    """``(module, call)`` of ``row`` in ``lib`` ("gnn" or "pyg")."""
    if lib == "gnn":
        import gnn.aggr as A
        import gnn.conv as C
    else:
        import torch_geometric.nn as C
        import torch_geometric.nn.aggr as A
    groups = data.get("groups")
    if row.startswith("PNAConv"):
        module = C.PNAConv(64, 64, AGGRS, SCALERS, data["deg"])
        return module, lambda: module(data["x"], data["edge_index"])
    if row.startswith("global_mean_pool"):
        if lib == "gnn":
            module = A.MeanAggregation()
            return module, lambda: module(data["x"], data["sorted"], dim_size=groups)
        return None, lambda: C.global_mean_pool(data["x"], data["sorted"], groups)
    name, index = row.split()[0], data["sorted" if row.endswith("sorted") else "index"]
    if name in ("sum", "mean", "max"):
        module = getattr(A, name.capitalize() + "Aggregation")()
    elif name == "SoftmaxAggregation":
        module = A.SoftmaxAggregation(learn=True)
    elif name == "MultiAggregation":
        module = A.MultiAggregation(["mean", "max", "std"])
    else:
        module = getattr(A, name)()
    return module, lambda: module(data["x"], index, dim_size=groups)


def setup(row: str, args: argparse.Namespace) -> tuple[dict, dict[str, Callable[[], None]]]:
    """The row's inputs and its timed callables (gnn, gnn on pure torch, PyG if installed)."""
    data = pna_inputs(args) if row.startswith("PNAConv") else inputs(args)
    backward = "bwd" in row
    data["x"].requires_grad_(backward and not row.startswith("PNAConv"))
    libs = ["gnn"]
    try:
        import torch_geometric  # noqa: F401

        libs.append("pyg")
    except ImportError:
        pass
    calls = {lib: make(row, lib, data) for lib in libs}
    if "pyg" in calls and calls["gnn"][0] is not None and calls["pyg"][0] is not None:
        testing.load_pyg_state(calls["gnn"][0], calls["pyg"][0])
    if "pyg" in calls:  # the same numbers before timing
        with torch.no_grad():
            torch.testing.assert_close(calls["gnn"][1](), calls["pyg"][1](), atol=2e-4, rtol=2e-4)

    def timed(call: Callable[[], torch.Tensor], backend: str | None = None) -> Callable[[], None]:
        def run() -> None:
            for p in [data["x"], *([] if calls["gnn"][0] is None else calls["gnn"][0].parameters())]:
                p.grad = None
            with ops.backend(backend) if backend else _nothing():
                if backward:
                    call().sum().backward()
                else:
                    with torch.no_grad():
                        call()

        return run

    fns = {"gnn": timed(calls["gnn"][1]), "gnn torch": timed(calls["gnn"][1], "torch")}
    if "pyg" in calls:
        fns["pyg"] = timed(calls["pyg"][1])
    data["modules"] = [module for module, _ in calls.values() if module is not None]
    return data, fns


def clear_grads(data: dict) -> None:
    """Drop the gradients of ``x`` and of every module's parameters."""
    data["x"].grad = None
    for module in data["modules"]:
        for p in module.parameters():
            p.grad = None


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def bandwidth_gbs() -> float:
    """Copy bandwidth (read + write) through torch, GB/s, on 256 MB buffers."""
    a = torch.empty(64 * 2**20, dtype=torch.float32).normal_()
    b = torch.empty_like(a)
    ms = median_ms(lambda: b.copy_(a), 7)
    return 2 * a.numel() * 4 / (ms / 1e3) / 1e9


def read_once_ms(args: argparse.Namespace) -> float:
    """A plain read of x ``[elements, features]``: torch's vectorized ``x.sum()``."""
    x = torch.randn(args.elements, args.features)
    return median_ms(lambda: x.sum(), 7)


def peak_memory_mb(row: str, variant: str, args: argparse.Namespace) -> float:
    """Extra peak RSS (MB) of one call of ``row`` by ``variant``, in a fresh process."""
    argv = [
        f"--elements={args.elements}",
        f"--features={args.features}",
        f"--groups={args.groups}",
        f"--nodes={args.nodes}",
        f"--edges={args.edges}",
    ]
    code = f"""
import gc
import sys
import bench_aggr as b
args = b.parse({argv!r})
data, fns = b.setup({row!r}, args)
run = fns[{variant!r}]
run()  # warm-ups: caches (the sorted index, the CSR) and allocator, as in the timed runs
run()


b.clear_grads(data)  # what the last call left (its gradients) is not part of the next one
gc.collect()
"""
    return peak_rss_mb(code, trim=True)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--elements", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=64)
    parser.add_argument("--groups", type=int, default=100_000)
    parser.add_argument("--nodes", type=int, default=100_000)
    parser.add_argument("--edges", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rows", nargs="*", default=None, help="row names (prefixes) to run")
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--markdown", action="store_true")
    args, _ = parser.parse_known_args(argv)  # nox's bench session passes the same arguments to every script
    return args


def main() -> None:
    args = parse()
    rows = [r for r in ROWS if args.rows is None or any(r.startswith(p) for p in args.rows)]
    bw = bandwidth_gbs()
    floor_ms = args.elements * args.features * 4 / (bw * 1e9) * 1e3
    sum_ms = read_once_ms(args)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, gnn backends {ops.available()}; "
        f"x [{args.elements}, {args.features}] float32 into {args.groups} groups; PNA {args.nodes} nodes, "
        f"{args.edges} edges; median of {args.repeat} (ms); copy bandwidth {bw:.1f} GB/s, "
        f"read-once floor {floor_ms:.1f} ms (x.sum() takes {sum_ms:.1f} ms)"
    )
    header = ["row", "gnn", "gnn torch", "PyG", "PyG / gnn", "PyG / gnn torch", "gnn / floor"]
    if not args.no_memory:
        header += ["peak gnn MB", "peak PyG MB", "gnn / PyG memory"]
    lines = []
    for row in rows:
        _, fns = setup(row, args)
        ms = interleaved_median_ms(fns, args.repeat)
        pyg = ms.get("pyg")
        line = [
            row,
            f"{ms['gnn']:.1f}",
            f"{ms['gnn torch']:.1f}",
            "-" if pyg is None else f"{pyg:.1f}",
            "-" if pyg is None else f"{pyg / ms['gnn']:.2f}x",
            "-" if pyg is None else f"{pyg / ms['gnn torch']:.2f}x",
            f"{ms['gnn'] / floor_ms:.2f}" if row.endswith("fwd sorted") else "",
        ]
        if not args.no_memory:
            mine = peak_memory_mb(row, "gnn", args)
            theirs = peak_memory_mb(row, "pyg", args) if pyg is not None else None
            line += [
                f"{mine:.0f}",
                "-" if theirs is None else f"{theirs:.0f}",
                "-" if not theirs else f"{mine / theirs:.2f}",
            ]
        lines.append(line)
        print("  ".join(line), flush=True)
    if args.markdown:
        print("| " + " | ".join(header) + " |")
        print("| --- " + "| ---: " * (len(header) - 1) + "|")
        for line in lines:
            print("| " + " | ".join(line) + " |")


if __name__ == "__main__":
    main()
