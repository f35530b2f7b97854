"""gnn-models: KGE training loss (forward + backward) and Node2Vec random walks, gnn vs PyG.

Issue 15's sizes: 100k triplets, 100k entities, 64 channels, 100 relations. Each
model's loss runs with ``loss(h, r, t).backward()`` on PyG's and on gnn's model
(gnn loads PyG's weights first; both draw the same negatives from the same seed,
and the losses are checked equal before timing), interleaved in one process.

Random walks: ``gnn.core.ops.random_walk`` on gnn-kernels' kernel against the
pure-torch reference (torch-cluster's random walk is timed too when it is
installed), uniform (Node2Vec's p = q = 1) and biased (p = 1, q = 2) walks of 20
steps from every node of a random graph of 100k nodes and 1M edges.

    python benchmarks/bench_kge.py [--repeat 7] [--triplets 100000] [--no-walks]
"""

from __future__ import annotations

import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from timing import interleaved_median_ms  # noqa: E402

import gnn.models as ours  # noqa: E402
from gnn.core import ops  # noqa: E402

PYG_MS = {"TransE": 759, "DistMult": 276, "ComplEx": 896, "RotatE": 891}  # the PyG times


def kge_rows(num: int, repeat: int) -> list[str]:
    import torch_geometric.nn as pyg

    torch.manual_seed(0)
    n, r, d = num, 100, 64
    h, rel, t = torch.randint(n, (num,)), torch.randint(r, (num,)), torch.randint(n, (num,))
    rows = []
    for name in ("TransE", "DistMult", "ComplEx", "RotatE"):
        theirs = getattr(pyg, name)(n, r, d)
        mine = getattr(ours, name)(n, r, d)
        mine.load_state_dict(theirs.state_dict(), strict=True)
        torch.manual_seed(1)
        a = theirs.loss(h, rel, t)
        torch.manual_seed(1)
        b = mine.loss(h, rel, t)
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-6), (name, float(a), float(b))

        def step(model):
            def run():
                model.zero_grad(set_to_none=True)
                model.loss(h, rel, t).backward()

            return run

        times = interleaved_median_ms({"pyg": step(theirs), "gnn": step(mine)}, repeat)
        rows.append(
            f"| {name} loss fwd+bwd | {times['pyg']:.0f} | {times['gnn']:.0f} | "
            f"{times['pyg'] / times['gnn']:.2f}x | >= 1.5x |"
        )
        print(rows[-1], flush=True)
    return rows


def walk_rows(repeat: int) -> list[str]:
    torch.manual_seed(0)
    n, e, length = 100_000, 1_000_000, 20
    ei = torch.randint(n, (2, e))
    row, col = ei[:, torch.argsort(ei[0])]
    rowptr = torch.cat([torch.zeros(1, dtype=torch.long), torch.bincount(row, minlength=n).cumsum(0)])
    start = torch.arange(n)
    try:
        import torch_cluster  # type: ignore[import-not-found]  # noqa: F401

        cluster = torch.ops.torch_cluster.random_walk
    except ImportError:
        cluster = None
    rows = []
    for p, q in ((1.0, 1.0), (1.0, 2.0)):
        ops.random_walk(rowptr, col, start, 1, p, q)  # the sorted neighbours of biased walks: cached

        def kernel():
            ops.random_walk(rowptr, col, start, length, p, q)

        def reference():
            with ops.backend("torch"):
                ops.random_walk(rowptr, col, start, length, p, q)

        fns = {"gnn": kernel, "ref": reference}
        if cluster is not None:
            fns["torch_cluster"] = lambda: cluster(rowptr, col, start, length, p, q)
        times = interleaved_median_ms(fns, repeat)
        base = times.get("torch_cluster", times["ref"])
        what = "torch-cluster" if "torch_cluster" in times else "pure-torch op"
        rows.append(
            f"| random walks p={p:g} q={q:g} (vs {what}) | {base:.0f} | {times['gnn']:.0f} | "
            f"{base / times['gnn']:.2f}x | >= 2x |"
        )
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--triplets", type=int, default=100_000)
    parser.add_argument("--no-walks", action="store_true")
    parser.add_argument("--no-kge", action="store_true")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, backends {ops.available()}")
    print("| what | baseline ms | gnn ms | speed-up | target |")
    print("| --- | ---: | ---: | ---: | --- |")
    if not args.no_kge:
        kge_rows(args.triplets, args.repeat)
    if not args.no_walks:
        walk_rows(max(3, args.repeat // 2))


if __name__ == "__main__":
    main()
