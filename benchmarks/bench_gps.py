"""Side-by-side forward+backward benchmark of GPSConv: gnn vs PyG 2.8.1 (issue 12).

The workload follows PyG's GraphGPS example: ``GPSConv(64, GINConv(MLP), heads=4,
attn_type="multihead")`` on a batch of ``--graphs`` random graphs of 20-200
nodes (uniform; average degree ``--degree`` inside each graph), input
features requiring grad. Both layers hold the same weights (PyG's state_dict
loaded into gnn's with ``strict=True``; the outputs are checked equal
first) and run forward + ``backward`` of the output's sum, interleaved in one
process (one call of each in turn, per repeat). Each call gets a fresh copy of
``batch``, so nothing derived from it can be reused between calls.

``--norm`` picks the normalization (default ``batch_norm``, PyG's default;
``none`` when gnn's norms are not installed). Peak memory is the extra peak
RSS of one forward+backward after a warm-up call, measured in a fresh
subprocess per library with glibc's mmap threshold fixed at 64 KiB, so that
freed tensors leave the resident set at once (``--no-memory`` skips it).

Usage: python benchmarks/bench_gps.py [--graphs 256] [--channels 64] [--heads 4]
       [--repeat 7] [--norm batch_norm] [--attn multihead] [--no-memory] [--markdown]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import torch
from timing import interleaved_median_ms, peak_rss_mb


def make_batch(
    num_graphs: int, channels: int, degree: int, lo: int = 20, hi: int = 200, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``x`` ``[N, channels]``, ``edge_index`` (edges inside each graph) and a sorted ``batch``."""
    g = torch.Generator().manual_seed(seed)
    sizes = torch.randint(lo, hi + 1, (num_graphs,), generator=g)
    ptr = torch.cat([torch.zeros(1, dtype=torch.long), sizes.cumsum(0)])
    num_nodes = int(ptr[-1])
    batch = torch.repeat_interleave(torch.arange(num_graphs), sizes)
    num_edges = num_nodes * degree
    graph = batch[torch.randint(0, num_nodes, (num_edges,), generator=g)]
    start, size = ptr[graph], sizes[graph]
    src = start + (torch.rand(num_edges, generator=g) * size).long()
    dst = start + (torch.rand(num_edges, generator=g) * size).long()
    x = torch.randn(num_nodes, channels, generator=g)
    return x, torch.stack([src, dst]), batch


def build(lib: str, channels: int, heads: int, norm: str | None, attn: str) -> torch.nn.Module:
    """GPSConv with a GIN local layer (MLP of two linear maps), from gnn (``lib="gnn"``) or PyG."""
    if lib == "gnn":
        from gnn.conv import GINConv, GPSConv
    else:
        from torch_geometric.nn import GINConv, GPSConv
    mlp = torch.nn.Sequential(
        torch.nn.Linear(channels, channels), torch.nn.ReLU(), torch.nn.Linear(channels, channels)
    )
    attn_kwargs = {"head_channels": channels // heads} if attn == "performer" else {}
    return GPSConv(channels, GINConv(mlp), heads=heads, norm=norm, attn_type=attn, attn_kwargs=attn_kwargs)


def pair(args: argparse.Namespace) -> tuple[torch.nn.Module, torch.nn.Module]:
    torch.manual_seed(0)
    theirs = build("pyg", args.channels, args.heads, args.norm, args.attn)
    ours = build("gnn", args.channels, args.heads, args.norm, args.attn)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    return ours, theirs


def fwd_bwd(
    layer: torch.nn.Module, x: torch.Tensor, edge_index: torch.Tensor, batch: torch.Tensor
) -> Callable:
    def run() -> None:
        x.grad = None
        layer(x, edge_index, batch.clone()).sum().backward()

    return run


def peak_memory_mb(lib: str, args: argparse.Namespace) -> float:
    """Extra peak RSS (MB) of one forward+backward in a fresh process (VmHWM reset after setup)."""
    code = f"""
import sys, argparse, torch
import bench_gps as b
args = argparse.Namespace(**{vars(args)!r})
x, ei, batch = b.make_batch(args.graphs, args.channels, args.degree)
x.requires_grad_()
ours, theirs = b.pair(args)
run = b.fwd_bwd(ours if {lib!r} == 'gnn' else theirs, x, ei, batch)
run()
"""
    return peak_rss_mb(code, mmap_threshold=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--graphs", type=int, default=256)
    parser.add_argument("--channels", type=int, default=64)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--degree", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--norm", default="batch_norm", help="'none' for no normalization")
    parser.add_argument("--attn", default="multihead", choices=["multihead", "performer"])
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--markdown", action="store_true")
    args, _ = parser.parse_known_args()  # nox's bench session passes the same arguments to every script
    args.norm = None if args.norm in (None, "none", "None") else args.norm

    try:
        import torch_geometric  # noqa: F401
    except ImportError:
        print("PyG is not installed: nothing to compare against")
        return

    x, edge_index, batch = make_batch(args.graphs, args.channels, args.degree)
    ours, theirs = pair(args)
    with torch.no_grad():
        torch.testing.assert_close(
            ours(x, edge_index, batch), theirs(x, edge_index, batch), atol=1e-4, rtol=1e-4
        )
    x.requires_grad_()
    ms = interleaved_median_ms(
        {"gnn": fwd_bwd(ours, x, edge_index, batch), "pyg": fwd_bwd(theirs, x, edge_index, batch)},
        args.repeat,
    )
    mem = {} if args.no_memory else {lib: peak_memory_mb(lib, args) for lib in ("gnn", "pyg")}

    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; {args.graphs} graphs of 20-200 nodes "
        f"({x.size(0)} nodes, {edge_index.size(1)} edges), {args.channels} channels, {args.heads} heads, "
        f"attn {args.attn}, norm {args.norm}; forward + backward, median of {args.repeat} (ms)"
    )
    header = (
        "layer",
        "gnn (ms)",
        "PyG (ms)",
        "PyG / gnn",
        "gnn peak (MB)",
        "PyG peak (MB)",
        "PyG / gnn (mem)",
    )
    row = (
        f"GPSConv {args.attn}",
        f"{ms['gnn']:.1f}",
        f"{ms['pyg']:.1f}",
        f"{ms['pyg'] / ms['gnn']:.2f}x",
        f"{mem['gnn']:.0f}" if mem else "-",
        f"{mem['pyg']:.0f}" if mem else "-",
        f"{mem['pyg'] / mem['gnn']:.2f}x" if mem else "-",
    )
    if args.markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        print("| " + " | ".join(row) + " |")
    else:
        widths = [max(len(a), len(b)) for a, b in zip(header, row)]
        for line in (header, row):
            print("  ".join(cell.rjust(w) for cell, w in zip(line, widths)))


if __name__ == "__main__":
    main()
