"""gnn-pool against PyG 2.8.1 and brute-force torch references (issue 13), interleaved in one process.

Sections (each prints a markdown table of medians in ms and ratios):

* ``global``: ``global_{add,mean,max}_pool`` forward+backward on ``--nodes``
  x ``--features`` node features in ``--graphs`` graphs (the issue's set-up:
  100k nodes, 64 features, 1000 graphs; the 1M edges of that set-up play no
  part in a global pool). Columns: gnn with the sorted ``batch`` that
  ``Batch`` builds (``ops.segment`` path), gnn with the same nodes shuffled
  (``ops.scatter`` path), PyG with the sorted ``batch``. Peak extra RSS of one
  forward+backward is measured in a fresh process per variant.
* ``geometry``: ``knn_graph`` (k=16), ``radius_graph`` and ``fps`` (ratio
  0.25) on ``--points`` uniform 3-D points in ``--clouds`` clouds: gnn (with
  gnn-kernels when installed), gnn forced to pure torch, and a brute-force
  torch reference written here (per-cloud distance matrices); PyG needs
  torch-cluster or pyg-lib for these, which are not installed here. Results
  are checked equal before timing.
* ``approx``: ``approx_knn`` (faiss HNSW) against exact ``knn`` on
  ``--emb`` x 64 embeddings, k=16, with its recall; the embeddings are a
  mixture of 1000 Gaussian clusters (as learned embeddings are), plus, for
  reference, isotropic Gaussian noise (no neighbourhood structure).

Usage: python benchmarks/bench_pool.py [--sections global geometry approx] [--repeat 15]
       [--nodes 100000] [--features 64] [--graphs 1000] [--points 100000] [--clouds 100]
       [--emb 100000] [--no-memory] [--clock wall|cpu] [--threads N]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
import timing  # noqa: E402
from timing import peak_rss_mb  # noqa: E402

from gnn.core import ops  # noqa: E402
from gnn.pool import (  # noqa: E402
    approx_knn,
    fps,
    global_add_pool,
    global_max_pool,
    global_mean_pool,
    knn,
    knn_graph,
    radius_graph,
)

OURS = {"add": global_add_pool, "mean": global_mean_pool, "max": global_max_pool}
CLOCK = {"wall": time.perf_counter, "cpu": time.process_time}
_clock = CLOCK["wall"]


def interleaved_median_ms(fns, repeat):
    """:func:`timing.interleaved_median_ms` on the clock chosen by ``--clock``.

    ``--clock cpu`` reads the process' CPU time (with one thread): on a shared,
    overloaded machine it leaves out the time spent waiting for a core.
    """
    if _clock is time.perf_counter:
        return timing.interleaved_median_ms(fns, repeat)
    for fn in fns.values():
        fn()
    times = {key: [] for key in fns}
    for _ in range(repeat):
        for key, fn in fns.items():
            t0 = _clock()
            fn()
            times[key].append(_clock() - t0)
    return {key: sorted(v)[len(v) // 2] * 1e3 for key, v in times.items()}


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


# -- global pools ---------------------------------------------------------------------------------
def global_inputs(nodes: int, features: int, graphs: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    batch = torch.randint(0, graphs, (nodes,), generator=g).sort().values
    x = torch.randn(nodes, features, generator=g, requires_grad=True)
    perm = torch.randperm(nodes, generator=g)
    x_shuffled = x.detach()[perm].clone().requires_grad_()
    grad = torch.randn(graphs, features, generator=g)
    return x, batch, x_shuffled, batch[perm], grad


def fwd_bwd(pool, x, batch, size, grad):
    def run():
        pool(x, batch, size).backward(grad)
        x.grad = None

    return run


def pyg_pools():
    try:
        import torch_geometric.nn as pyg
    except ImportError as error:
        print(f"(PyG not importable: {error})")
        return None
    return {"add": pyg.global_add_pool, "mean": pyg.global_mean_pool, "max": pyg.global_max_pool}


def peak_memory_mb(reduce: str, variant: str, args) -> float:
    """Extra peak RSS (MB) of one forward+backward in a fresh process (VmHWM reset after set-up)."""
    code = f"""
import sys
import bench_pool as b
x, batch, xs, bs, grad = b.global_inputs({args.nodes}, {args.features}, {args.graphs})
if {variant!r} == 'pyg':
    pool = b.pyg_pools()[{reduce!r}]
else:
    pool = b.OURS[{reduce!r}]
if {variant!r} == 'gnn unsorted':
    x, batch = xs, bs
