"""Side-by-side forward+backward benchmark of gnn's normalization layers and PyG's (issue 12).

One process times, on the same inputs (``x`` ``[nodes, features]`` float32 requiring grad,
``batch`` the sorted graph of each node over ``--graphs`` graphs of random sizes, as in a
PyG mini-batch), each layer of ``gnn.conv.norm`` and its PyG 2.8.1 twin (state_dict loaded
strict, outputs checked equal first): forward, then ``backward`` of a fixed random upstream
gradient. The two run interleaved (gnn, PyG, gnn, PyG, ...) and the medians over
``--repeat`` runs after one warm-up are printed with the ratio PyG / gnn (> 1: gnn is
faster) and the issue's target. Peak memory is the extra peak RSS of one forward+backward
measured in a fresh process (VmHWM reset after set-up, Linux only; ``--no-memory`` skips it).

Usage: python benchmarks/bench_norm.py [--nodes 500000] [--features 64] [--graphs 1000]
       [--repeat 5] [--layers GraphNorm PairNorm] [--unsorted] [--no-memory] [--markdown]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

import torch
from timing import interleaved_median_ms, peak_rss_mb

import gnn.conv.norm as ours
from gnn.core import ops
from gnn.core.testing import load_pyg_state

#: name -> (constructor arguments, forward takes batch, target PyG / gnn ratio)
CASES: dict[str, tuple[Callable[[int], tuple[str, dict]], bool, float | None]] = {
    "GraphNorm": (lambda f: ("GraphNorm", {"in_channels": f}), True, 3.0),
    "LayerNorm(graph)": (lambda f: ("LayerNorm", {"in_channels": f}), True, 3.0),
    "InstanceNorm": (lambda f: ("InstanceNorm", {"in_channels": f}), True, 3.0),
    "PairNorm": (lambda f: ("PairNorm", {}), True, 3.0),
    "DiffGroupNorm(10)": (lambda f: ("DiffGroupNorm", {"in_channels": f, "groups": 10}), False, 2.0),
    "BatchNorm": (lambda f: ("BatchNorm", {"in_channels": f}), False, 1.0),
    "LayerNorm(node)": (lambda f: ("LayerNorm", {"in_channels": f, "mode": "node"}), False, None),
    "InstanceNorm(affine)": (
        lambda f: ("InstanceNorm", {"in_channels": f, "affine": True, "track_running_stats": True}),
        True,
        None,
    ),
    "PairNorm(individually)": (lambda f: ("PairNorm", {"scale_individually": True}), True, None),
    "MeanSubtractionNorm": (lambda f: ("MeanSubtractionNorm", {}), True, None),
    "GraphSizeNorm": (lambda f: ("GraphSizeNorm", {}), True, None),
}


def make_inputs(nodes: int, features: int, graphs: int, unsorted: bool) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(nodes, features, generator=g).requires_grad_()
    batch = torch.randint(0, graphs, (nodes,), generator=g).sort().values
    if unsorted:
        batch = batch[torch.randperm(nodes, generator=g)]
    grad = torch.randn(nodes, features, generator=g)
    return x, batch, grad


def make_pair(case: str, features: int) -> tuple[torch.nn.Module, torch.nn.Module | None]:
    build, _, _ = CASES[case]
    name, kwargs = build(features)
    torch.manual_seed(0)
    mine = getattr(ours, name)(**kwargs)
    try:
        import torch_geometric.nn.norm as pyg
    except ImportError:
        return mine, None
    theirs = getattr(pyg, name)(**kwargs)
    with torch.no_grad():  # parameters away from their initial ones/zeros
        for p in theirs.parameters():
            p.add_(torch.rand_like(p) * 0.5)
    load_pyg_state(mine, theirs)
    return mine, theirs


def fwd_bwd(layer: torch.nn.Module, case: str, x, batch, grad, graphs: int) -> Callable[[], None]:
    takes_batch = CASES[case][1]

    def run() -> None:
        x.grad = None
        layer.zero_grad(set_to_none=True)
        out = layer(x, batch, graphs) if takes_batch else layer(x)
        out.backward(grad)

    return run


def peak_memory_mb(case: str, side: str, args: argparse.Namespace) -> float:
    """Extra peak RSS (MB) of one forward+backward of ``side`` ("gnn"/"pyg") in a fresh process."""
    code = f"""
import sys
import bench_norm as b


x, batch, grad = b.make_inputs({args.nodes}, {args.features}, {args.graphs}, {args.unsorted})
mine, theirs = b.make_pair({case!r}, {args.features})
run = b.fwd_bwd(mine if {side!r} == 'gnn' else theirs, {case!r}, x, batch, grad, {args.graphs})
run()  # warm-up: caches and allocator, as in the timed runs
"""
    return peak_rss_mb(code)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--nodes", type=int, default=500_000)
    parser.add_argument("--features", type=int, default=64)
    parser.add_argument("--graphs", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--layers", nargs="+", default=None, help=f"subset of {list(CASES)}")
    parser.add_argument("--unsorted", action="store_true", help="shuffle the nodes (batch not sorted)")
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--markdown", action="store_true")
    args, _ = parser.parse_known_args()  # nox's bench session passes the same arguments to every script

    x, batch, grad = make_inputs(args.nodes, args.features, args.graphs, args.unsorted)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, gnn backends {ops.available()}; "
        f"x [{args.nodes}, {args.features}] float32 in {args.graphs} graphs, batch "
        f"{'unsorted' if args.unsorted else 'sorted'}; forward + backward, median of {args.repeat} (ms)"
    )
    rows = []
    for case in args.layers or list(CASES):
        mine, theirs = make_pair(case, args.features)
        fns = {"gnn": fwd_bwd(mine, case, x, batch, grad, args.graphs)}
        if theirs is not None:
            with torch.no_grad():  # same numbers before timing (training mode, batch statistics)
                a = mine(x, batch, args.graphs) if CASES[case][1] else mine(x)
                b = theirs(x, batch, args.graphs) if CASES[case][1] else theirs(x)
            torch.testing.assert_close(a, b, atol=2e-4, rtol=1e-4)
            fns["pyg"] = fwd_bwd(theirs, case, x, batch, grad, args.graphs)
        ms = interleaved_median_ms(fns, args.repeat)
        mem = (None, None)
        if not args.no_memory and sys.platform == "linux":
            mem = (
                peak_memory_mb(case, "gnn", args),
                peak_memory_mb(case, "pyg", args) if theirs is not None else None,
            )
        rows.append((case, ms["gnn"], ms.get("pyg"), CASES[case][2], *mem))

    def fmt(value: float | None, spec: str = ".1f") -> str:
        return "-" if value is None else format(value, spec)

    header = ("layer", "gnn (ms)", "PyG (ms)", "PyG / gnn", "target", "peak gnn (MB)", "peak PyG (MB)")
    lines = [
        (case, fmt(t_gnn), fmt(t_pyg), "-" if t_pyg is None else f"{t_pyg / t_gnn:.2f}x",
         "-" if target is None else (f">= {target:.0f}x" if target > 1 else "no slower"),
         fmt(m_gnn, ".0f"), fmt(m_pyg, ".0f"))
        for case, t_gnn, t_pyg, target, m_gnn, m_pyg in rows
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
