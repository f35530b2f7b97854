"""gnn-models part 1 (issue 15): basic GNN training steps and label propagation, gnn vs PyG.

* **GCN, GraphSAGE, GIN, GAT**: one training step (``zero_grad``, forward, cross-entropy,
  backward, ``Adam.step``) of ``Model(F, hidden, layers, out_channels=classes)`` on a random
  graph of ``--nodes`` nodes, ``--edges`` edges and ``--features`` input features (GAT: ``--heads``
  heads splitting ``hidden``). Both models start from the same weights (PyG's ``state_dict``
  loaded into ours, ``strict=True``); Adam's learning rate is 0 so that the weights stay equal.
* **LabelPropagation** (``--lp-layers`` steps, alpha 0.9, half the labels known) and
  **CorrectAndSmooth** (``--cs-layers`` correction steps with alpha 1.0, the same number of smoothing
  steps with alpha 0.8, autoscale) over ``--classes`` classes.
  "warm": the same ``edge_index`` tensor every call (a static graph: gnn's per-graph cache keeps the
  normalized graph and its CSR form); "cold": a fresh copy of ``edge_index`` every call (nothing
  cached).

Every pair is first checked to give the same output on a tenth of the graph (float64). The two
libraries run interleaved in one process (``timing.interleaved_median_ms``): a change of machine
load hits both alike. The table gives medians in ms and the ratio PyG / gnn.

Usage: python benchmarks/bench_models.py [--nodes 100000] [--edges 1000000] [--features 128]
       [--hidden 128] [--layers 3] [--classes 40] [--heads 8] [--lp-layers 3] [--cs-layers 3]
       [--repeat 5] [--rows GCN GraphSAGE GIN GAT LabelPropagation CorrectAndSmooth]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
from timing import interleaved_median_ms  # noqa: E402

GNNS = ("GCN", "GraphSAGE", "GIN", "GAT")
ROWS = (*GNNS, "LabelPropagation", "CorrectAndSmooth")


def make_graph(args: argparse.Namespace, scale: int = 1, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    n, e = args.nodes // scale, args.edges // scale
    x = torch.randn(n, args.features, generator=g)
    edge_index = torch.randint(0, n, (2, e), generator=g)
    y = torch.randint(0, args.classes, (n,), generator=g)
    mask = torch.rand(n, generator=g) < 0.5
    return x, edge_index, y, mask


def model_pair(name: str, args: argparse.Namespace):
    import torch_geometric.nn as pyg

    import gnn.models as ours

    kwargs = {"heads": args.heads} if name == "GAT" else {}
    torch.manual_seed(0)
    theirs = getattr(pyg, name)(args.features, args.hidden, args.layers, out_channels=args.classes, **kwargs)
    mine = getattr(ours, name)(args.features, args.hidden, args.layers, out_channels=args.classes, **kwargs)
    mine.load_state_dict(theirs.state_dict(), strict=True)
    return mine, theirs


def train_step(model: torch.nn.Module, x, edge_index, y) -> Callable[[], None]:
    opt = torch.optim.Adam(model.parameters(), lr=0.0)

    def step() -> None:
        opt.zero_grad()
        loss = F.cross_entropy(model(x, edge_index), y)
        loss.backward()
        opt.step()

    return step


def check_gnn(name: str, args: argparse.Namespace) -> None:
    x, edge_index, _, _ = make_graph(args, scale=10, seed=1)
    mine, theirs = model_pair(name, args)
    mine.double().eval(), theirs.double().eval()
    torch.testing.assert_close(mine(x.double(), edge_index), theirs(x.double(), edge_index))


def propagation_pair(name: str, args: argparse.Namespace):
    import torch_geometric.nn as pyg

    import gnn.models as ours

    if name == "LabelPropagation":
        return ours.LabelPropagation(args.lp_layers, 0.9), pyg.LabelPropagation(args.lp_layers, 0.9)
    cs = (args.cs_layers, 1.0, args.cs_layers, 0.8)
    return ours.CorrectAndSmooth(*cs), pyg.CorrectAndSmooth(*cs)


def propagation_call(name: str, module, y, mask, y_soft, graph: Callable[[], torch.Tensor]):
    if name == "LabelPropagation":
        return lambda: module(y, graph(), mask)
    return lambda: module(y_soft, y[mask], mask, graph())


def check_propagation(name: str, args: argparse.Namespace) -> None:
    _, edge_index, y, mask = make_graph(args, scale=10, seed=2)
    y_soft = torch.softmax(torch.randn(y.numel(), args.classes, dtype=torch.float64), -1)
    mine, theirs = propagation_pair(name, args)
    a = propagation_call(name, mine, y, mask, y_soft, lambda: edge_index)()
    b = propagation_call(name, theirs, y, mask, y_soft, lambda: edge_index)()
    torch.testing.assert_close(a, b)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=100_000)
    parser.add_argument("--edges", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=128)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--classes", type=int, default=40)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--lp-layers", type=int, default=3)
    parser.add_argument("--cs-layers", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--rows", nargs="+", default=list(ROWS), choices=ROWS)
    args = parser.parse_args()

    print(
        f"# {args.nodes} nodes, {args.edges} edges, {args.features} features, hidden {args.hidden}, "
        f"{args.layers} layers, {args.classes} classes; torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads\n"
    )
    print("| row | gnn (ms) | PyG (ms) | PyG / gnn |")
    print("| --- | ---: | ---: | ---: |")
    x, edge_index, y, mask = make_graph(args)
    y_soft = torch.softmax(
        torch.randn(y.numel(), args.classes, generator=torch.Generator().manual_seed(3)), -1
    )
    for name in args.rows:
        if name in GNNS:
            check_gnn(name, args)
            mine, theirs = model_pair(name, args)
            times = interleaved_median_ms(
                {"gnn": train_step(mine, x, edge_index, y), "pyg": train_step(theirs, x, edge_index, y)},
                args.repeat,
            )
            rows = [(f"{name} train step", times)]
        else:
            check_propagation(name, args)
            mine, theirs = propagation_pair(name, args)
            fns = {}
            for variant, graph in (("warm", lambda: edge_index), ("cold", lambda: edge_index.clone())):
                fns[f"gnn {variant}"] = propagation_call(name, mine, y, mask, y_soft, graph)
                fns[f"pyg {variant}"] = propagation_call(name, theirs, y, mask, y_soft, graph)
            times = interleaved_median_ms(fns, args.repeat)
            rows = [
                (f"{name} ({variant})", {"gnn": times[f"gnn {variant}"], "pyg": times[f"pyg {variant}"]})
                for variant in ("warm", "cold")
            ]
        for label, t in rows:
            print(f"| {label} | {t['gnn']:.1f} | {t['pyg']:.1f} | {t['pyg'] / t['gnn']:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