run = b.fwd_bwd(pool, x, batch, {args.graphs}, grad)
run()
"""
    return peak_rss_mb(code, mmap_threshold=True)


def global_section(args) -> None:
    x, batch, xs, bs, grad = global_inputs(args.nodes, args.features, args.graphs)
    theirs = pyg_pools()
    rows = []
    for reduce in ("add", "mean", "max"):
        ours = OURS[reduce]
        torch.testing.assert_close(ours(x, batch, args.graphs), ours(xs, bs, args.graphs))
        fns = {
            "sorted": fwd_bwd(ours, x, batch, args.graphs, grad),
            "unsorted": fwd_bwd(ours, xs, bs, args.graphs, grad),
        }
        if theirs is not None:
            torch.testing.assert_close(ours(x, batch, args.graphs), theirs[reduce](x, batch, args.graphs))
            fns["pyg"] = fwd_bwd(theirs[reduce], x, batch, args.graphs, grad)
        ms = interleaved_median_ms(fns, args.repeat)
        row = [f"global_{reduce}_pool", f"{ms['sorted']:.2f}", f"{ms['unsorted']:.2f}"]
        if theirs is not None:
            row += [
                f"{ms['pyg']:.2f}",
                f"{ms['pyg'] / ms['sorted']:.2f}x",
                f"{ms['pyg'] / ms['unsorted']:.2f}x",
            ]
        if not args.no_memory:
            mem = {v: peak_memory_mb(reduce, v, args) for v in ("gnn sorted", "gnn unsorted")}
            if theirs is not None:
                mem["pyg"] = peak_memory_mb(reduce, "pyg", args)
            row.append(" / ".join(f"{mem[v]:.0f}" for v in mem))
        rows.append(row)
    header = ["pool (fwd+bwd)", "gnn sorted", "gnn unsorted"]
    if theirs is not None:
        header += ["PyG", "PyG/sorted", "PyG/unsorted"]
    if not args.no_memory:
        header.append("peak MB (sorted / unsorted" + (" / PyG)" if theirs is not None else ")"))
    print(
        f"\nglobal pools: {args.nodes} nodes x {args.features} features, {args.graphs} graphs, "
        f"median of {args.repeat} interleaved runs (ms)\n"
    )
    print(table(header, rows))


# -- geometry -------------------------------------------------------------------------------------
def cloud_ptr(batch: torch.Tensor, clouds: int) -> list[int]:
    return [0] + torch.bincount(batch, minlength=clouds).cumsum(0).tolist()


def brute_knn_graph(pos, ptr, k):
    """Per cloud: full distance matrix, k + 1 smallest by (distance, index), the point itself dropped."""
    rows, cols = [], []
    for a, b in zip(ptr[:-1], ptr[1:]):
        p = pos[a:b]
        d = ((p.unsqueeze(1) - p.unsqueeze(0)) ** 2).sum(-1)
        d.fill_diagonal_(math.inf)
        idx = torch.arange(b - a)
        # stable sort by distance keeps equal distances in index order
        nb = d.sort(dim=1, stable=True).indices[:, :k]
        rows.append(idx.repeat_interleave(nb.size(1)) + a)
        cols.append(nb.flatten() + a)
    return torch.stack([torch.cat(cols), torch.cat(rows)])


def brute_radius_graph(pos, ptr, r, cap):
    rows, cols = [], []
    for a, b in zip(ptr[:-1], ptr[1:]):
        p = pos[a:b]
        d = ((p.unsqueeze(1) - p.unsqueeze(0)) ** 2).sum(-1)
        near = d < r * r
        near.fill_diagonal_(False)
        rank = near.cumsum(1)
        near &= rank <= cap
        q, j = near.nonzero(as_tuple=True)
        rows.append(q + a)
        cols.append(j + a)
    return torch.stack([torch.cat(cols), torch.cat(rows)])


def brute_fps(pos, ptr, ratio):
    """Farthest point sampling from each cloud's first point, all clouds of one size at once."""
    out = []
    for a, b in zip(ptr[:-1], ptr[1:]):
        p = pos[a:b]
        take = math.ceil(ratio * (b - a))
        dist = ((p - p[0]) ** 2).sum(1)
        picked = [0]
        dist[0] = -1
        for _ in range(take - 1):
            nxt = int(dist.argmax())
            picked.append(nxt)
            dist = torch.where(dist < 0, dist, torch.minimum(dist, ((p - p[nxt]) ** 2).sum(1)))
            dist[nxt] = -1
        out.append(torch.tensor(picked) + a)
    return torch.cat(out)


