"""Side-by-side forward+backward benchmark of gnn and PyG layers (issue: gnn-kernels).

One run measures, on the same inputs:
  * gnn with the compiled kernels (default backend selection),
  * gnn on pure torch (``ops.backend("torch")``),
  * PyG 2.8.1 with ``edge_index`` and with a ``torch.sparse`` CSR ``adj_t``,
  * the layer's dense-only time (the floor: its ``nn`` for GIN, else its
    linear maps alone, on inputs of their size),
for GCN, SAGE, GIN, GAT, GATv2 and TransformerConv, plus aggregations,
global mean pooling and spmm against the machine's copy bandwidth.

The variants of one layer run interleaved (one call of each in turn, per
repeat), so a drift in the machine's speed affects all of them alike.
Prints medians (ms), ratios (PyG / gnn) and, for the layers whose message
passing is one spmm (GCN, SAGE, GIN), ``mp/roof``: (kernels - dense) divided by
the spmm roofline time (the bytes an spmm must move, at the measured copy
bandwidth; the issue's target is <= 1.5). Peak memory (extra RSS during one
forward+backward, measured in a fresh subprocess) for GCN, SAGE, GIN and GAT,
with kernels and on pure torch.

Usage: python benchmarks/bench_layers.py [--sizes 10000 100000] [--repeat 5] [--layers SAGE GIN]
       [--no-memory] [--no-aggr] [--no-spmm] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
from collections.abc import Callable

import torch
from timing import interleaved_median_ms, median_ms, peak_rss_mb

from gnn.core import ops, utils

FEATURES = 128
DEGREE = 10


def in_backend(backend: str, fn: Callable[[], object]) -> Callable[[], None]:
    def run():
        with ops.backend(backend):
            fn()

    return run


def make_graph(num_nodes: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(num_nodes, FEATURES, generator=g)
    edge_index = torch.randint(0, num_nodes, (2, num_nodes * DEGREE), generator=g)
    return x, edge_index


def pyg_csr(edge_index: torch.Tensor, n: int) -> torch.Tensor:
    """PyG's torch.sparse CSR ``adj_t`` (rows = targets)."""
    coo = torch.sparse_coo_tensor(edge_index.flip(0), torch.ones(edge_index.size(1)), (n, n)).coalesce()
    return coo.to_sparse_csr()


def layer_pairs():
    """name -> (gnn constructor, pyg constructor); both built with the same seed."""
    import gnn.conv as ours

    try:
        import torch_geometric.nn as pyg
    except ImportError:
        pyg = None

    def mlp(lib):
        return torch.nn.Sequential(
            torch.nn.Linear(FEATURES, FEATURES), torch.nn.ReLU(), torch.nn.Linear(FEATURES, FEATURES)
        )

    return {
        "GCN": (lambda: ours.GCNConv(FEATURES, FEATURES), pyg and (lambda: pyg.GCNConv(FEATURES, FEATURES))),
        "SAGE": (
            lambda: ours.SAGEConv(FEATURES, FEATURES),
            pyg and (lambda: pyg.SAGEConv(FEATURES, FEATURES)),
        ),
        "GIN": (lambda: ours.GINConv(mlp(ours)), pyg and (lambda: pyg.GINConv(mlp(pyg)))),
        "GAT": (
            lambda: ours.GATConv(FEATURES, 16, heads=8),
            pyg and (lambda: pyg.GATConv(FEATURES, 16, heads=8)),
        ),
        "GATv2": (
            lambda: ours.GATv2Conv(FEATURES, 16, heads=8),
            pyg and (lambda: pyg.GATv2Conv(FEATURES, 16, heads=8)),
        ),
        "Transformer": (
            lambda: ours.TransformerConv(FEATURES, 16, heads=8),
            pyg and (lambda: pyg.TransformerConv(FEATURES, 16, heads=8)),
        ),
    }


def fwd_bwd(layer: torch.nn.Module, x: torch.Tensor, graph) -> Callable[[], None]:
    def run():
        layer.zero_grad(set_to_none=True)
        out = layer(x, graph)
        out.sum().backward()

    return run


def dense_floor(layer: torch.nn.Module, x: torch.Tensor) -> Callable[[], None]:
    """Forward+backward of the layer's dense part alone, on inputs of its size.

    The dense part is the layer's ``nn`` (GIN's MLP, run as the layer runs
    it) plus every linear map outside it, each on its own input.
    """
    nn = getattr(layer, "nn", None)
    blocks = [nn] if isinstance(nn, torch.nn.Module) else []
    inside = {id(m) for b in blocks for m in b.modules()}
    blocks += [
        m
        for m in layer.modules()
        if (isinstance(m, torch.nn.Linear) or type(m).__name__ == "Linear") and id(m) not in inside
    ]
    inputs = [torch.randn(x.size(0), x.size(1) if b is nn else b.weight.size(1)) for b in blocks]

    def run():
        total = 0
        for b, inp in zip(blocks, inputs):
            total = total + b(inp).sum()
        total.backward()

    return run


