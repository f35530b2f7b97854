"""Selection pools, gnn vs PyG, forward+backward (issue 13).

One batch of ``--graphs`` random graphs (``--nodes`` nodes and ``--edges`` edges in all, edges
inside each graph, ``--features`` features, sorted ``batch``) goes through TopKPooling,
SAGPooling, ASAPooling and EdgePooling of both libraries, with PyG's ``state_dict`` loaded into
ours. Each call is a forward and a backward of ``out.sum()`` (the input features require grad).
The two libraries run interleaved in one process (``timing.interleaved_median_ms``), so a change
of machine load hits both alike; the ratio PyG / gnn is printed. First, every output of the two is
checked to agree on a tenth of the graph in float64 (float32 for ASAPooling, which PyG runs in
float32 only; in float32, scores equal to within rounding
may be ranked differently: the two libraries sum in different orders, and a top-k cut or a
contraction order follows the ranking; ASAPooling's coarsened edges are compared in sorted order,
as PyG's come in its sparse product's order).

Peak memory: the extra resident memory of one forward+backward above the set-up state, each
library in a fresh process (``/proc/self/clear_refs`` resets the high-water mark; glibc's mmap
threshold is fixed at 64 KiB so that freed tensors leave the resident set), Linux only.

Usage: python benchmarks/bench_select_pool.py [--nodes 100000] [--edges 1000000] [--graphs 1000]
       [--features 64] [--repeat 5] [--pools TopK SAG ASAP Edge] [--no-memory] [--markdown]
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from timing import interleaved_median_ms, peak_rss_mb  # noqa: E402

POOLS = ("TopK", "SAG", "ASAP", "Edge")
CLASSES = {"TopK": "TopKPooling", "SAG": "SAGPooling", "ASAP": "ASAPooling", "Edge": "EdgePooling"}


def make_graph(nodes: int, edges: int, graphs: int, features: int, seed: int = 0):
    """Features ``[N, F]`` (requiring grad), ``edge_index`` with edges inside each graph, sorted ``batch``."""
    g = torch.Generator().manual_seed(seed)
    per_graph = nodes // graphs
    batch = torch.arange(graphs * per_graph) // per_graph
    gid = torch.randint(0, graphs, (edges,), generator=g)
    src = gid * per_graph + torch.randint(0, per_graph, (edges,), generator=g)
    dst = gid * per_graph + torch.randint(0, per_graph, (edges,), generator=g)
    x = torch.randn(graphs * per_graph, features, generator=g).requires_grad_()
    return x, torch.stack([src, dst]), batch


def pool_pair(name: str, features: int) -> tuple[torch.nn.Module, torch.nn.Module | None]:
    """``(ours, PyG's)`` with PyG's state loaded into ours (PyG's is ``None`` without PyG)."""
    import gnn.pool as ours

    mine = getattr(ours, CLASSES[name])(features)
    try:
        import torch_geometric.nn as pyg
    except ImportError:
        return mine, None
    theirs = getattr(pyg, CLASSES[name])(features)
    mine.load_state_dict(theirs.state_dict(), strict=True)
    return mine, theirs


def check_parity(name: str, args: argparse.Namespace) -> None:
    """Ours and PyG's give the same outputs (float64 but ASAP, a tenth of the benchmark graph)."""
    x, edge_index, batch = make_graph(
        args.nodes // 10, args.edges // 10, max(args.graphs // 10, 1), args.features, seed=1
    )
    ours, theirs = pool_pair(name, args.features)
    if name != "ASAP":  # PyG's ASAPooling runs in float32 only
        x = x.double()
        ours.double(), theirs.double()
    x = x.detach()
    call = (
        (lambda p: p(x, edge_index, batch)) if name == "Edge" else (lambda p: p(x, edge_index, batch=batch))
    )
    mine, reference = list(call(ours)), list(call(theirs))
    if name == "ASAP":  # (x, edge_index, edge_weight, batch, perm): edges in (row, col) order
        key = reference[1][0] * x.size(0) + reference[1][1]
        reference[1] = reference[1][:, torch.argsort(key)]
    if name == "Edge":  # the UnpoolInfo named tuples
        mine, reference = mine[:3] + list(mine[3]), reference[:3] + list(reference[3])
    for a, b in zip(mine, reference):
        if b is None:
            assert a is None
        else:
            torch.testing.assert_close(a, b)


def fwd_bwd(name: str, pool: torch.nn.Module, x, edge_index, batch) -> Callable[[], torch.Tensor]:
    def run() -> torch.Tensor:
        x.grad = None
        pool.zero_grad(set_to_none=True)
        out = pool(x, edge_index, batch) if name == "Edge" else pool(x, edge_index, batch=batch)
        out[0].sum().backward()
        return out[0]

    return run


def peak_memory_mb(name: str, library: str, args: argparse.Namespace) -> float:
    """Extra peak RSS (MB) of one forward+backward in a fresh process."""
    code = f"""
import sys
import torch
import bench_select_pool as b


x, ei, batch = b.make_graph({args.nodes}, {args.edges}, {args.graphs}, {args.features})
ours, theirs = b.pool_pair({name!r}, {args.features})
run = b.fwd_bwd({name!r}, ours if {library!r} == 'gnn' else theirs, x, ei, batch)
run()  # warm-up: caches and allocator, as in the timed runs
"""
    return peak_rss_mb(code, mmap_threshold=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--nodes", type=int, default=100_000)
    parser.add_argument("--edges", type=int, default=1_000_000)
    parser.add_argument("--graphs", type=int, default=1000)
    parser.add_argument("--features", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--pools", nargs="+", default=list(POOLS), choices=POOLS)
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--markdown", action="store_true")
    args, _ = parser.parse_known_args()  # nox's bench session passes the same arguments to every script

    torch.manual_seed(0)
    x, edge_index, batch = make_graph(args.nodes, args.edges, args.graphs, args.features)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; {x.size(0)} nodes, "
        f"{edge_index.size(1)} edges, {args.graphs} graphs, {args.features} features; "
        f"forward+backward, median of {args.repeat} interleaved runs (ms)"
    )
    rows = []
    for name in args.pools:
        ours, theirs = pool_pair(name, args.features)
        run_ours = fwd_bwd(name, ours, x, edge_index, batch)
        fns = {"gnn": run_ours}
        if theirs is not None:
            check_parity(name, args)
            fns["pyg"] = fwd_bwd(name, theirs, x, edge_index, batch)
        ms = interleaved_median_ms(fns, args.repeat)
        mem = {}
        if not args.no_memory and os.path.exists("/proc/self/clear_refs"):
            mem["gnn"] = peak_memory_mb(name, "gnn", args)
            if theirs is not None:
                mem["pyg"] = peak_memory_mb(name, "pyg", args)
        rows.append((name, ms, mem))
        print(f"  {name}: " + ", ".join(f"{k} {v:.1f} ms" for k, v in ms.items()), flush=True)

    def fmt(value: float | None, spec: str = ".1f", suffix: str = "") -> str:
        return "" if value is None else f"{value:{spec}}{suffix}"

    header = "| pool | gnn (ms) | PyG (ms) | PyG / gnn | gnn peak (MB) | PyG peak (MB) | gnn / PyG memory |"
    print()
    print(header)
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, ms, mem in rows:
        pyg, ours = ms.get("pyg"), ms["gnn"]
        mem_ratio = mem["gnn"] / mem["pyg"] if mem.get("pyg") else None
        print(
            f"| {CLASSES[name]} | {ours:.1f} | {fmt(pyg)} | {fmt(pyg / ours if pyg else None, '.2f', 'x')} | "
            f"{fmt(mem.get('gnn'), '.0f')} | {fmt(mem.get('pyg'), '.0f')} | {fmt(mem_ratio, '.2f')} |"
        )


if __name__ == "__main__":
    main()
