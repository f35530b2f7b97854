"""GATv2Conv and TransformerConv forward+backward: gnn's fused path vs its per-edge path vs PyG.

Interleaved in one process (every round runs each variant once, in turn) on the same inputs; the
table gives medians in ms and PyG / variant ratios. The per-edge path is gnn's fallback, reached by
registering a no-op message hook (hooks must see per-edge messages, so the fused op is skipped).

    python benchmarks/bench_fused_attention.py --nodes 100000 --rounds 5 [--profile]

``--profile`` adds a torch.profiler breakdown (self CPU time per op) of one fused forward+backward.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import torch
from timing import interleaved_median_ms

FEATURES, HEADS, CHANNELS, DEGREE = 128, 8, 16, 10


def make_graph(num_nodes: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(num_nodes, FEATURES, generator=g)
    edge_index = torch.randint(0, num_nodes, (2, num_nodes * DEGREE), generator=g)
    return x, edge_index


def fwd_bwd(layer: torch.nn.Module, x: torch.Tensor, edge_index: torch.Tensor) -> Callable[[], None]:
    def run() -> None:
        layer.zero_grad(set_to_none=True)
        layer(x, edge_index).sum().backward()

    return run


def variants(name: str) -> dict[str, torch.nn.Module]:
    import gnn.conv as ours

    cls = {"GATv2": "GATv2Conv", "Transformer": "TransformerConv"}[name]
    out: dict[str, torch.nn.Module] = {"fused": getattr(ours, cls)(FEATURES, CHANNELS, heads=HEADS)}
    per_edge = getattr(ours, cls)(FEATURES, CHANNELS, heads=HEADS)
    per_edge.register_message_forward_hook(lambda module, inputs, output: None)
    out["per-edge"] = per_edge
    try:
        import torch_geometric.nn as pyg

        out["PyG"] = getattr(pyg, cls)(FEATURES, CHANNELS, heads=HEADS)
    except ImportError:
        pass
    return out


def profile(run: Callable[[], None], rows: int = 12) -> str:
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as prof

    run()
    with prof(activities=[ProfilerActivity.CPU]) as p:
        run()
    return p.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    x, edge_index = make_graph(args.nodes)
    print(f"{args.nodes} nodes, {edge_index.size(1)} edges, {FEATURES} features, {HEADS} heads x {CHANNELS}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    for name in ("GATv2", "Transformer"):
        layers = variants(name)
        runs = {key: fwd_bwd(layer, x, edge_index) for key, layer in layers.items()}
        ms = interleaved_median_ms(runs, args.rounds)
        cells = ", ".join(f"{key} {value:.1f} ms" for key, value in ms.items())
        print(f"{name}: {cells}")
        if "PyG" in ms:
            ratios = ", ".join(f"PyG/{key} {ms['PyG'] / ms[key]:.2f}x" for key in ms if key != "PyG")
            print(f"  {ratios}")
        if args.profile:
            print(profile(runs["fused"]))


if __name__ == "__main__":
    main()
