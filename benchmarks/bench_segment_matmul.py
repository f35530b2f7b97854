"""Side-by-side forward+backward benchmark of HeteroLinear's grouped matmul (issue: gnn-kernels).

On the same inputs (``--rows`` rows of ``--features`` features split evenly
over ``--types`` types, sorted by type), one run times:

  * gnn's ``HeteroLinear`` with the default backend (the compiled
    ``segment_matmul`` of gnn-kernels when installed: the loop over types
    runs in C++ and writes each block product into its slice of the output),
  * the same layer on the pure-torch reference (``ops.backend("torch")``: a
    Python loop over types and a concatenation),
  * PyG 2.8.1's ``HeteroLinear`` (``is_sorted=True``), when installed,

as forward + backward of the sum of the output, interleaved, and prints
medians (ms) and ratios (> 1: gnn with kernels is faster). Few large types
are bound by BLAS and come out about even; many small types show the cost
of the per-type Python loop.

Usage: python benchmarks/bench_segment_matmul.py [--rows 100000] [--features 64]
       [--types 4 64 512] [--repeat 5]
"""

from __future__ import annotations

import argparse

import torch
from timing import interleaved_median_ms

from gnn.core import ops
from gnn.core.nn import HeteroLinear


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--features", type=int, default=64)
    parser.add_argument("--types", type=int, nargs="+", default=[4, 64, 512])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    try:
        from torch_geometric.nn import HeteroLinear as PyGHeteroLinear
    except ImportError:
        PyGHeteroLinear = None

    print(f"HeteroLinear {args.features}->{args.features}, {args.rows} rows, forward+backward, median ms")
    print(f"{'types':>6} {'kernels':>9} {'torch':>9} {'PyG':>9} {'torch/ker':>10} {'PyG/ker':>8}")
    for num_types in args.types:
        g = torch.Generator().manual_seed(num_types)
        x = torch.randn(args.rows, args.features, generator=g, requires_grad=True)
        types = torch.arange(num_types).repeat_interleave(args.rows // num_types + 1)[: args.rows]
        ours = HeteroLinear(args.features, args.features, num_types, is_sorted=True)

        def run_ours():
            ours(x, types).sum().backward()

        def run_torch():
            with ops.backend("torch"):
                ours(x, types).sum().backward()

        fns = {"kernels": run_ours, "torch": run_torch}
        if PyGHeteroLinear is not None:
            theirs = PyGHeteroLinear(args.features, args.features, num_types, is_sorted=True)
            theirs.load_state_dict(ours.state_dict())
            fns["pyg"] = lambda: theirs(x, types).sum().backward()
        t = interleaved_median_ms(fns, args.repeat)
        pyg = t.get("pyg", float("nan"))
        print(
            f"{num_types:>6} {t['kernels']:>9.1f} {t['torch']:>9.1f} {pyg:>9.1f} "
            f"{t['torch'] / t['kernels']:>9.2f}x {pyg / t['kernels']:>7.2f}x"
        )


if __name__ == "__main__":
    main()
