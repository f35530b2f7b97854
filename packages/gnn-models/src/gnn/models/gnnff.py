r"""GNNFF: the graph neural network force field (Park et al., 2021, "Accurate and scalable graph
neural network force field and molecular dynamics with direct force architecture").

GNNFF predicts forces directly (no energy): atoms carry embeddings :math:`\mathbf{h}_i`, edges
:math:`j \to i` of the radius graph carry :math:`\mathbf{e}_{ij}` (initially a Gaussian
expansion of the distance), and ``num_layers`` rounds update them with gated
(:math:`\sigma(\cdot) \odot \tanh(\cdot)`) filters:

.. math::
    \mathbf{h}_i &\leftarrow \tanh\Big(\mathbf{h}_i + \mathrm{BN}\big(\textstyle\sum_{j}
        \mathrm{gate}\,\mathrm{BN}(W_1[\mathbf{h}_i \| \mathbf{e}_{ij}])\big)\Big) \\
    \mathbf{e}_{ij} &\leftarrow \tanh\Big(\mathbf{e}_{ij}
        + \mathrm{BN}\big(\mathrm{gate}\,\mathrm{BN}(W_2(\mathbf{h}_i \odot \mathbf{h}_j))\big)
        + \mathrm{BN}\big(\textstyle\sum_{k \ne i}
        \mathrm{gate}\,\mathrm{BN}(W_3[\mathbf{h}_i \| \mathbf{h}_j \| \mathbf{h}_k \|
        \mathbf{e}_{ij} \| \mathbf{e}_{jk}])\big)\Big)

(the last sum over the triplets :math:`k \to j \to i`); the force on atom :math:`i` is
:math:`\mathbf{F}_i = \sum_j \mathrm{MLP}(\mathbf{e}_{ij})\, \hat{\mathbf{u}}_{ij}`,
:math:`\hat{\mathbf{u}}_{ij} = (\mathbf{p}_i - \mathbf{p}_j) / \lVert\mathbf{p}_i - \mathbf{p}_j\rVert`,
so forces rotate with the molecule.

The classes keep PyG 2.8's names, signatures, ``repr`` and ``state_dict`` keys. The radius graph
comes from :func:`gnn.pool.radius_graph`, the triplets are built without a Python loop, and every
sum runs through :func:`gnn.core.ops.scatter`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import BatchNorm1d, Embedding, Linear, ModuleList, Sequential

from gnn.core import ops
from gnn.core.utils import group_counts
from gnn.pool import radius_graph

from ._molecule import ShiftedSoftplus, check_molecules, check_positive, unit_edges  # public here too
from ._utils import check_int

__all__ = ["EdgeBlock", "GNNFF", "GaussianFilter", "NodeBlock", "ShiftedSoftplus", "triplets"]

_NUM_ELEMENTS = 95  # atom types of GNNFF's embedding


class GaussianFilter(torch.nn.Module):
    r"""Gaussian expansion of distances: :math:`g_k(d) = \exp\big(-(d - \mu_k)^2 / (2 \Delta^2)\big)`,
    ``num_gaussians`` centres :math:`\mu_k` evenly spaced in ``[start, stop]``, :math:`\Delta` their
    spacing. Shapes: ``[E]`` -> ``[E, num_gaussians]``.
    """

    def __init__(self, start: float = 0.0, stop: float = 5.0, num_gaussians: int = 50) -> None:
        super().__init__()
        offset = torch.linspace(start, stop, num_gaussians)
        spacing = float(offset[1]) - float(offset[0]) if num_gaussians > 1 else 1.0
        self.coeff = -0.5 / spacing**2
        self.register_buffer("offset", offset)

    def forward(self, dist: Tensor) -> Tensor:
        diff = dist.view(-1, 1) - self.offset.view(1, -1)
        return torch.exp(self.coeff * diff * diff)


def _gate(t: Tensor) -> Tensor:
    """``sigmoid(first half) * tanh(second half)`` along the features."""
    filt, core = t.chunk(2, dim=1)
    return filt.sigmoid() * core.tanh()


class NodeBlock(torch.nn.Module):
    r"""GNNFF's atom update :math:`\mathbf{h}_i \leftarrow \tanh\big(\mathbf{h}_i + \mathrm{BN}(\sum_j
    \mathrm{gate}\,\mathrm{BN}(W[\mathbf{h}_i \| \mathbf{e}_{ij}]))\big)`.

    Shapes: ``node_emb [N, F_n]``, ``edge_emb [E, F_e]``, ``i [E]`` (receiver of each edge) -> ``[N, F_n]``.
    """

    def __init__(self, hidden_node_channels: int, hidden_edge_channels: int) -> None:
        super().__init__()
        self.lin_c1 = Linear(hidden_node_channels + hidden_edge_channels, 2 * hidden_node_channels)
        self.bn_c1 = BatchNorm1d(2 * hidden_node_channels)
        self.bn = BatchNorm1d(hidden_node_channels)

    def reset_parameters(self) -> None:
        self.lin_c1.reset_parameters()
        self.bn_c1.reset_parameters()
        self.bn.reset_parameters()

    def forward(self, node_emb: Tensor, edge_emb: Tensor, i: Tensor) -> Tensor:
        # W [h_i || e_ij] + b = (W_h h)_i + W_e e_ij + b: the atoms' part projected per atom
        w_node, w_edge = self.lin_c1.weight.split([node_emb.size(1), edge_emb.size(1)], dim=1)
        c1 = F.linear(node_emb, w_node).index_select(0, i) + F.linear(edge_emb, w_edge, self.lin_c1.bias)
        c1_emb = ops.scatter(_gate(self.bn_c1(c1)), i, 0, node_emb.size(0), "sum")
        return (node_emb + self.bn(c1_emb)).tanh()


class EdgeBlock(torch.nn.Module):
    r"""GNNFF's edge update from the pair term :math:`\mathbf{h}_i \odot \mathbf{h}_j` and the sum over
    the triplets :math:`k \to j \to i` (see the module docstring).

    Shapes: ``node_emb [N, F_n]``, ``edge_emb [E, F_e]``, ``i, j [E]`` (receiver and sender of every
    edge), the triplets' ``idx_i, idx_j, idx_k, idx_ji, idx_kj [T]`` -> ``[E, F_e]``. The triplets'
    atoms are the endpoints of their edges (``idx_i = i[idx_ji]``, ``idx_j = j[idx_ji]``,
    ``idx_k = j[idx_kj]``, as :func:`triplets` gives them), so the atoms' terms are read through the
    edges.
    """

    def __init__(self, hidden_node_channels: int, hidden_edge_channels: int) -> None:
        super().__init__()
        self.lin_c2 = Linear(hidden_node_channels, 2 * hidden_edge_channels)
        self.lin_c3 = Linear(3 * hidden_node_channels + 2 * hidden_edge_channels, 2 * hidden_edge_channels)
        self.bn_c2 = BatchNorm1d(2 * hidden_edge_channels)
        self.bn_c3 = BatchNorm1d(2 * hidden_edge_channels)
        self.bn_c2_2 = BatchNorm1d(hidden_edge_channels)
        self.bn_c3_2 = BatchNorm1d(hidden_edge_channels)

    def reset_parameters(self) -> None:
        for module in self.children():
            module.reset_parameters()

    def forward(
        self,
        node_emb: Tensor,
        edge_emb: Tensor,
        i: Tensor,
        j: Tensor,
        idx_i: Tensor,
        idx_j: Tensor,
        idx_k: Tensor,
        idx_ji: Tensor,
        idx_kj: Tensor,
    ) -> Tensor:
        pair = node_emb.index_select(0, i) * node_emb.index_select(0, j)
        c2_emb = self.bn_c2_2(_gate(self.bn_c2(self.lin_c2(pair))))
        # W [h_i || h_j || h_k || e_ji || e_kj] + b splits into a term of the edge j -> i and one of
        # the edge k -> j (whose receiver is j and sender k), each computed once per edge and gathered
        # per triplet: no [T, 3 F_n + 2 F_e] concatenation and no matmul over the triplets
        n, e = node_emb.size(1), edge_emb.size(1)
        w_i, w_j, w_k, w_ji, w_kj = self.lin_c3.weight.split([n, n, n, e, e], dim=1)
        term_ji = (
            F.linear(node_emb, w_i).index_select(0, i)
            + F.linear(node_emb, w_j).index_select(0, j)
            + F.linear(edge_emb, w_ji, self.lin_c3.bias)
        )
        term_kj = F.linear(node_emb, w_k).index_select(0, j) + F.linear(edge_emb, w_kj)
        c3 = term_ji.index_select(0, idx_ji) + term_kj.index_select(0, idx_kj)
        c3_emb = self.bn_c3_2(ops.scatter(_gate(self.bn_c3(c3)), idx_ji, 0, edge_emb.size(0), "sum"))
        return (edge_emb + c2_emb + c3_emb).tanh()


def triplets(
    edge_index: Tensor, num_nodes: int
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    r"""The triplets :math:`k \to j \to i` (:math:`k \ne i`) of a graph of edges :math:`j \to i`.

    Returns ``(i, j, idx_i, idx_j, idx_k, idx_kj, idx_ji)``: the receiver and sender of every edge
    (``edge_index[1]``, ``edge_index[0]``), and per triplet its three atoms and the ids of its
    edges :math:`k \to j` and :math:`j \to i`. Triplets are grouped by ``idx_ji`` (in edge order),
    then by :math:`k`. Built from the graph's receiver-sorted order with ``repeat_interleave``
    (no Python loop).

    Example:
        >>> triplets(torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]]), 3)[2:5]  # path 0 - 1 - 2
        (tensor([0, 2]), tensor([1, 1]), tensor([2, 0]))
    """
    src, dst = edge_index[0].long(), edge_index[1].long()
    num_edges = src.numel()
    # incoming edges grouped by receiver, then by sender
    order = torch.argsort(dst * max(num_nodes, 1) + src, stable=True)
    counts = group_counts(dst, dim_size=num_nodes)
    start = torch.cumsum(counts, 0) - counts
    # every edge e = (j -> i) pairs with every edge (k -> j) into its sender j
    per_edge = counts.index_select(0, src)
    idx_ji = torch.repeat_interleave(torch.arange(num_edges, device=src.device), per_edge)
    first = torch.cumsum(per_edge, 0) - per_edge
    offset = torch.arange(idx_ji.numel(), device=src.device) - first.index_select(0, idx_ji)
    idx_kj = order.index_select(0, start.index_select(0, src.index_select(0, idx_ji)) + offset)
    idx_i, idx_j, idx_k = (
        dst.index_select(0, idx_ji),
        src.index_select(0, idx_ji),
        src.index_select(0, idx_kj),
    )
    keep = idx_i != idx_k
    return dst, src, idx_i[keep], idx_j[keep], idx_k[keep], idx_kj[keep], idx_ji[keep]


class GNNFF(torch.nn.Module):
    r"""The graph neural network force field (GNNFF): forces ``[N, 3]`` from atomic numbers and
    positions (see the module docstring for the updates).

    Args:
        hidden_node_channels: atom feature size.
        hidden_edge_channels: edge feature size (and number of Gaussians of the distance
            expansion, whose centres span 0 to 5 Å whatever the cutoff, as in PyG).
        num_layers: update rounds.
        cutoff: radius of the interaction graph (Å).
        max_num_neighbors: most neighbours per atom in the radius graph.

    Shapes: ``z [N]`` integer (atomic numbers ``< 95``), ``pos [N, 3]``, ``batch [N]`` sorted or
    ``None`` -> ``[N, 3]``. Its BatchNorm layers use batch statistics in training mode (which then
    needs at least two edges); call ``.eval()`` for inference.

    Example:
        >>> model = GNNFF(hidden_node_channels=16, hidden_edge_channels=8, num_layers=2).eval()
        >>> model(torch.tensor([6, 1, 1, 1, 1]), torch.randn(5, 3)).shape
        torch.Size([5, 3])
    """

    def __init__(
        self,
        hidden_node_channels: int,
        hidden_edge_channels: int,
        num_layers: int,
        cutoff: float = 5.0,
        max_num_neighbors: int = 32,
    ) -> None:
        super().__init__()
        check_int("hidden_node_channels", hidden_node_channels, 1)
        check_int("hidden_edge_channels", hidden_edge_channels, 1)
        check_int("num_layers", num_layers, 0)
        check_int("max_num_neighbors", max_num_neighbors, 0)
        self.cutoff = check_positive("cutoff", cutoff)
        self.max_num_neighbors = max_num_neighbors
        h, e = hidden_node_channels, hidden_edge_channels
        self.node_emb = Sequential(
            Embedding(_NUM_ELEMENTS, h), ShiftedSoftplus(), Linear(h, h), ShiftedSoftplus(), Linear(h, h)
        )
        self.edge_emb = GaussianFilter(0.0, 5.0, e)
        self.node_blocks = ModuleList(NodeBlock(h, e) for _ in range(num_layers))
        self.edge_blocks = ModuleList(EdgeBlock(h, e) for _ in range(num_layers))
        self.force_predictor = Sequential(
            Linear(e, e), ShiftedSoftplus(), Linear(e, e), ShiftedSoftplus(), Linear(e, 1)
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Reset every layer's parameters (and the BatchNorm statistics)."""
        for module in (*self.node_emb, *self.force_predictor):
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
        for node_block, edge_block in zip(self.node_blocks, self.edge_blocks):
            node_block.reset_parameters()
            edge_block.reset_parameters()

    def forward(self, z: Tensor, pos: Tensor, batch: Tensor | None = None) -> Tensor:
        """Forces ``[N, 3]`` on the atoms (zero on atoms without neighbours)."""
        z, pos, batch = check_molecules(z, pos, batch, _NUM_ELEMENTS)
        edge_index = radius_graph(pos, self.cutoff, batch, max_num_neighbors=self.max_num_neighbors)
        i, j, idx_i, idx_j, idx_k, idx_kj, idx_ji = triplets(edge_index, z.size(0))
        # unit_edges gives p_j - p_i for j -> i; GNNFF points from the sender to the receiver
        _, dist, unit = unit_edges(pos, edge_index)
        node_emb = self.node_emb(z)
        edge_emb = self.edge_emb(dist)
        for node_block, edge_block in zip(self.node_blocks, self.edge_blocks):
            node_emb = node_block(node_emb, edge_emb, i)
            edge_emb = edge_block(node_emb, edge_emb, i, j, idx_i, idx_j, idx_k, idx_ji, idx_kj)
        force = self.force_predictor(edge_emb) * -unit
        return ops.scatter(force, i, 0, z.size(0), "sum")
