"""Side-by-side forward+backward benchmark of gnn-aggr and PyG aggregations (issue: gnn-aggr).

For SoftmaxAggregation, MaxAggregation and StdAggregation, one run times on
the same inputs ``x`` (``[elements, features]``, requires grad) and ``index``
(random group of each element, unsorted):

  * gnn (``gnn.aggr``) with the default kernel backend selection (the
    compiled gnn-kernels backend when installed),
  * gnn on the pure-torch reference ops (``ops.backend("torch")``),
  * PyG 2.8.1 (``torch_geometric.nn.aggr``), when installed,

each as forward + ``backward`` of the sum of the output, and prints the
median (ms) over ``--repeat`` interleaved runs after one warm-up, and the ratio
PyG / gnn (> 1: gnn is faster) for both gnn columns. ``--ptr`` times the sorted ``ptr`` input
instead of ``index``.

Usage: python benchmarks/bench_aggr.py [--elements 1000000] [--features 64]
       [--groups 100000] [--repeat 5] [--ptr] [--markdown]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import torch
from timing import interleaved_median_ms

import gnn.aggr as ours
from gnn.core import ops

NAMES = ["SoftmaxAggregation", "MaxAggregation", "StdAggregation"]


def forward_backward(
    aggr: torch.nn.Module, x: torch.Tensor, kwargs: dict, backend: str | None = None
) -> Callable[[], None]:
    def run() -> None:
        x.grad = None
        if backend is None:
            aggr(x, **kwargs).sum().backward()
        else:
            with ops.backend(backend):
                aggr(x, **kwargs).sum().backward()

    return run


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--elements", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=64)
    parser.add_argument("--groups", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--ptr", action="store_true", help="sorted input given as ptr instead of index")
    parser.add_argument("--markdown", action="store_true")
    args, _ = parser.parse_known_args()  # nox's bench session passes the same arguments to every script

    try:
        import torch_geometric.nn.aggr as pyg
    except ImportError:
        pyg = None

    g = torch.Generator().manual_seed(0)
    x = torch.randn(args.elements, args.features, generator=g).requires_grad_()
    index = torch.randint(0, args.groups, (args.elements,), generator=g)
    if args.ptr:
        index = index.sort().values
        counts = torch.bincount(index, minlength=args.groups)
        ptr = torch.cat([counts.new_zeros(1), counts.cumsum(0)])
        kwargs = {"ptr": ptr, "dim_size": args.groups}
    else:
        kwargs = {"index": index, "dim_size": args.groups}

    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, gnn backends {ops.available()}; x [{args.elements}, {args.features}] "
        f"float32 into {args.groups} groups by {'ptr (sorted)' if args.ptr else 'index (unsorted)'}; "
        f"forward + backward, median of {args.repeat} (ms)"
    )
    rows = []
    for name in NAMES:
        fns = {
            "gnn": forward_backward(getattr(ours, name)(), x, kwargs),
            "torch": forward_backward(getattr(ours, name)(), x, kwargs, "torch"),
        }
        if pyg is not None:
            # check that both compute the same numbers before timing
            with torch.no_grad():
                a = getattr(ours, name)()(x, **kwargs)
                b = getattr(pyg, name)()(x, **kwargs)
            torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
            fns["pyg"] = forward_backward(getattr(pyg, name)(), x, kwargs)
        ms = interleaved_median_ms(fns, args.repeat)
        gnn_ms, torch_ms, pyg_ms = ms["gnn"], ms["torch"], ms.get("pyg")
        rows.append((name, gnn_ms, torch_ms, pyg_ms))

    header = ("aggregation", "gnn (ms)", "gnn torch (ms)", "PyG (ms)", "PyG / gnn", "PyG / gnn torch")
    lines = [
        (name, f"{gnn_ms:.1f}", f"{torch_ms:.1f}", "-" if pyg_ms is None else f"{pyg_ms:.1f}",
         "-" if pyg_ms is None else f"{pyg_ms / gnn_ms:.2f}",
         "-" if pyg_ms is None else f"{pyg_ms / torch_ms:.2f}")
        for name, gnn_ms, torch_ms, pyg_ms in rows
    ]  # fmt: skip
    if args.markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for line in lines:
            print("| " + " | ".join(line) + " |")
    else:
        widths = [max(len(r[i]) for r in [header, *lines]) for i in range(len(header))]
        for line in [header, *lines]:
            print(
                "  ".join(
                    cell.ljust(w) if i == 0 else cell.rjust(w)
                    for i, (cell, w) in enumerate(zip(line, widths))
                )
            )
    if pyg is None:
        print("(PyG is not installed: its columns are skipped)")


if __name__ == "__main__":
    main()