def spmm_bytes(num_nodes: int, num_edges: int) -> int:
    """Bytes an spmm sum moves at least: one gathered row per edge (E * F * 4),
    the CSR indices (E * 8 + N * 8) and the output (N * F * 4)."""
    return num_edges * FEATURES * 4 + num_edges * 8 + num_nodes * 8 + num_nodes * FEATURES * 4


def spmm_roofline_ms(num_nodes: int, num_edges: int, bw: float) -> float:
    """Time an spmm sum needs at copy bandwidth ``bw`` (GB/s)."""
    return spmm_bytes(num_nodes, num_edges) / (bw * 1e9) * 1e3


def bandwidth_gbs() -> float:
    """Copy bandwidth (read + write) of this machine through torch, GB/s."""
    a = torch.empty(64 * 2**20, dtype=torch.float32).normal_()
    b = torch.empty_like(a)
    ms = median_ms(lambda: b.copy_(a), 7)
    return 2 * a.numel() * 4 / (ms / 1e3) / 1e9


def spmm_fraction(num_nodes: int, repeat: int, bw: float) -> tuple[float, float]:
    """spmm sum forward time and the fraction of copy bandwidth it reaches (see :func:`spmm_bytes`)."""
    x, edge_index = make_graph(num_nodes)
    csr = utils.to_csr(edge_index, (num_nodes, num_nodes))
    ms = median_ms(lambda: ops.spmm(csr, x, None, "sum"), repeat)
    return ms, spmm_roofline_ms(num_nodes, edge_index.size(1), bw) / ms


def peak_memory_mb(name: str, variant: str, num_nodes: int) -> float:
    """Extra peak RSS (MB) of one forward+backward, measured in a fresh process.

    ``variant``: ``"gnn"`` (kernels when installed), ``"torch"`` (gnn forced to
    pure torch) or ``"pyg"``. The kernel's high-water mark (VmHWM) is reset
    after setup by writing 5 to /proc/self/clear_refs, so the number is the
    peak above the set-up state.
    """
    code = f"""
import sys
import torch
import bench_layers as b


torch.manual_seed(0)
x, ei = b.make_graph({num_nodes})
ours, theirs = b.layer_pairs()[{name!r}]
layer = ours() if {variant!r} != 'pyg' else theirs()
run = b.fwd_bwd(layer, x, ei)
run()  # warm-up: caches and allocator, as in the timed runs
"""
    env = dict(os.environ, GNN_KERNELS="torch") if variant == "torch" else None
    return peak_rss_mb(code, env=env)


