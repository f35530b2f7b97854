"""SplineConv with gnn-kernels vs gnn's own pure-torch path, and FusedGATConv vs GATConv (gnn's and PyG's).

No PyG SplineConv runs here (it needs pyg-lib's spline ops), so SplineConv is timed against gnn's
pure-torch reference (``gnn.core.ops.backend("torch")``): the target is kernels >= 3x faster. PyG's
FusedGATConv needs dgNN and a GPU; FusedGATConv is timed against gnn's GATConv (same fused op, so the
same time: FusedGATConv's point is the API) and PyG's GATConv, all with ``add_self_loops=False``.
Every row is forward (no grad) or forward+backward of ``out.sum()``; interleaved medians in one
process, ratios printed as a markdown table.

    python benchmarks/bench_spline.py --nodes 50000 --edges 500000 --rounds 5 [--configs dim2-deg1] [--no-gat]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import torch
from timing import interleaved_median_ms

CONFIGS = {  # name -> (dim, kernel_size, degree)
    "dim2-deg1": (2, 5, 1),
    "dim2-deg3": (2, 5, 3),
    "dim3-deg1": (3, 5, 1),
}


def spline_rows(
    nodes: int, edges: int, rounds: int, configs: list[str], seed: int = 0
) -> list[tuple[str, float, float]]:
    from gnn.conv import SplineConv
    from gnn.core import ops

    g = torch.Generator().manual_seed(seed)
    x = torch.randn(nodes, 32, generator=g).requires_grad_()
    edge_index = torch.randint(0, nodes, (2, edges), generator=g)
    rows = []
    for name in configs:
        dim, kernel_size, degree = CONFIGS[name]
        label = f"SplineConv dim={dim} k={kernel_size} deg={degree}"
        torch.manual_seed(seed)
        conv = SplineConv(32, 32, dim=dim, kernel_size=kernel_size, degree=degree)
        pseudo = torch.rand(edges, dim, generator=g)
        with torch.no_grad():
            with ops.backend("torch"):
                expected = conv(x, edge_index, pseudo)
            torch.testing.assert_close(conv(x, edge_index, pseudo), expected, atol=1e-4, rtol=1e-4)

        def forward(backend: str | None) -> Callable[[], None]:
            def run() -> None:
                with torch.no_grad(), _maybe_backend(backend):
                    conv(x, edge_index, pseudo)

            return run

        def train(backend: str | None) -> Callable[[], None]:
            def run() -> None:
                conv.zero_grad(set_to_none=True)
                x.grad = None
                with _maybe_backend(backend):
                    conv(x, edge_index, pseudo).sum().backward()

            return run

        for mode, make in (("forward", forward), ("fwd+bwd", train)):
            ms = interleaved_median_ms({"kernels": make(None), "torch": make("torch")}, rounds)
            rows.append((f"{label} {mode}", ms["kernels"], ms["torch"]))
    return rows


def _maybe_backend(name: str | None):
    import contextlib

    from gnn.core import ops

    return ops.backend(name) if name is not None else contextlib.nullcontext()


def gat_rows(nodes: int, edges: int, rounds: int, seed: int = 0) -> dict[str, float]:
    from gnn.conv import FusedGATConv, GATConv
    from gnn.core import testing

    g = torch.Generator().manual_seed(seed)
    x = torch.randn(nodes, 32, generator=g)
    edge_index = torch.randint(0, nodes, (2, edges), generator=g)
    graph = FusedGATConv.to_graph_format(edge_index, (nodes, nodes))
    torch.manual_seed(seed)
    fused = FusedGATConv(32, 8, heads=4, add_self_loops=False)
    gat = GATConv(32, 8, heads=4, add_self_loops=False)
    gat.load_state_dict(fused.state_dict())
    runs: dict[str, Callable[[], None]] = {
        "FusedGATConv (csr, csc, perm)": lambda: fused(x, *graph).sum().backward(),
        "FusedGATConv (edge_index)": lambda: fused(x, edge_index).sum().backward(),
        "GATConv (gnn)": lambda: gat(x, edge_index).sum().backward(),
    }
    try:
        import torch_geometric.nn as pyg

        theirs = pyg.GATConv(32, 8, heads=4, add_self_loops=False)
        testing.load_pyg_state(gat, theirs)
        fused.load_state_dict(gat.state_dict())
        with torch.no_grad():
            testing.assert_close(fused(x, *graph), theirs(x, edge_index), atol=1e-4, rtol=1e-4)
        runs["GATConv (PyG)"] = lambda: theirs(x, edge_index).sum().backward()
    except ImportError:
        pass
    return interleaved_median_ms(runs, rounds)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=50_000)
    parser.add_argument("--edges", type=int, default=500_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--no-gat", action="store_true")
    args = parser.parse_args()
    print(
        f"{args.nodes} nodes, {args.edges} edges, 32 -> 32 features; torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )
    print("\n| row | kernels (ms) | pure torch (ms) | torch / kernels | target |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for label, kernels, reference in spline_rows(args.nodes, args.edges, args.rounds, args.configs):
        print(f"| {label} | {kernels:.1f} | {reference:.1f} | {reference / kernels:.2f}x | >= 3x |")
    if args.no_gat:
        return
    ms = gat_rows(args.nodes, args.edges, args.rounds)
    base = ms.get("GATConv (PyG)")
    print("\n| GAT fwd+bwd, 4 heads x 8 | ms | PyG GATConv / row |")
    print("| --- | ---: | ---: |")
    for key, value in ms.items():
        ratio = f"{base / value:.2f}x" if base is not None else "-"
        print(f"| {key} | {value:.1f} | {ratio} |")


if __name__ == "__main__":
    main()
