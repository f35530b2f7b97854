r"""Attentive FP (Xiong et al., 2020): :class:`AttentiveFP` and its edge-aware first layer
:class:`GATEConv`."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import GRUCell, Parameter

from gnn.conv import GATConv
from gnn.core import Linear, MessagePassing, ops, plans
from gnn.core import validation as v
from gnn.core.graph import read_graph
from gnn.core.nn.inits import glorot, zeros
from gnn.pool import global_add_pool

from ._utils import check_int

__all__ = ["AttentiveFP", "GATEConv"]


class GATEConv(MessagePassing):
    r"""The edge-aware attention layer that opens :class:`AttentiveFP`.

    .. math::
        \alpha_{i,j} = \operatorname{softmax}_j\Big(\operatorname{LeakyReLU}\big(
        \mathbf{a}_l^\top \operatorname{LeakyReLU}\big(\mathbf{W}_1 [\mathbf{x}_j \,\Vert\,
        \mathbf{e}_{j,i}]\big) + \mathbf{a}_r^\top \mathbf{x}_i\big)\Big), \qquad
        \mathbf{x}'_i = \sum_{j \in \mathcal{N}(i)} \alpha_{i,j} \mathbf{W}_2 \mathbf{x}_j + \mathbf{b}

    (LeakyReLU slope 0.01; ``dropout`` on :math:`\alpha`). The edge features enter the
    attention only; :math:`\mathbf{W}_1` is applied to the nodes and to the edges
    separately (one product per node, not per edge), and the weighted sum is declared as a
    fused plan (no ``[E, C]`` message tensor where the core can avoid it).

    Shapes: ``x`` ``[N, in_channels]``, ``edge_index`` ``[2, E]``, ``edge_attr``
    ``[E, edge_dim]`` -> ``[N, out_channels]``.
    """

    fused_message = plans.WeightedSum(weight="alpha")

    def __init__(self, in_channels: int, out_channels: int, edge_dim: int, dropout: float = 0.0) -> None:
        super().__init__(aggr="add", node_dim=0)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.edge_dim = edge_dim
        self.dropout = dropout
        self.att_l = Parameter(torch.empty(1, out_channels))
        self.att_r = Parameter(torch.empty(1, in_channels))
        self.lin1 = Linear(in_channels + edge_dim, out_channels, bias=False)
        self.lin2 = Linear(out_channels, out_channels, bias=False)
        self.bias = Parameter(torch.empty(out_channels))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Glorot weights and attention vectors, zero bias."""
        super().reset_parameters()
        glorot(self.att_l)
        glorot(self.att_r)
        glorot(self.lin1.weight)
        glorot(self.lin2.weight)
        zeros(self.bias)

    def forward(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor) -> Tensor:
        """Attend over the incoming edges of every node (see the class docstring)."""
        graph = read_graph(edge_index, None, self.flow)
        n = x.size(0)
        graph.set_nodes(n, n)
        w = self.lin1.weight
        node_part = x @ w[:, : self.in_channels].t()  # [N, C]: W_1's node columns
        edge_part = edge_attr @ w[:, self.in_channels :].t()  # [E, C]: its edge columns
        dst_score = x @ self.att_r.view(-1)  # [N]
        alpha = self.edge_updater(graph.edge_index, h=node_part, s=dst_score, e=edge_part)
        out = self.propagate(graph.edge_index, x=self.lin2(x), alpha=alpha)
        return out + self.bias

    def edge_update(
        self, h_j: Tensor, s_i: Tensor, e: Tensor, index: Tensor, ptr: Tensor | None, dim_size: int | None
    ) -> Tensor:
        """``[E]`` attention of every edge, normalized over the edges of its target."""
        score = F.leaky_relu(F.leaky_relu(h_j + e) @ self.att_l.view(-1) + s_i)
        alpha = ops.softmax(score, index, ptr, dim_size)
        return F.dropout(alpha, p=self.dropout, training=self.training)

    def message(self, x_j: Tensor, alpha: Tensor) -> Tensor:
        """``alpha_ij * W_2 x_j``."""
        return alpha.unsqueeze(-1) * x_j

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels})"


