"""Side-by-side forward+backward benchmark of SGFormer and Polynormer: gnn vs PyG 2.8.1 (issue 16).

Workload: one random graph of ``--nodes`` nodes (default 100k) with ``--degree`` random
out-edges per node, ``--channels`` input features and hidden size, ``--classes`` outputs;
the batch vector puts every node in graph 0 (PyG's models need one). Rows:

* ``SGFormer``: the defaults (2 attention layers, 3 GCN layers, dropout 0.5);
* ``Polynormer (local)``: the defaults (7 GCN-gated local layers), the global stage off,
  as during PyG's warm-up epochs;
* ``Polynormer (global)``: the same with ``_global = True`` (2 global attention layers).

``--graphs G`` splits the nodes into ``G`` graphs of equal size (unsorted ``batch``), so
that the attention pads per graph. Both models hold the same weights (PyG's state_dict
loaded into gnn's with ``strict=True``; eval-mode outputs are checked to agree first) and
run forward + ``backward`` of the output's sum in training mode, interleaved in one
process (one call of each in turn, per repeat).

Usage: python benchmarks/bench_graph_transformers.py [--nodes 100000] [--degree 10]
       [--channels 64] [--classes 10] [--graphs 1] [--repeat 3] [--markdown]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import torch
from timing import interleaved_median_ms


def make_graph(args: argparse.Namespace, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``x`` ``[N, channels]``, ``edge_index`` ``[2, N * degree]`` and ``batch`` ``[N]``."""
    g = torch.Generator().manual_seed(seed)
    n = args.nodes
    x = torch.randn(n, args.channels, generator=g)
    edge_index = torch.randint(0, n, (2, n * args.degree), generator=g)
    if args.graphs <= 1:
        return x, edge_index, torch.zeros(n, dtype=torch.long)
    # equal-size graphs, nodes shuffled: edges stay inside a graph
    batch = torch.randperm(n, generator=g) % args.graphs
    members = torch.argsort(batch, stable=True)
    size = n // args.graphs
    graph = batch[edge_index[0]]
    offset = torch.arange(args.graphs) * size
    local = torch.randint(0, size, (edge_index.size(1),), generator=g)
    edge_index[1] = members[(offset[graph] + local).clamp(max=n - 1)]
    return x, edge_index, batch


def build(lib: str, name: str, args: argparse.Namespace) -> torch.nn.Module:
    if lib == "gnn":
        import gnn.models as models
    else:
        import torch_geometric.nn as models
    cls = getattr(models, name)
    return cls(args.channels, args.channels, args.classes)


def pair(name: str, args: argparse.Namespace, use_global: bool) -> tuple[torch.nn.Module, torch.nn.Module]:
    torch.manual_seed(0)
    theirs = build("pyg", name, args)
    ours = build("gnn", name, args)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    if name == "Polynormer":
        ours._global = theirs._global = use_global
    return ours, theirs


def fwd_bwd(
    model: torch.nn.Module, x: torch.Tensor, edge_index: torch.Tensor, batch: torch.Tensor
) -> Callable:
    def run() -> None:
        model.zero_grad(set_to_none=True)
        x.grad = None
        model(x, edge_index, batch.clone()).sum().backward()

    return run


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--nodes", type=int, default=100_000)
    parser.add_argument("--degree", type=int, default=10)
    parser.add_argument("--channels", type=int, default=64)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--graphs", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()

    x, edge_index, batch = make_graph(args)
    x.requires_grad_()
    rows = []
    for label, name, use_global in (
        ("SGFormer", "SGFormer", False),
        ("Polynormer (local)", "Polynormer", False),
        ("Polynormer (global)", "Polynormer", True),
    ):
        ours, theirs = pair(name, args, use_global)
        with torch.no_grad():
            ours.eval(), theirs.eval()
            torch.testing.assert_close(
                ours(x, edge_index, batch), theirs(x, edge_index, batch), atol=1e-4, rtol=1e-4
            )
            ours.train(), theirs.train()
        times = interleaved_median_ms(
            {"gnn": fwd_bwd(ours, x, edge_index, batch), "pyg": fwd_bwd(theirs, x, edge_index, batch)},
            args.repeat,
        )
        rows.append((label, times["pyg"], times["gnn"], times["pyg"] / times["gnn"]))

    header = (
        f"fwd+bwd, {args.nodes} nodes, {args.nodes * args.degree} edges, {args.graphs} graph(s), "
        f"{args.channels} channels, torch threads {torch.get_num_threads()}"
    )
    print(header)
    if args.markdown:
        print("\n| model | PyG ms | gnn ms | speed-up |\n|---|---:|---:|---:|")
        for label, pyg_ms, gnn_ms, ratio in rows:
            print(f"| {label} | {pyg_ms:.0f} | {gnn_ms:.0f} | {ratio:.2f}x |")
    else:
        for label, pyg_ms, gnn_ms, ratio in rows:
            print(f"{label:22s} PyG {pyg_ms:9.1f} ms  gnn {gnn_ms:9.1f} ms  speed-up {ratio:5.2f}x")


if __name__ == "__main__":
    main()