def geometry_section(args) -> None:
    g = torch.Generator().manual_seed(1)
    pos = torch.rand(args.points, 3, generator=g)
    batch = torch.randint(0, args.clouds, (args.points,), generator=g).sort().values
    ptr = cloud_ptr(batch, args.clouds)
    per_cloud = args.points / args.clouds
    r = (16 * 3 / (4 * math.pi * per_cloud)) ** (1 / 3)  # about 16 neighbours per point in the unit cube
    cases = {
        "knn_graph k=16": (
            lambda: knn_graph(pos, 16, batch),
            lambda: brute_knn_graph(pos, ptr, 16),
        ),
        f"radius_graph r={r:.3f}": (
            lambda: radius_graph(pos, r, batch, max_num_neighbors=32),
            lambda: brute_radius_graph(pos, ptr, r, 32),
        ),
        "fps ratio=0.25": (
            lambda: fps(pos, batch, 0.25, random_start=False),
            lambda: brute_fps(pos, ptr, 0.25),
        ),
    }
    rows = []
    for name, (ours, brute) in cases.items():

        def pure():
            with ops.backend("torch"):
                return ours()

        expected = brute()
        for label, out in (("gnn", ours()), ("gnn pure torch", pure())):
            if not torch.equal(out, expected):
                raise SystemExit(f"{name}: {label} differs from the brute-force reference")
        ms = interleaved_median_ms({"gnn": ours, "torch": pure, "brute": brute}, args.geo_repeat)
        rows.append(
            [
                name,
                f"{ms['gnn']:.1f}",
                f"{ms['torch']:.1f}",
                f"{ms['brute']:.1f}",
                f"{ms['brute'] / ms['gnn']:.1f}x",
                f"{ms['brute'] / ms['torch']:.1f}x",
            ]
        )
    print(
        f"\ngeometry: {args.points} uniform 3-D points in {args.clouds} clouds, median of {args.geo_repeat} "
        f"interleaved runs (ms); PyG needs torch-cluster/pyg-lib for these (not installed)\n"
    )
    print(table(["op", "gnn", "gnn pure torch", "brute-force torch", "brute/gnn", "brute/pure torch"], rows))


# -- approximate knn ------------------------------------------------------------------------------
def embeddings(kind: str, n: int, dim: int = 64, seed: int = 2) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    if kind == "isotropic":
        return torch.randn(n, dim, generator=g)
    centers = torch.randn(1000, dim, generator=g) * 3
    return centers[torch.randint(0, 1000, (n,), generator=g)] + torch.randn(n, dim, generator=g)


def recall(found: torch.Tensor, exact: torch.Tensor, n: int, k: int) -> float:
    a = found[0] * n + found[1]
    b = exact[0] * n + exact[1]
    return float(torch.isin(a, b).sum()) / b.numel()


def timed(fn):
    t0 = _clock()
    out = fn()
    return (_clock() - t0) * 1e3, out


def approx_section(args) -> None:
    try:
        import faiss
    except ImportError as error:
        print(f"\n(approx: faiss not installed: {error})")
        return
    rows = []
    k = 16
    for kind in ("clustered", "isotropic"):
        x = embeddings(kind, args.emb)
        t_exact, exact = timed(lambda: knn(x, x, k))
        flat = faiss.IndexFlatL2(x.size(1))
        t_flat, _ = timed(lambda: (flat.add(x.numpy()), flat.search(x.numpy(), k)))
        times = []
        for _ in range(args.approx_repeat):
            t, found = timed(lambda: approx_knn(x, x, k))
            times.append(t)
        t_approx = sorted(times)[len(times) // 2]
        rec = recall(found, exact, args.emb, k)
        rows.append(
            [
                kind,
                f"{t_exact:.0f}",
                f"{t_flat:.0f}",
                f"{t_approx:.0f}",
                f"{rec:.4f}",
                f"{t_exact / t_approx:.1f}x",
            ]
        )
    print(
        f"\napprox_knn vs exact knn: {args.emb} x 64 embeddings, k={k}, every point a query (ms; exact "
        f"runs once, approx median of {args.approx_repeat})\n"
    )
    print(
        table(
            ["embeddings", "gnn knn (exact)", "faiss flat (exact)", "approx_knn", "recall", "exact/approx"],
            rows,
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sections", nargs="+", default=["global", "geometry", "approx"])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--geo-repeat", type=int, default=3)
    parser.add_argument("--approx-repeat", type=int, default=3)
    parser.add_argument("--nodes", type=int, default=100_000)
    parser.add_argument("--features", type=int, default=64)
    parser.add_argument("--graphs", type=int, default=1000)
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--clouds", type=int, default=100)
    parser.add_argument("--emb", type=int, default=100_000)
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--clock", choices=sorted(CLOCK), default="wall")
    parser.add_argument("--threads", type=int, default=None)
    args, _ = parser.parse_known_args()
    global _clock
    _clock = CLOCK[args.clock]
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.clock} clock")
    if "global" in args.sections:
        global_section(args)
    if "geometry" in args.sections:
        geometry_section(args)
    if "approx" in args.sections:
        approx_section(args)


if __name__ == "__main__":
    main()
