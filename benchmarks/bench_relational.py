"""Side-by-side forward+backward benchmark of the relational convs: gnn vs PyG 2.8.1 (issue 11).

Workload (the issue's): a random graph of ``--nodes`` nodes and ``--edges`` edges with
``--relations`` relation types, ``--channels`` input and output features; RGCNConv and
FastRGCNConv with the default mean aggregation, RGATConv with its defaults (one head,
additive across-relation attention). Each pair of layers holds the same weights (PyG's
state_dict loaded into gnn's with ``strict=True``; the outputs are first checked equal on a
tenth of the graph), then both run forward + ``backward`` of the output's sum, interleaved
in one process (one call of each in turn, per repeat); the times are medians in ms. The input
features do not require grad (a first layer); ``--x-grad`` makes them.

PyG runs here without pyg-lib, so its RGCNConv takes its per-relation loop path (the mean per
relation, as the formula says; with pyg-lib PyG's segment-matmul path averages over all
relations at once instead) and FastRGCNConv and RGATConv gather a ``[E, F_in, F_out]`` weight
tensor per call.

Peak memory is the extra peak RSS of one forward+backward after a warm-up call, measured in a
fresh subprocess per layer and library with glibc's mmap threshold fixed at 64 KiB, so that
freed tensors leave the resident set at once (``--no-memory`` skips it).

Usage: python benchmarks/bench_relational.py [--nodes 20000] [--edges 200000] [--channels 64]
       [--relations 8] [--repeat 3] [--layers RGCNConv FastRGCNConv RGATConv] [--x-grad]
       [--no-memory] [--markdown]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import torch
from timing import interleaved_median_ms, peak_rss_mb

LAYERS = ("RGCNConv", "FastRGCNConv", "RGATConv")


def make_graph(
    nodes: int, edges: int, channels: int, relations: int, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``x`` ``[N, channels]``, a random ``edge_index`` ``[2, E]`` and ``edge_type`` ``[E]``."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(nodes, channels, generator=g)
    edge_index = torch.randint(0, nodes, (2, edges), generator=g)
    edge_type = torch.randint(0, relations, (edges,), generator=g)
    return x, edge_index, edge_type


def pair(name: str, channels: int, relations: int) -> tuple[torch.nn.Module, torch.nn.Module]:
    """``(gnn layer, PyG layer)`` holding the same weights."""
    import torch_geometric.nn

    import gnn.conv

    torch.manual_seed(0)
    theirs = getattr(torch_geometric.nn, name)(channels, channels, relations)
    ours = getattr(gnn.conv, name)(channels, channels, relations)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    return ours, theirs


def fwd_bwd(
    layer: torch.nn.Module, x: torch.Tensor, edge_index: torch.Tensor, edge_type: torch.Tensor
) -> Callable:
    def run() -> None:
        x.grad = None
        layer.zero_grad(set_to_none=True)
        layer(x, edge_index, edge_type).sum().backward()

    return run


def check_equal(name: str, args: argparse.Namespace) -> None:
    """gnn and PyG give the same output on a tenth of the graph."""
    ours, theirs = pair(name, args.channels, args.relations)
    x, edge_index, edge_type = make_graph(
        args.nodes // 10, args.edges // 10, args.channels, args.relations, seed=1
    )
    with torch.no_grad():
        torch.testing.assert_close(
            ours(x, edge_index, edge_type), theirs(x, edge_index, edge_type), atol=1e-4, rtol=1e-4
        )


def peak_memory_mb(name: str, lib: str, args: argparse.Namespace) -> float:
    """Extra peak RSS (MB) of one forward+backward in a fresh process (VmHWM reset after setup)."""
    code = f"""
import sys, argparse, torch
import bench_relational as b
args = argparse.Namespace(**{vars(args)!r})
x, ei, et = b.make_graph(args.nodes, args.edges, args.channels, args.relations)
x.requires_grad_(args.x_grad)
ours, theirs = b.pair({name!r}, args.channels, args.relations)
run = b.fwd_bwd(ours if {lib!r} == 'gnn' else theirs, x, ei, et)
run()
"""
    return peak_rss_mb(code, mmap_threshold=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--nodes", type=int, default=20_000)
    parser.add_argument("--edges", type=int, default=200_000)
    parser.add_argument("--channels", type=int, default=64)
    parser.add_argument("--relations", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--layers", nargs="+", default=list(LAYERS), choices=LAYERS)
    parser.add_argument("--x-grad", action="store_true", help="input features require grad")
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--markdown", action="store_true")
    args, _ = parser.parse_known_args()  # nox's bench session passes the same arguments to every script

    try:
        import torch_geometric  # noqa: F401
    except ImportError:
        print("PyG is not installed: nothing to compare against")
        return

    x, edge_index, edge_type = make_graph(args.nodes, args.edges, args.channels, args.relations)
    x.requires_grad_(args.x_grad)
    header = (
        "layer",
        "gnn (ms)",
        "PyG (ms)",
        "PyG / gnn",
        "gnn peak (MB)",
        "PyG peak (MB)",
        "gnn / PyG (mem)",
    )
    rows = []
    for name in args.layers:
        check_equal(name, args)
        ours, theirs = pair(name, args.channels, args.relations)
        ms = interleaved_median_ms(
            {
                "gnn": fwd_bwd(ours, x, edge_index, edge_type),
                "pyg": fwd_bwd(theirs, x, edge_index, edge_type),
            },
            args.repeat,
        )
        mem = {} if args.no_memory else {lib: peak_memory_mb(name, lib, args) for lib in ("gnn", "pyg")}
        rows.append(
            (
                name,
                f"{ms['gnn']:.1f}",
                f"{ms['pyg']:.1f}",
                f"{ms['pyg'] / ms['gnn']:.1f}x",
                f"{mem['gnn']:.0f}" if mem else "-",
                f"{mem['pyg']:.0f}" if mem else "-",
                f"{mem['gnn'] / mem['pyg']:.2f}x" if mem else "-",
            )
        )

    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; {args.nodes} nodes, {args.edges} edges, "
        f"{args.channels} channels, {args.relations} relations; x requires grad: {args.x_grad}; "
        f"forward + backward, median of {args.repeat} (ms)"
    )
    if args.markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for row in rows:
            print("| " + " | ".join(row) + " |")
    else:
        widths = [max(len(r[k]) for r in (header, *rows)) for k in range(len(header))]
        for line in (header, *rows):
            print("  ".join(cell.rjust(w) for cell, w in zip(line, widths)))


if __name__ == "__main__":
    main()