def aggregation_rows(repeat: int) -> list[tuple[str, float, float | None]]:
    """Max/Softmax/Std aggregation and global mean pooling on 1M x 64, 100k groups."""
    from gnn.aggr import MaxAggregation, SoftmaxAggregation, StdAggregation

    try:
        import torch_geometric.nn.aggr as pyg_aggr
        from torch_geometric.nn import global_mean_pool as pyg_pool
    except ImportError:
        pyg_aggr = pyg_pool = None
    g = torch.Generator().manual_seed(1)
    x = torch.randn(1_000_000, 64, generator=g, requires_grad=True)
    index = torch.randint(0, 100_000, (1_000_000,), generator=g)
    rows = []
    for name, ours in [
        ("MaxAggregation", MaxAggregation),
        ("SoftmaxAggregation", SoftmaxAggregation),
        ("StdAggregation", StdAggregation),
    ]:

        def run(module):
            return lambda: module(x, index, dim_size=100_000).sum().backward()

        t_ours = median_ms(run(ours()), repeat)
        t_pyg = median_ms(run(getattr(pyg_aggr, name)()), repeat) if pyg_aggr else None
        rows.append((name, t_ours, t_pyg))
    batch = index.sort().values
    from gnn.core import MeanAggregation

    t_ours = median_ms(lambda: MeanAggregation()(x, batch, dim_size=100_000).sum().backward(), repeat)
    t_pyg = median_ms(lambda: pyg_pool(x, batch, 100_000).sum().backward(), repeat) if pyg_pool else None
    rows.append(("global_mean_pool", t_ours, t_pyg))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--layers", nargs="+", default=None)
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--no-aggr", action="store_true", help="skip the aggregation and pooling rows")
    parser.add_argument("--no-spmm", action="store_true", help="skip the spmm bandwidth row")
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args()

    torch.manual_seed(0)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, backends {ops.available()}")
    # torch reads THP_MEM_ALLOC_ENABLE itself; with it, large CPU tensors sit on transparent huge
    # pages and a fresh [100k, 128] tensor costs a few page faults instead of 12,500
    thp = os.environ.get("THP_MEM_ALLOC_ENABLE", "0") == "1"
    print(
        f"THP_MEM_ALLOC_ENABLE={'1 (huge pages)' if thp else '0 (4 KiB pages: page faults weigh on fresh tensors)'}"
    )
    bw = bandwidth_gbs()
    print(f"copy bandwidth: {bw:.1f} GB/s")
    results = {"bandwidth_gbs": bw, "thp": thp, "layers": [], "aggr": [], "spmm": []}
    pairs = layer_pairs()
    names = args.layers or list(pairs)
    header = (
        f"{'layer':<12}{'nodes':>8}{'kernels':>10}{'torch':>10}{'PyG ei':>10}{'PyG csr':>10}{'dense':>9}"
        f"  {'ei/ker':>7}{'best/ker':>9}{'ei/torch':>9}{'mp/roof':>8}"
    )
    print(header)
    for n in args.sizes:
        x, edge_index = make_graph(n)
        adj = pyg_csr(edge_index, n)
        roofline = spmm_roofline_ms(n, edge_index.size(1), bw)
        for name in names:
            ours_ctor, pyg_ctor = pairs[name]
            torch.manual_seed(0)
            ours = ours_ctor()
            fns = {
                "kernels": fwd_bwd(ours, x, edge_index),
                "torch": in_backend("torch", fwd_bwd(ours, x, edge_index)),
                "dense": dense_floor(ours, x),
            }
            if pyg_ctor:
                torch.manual_seed(0)
                theirs = pyg_ctor()
                fns["pyg_ei"] = fwd_bwd(theirs, x, edge_index)
                try:
                    fwd_bwd(theirs, x, adj)()
                    fns["pyg_csr"] = fwd_bwd(theirs, x, adj)
                except Exception:  # noqa: BLE001 - PyG has no sparse path for this layer
                    pass
            t = interleaved_median_ms(fns, args.repeat)
            t_kernels, t_torch, t_ei, t_csr = t["kernels"], t["torch"], t.get("pyg_ei"), t.get("pyg_csr")
            best = min(v for v in (t_ei, t_csr) if v is not None) if t_ei else None
            mp_roof = (t_kernels - t["dense"]) / roofline if name in ("GCN", "SAGE", "GIN") else None
            fmt = lambda v: f"{v:10.1f}" if v is not None else f"{'-':>10}"  # noqa: E731
            ratio = lambda a, b=t_kernels: f"{a / b:7.2f}x" if a else "      -"  # noqa: E731
            roof = f"{mp_roof:8.2f}" if mp_roof is not None else f"{'-':>8}"
            print(
                f"{name:<12}{n:>8}{t_kernels:10.1f}{t_torch:10.1f}{fmt(t_ei)}{fmt(t_csr)}{t['dense']:9.1f}  "
                f"{ratio(t_ei)}{ratio(best):>9}{ratio(t_ei, t_torch):>9}{roof}"
            )
            results["layers"].append(
                dict(
                    layer=name,
                    nodes=n,
                    kernels=t_kernels,
                    torch=t_torch,
                    pyg_ei=t_ei,
                    pyg_csr=t_csr,
                    dense=t["dense"],
                    spmm_roofline=roofline,
                )
            )
        if not args.no_spmm:
            ms, frac = spmm_fraction(n, args.repeat, bw)
            print(f"spmm sum fwd at {n} nodes: {ms:.1f} ms = {100 * frac:.0f}% of copy bandwidth")
            results["spmm"].append(dict(nodes=n, ms=ms, fraction=frac))
    if not args.no_memory:
        n = max(args.sizes)
        for name in [m for m in ("GCN", "SAGE", "GIN", "GAT") if m in names]:
            ours_mb = peak_memory_mb(name, "gnn", n)
            torch_mb = peak_memory_mb(name, "torch", n)
            try:
                pyg_mb = peak_memory_mb(name, "pyg", n)
            except subprocess.CalledProcessError:
                pyg_mb = None
            ratio = lambda mb: f"{mb / pyg_mb:.2f}" if pyg_mb else "-"  # noqa: E731
            print(
                f"peak extra memory {name} at {n} nodes: kernels {ours_mb:.0f} MB ({ratio(ours_mb)} of PyG), "
                f"torch {torch_mb:.0f} MB ({ratio(torch_mb)}), PyG {pyg_mb if pyg_mb is None else round(pyg_mb)} MB"
            )
            results.setdefault("memory", []).append(
                dict(layer=name, gnn_mb=ours_mb, torch_mb=torch_mb, pyg_mb=pyg_mb)
            )
    if args.no_aggr:
        names_aggr = []
    else:
        names_aggr = aggregation_rows(args.repeat)
    for name, t_ours, t_pyg in names_aggr:
        ratio = f"{t_pyg / t_ours:.2f}x" if t_pyg else "-"
        print(
            f"{name:<20} gnn {t_ours:8.1f} ms  PyG {t_pyg if t_pyg is None else round(t_pyg, 1)} ms  PyG/gnn {ratio}"
        )
        results["aggr"].append(dict(name=name, gnn=t_ours, pyg=t_pyg))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)


if __name__ == "__main__":
    main()
