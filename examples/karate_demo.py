"""Semi-supervised node classification on Zachary's karate club with a 2-layer GCN.

Only two members are labelled (the instructor, node 0, and the officer,
node 33); the model predicts which club each of the 34 members joined after
the split. The dataset ships with gnn-core, so nothing is downloaded.

The convolution is ``gnn.conv.GCNConv`` when gnn-conv is installed, else a
small GCN layer written here on :class:`gnn.core.MessagePassing`:

.. math::
    \\mathbf{X}' = \\hat{\\mathbf{D}}^{-1/2} \\hat{\\mathbf{A}} \\hat{\\mathbf{D}}^{-1/2} \\mathbf{X} \\mathbf{W} + \\mathbf{b},
    \\quad \\hat{\\mathbf{A}} = \\mathbf{A} + \\mathbf{I}

Run with ``nox -s demo`` or ``python examples/karate_demo.py [--epochs N]``.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from torch import Tensor

from gnn.core import MessagePassing
from gnn.core.data.datasets import karate_club
from gnn.core.utils import add_self_loops, degree


class TinyGCNConv(MessagePassing):
    """The GCN layer of Kipf & Welling, for when gnn-conv is not installed."""

    fused_message = "edge_weight * x_j"

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(aggr="sum")
        self.lin = torch.nn.Linear(in_channels, out_channels, bias=False)
        self.bias = torch.nn.Parameter(torch.zeros(out_channels))
        torch.nn.init.xavier_uniform_(self.lin.weight)

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        edge_index, _ = add_self_loops(edge_index, num_nodes=x.size(0))
        src, dst = edge_index
        deg_inv_sqrt = degree(dst, x.size(0), dtype=x.dtype).pow(-0.5)
        edge_weight = deg_inv_sqrt[src] * deg_inv_sqrt[dst]
        return self.propagate(edge_index, x=self.lin(x), edge_weight=edge_weight) + self.bias

    def message(self, x_j: Tensor, edge_weight: Tensor) -> Tensor:
        return edge_weight.view(-1, 1) * x_j


try:
    from gnn.conv import GCNConv

    CONV = "gnn.conv.GCNConv"
except ImportError:  # gnn-conv is not installed: gnn-core alone is enough for this demo
    GCNConv = TinyGCNConv
    CONV = "TinyGCNConv (gnn.core.MessagePassing; pip install gnn-conv for gnn.conv.GCNConv)"


class GCN(torch.nn.Module):
    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = GCNConv(in_channels, hidden_channels)
        self.conv2 = GCNConv(hidden_channels, out_channels)

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        x = F.relu(self.conv1(x, edge_index))
        x = F.dropout(x, p=0.5, training=self.training)
        return self.conv2(x, edge_index)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    torch.set_num_threads(1)  # a 34-node graph: more threads only add synchronisation
    data = karate_club()
    print(data)
    print(f"convolution: {CONV}")
    model = GCN(data.x.size(1), 16, int(data.y.max()) + 1)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=5e-4)

    start = time.perf_counter()
    report = max(1, args.epochs // 5)  # five progress lines, whatever the number of epochs
    for epoch in range(1, args.epochs + 1):
        model.train()
        optimizer.zero_grad()
        out = model(data.x, data.edge_index)
        loss = F.cross_entropy(out[data.train_mask], data.y[data.train_mask])
        loss.backward()
        optimizer.step()
        if epoch % report == 0 or epoch == args.epochs:
            print(f"epoch {epoch:3d}/{args.epochs}  loss {loss.item():.4f}")
    elapsed = time.perf_counter() - start

    model.eval()
    with torch.no_grad():
        pred = model(data.x, data.edge_index).argmax(dim=1)
    test = ~data.train_mask
    accuracy = (pred[test] == data.y[test]).float().mean().item()
    print(f"trained {args.epochs} epochs in {elapsed:.2f} s")
    print(f"accuracy on the {int(test.sum())} unlabelled members: {accuracy:.3f}")


if __name__ == "__main__":
    main()
