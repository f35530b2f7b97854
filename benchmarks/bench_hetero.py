"""Side-by-side forward+backward benchmark of gnn-hetero and PyG's heterogeneous layers (issue 14).

One process builds a heterogeneous graph (``--node-types`` node types of ``--nodes`` nodes each,
``--edge-types`` edge types of ``--edges`` random edges each, ``--features`` float32 features
requiring grad) and times, on the same inputs, each model of gnn and its PyG 2.8.1 twin (PyG's
state_dict loaded strict, outputs checked equal first): forward, then ``backward`` of a fixed
random upstream gradient per node type. The two run interleaved (gnn, PyG, gnn, PyG, ...) and the
medians over ``--repeat`` runs after one warm-up are printed with the ratio PyG / gnn (> 1: gnn is
faster) and the issue's target. Peak memory is the extra peak RSS of one forward+backward in a
fresh process (VmHWM reset after set-up and one warm-up call, Linux only; ``--no-memory`` skips it).

Models: ``HGTConv`` and ``HANConv`` (``--heads`` heads), ``HeteroConv`` with one ``SAGEConv`` per
edge type, and ``to_hetero`` of a two-layer ``SAGEConv`` model (lazy channels, ReLU between).

Usage: python benchmarks/bench_hetero.py [--nodes 30000] [--edges 300000] [--features 64]
       [--node-types 3] [--edge-types 6] [--heads 2] [--repeat 5] [--models HGTConv HANConv]
       [--no-memory] [--markdown]
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Callable

import torch
from timing import interleaved_median_ms, peak_rss_mb

from gnn.core import ops
from gnn.core.testing import load_pyg_state

#: model -> target PyG / gnn time ratio
TARGETS: dict[str, float] = {
    "HGTConv": 4.0,
    "HANConv": 3.0,
    "HeteroConv(SAGE)": 2.0,
    "to_hetero(SAGE x2)": 2.0,
}


def metadata(node_types: int, edge_types: int) -> tuple[list[str], list[tuple[str, str, str]]]:
    """``node_types`` types ``t0, t1, ...``; edge types between consecutive types, both ways
    (``t0 -> t1``, ``t1 -> t0``, ``t1 -> t2``, ...), so that every type is a destination."""
    nodes = [f"t{i}" for i in range(node_types)]
    edges = []
    k = 0
    while len(edges) < edge_types:
        a, b = nodes[k % node_types], nodes[(k + 1) % node_types]
        for src, dst in ((a, b), (b, a)):
            if len(edges) < edge_types:
                edges.append((src, f"r{len(edges)}", dst))
        k += 1
    return nodes, edges


def make_inputs(args: argparse.Namespace) -> tuple[dict, dict, dict, tuple]:
    g = torch.Generator().manual_seed(0)
    meta = metadata(args.node_types, args.edge_types)
    x = {t: torch.randn(args.nodes, args.features, generator=g).requires_grad_() for t in meta[0]}
    ei = {e: torch.randint(0, args.nodes, (2, args.edges), generator=g) for e in meta[1]}
    grad = {t: torch.randn(args.nodes, args.features, generator=g) for t in meta[0]}
    return x, ei, grad, meta


def build(name: str, meta: tuple, args: argparse.Namespace, lib: str) -> torch.nn.Module:
    """The model ``name`` of ``lib`` ("gnn" or "pyg"), same seed."""
    if lib == "gnn":
        import gnn.conv as conv
        import gnn.hetero as hetero
    else:
        import torch_geometric.nn as conv
        import torch_geometric.nn as hetero  # type: ignore[no-redef]
    torch.manual_seed(0)
    f = args.features
    if name == "HGTConv":
        return hetero.HGTConv(f, f, meta, heads=args.heads)
    if name == "HANConv":
        return hetero.HANConv(f, f, meta, heads=args.heads)
    if name == "HeteroConv(SAGE)":
        return hetero.HeteroConv({e: conv.SAGEConv((f, f), f) for e in meta[1]}, aggr="sum")

    class GNN(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = conv.SAGEConv((-1, -1), f)
            self.conv2 = conv.SAGEConv((f, f), f)

        def forward(self, x, edge_index):
            return self.conv2(self.conv1(x, edge_index).relu(), edge_index)

    return hetero.to_hetero(GNN(), meta, aggr="sum")


def make_pair(name: str, meta: tuple, x: dict, ei: dict, args: argparse.Namespace):
    mine = build(name, meta, args, "gnn")
    try:
        theirs = build(name, meta, args, "pyg")
    except ImportError:
        return mine, None
    with torch.no_grad():
        mine(x, ei), theirs(x, ei)  # lazy parameters
        for p in theirs.parameters():  # off the initial values (ones, zeros), same scale
            p.mul_(1 + 0.1 * torch.randn_like(p))
    load_pyg_state(mine, theirs)
    return mine, theirs


def fwd_bwd(model: torch.nn.Module, x: dict, ei: dict, grad: dict) -> Callable[[], None]:
    def run() -> None:
        for t in x.values():
            t.grad = None
        model.zero_grad(set_to_none=True)
        out = model(x, ei)
        keys = [k for k, o in out.items() if o is not None]
        torch.autograd.backward([out[k] for k in keys], [grad[k] for k in keys])

    return run


def peak_memory_mb(name: str, side: str, args: argparse.Namespace) -> float:
    """Extra peak RSS (MB) of one forward+backward of ``side`` ("gnn"/"pyg") in a fresh process."""
    argv = sys.argv[1:]
    code = f"""