class AttentiveFP(torch.nn.Module):
    r"""The Attentive FP model for molecular representation learning ("Pushing the Boundaries
    of Molecular Representation for Drug Discovery with the Graph Attention Mechanism").

    Atom embedding (``num_layers`` attentive layers, each followed by a GRU update):

    .. math::
        \mathbf{x}^{(0)} &= \operatorname{LeakyReLU}(\mathbf{W}_{\mathrm{in}} \mathbf{x}), \\
        \mathbf{x}^{(1)} &= \operatorname{ReLU}\big(\mathrm{GRU}\big(\mathrm{dropout}(\operatorname{ELU}(
            \mathrm{GATEConv}(\mathbf{x}^{(0)}, \mathcal{E}, \mathbf{E}))), \mathbf{x}^{(0)}\big)\big), \\
        \mathbf{x}^{(l+1)} &= \operatorname{ReLU}\big(\mathrm{GRU}_l\big(\mathrm{dropout}(\operatorname{ELU}(
            \mathrm{GAT}_l(\mathbf{x}^{(l)}, \mathcal{E}))), \mathbf{x}^{(l)}\big)\big)

    Molecule embedding: a super node per molecule, initialized with
    :math:`\mathbf{m}^{(0)}_g = \operatorname{ReLU}(\sum_{i \in g} \mathbf{x}_i)`, attends over its
    atoms (a bipartite :class:`~gnn.conv.GATConv` from the atoms to the molecule) for
    ``num_timesteps`` GRU steps; the result goes through dropout and a final linear map.
    The GAT layers use LeakyReLU slope 0.01, no self loops, attention dropout ``dropout``.

    Args:
        in_channels: atom feature size.
        hidden_channels: hidden size.
        out_channels: output size.
        edge_dim: bond feature size.
        num_layers: number of atom-level attentive layers (at least 1).
        num_timesteps: number of molecule-level refinement steps.
        dropout: dropout probability.

    Shapes:
        ``x`` ``[N, in_channels]``, ``edge_index`` ``[2, E]``, ``edge_attr``
        ``[E, edge_dim]``, ``batch`` ``[N]`` -> ``[B, out_channels]``.

    Example:
        >>> model = AttentiveFP(9, 32, 1, edge_dim=3, num_layers=2, num_timesteps=2)
        >>> x, edge_attr = torch.randn(5, 9), torch.randn(4, 3)
        >>> edge_index = torch.tensor([[0, 1, 3, 4], [1, 0, 4, 3]])
        >>> model(x, edge_index, edge_attr, torch.tensor([0, 0, 0, 1, 1])).shape
        torch.Size([2, 1])
    """

    def __init__(
        self,
        in_channels: int,
        hidden_channels: int,
        out_channels: int,
        edge_dim: int,
        num_layers: int,
        num_timesteps: int,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        check_int("num_layers", num_layers, 1)
        check_int("num_timesteps", num_timesteps, 0)
        self.in_channels = in_channels
        self.hidden_channels = hidden_channels
        self.out_channels = out_channels
        self.edge_dim = edge_dim
        self.num_layers = num_layers
        self.num_timesteps = num_timesteps
        self.dropout = dropout

        self.lin1 = Linear(in_channels, hidden_channels)
        self.gate_conv = GATEConv(hidden_channels, hidden_channels, edge_dim, dropout)
        self.gru = GRUCell(hidden_channels, hidden_channels)
        self.atom_convs = torch.nn.ModuleList([self._gat() for _ in range(num_layers - 1)])
        self.atom_grus = torch.nn.ModuleList(
            [GRUCell(hidden_channels, hidden_channels) for _ in range(num_layers - 1)]
        )
        self.mol_conv = self._gat()
        self.mol_gru = GRUCell(hidden_channels, hidden_channels)
        self.lin2 = Linear(hidden_channels, out_channels)
        self.reset_parameters()

    def _gat(self) -> GATConv:
        h = self.hidden_channels
        return GATConv(h, h, dropout=self.dropout, add_self_loops=False, negative_slope=0.01)

    def reset_parameters(self) -> None:
        """Reset every layer."""
        self.lin1.reset_parameters()
        self.gate_conv.reset_parameters()
        self.gru.reset_parameters()
        for conv, gru in zip(self.atom_convs, self.atom_grus):
            conv.reset_parameters()
            gru.reset_parameters()
        self.mol_conv.reset_parameters()
        self.mol_gru.reset_parameters()
        self.lin2.reset_parameters()

    def _check(self, x: Any, edge_index: Any, edge_attr: Any, batch: Any) -> Tensor:
        x = v.check_tensor("x", x)
        if x.dim() != 2 or x.size(1) != self.in_channels:
            raise ValueError(f"'x' must be [N, {self.in_channels}] atom features, got {v.describe(x)}")
        edge_index = v.check_edge_index(edge_index)
        edge_attr = v.check_tensor("edge_attr", edge_attr)
        if edge_attr.dim() == 1 and self.edge_dim == 1:
            edge_attr = edge_attr.view(-1, 1)
        if edge_attr.dim() != 2 or tuple(edge_attr.shape) != (edge_index.size(1), self.edge_dim):
            raise ValueError(
                f"'edge_attr' must be [E, edge_dim] = [{edge_index.size(1)}, {self.edge_dim}], "
                f"got {v.describe(edge_attr)}"
            )
        batch = v.check_tensor("batch", batch)
        if batch.dim() != 1 or batch.numel() != x.size(0):
            raise ValueError(f"'batch' must be [N] = [{x.size(0)}] molecule indices, got {v.describe(batch)}")
        v.check_index_dtype("batch", batch)
        if v.validation_enabled() and batch.numel() > 0 and int(batch.min()) < 0:
            raise ValueError(f"'batch' must hold non-negative molecule indices, got min {int(batch.min())}")
        return edge_attr

    def forward(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor, batch: Tensor) -> Tensor:
        """The ``[B, out_channels]`` molecule predictions."""
        edge_attr = self._check(x, edge_index, edge_attr, batch)
        p, training = self.dropout, self.training

        # atom embedding
        x = F.leaky_relu(self.lin1(x))
        h = F.dropout(F.elu(self.gate_conv(x, edge_index, edge_attr)), p=p, training=training)
        x = self.gru(h, x).relu()
        for conv, gru in zip(self.atom_convs, self.atom_grus):
            h = F.dropout(F.elu(conv(x, edge_index)), p=p, training=training)
            x = gru(h, x).relu()

        # molecule embedding: every atom sends to its molecule's super node
        atoms = torch.arange(batch.numel(), device=batch.device, dtype=batch.dtype)
        to_mol = torch.stack([atoms, batch])
        out = global_add_pool(x, batch).relu()
        for _ in range(self.num_timesteps):
            h = F.dropout(F.elu(self.mol_conv((x, out), to_mol)), p=p, training=training)
            out = self.mol_gru(h, out).relu()

        out = F.dropout(out, p=p, training=training)
        return self.lin2(out)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(in_channels={self.in_channels}, "
            f"hidden_channels={self.hidden_channels}, "
            f"out_channels={self.out_channels}, "
            f"edge_dim={self.edge_dim}, "
            f"num_layers={self.num_layers}, "
            f"num_timesteps={self.num_timesteps}"
            f")"
        )
