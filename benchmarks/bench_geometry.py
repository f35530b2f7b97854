"""knn on 3-D points: gnn with its compiled kernels, gnn on pure torch, PyG (issue: gnn-kernels).

One run builds ``--points`` uniform random points in the unit cube and times
``knn(x, x, k)`` (every point's ``k`` nearest points, as ``knn_graph`` does):

  * gnn (``gnn.core.ops.knn``) on gnn-kernels' compiled kernel (kd-tree per
    example, threads split the queries),
  * gnn on the pure-torch reference (``ops.backend("torch")``: blocked
    matrix-product distances + top-k, exact re-ranking), timed
    ``--torch-repeat`` times because it is quadratic,
  * PyG 2.8.1 ``torch_geometric.nn.knn`` when it can run (it needs pyg-lib or
    torch-cluster; the reason is printed when it cannot).

The results of all columns are checked to be equal before the medians (ms)
and the ratios are printed.

Usage: python benchmarks/bench_geometry.py [--points 100000] [--k 16] [--repeat 5]
       [--torch-repeat 1] [--markdown]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from gnn.core import ops
from gnn.core.ops import backends


def median_ms(fn: Callable[[], torch.Tensor], repeat: int, warmup: bool = True) -> tuple[float, torch.Tensor]:
    out = fn() if warmup else None
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3, out


def native_knn(x: torch.Tensor, k: int) -> tuple[str, Callable[[], torch.Tensor]] | tuple[str, None]:
    """The compiled knn through gnn.core.ops, or straight from gnn-kernels while it is not wired in yet."""
    ctx = {"device": x.device, "dtype": x.dtype, "reduce": None, "requires_grad": False}
    try:
        name = backends.select("knn", **ctx)[0]
    except AttributeError:
        name = backends.TORCH
    if name != backends.TORCH:
        return f"gnn ({name})", lambda: ops.knn(x, x, k)
    try:
        import gnn.kernels
        from gnn.kernels.geometry import GeometryOps
    except ImportError as error:
        return f"gnn kernels unavailable: {error}", None
    if not gnn.kernels.load():
        return f"gnn kernels unavailable: {gnn.kernels.load_error()}", None
    ptr = torch.tensor([0, x.size(0)])
    kernel = GeometryOps()
    return "gnn kernels (direct)", lambda: kernel.knn(x, x, k, ptr, ptr, False)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--k", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--torch-repeat", type=int, default=1, help="runs of the (quadratic) pure-torch path")
    parser.add_argument("--markdown", action="store_true")
    args, _ = parser.parse_known_args()  # nox's bench session passes the same arguments to every script

    x = torch.rand(args.points, 3, generator=torch.Generator().manual_seed(0))
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; knn(x, x, k={args.k}) on {args.points} "
        f"uniform 3-D points (float32); median (ms)"
    )
    rows: list[tuple[str, float, int]] = []
    results: dict[str, torch.Tensor] = {}
    label, fn = native_knn(x, args.k)
    if fn is None:
        print(f"({label})")
    else:
        ms, results[label] = median_ms(fn, args.repeat)
        rows.append((label, ms, args.repeat))

    def pure_torch() -> torch.Tensor:
        with ops.backend("torch"):
            return ops.knn(x, x, args.k)

    ms, results["gnn (pure torch)"] = median_ms(pure_torch, args.torch_repeat, warmup=False)
    rows.append(("gnn (pure torch)", ms, args.torch_repeat))

    try:
        from torch_geometric.nn import knn as pyg_knn

        ms, results["PyG 2.8.1 (torch_geometric.nn.knn)"] = median_ms(
            lambda: pyg_knn(x, x, args.k), args.repeat
        )
        rows.append(("PyG 2.8.1 (torch_geometric.nn.knn)", ms, args.repeat))
    except ImportError as error:
        print(f"(PyG's knn cannot run here: {error})")

    reference = results["gnn (pure torch)"]
    for name, out in results.items():
        if name.startswith("PyG"):  # PyG does not fix the order of equally distant neighbours
            same = out.shape == reference.shape and torch.equal(out[0], reference[0])
        else:
            same = torch.equal(out, reference)
        if not same:
            raise SystemExit(f"{name} returned a different knn graph than the pure-torch reference")

    fastest = min(ms for _, ms, _ in rows)
    header = ("implementation", "median (ms)", "runs", "x slower than fastest")
    lines = [(name, f"{ms:.1f}", str(runs), f"{ms / fastest:.1f}") for name, ms, runs in rows]
    if args.markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for line in lines:
            print("| " + " | ".join(line) + " |")
    else:
        widths = [max(len(r[i]) for r in [header, *lines]) for i in range(len(header))]
        for line in [header, *lines]:
            print(
                "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths)))
            )


if __name__ == "__main__":
    main()