import sys, warnings
warnings.simplefilter('ignore')
sys.argv = ['bench_hetero.py'] + {argv!r}
import bench_hetero as b
args = b.parse()
x, ei, grad, meta = b.make_inputs(args)
mine, theirs = b.make_pair({name!r}, meta, x, ei, args)
model = mine if {side!r} == 'gnn' else theirs
del mine, theirs
run = b.fwd_bwd(model, x, ei, grad)
run()  # warm-up: caches and allocator, as in the timed runs
"""
    return peak_rss_mb(code, trim=True)


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--nodes", type=int, default=30_000)
    parser.add_argument("--edges", type=int, default=300_000)
    parser.add_argument("--features", type=int, default=64)
    parser.add_argument("--node-types", type=int, default=3)
    parser.add_argument("--edge-types", type=int, default=6)
    parser.add_argument("--heads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--models", nargs="+", default=None, help=f"subset of {list(TARGETS)}")
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--markdown", action="store_true")
    args, _ = parser.parse_known_args()  # nox's bench session passes the same arguments to every script
    return args


def main() -> None:
    warnings.simplefilter("ignore")
    args = parse()
    x, ei, grad, meta = make_inputs(args)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, gnn backends {ops.available()}; "
        f"{args.node_types} node types x {args.nodes} nodes, {args.edge_types} edge types x {args.edges} "
        f"edges, {args.features} features, {args.heads} heads; forward + backward, median of "
        f"{args.repeat} (ms)"
    )
    rows = []
    for name in args.models or list(TARGETS):
        mine, theirs = make_pair(name, meta, x, ei, args)
        fns = {"gnn": fwd_bwd(mine, x, ei, grad)}
        if theirs is not None:
            with torch.no_grad():
                a, b = mine(x, ei), theirs(x, ei)
            for key in b:
                if b[key] is not None:
                    torch.testing.assert_close(a[key], b[key], atol=1e-3, rtol=1e-3)
            fns["pyg"] = fwd_bwd(theirs, x, ei, grad)
        ms = interleaved_median_ms(fns, args.repeat)
        del mine, theirs, fns
        mem = (None, None)
        if not args.no_memory and sys.platform == "linux":
            mem = (peak_memory_mb(name, "gnn", args), peak_memory_mb(name, "pyg", args))
        rows.append((name, ms["gnn"], ms.get("pyg"), TARGETS[name], *mem))

    def fmt(value: float | None, spec: str = ".1f") -> str:
        return "-" if value is None else format(value, spec)

    header = (
        "model",
        "gnn (ms)",
        "PyG (ms)",
        "PyG / gnn",
        "target",
        "peak gnn (MB)",
        "peak PyG (MB)",
        "gnn / PyG",
    )
    lines = [
        (name, fmt(t_gnn), fmt(t_pyg), "-" if t_pyg is None else f"{t_pyg / t_gnn:.2f}x", f">= {target:.0f}x",
         fmt(m_gnn, ".0f"), fmt(m_pyg, ".0f"), "-" if not (m_gnn and m_pyg) else f"{m_gnn / m_pyg:.2f}x")
        for name, t_gnn, t_pyg, target, m_gnn, m_pyg in rows
    ]  # fmt: skip
    if args.markdown:
        print("| " + " | ".join(header) + " |")
        print("| --- |" + " ---: |" * (len(header) - 1))
        for line in lines:
            print("| " + " | ".join(line) + " |")
    else:
        widths = [max(len(r[i]) for r in [header, *lines]) for i in range(len(header))]
        for line in [header, *lines]:
            print(
                "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths)))
            )
    if rows and rows[0][2] is None:
        print("(PyG is not installed: its columns are skipped)")


if __name__ == "__main__":
    main()
