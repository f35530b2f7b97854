"""gnn-models, issue 16 (molecular fingerprints, temporal models): gnn vs PyG 2.8.1 in one process.

Rows (each model loads PyG's weights strict and its output is checked equal before timing; the
contenders run interleaved, medians of ``--repeat`` calls):

* AttentiveFP fwd+bwd on 128 random molecules of 10-30 atoms (~2.2 bonds per atom, 39 atom /
  10 bond features, hidden 200, 2 layers, 2 timesteps: the MoleculeNet setting);
* NeuralFingerprint fwd+bwd on the same molecules (hidden 128, fingerprint 1024, 3 layers);
* TGNMemory training step on a stream of 200-event batches over 10k nodes (``forward`` of the
  batch's nodes, backward, ``update_state``, ``detach``), memory 100, time encoding 100,
  raw message 16, ``LastAggregator`` / ``MeanAggregator``;
* RENet history transform of 20k events (PyG: one event at a time, as its dataset applies it;
  gnn: the same events in one batched call) and RENet fwd+bwd on 1024 events.

    python benchmarks/bench_moltemp.py [--repeat 7]
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
from gnn.core.data import Data  # noqa: E402
from gnn.models import tgn as our_tgn  # noqa: E402


def molecules(num=128, in_channels=39, edge_dim=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    sizes = torch.randint(10, 31, (num,), generator=g)
    ptr = torch.cat([torch.zeros(1, dtype=torch.long), sizes.cumsum(0)])
    batch = torch.repeat_interleave(torch.arange(num), sizes)
    n = int(ptr[-1])
    e = int(1.1 * n)
    mol = torch.randint(0, num, (e,), generator=g)
    a = ptr[mol] + (torch.rand(e, generator=g) * sizes[mol]).long()
    b = ptr[mol] + (torch.rand(e, generator=g) * sizes[mol]).long()
    keep = a != b
    a, b = a[keep], b[keep]
    edge_index = torch.stack([torch.cat([a, b]), torch.cat([b, a])])
    x = torch.randn(n, in_channels, generator=g)
    edge_attr = torch.randn(edge_index.size(1), edge_dim, generator=g)
    return x, edge_index, edge_attr, batch


def row(name, times, check=""):
    line = (
        f"| {name} | {times['pyg']:.1f} | {times['gnn']:.1f} | {times['pyg'] / times['gnn']:.2f}x | {check} |"
    )
    print(line, flush=True)


def fwd_bwd(model, *inputs):
    def run():
        model.zero_grad(set_to_none=True)
        out = model(*inputs)
        out = out if isinstance(out, torch.Tensor) else out[0] + out[1]
        out.square().sum().backward()

    return run


def molecule_rows(repeat):
    import torch_geometric.nn.models as pyg

    x, edge_index, edge_attr, batch = molecules()
    theirs, mine = pyg.AttentiveFP(39, 200, 1, 10, 2, 2), ours.AttentiveFP(39, 200, 1, 10, 2, 2)
    mine.load_state_dict(theirs.state_dict(), strict=True)
    ok = torch.allclose(
        mine(x, edge_index, edge_attr, batch), theirs(x, edge_index, edge_attr, batch), atol=1e-5
    )
    times = interleaved_median_ms(
        {
            "pyg": fwd_bwd(theirs, x, edge_index, edge_attr, batch),
            "gnn": fwd_bwd(mine, x, edge_index, edge_attr, batch),
        },
        repeat,
    )
    row(f"AttentiveFP fwd+bwd, 128 molecules ({x.size(0)} atoms)", times, "equal" if ok else "DIFFER")

    theirs, mine = pyg.NeuralFingerprint(39, 128, 1024, 3), ours.NeuralFingerprint(39, 128, 1024, 3)
    mine.load_state_dict(theirs.state_dict(), strict=True)
    ok = torch.allclose(mine(x, edge_index, batch), theirs(x, edge_index, batch), atol=1e-5)
    times = interleaved_median_ms(
        {"pyg": fwd_bwd(theirs, x, edge_index, batch), "gnn": fwd_bwd(mine, x, edge_index, batch)}, repeat
    )
    row("NeuralFingerprint fwd+bwd, 128 molecules", times, "equal" if ok else "DIFFER")


def tgn_rows(repeat):
    from torch_geometric.nn.models import tgn as pyg_tgn

    n, d, m, t_dim, batch, steps = 10_000, 16, 100, 100, 200, 10
    g = torch.Generator().manual_seed(0)
    events = []
    t0 = 0
    for _ in range(steps):
        src, dst = torch.randint(0, n, (batch,), generator=g), torch.randint(0, n, (batch,), generator=g)
        t = t0 + torch.randint(0, 5, (batch,), generator=g).sort().values
        t0 = int(t.max())
        events.append((src, dst, t, torch.randn(batch, d, generator=g)))
    for aggr in ("Last", "Mean"):
        theirs = pyg_tgn.TGNMemory(
            n, d, m, t_dim, pyg_tgn.IdentityMessage(d, m, t_dim), getattr(pyg_tgn, aggr + "Aggregator")()
        )
        mine = our_tgn.TGNMemory(
            n, d, m, t_dim, our_tgn.IdentityMessage(d, m, t_dim), getattr(our_tgn, aggr + "Aggregator")()
        )
        mine.load_state_dict(theirs.state_dict(), strict=True)

        def stream(model):
            def run():
                model.reset_state()
                for src, dst, t, msg in events:
                    z, _ = model(torch.cat([src, dst]).unique())
                    z.square().sum().backward()
                    model.update_state(src, dst, t, msg)
                    model.detach()

            return run

        times = interleaved_median_ms({"pyg": stream(theirs), "gnn": stream(mine)}, repeat)
        # same memory after the stream where PyG's aggregation is exact (Mean; Last: its
        # fallback misplaces empty groups, see the README)
        same = torch.allclose(mine.memory, theirs.memory, atol=1e-5)
        check = (
            "equal" if same else ("differs (PyG's LastAggregator fallback)" if aggr == "Last" else "DIFFER")
        )
        row(f"TGNMemory train stream, {steps} x {batch} events, {aggr}Aggregator", times, check)


def renet_rows(repeat):
    from torch_geometric.data import Data as PygData
    from torch_geometric.loader import DataLoader
    from torch_geometric.nn.models import RENet as PygRENet

    n, r, num, seq_len = 2_000, 50, 20_000, 10
    g = torch.Generator().manual_seed(0)
    ev = torch.stack(
        [torch.randint(0, n, (num,), generator=g), torch.randint(0, r, (num,), generator=g),
         torch.randint(0, n, (num,), generator=g), torch.randint(0, 200, (num,), generator=g).sort().values], 1,
    )  # fmt: skip
    as_list = ev.tolist()

    def pyg_history():
        transform = PygRENet.pre_transform(seq_len)
        return [transform(PygData(sub=s, rel=rr, obj=o, t=t)) for s, rr, o, t in as_list]

    def gnn_history():
        transform = ours.RENet.pre_transform(seq_len)
        return transform(Data(sub=ev[:, 0], rel=ev[:, 1], obj=ev[:, 2], t=ev[:, 3]))

    data = pyg_history()
    collated = next(iter(DataLoader(data, batch_size=num, follow_batch=["h_sub", "h_obj"])))
    mine = gnn_history()
    same = all(torch.equal(mine[k], collated[k]) for k in ("h_sub", "h_sub_t", "h_sub_batch", "h_obj_batch"))
    times = interleaved_median_ms({"pyg": pyg_history, "gnn": gnn_history}, max(1, repeat // 3))
    row(f"RENet history transform, {num} events", times, "equal" if same else "DIFFER")

    batch = next(iter(DataLoader(data[-1024:], batch_size=1024, follow_batch=["h_sub", "h_obj"])))
    theirs, model = PygRENet(n, r, 200, seq_len), ours.RENet(n, r, 200, seq_len)
    model.load_state_dict(theirs.state_dict(), strict=True)
    ok = torch.allclose(model(batch)[0], theirs(batch)[0], atol=1e-5)
    times = interleaved_median_ms({"pyg": fwd_bwd(theirs, batch), "gnn": fwd_bwd(model, batch)}, repeat)
    row("RENet fwd+bwd, 1024 events", times, "equal" if ok else "DIFFER")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, backends {ops.available()}")
    print("| what | PyG ms | gnn ms | speed-up | outputs |")
    print("| --- | ---: | ---: | ---: | --- |")
    molecule_rows(args.repeat)
    tgn_rows(args.repeat)
    renet_rows(args.repeat)


if __name__ == "__main__":
    main()
