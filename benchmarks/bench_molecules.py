"""Energy + forces training step of SchNet and DimeNet++: gnn vs PyG 2.8.1 (issue 16).

The workload: ``--molecules`` random molecules of 10-30 atoms (uniform), atoms on random
distinct cells of a 1.5 Å cubic lattice (about half the cells filled) jittered by up to
±0.3 Å (so at least 0.9 Å apart), atomic numbers 1-9, cutoff 5 Å. One step is forward, forces ``F = -dE/dpos`` with ``create_graph=True``, and the
backward of ``mse(E) + mse(F)`` (a double backward into the weights).

Models: ``SchNet()`` with its defaults but ``cutoff=5.0``; ``DimeNetPlusPlus`` with the QM9
hyper-parameters of its paper (hidden 128, 4 blocks, int_emb 64, basis_emb 8, out_emb 256,
7 spherical, 6 radial). Both libraries hold the same weights (PyG's state_dict loaded into
gnn's with ``strict=True``; energies and forces are checked to agree first) and are timed
interleaved in one process.

PyG's ``radius_graph`` needs torch-cluster and its DimeNet triplets torch-sparse; when they are
missing (as here) PyG's models are given the same interaction graph through their own hooks:
SchNet's ``interaction_graph`` argument, and for DimeNet++ the module-level ``radius_graph`` and
``triplets`` of ``torch_geometric.nn.models.dimenet`` replaced (in this script only) by gnn's
``gnn.pool.radius_graph`` and ``gnn.models.dimenet.triplets``. Graph construction then costs the
same on both sides and the ratio measures the models themselves.

Peak memory: the extra peak RSS of one step after a warm-up step, in a fresh process per
library with glibc's mmap threshold fixed at 64 KiB (``--no-memory`` skips it).

``--clock cpu`` times with the process's CPU time instead of the wall clock (with ``--threads 1``: a
fairer ratio on a machine that other jobs load; the default is the wall clock).

Usage: python benchmarks/bench_molecules.py [--molecules 128] [--repeat 5] [--models schnet dimenet++]
       [--clock wall|cpu] [--threads N] [--no-memory] [--markdown]
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable

import torch
from timing import interleaved_median_ms, peak_rss_mb

warnings.filterwarnings("ignore")


def make_molecules(num: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``z [N]``, ``pos [N, 3]`` and a sorted ``batch [N]`` of ``num`` random molecules."""
    g = torch.Generator().manual_seed(seed)
    sizes = torch.randint(10, 31, (num,), generator=g)
    z = torch.randint(1, 10, (int(sizes.sum()),), generator=g)
    parts = []
    for n in sizes.tolist():  # distinct cells of a 1.5 Å lattice, jittered: atoms at least 0.9 Å apart
        side = round((2 * n) ** (1 / 3) + 0.5)
        cells = torch.randperm(side**3, generator=g)[:n]
        grid = torch.stack([cells // side**2, (cells // side) % side, cells % side], dim=1).float()
        parts.append(grid * 1.5 + (torch.rand(n, 3, generator=g) - 0.5) * 0.6)
    pos = torch.cat(parts)
    batch = torch.repeat_interleave(torch.arange(num), sizes)
    return z, pos, batch


def _pyg_dimenet_module():
    import torch_geometric.nn.models.dimenet as pyg_dimenet

    try:  # PyG's own graph pieces need torch-cluster / torch-sparse
        import torch_cluster  # noqa: F401
        import torch_sparse  # noqa: F401
    except ImportError:
        from gnn.models.dimenet import triplets
        from gnn.pool import radius_graph

        def pyg_radius_graph(pos, r, batch=None, max_num_neighbors=32, **kwargs):
            return radius_graph(pos, r, batch, max_num_neighbors=max_num_neighbors)

        pyg_dimenet.radius_graph = pyg_radius_graph
        pyg_dimenet.triplets = triplets
    return pyg_dimenet


def pair(model: str) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The gnn model and PyG's, same weights."""
    from gnn.core.testing import load_pyg_state
    from gnn.models import DimeNetPlusPlus, SchNet

    torch.manual_seed(0)
    if model == "schnet":
        from torch_geometric.nn.models import SchNet as PygSchNet

        try:
            import torch_cluster  # noqa: F401

            graph = None
        except ImportError:
            from gnn.pool import radius_graph

            def graph(pos, batch):
                edge_index = radius_graph(pos, 5.0, batch, max_num_neighbors=32)
                return edge_index, (pos[edge_index[0]] - pos[edge_index[1]]).norm(dim=-1)

        theirs = PygSchNet(cutoff=5.0, interaction_graph=graph)
        ours = SchNet(cutoff=5.0)
    else:
        pyg_dimenet = _pyg_dimenet_module()
        kwargs = dict(
            hidden_channels=128,
            out_channels=1,
            num_blocks=4,
            int_emb_size=64,
            basis_emb_size=8,
            out_emb_channels=256,
            num_spherical=7,
            num_radial=6,
            cutoff=5.0,
            output_initializer="glorot_orthogonal",  # non-zero output weights: forces are not all zero
        )
        theirs = pyg_dimenet.DimeNetPlusPlus(**kwargs)
        ours = DimeNetPlusPlus(**kwargs)
    load_pyg_state(ours, theirs)
    return ours, theirs


def energy_forces(model: torch.nn.Module, z, pos, batch) -> tuple[torch.Tensor, torch.Tensor]:
    pos = pos.detach().requires_grad_()
    energy = model(z, pos, batch).view(-1)
    forces = -torch.autograd.grad(energy.sum(), pos, create_graph=True)[0]
    return energy, forces


def step(model: torch.nn.Module, z, pos, batch) -> Callable[[], None]:
    def run() -> None:
        model.zero_grad(set_to_none=True)
        energy, forces = energy_forces(model, z, pos, batch)
        loss = energy.square().mean() + forces.square().mean()
        loss.backward()

    return run


def peak_memory_mb(model: str, lib: str, args: argparse.Namespace) -> float:
    """Extra peak RSS (MB) of one step in a fresh process (VmHWM reset after a warm-up step)."""
    code = f"""
import sys, torch
import bench_molecules as b
z, pos, batch = b.make_molecules({args.molecules})
ours, theirs = b.pair({model!r})
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
    parser.add_argument("--models", nargs="+", default=["schnet", "dimenet++"])
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--markdown", action="store_true")
    args, _ = parser.parse_known_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        import torch_geometric  # noqa: F401
    except ImportError:
        print("PyG is not installed: nothing to compare against")
        return
    from gnn.models.dimenet import triplets
    from gnn.pool import radius_graph

    z, pos, batch = make_molecules(args.molecules)
    edge_index = radius_graph(pos, 5.0, batch)
    num_triplets = triplets(edge_index, z.numel())[2].numel()
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; {args.molecules} molecules, "
        f"{z.numel()} atoms, {edge_index.size(1)} edges, {num_triplets} triplets (cutoff 5); "
        f"energy + forces + double backward, median of {args.repeat} ({args.clock} clock, ms)"
    )
    header = (
        "model",
        "gnn (ms)",
        "PyG (ms)",
        "PyG / gnn",
        "gnn peak (MB)",
        "PyG peak (MB)",
        "gnn / PyG (mem)",
    )
    rows = []
    # peak memory first, in fresh processes, while this one is still small: once it has run PyG's
    # DimeNet++ at 128 molecules it keeps that peak (glibc holds freed memory), and the two processes
    # together outgrew the 24 GB of the development machine
    peaks = {}
    if not args.no_memory:
        peaks = {
            model: {lib: peak_memory_mb(model, lib, args) for lib in ("gnn", "pyg")} for model in args.models
        }
    for model in args.models:
        ours, theirs = pair(model)
        e1, f1 = energy_forces(ours, z, pos, batch)
        e2, f2 = energy_forces(theirs, z, pos, batch)
        torch.testing.assert_close(e1, e2, atol=1e-3, rtol=1e-3)
        torch.testing.assert_close(f1, f2, atol=1e-3, rtol=1e-3)
        del e1, f1, e2, f2
        mem = peaks.get(model, {})
        clock = time.process_time if args.clock == "cpu" else time.perf_counter
        ms = interleaved_median_ms(
            {"gnn": step(ours, z, pos, batch), "pyg": step(theirs, z, pos, batch)}, args.repeat, clock
        )
        rows.append(
            (
                model,
                f"{ms['gnn']:.0f}",
                f"{ms['pyg']:.0f}",
                f"{ms['pyg'] / ms['gnn']:.2f}x",
                f"{mem['gnn']:.0f}" if mem else "-",
                f"{mem['pyg']:.0f}" if mem else "-",
                f"{mem['gnn'] / mem['pyg']:.2f}x" if mem else "-",
            )
        )
    if args.markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for row in rows:
            print("| " + " | ".join(row) + " |")
    else:
        for row in [header, *rows]:
            print("  ".join(f"{c:>16}" for c in row))


if __name__ == "__main__":
    main()
