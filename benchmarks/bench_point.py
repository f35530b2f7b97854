"""Point-cloud convolutions (issue 11): gnn vs PyG 2.8.1, and DynamicEdgeConv's kernels vs pure torch.

Rows (forward + backward of the output's sum, input features requiring grad; medians of
interleaved runs in one process, see ``timing.interleaved_median_ms``):

* ``PointTransformerConv(64, 64)`` and ``PointNetConv`` on ``--points`` uniform random 3-D points
  with a ``k = --k`` nearest-neighbour graph (no self loops, as ``knn_graph``), computed once with
  gnn's ``ops.knn`` and given to both libraries. gnn loads PyG's ``state_dict`` (``strict=True``)
  and the outputs are checked equal first. Configurations:

  - PointTransformerConv with its defaults (``pos_nn`` a linear layer, no ``attn_nn``), and with the
    MLPs of PyG's point-transformer example (``pos_nn`` 3-64-64, ``attn_nn`` 64-64-64, ReLU);
  - PointNetConv with a one-layer ``local_nn`` (``Linear(67, 64)``) and with PointNet++'s MLP
    (``Linear(67, 64)``, ReLU, ``Linear(64, 64)``).

* ``DynamicEdgeConv`` (DGCNN's layers: ``k = 20``, max aggregation) on ``--clouds`` clouds of
  ``--cloud-points`` points, on 3-D positions (``nn`` 6-64-64) and on 64 features (``nn`` 128-64),
  gnn with gnn-kernels (kNN kernel, compiled max aggregation) against gnn's own pure-torch path
  (``ops.backend("torch")``); PyG's DynamicEdgeConv needs pyg-lib, which cannot be installed here.
  One more row runs a single cloud of the same total size without ``batch``.

Usage: python benchmarks/bench_point.py [--points 10000] [--k 16] [--clouds 8]
       [--cloud-points 1024] [--repeat 7] [--clock wall|cpu] [--threads N] [--rows NAME ...]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(__file__))
import timing  # noqa: E402

from gnn.conv import DynamicEdgeConv, PointNetConv, PointTransformerConv  # noqa: E402
from gnn.core import ops, testing  # noqa: E402

CLOCK = {"wall": time.perf_counter, "cpu": time.process_time}
_clock = CLOCK["wall"]


def medians(fns: dict, repeat: int) -> dict[str, float]:
    """:func:`timing.interleaved_median_ms` on the clock chosen by ``--clock`` (``cpu``: the
    process' CPU time, steadier than wall time on a machine shared with other jobs)."""
    if _clock is time.perf_counter:
        return timing.interleaved_median_ms(fns, repeat)
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {key: [] for key in fns}
    for _ in range(repeat):
        for key, fn in fns.items():
            t0 = _clock()
            fn()
            times[key].append(_clock() - t0)
    return {key: sorted(v)[len(v) // 2] * 1e3 for key, v in times.items()}


def fwd_bwd(conv: torch.nn.Module, x: torch.Tensor, *args: object):
    def run() -> None:
        xx = x.detach().requires_grad_()
        conv(xx, *args).sum().backward()

    return run


def mlp(*sizes: int) -> torch.nn.Sequential:
    layers: list[torch.nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [torch.nn.Linear(a, b), torch.nn.ReLU()]
    return torch.nn.Sequential(*layers)


def knn_graph(pos: torch.Tensor, k: int) -> torch.Tensor:
    """``[2, N * k]`` edges from the ``k`` nearest other points to every point (no self loops)."""
    edge_index = ops.knn(pos, pos, k + 1).flip(0)
    return edge_index[:, edge_index[0] != edge_index[1]]


def pyg_rows(args: argparse.Namespace) -> list[tuple[str, float, float]]:
    import torch_geometric.nn as pyg

    g = torch.Generator().manual_seed(0)
    pos = torch.rand(args.points, 3, generator=g)
    x = torch.randn(args.points, 64, generator=g)
    edge_index = knn_graph(pos, args.k)
    torch.manual_seed(0)
    configs = {
        "PointTransformerConv (defaults)": lambda lib: lib.PointTransformerConv(64, 64),
        "PointTransformerConv (MLP pos_nn, attn_nn)": lambda lib: lib.PointTransformerConv(
            64, 64, pos_nn=mlp(3, 64, 64), attn_nn=mlp(64, 64, 64)
        ),
        "PointNetConv (local_nn Linear)": lambda lib: lib.PointNetConv(torch.nn.Linear(67, 64)),
        "PointNetConv (local_nn MLP)": lambda lib: lib.PointNetConv(
            torch.nn.Sequential(torch.nn.Linear(67, 64), torch.nn.ReLU(), torch.nn.Linear(64, 64))
        ),
    }
    ours_cls = {"PointTransformerConv": PointTransformerConv, "PointNetConv": PointNetConv}
    rows = []
    for name, make in configs.items():
        if args.rows and not any(r.lower() in name.lower() for r in args.rows):
            continue
        theirs = make(pyg)
        ours = make(type("lib", (), ours_cls))
        testing.load_pyg_state(ours, theirs)
        testing.assert_close(ours(x, pos, edge_index), theirs(x, pos, edge_index), atol=1e-4, rtol=1e-4)
        t = medians(
            {"gnn": fwd_bwd(ours, x, pos, edge_index), "pyg": fwd_bwd(theirs, x, pos, edge_index)},
            args.repeat,
        )
        rows.append((name, t["gnn"], t["pyg"]))
    return rows


def dynamic_rows(args: argparse.Namespace) -> list[tuple[str, float, float]]:
    g = torch.Generator().manual_seed(1)
    n = args.clouds * args.cloud_points
    batch = torch.arange(args.clouds).repeat_interleave(args.cloud_points)
    torch.manual_seed(0)
    cases = {
        f"DynamicEdgeConv 3-D, {args.clouds} clouds": (torch.rand(n, 3, generator=g), batch, mlp(6, 64, 64)),
        f"DynamicEdgeConv 64 features, {args.clouds} clouds": (
            torch.randn(n, 64, generator=g),
            batch,
            torch.nn.Sequential(torch.nn.Linear(128, 64), torch.nn.ReLU()),
        ),
        "DynamicEdgeConv 3-D, one cloud (no batch)": (torch.rand(n, 3, generator=g), None, mlp(6, 64, 64)),
    }
    rows = []
    for name, (x, b, nn) in cases.items():
        if args.rows and not any(r.lower() in name.lower() for r in args.rows):
            continue
        conv = DynamicEdgeConv(nn, k=20)
        kernels = fwd_bwd(conv, x, b)

        def pure_torch(conv=conv, x=x, b=b) -> None:
            with ops.backend("torch"):
                fwd_bwd(conv, x, b)()

        with ops.backend("torch"):
            expected = conv(x, b)
        testing.assert_close(conv(x, b), expected)
        t = medians({"kernels": kernels, "torch": pure_torch}, args.repeat)
        rows.append((name, t["kernels"], t["torch"]))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--points", type=int, default=10_000)
    parser.add_argument("--k", type=int, default=16)
    parser.add_argument("--clouds", type=int, default=8)
    parser.add_argument("--cloud-points", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--clock", choices=sorted(CLOCK), default="wall")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--rows", nargs="*", default=None, help="substrings of the row names to run")
    args, _ = parser.parse_known_args()  # nox's bench session passes the same arguments to every script
    global _clock
    _clock = CLOCK[args.clock]
    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.clock} clock, "
        f"backends {ops.available()}; load average {os.getloadavg()[0]:.1f}"
    )
    print(f"\n{args.points} points, k = {args.k}, 64 -> 64 channels; forward+backward medians (ms)\n")
    print("| layer | gnn (ms) | PyG (ms) | PyG / gnn |")
    print("| --- | ---: | ---: | ---: |")
    try:
        for name, ours, theirs in pyg_rows(args):
            print(f"| {name} | {ours:.1f} | {theirs:.1f} | {theirs / ours:.2f}x |", flush=True)
    except ImportError as error:
        print(f"(PyG cannot run here: {error})")
    print(
        f"\nDynamicEdgeConv, k = 20, {args.clouds} x {args.cloud_points} points; forward+backward medians (ms)\n"
    )
    print("| layer | kernels (ms) | pure torch (ms) | torch / kernels |")
    print("| --- | ---: | ---: | ---: |")
    for name, ours, theirs in dynamic_rows(args):
        print(f"| {name} | {ours:.1f} | {theirs:.1f} | {theirs / ours:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
