"""ViSNet and GNNFF training steps, gnn vs PyG 2.8.1 (issue 16).

Issue 16's workload: 128 random molecules of 10-30 atoms (atomic numbers 1-9, positions
``N(0, 1.5 Å)`` per axis, so most pairs lie within the 5 Å cutoff), one batch.

  * **ViSNet** (PyG's defaults: 128 channels, 6 layers, 8 heads, ``lmax=1``, and a
    ``lmax=2, vertex=True`` row) with ``derivative=True``: energy + forces, then the backward of
    ``E.sum() + (F ** 2).sum()`` (forward + double backward).
  * **GNNFF** (64 node / 32 edge channels, 3 layers): direct forces, backward of ``(F ** 2).sum()``.

Columns: gnn (gnn-kernels when installed), gnn forced to pure torch (``ops.backend("torch")``),
PyG. Both libraries build their radius graph inside the model; PyG 2.8.1 needs pyg-lib for that
(and torch-sparse for GNNFF's triplets). Where they are missing, PyG's ``torch.ops.pyg.radius`` is
registered on gnn's radius search and PyG's GNNFF uses gnn's triplet builder, so both columns then
pay the same graph construction and the ratio compares the models themselves. Outputs are checked
equal (after a strict ``state_dict`` load) before timing; the contenders run interleaved in one
process. ``--memory`` adds the extra peak RSS of one step in a fresh process per library.

Memory: at the issue's 128 molecules (2,597 atoms, 47,520 edges) one ViSNet step holds its whole
double-backward graph, about 12-13 GB in either library (the ``lmax=2, vertex`` row about twice as
much); on a small or shared machine use ``--molecules 32``.

    python benchmarks/bench_visnet.py [--molecules 128] [--repeat 5] [--models ViSNet GNNFF] [--memory]
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

import torch
from torch import Tensor

sys.path.insert(0, os.path.dirname(__file__))
from timing import interleaved_median_ms, peak_rss_mb  # noqa: E402

import gnn.models  # noqa: E402
from gnn.core import ops  # noqa: E402
from gnn.models.gnnff import triplets as gnn_triplets  # noqa: E402
from gnn.pool import radius_graph  # noqa: E402

CONFIGS: dict[str, tuple[str, dict]] = {
    "ViSNet": ("ViSNet", dict(derivative=True)),
    "ViSNet lmax=2 vertex": ("ViSNet", dict(derivative=True, lmax=2, vertex=True)),
    "GNNFF": ("GNNFF", dict(hidden_node_channels=64, hidden_edge_channels=32, num_layers=3)),
}


def molecules(count: int, seed: int = 0) -> tuple[Tensor, Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    sizes = torch.randint(10, 31, (count,), generator=g)
    n = int(sizes.sum())
    z = torch.randint(1, 10, (n,), generator=g)
    pos = torch.randn(n, 3, generator=g) * 1.5
    batch = torch.repeat_interleave(torch.arange(count), sizes)
    return z, pos, batch


def pyg_setup() -> str:
    """Make PyG's ViSNet/GNNFF runnable here; returns how PyG builds its graphs."""
    import torch_geometric.nn.models.gnnff as pyg_gnnff
    import torch_geometric.typing as pyg_typing

    notes = []
    if not pyg_typing.WITH_RADIUS:
        if not hasattr(torch.ops.pyg, "radius"):

            @torch.library.custom_op("pyg::radius", mutates_args=())
            def radius(
                x: Tensor,
                y: Tensor,
                ptr_x: Tensor | None,
                ptr_y: Tensor | None,
                r: float,
                max_num_neighbors: int,
                num_workers: int,
                ignore_same_index: bool,
            ) -> Tensor:  # the radius_graph case only (x is y)
                batch = None if ptr_x is None else ops.ptr_to_index(ptr_x)
                loop = not ignore_same_index
                return radius_graph(x, r, batch, loop, max_num_neighbors, flow="target_to_source")

        pyg_typing.WITH_RADIUS = True
        notes.append("radius search: gnn's (pyg-lib missing)")
    if not pyg_typing.WITH_TORCH_SPARSE:
        pyg_gnnff.triplets = gnn_triplets
        notes.append("GNNFF triplets: gnn's (torch-sparse missing)")
    return "; ".join(notes) or "pyg-lib / torch-sparse"


