"""Train a gnn model with torch.nn.parallel.DistributedDataParallel: the scale-out recipe.

Every process holds one replica of the model and trains on its own shard of the
graphs; DDP averages the gradients across processes after each backward, so
all replicas stay equal, and with shards of equal size the run computes what one
process computes on all the graphs (the mean of the shards' mean losses is the
mean loss). On CPU the ``gloo`` backend connects the processes; on GPUs use
``nccl`` and one device per process (``LOCAL_RANK``).

Run on one machine with two CPU processes::

    torchrun --nproc_per_node 2 examples/ddp_train.py --steps 20

``--check`` makes rank 0 also train a single-process model on all the graphs and
print the largest parameter difference (float64: about 1e-15). ``--out FILE``
saves rank 0's final state dict. Without torchrun (no ``WORLD_SIZE`` in the
environment) the script trains in one process.
"""

from __future__ import annotations

import argparse
import os

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from gnn.conv import GCNConv
from gnn.core.data import Batch, Data
from gnn.pool import global_mean_pool


class GraphRegressor(torch.nn.Module):
    """Two GCN layers, a mean over each graph's nodes, a linear read-out."""

    def __init__(self, in_channels: int = 8, hidden: int = 16) -> None:
        super().__init__()
        self.conv1 = GCNConv(in_channels, hidden)
        self.conv2 = GCNConv(hidden, hidden)
        self.head = torch.nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, batch: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x, edge_index).relu()
        x = self.conv2(x, edge_index).relu()
        return self.head(global_mean_pool(x, batch)).view(-1)


def make_graphs(num_graphs: int = 32, seed: int = 0) -> list[Data]:
    """Small random graphs; the target is a fixed function of the features."""
    g = torch.Generator().manual_seed(seed)
    graphs = []
    for _ in range(num_graphs):
        n = int(torch.randint(4, 12, (1,), generator=g))
        x = torch.randn(n, 8, generator=g, dtype=torch.float64)
        edge_index = torch.randint(0, n, (2, 3 * n), generator=g)
        y = torch.tanh(x[:, :2].sum()).view(1)
        graphs.append(Data(x=x, edge_index=edge_index, y=y))
    return graphs


def make_model(seed: int = 0) -> GraphRegressor:
    torch.manual_seed(seed)
    return GraphRegressor().double()


def train(model: torch.nn.Module, graphs: list[Data], steps: int, lr: float = 0.05) -> list[float]:
    """Full-batch SGD on ``graphs``; returns the losses."""
    batch = Batch.from_data_list(graphs)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(model(batch.x, batch.edge_index, batch.batch), batch.y)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    return losses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument(
        "--graphs", type=int, default=32, help="number of graphs (a multiple of the world size)"
    )
    parser.add_argument("--backend", default="gloo")
    parser.add_argument("--check", action="store_true", help="rank 0 compares with a single-process run")
    parser.add_argument("--out", default=None, help="where rank 0 saves the final state dict")
    args = parser.parse_args()

    distributed = "WORLD_SIZE" in os.environ
    if distributed:
        dist.init_process_group(args.backend)  # reads MASTER_ADDR/PORT, RANK, WORLD_SIZE from torchrun
        rank, world = dist.get_rank(), dist.get_world_size()
    else:
        rank, world = 0, 1
    if args.graphs % world:
        raise SystemExit(f"--graphs ({args.graphs}) must be a multiple of the world size ({world})")
    graphs = make_graphs(args.graphs)
    shard = graphs[rank::world]  # this process's part of the data
    model = make_model()
    if distributed:
        model = DistributedDataParallel(model)
    losses = train(model, shard, args.steps)
    print(f"rank {rank}/{world}: loss {losses[0]:.5f} -> {losses[-1]:.5f} on {len(shard)} graphs", flush=True)
    module = model.module if distributed else model
    if rank == 0:
        if args.out:
            torch.save(module.state_dict(), args.out)
        if args.check:
            alone = make_model()
            train(alone, graphs, args.steps)
            diff = max((a - b).abs().max().item() for a, b in zip(module.parameters(), alone.parameters()))
            print(f"largest parameter difference to one process on all graphs: {diff:.3g}", flush=True)
    if distributed:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