def build(label: str) -> tuple[torch.nn.Module, torch.nn.Module]:
    import torch_geometric.nn.models as pyg_models

    name, kwargs = CONFIGS[label]
    torch.manual_seed(0)
    theirs = getattr(pyg_models, name)(**kwargs)
    ours = getattr(gnn.models, name)(**kwargs)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    return ours, theirs


def step(model: torch.nn.Module, z: Tensor, pos: Tensor, batch: Tensor) -> Callable[[], Tensor]:
    def run() -> Tensor:
        model.zero_grad(set_to_none=True)
        out = model(z, pos.clone(), batch)
        if isinstance(out, tuple):  # ViSNet: (energy, forces)
            energy, forces = out
            loss = energy.sum() + (forces**2).sum()
        else:
            loss = (out**2).sum()
        loss.backward()
        return out[0].detach() if isinstance(out, tuple) else out.detach()

    return run


def check_equal(ours, theirs, z, pos, batch) -> None:
    a, b = ours(z, pos.clone(), batch), theirs(z, pos.clone(), batch)
    a, b = (a, b) if isinstance(a, tuple) else ((a,), (b,))
    for x, y in zip(a, b):
        scale = max(1.0, float(y.detach().abs().max()))
        torch.testing.assert_close(x.detach(), y.detach(), atol=1e-4 * scale, rtol=1e-3)


def peak_memory_mb(label: str, lib: str, count: int) -> float:
    """Extra peak RSS (MB) of one step in a fresh process (VmHWM reset after a warm-up step)."""
    code = f"""
import sys
import bench_visnet as b
b.pyg_setup()
z, pos, batch = b.molecules({count})
ours, theirs = b.build({label!r})
run = b.step(ours if {lib!r} == 'gnn' else theirs, z, pos, batch)
run()
"""
    return peak_rss_mb(code, mmap_threshold=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--molecules", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--models", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--memory", action="store_true")
    args, _ = parser.parse_known_args()  # nox's bench session passes the same arguments to every script

    try:
        how = pyg_setup()
    except ImportError:
        how = None
        print("PyG is not installed: gnn columns only")
    z, pos, batch = molecules(args.molecules)
    edges = radius_graph(pos, 5.0, batch, max_num_neighbors=32).size(1)
    print(
        f"{args.molecules} molecules, {z.numel()} atoms, {edges} edges within 5 Å; torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; PyG: {how}\n"
    )
    header = "| model | gnn (ms) | gnn pure torch (ms) | PyG (ms) | PyG / gnn | torch / gnn |"
    if args.memory:
        header += " gnn peak (MB) | PyG peak (MB) | gnn / PyG (mem) |"
    print(header)
    print("|" + " --- |" * (header.count("|") - 1))
    for label in args.models:
        ours, theirs = build(label) if how else (None, None)
        if ours is None:
            name, kwargs = CONFIGS[label]
            torch.manual_seed(0)
            ours = getattr(gnn.models, name)(**kwargs)
        else:
            check_equal(ours, theirs, z, pos, batch)
        run_gnn = step(ours, z, pos, batch)

        def run_torch(run=run_gnn):
            with ops.backend("torch"):
                return run()

        fns = {"gnn": run_gnn, "torch": run_torch}
        if theirs is not None:
            fns["pyg"] = step(theirs, z, pos, batch)
        ms = interleaved_median_ms(fns, args.repeat)
        pyg_ms = ms.get("pyg")
        pyg_cells = "| |" if pyg_ms is None else f"{pyg_ms:.1f} | {pyg_ms / ms['gnn']:.2f}x |"
        row = (
            f"| {label} | {ms['gnn']:.1f} | {ms['torch']:.1f} | {pyg_cells} {ms['torch'] / ms['gnn']:.2f}x |"
        )
        if args.memory and theirs is not None:
            mem_gnn = peak_memory_mb(label, "gnn", args.molecules)
            mem_pyg = peak_memory_mb(label, "pyg", args.molecules)
            row += f" {mem_gnn:.0f} | {mem_pyg:.0f} | {mem_gnn / mem_pyg:.2f}x |"
        print(row, flush=True)


if __name__ == "__main__":
    main()
