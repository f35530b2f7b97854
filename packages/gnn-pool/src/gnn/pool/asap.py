r""":class:`ASAPooling`: adaptive structure aware pooling (Ranjan et al., 2020)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from gnn.conv.le import LEConv
from gnn.core import ops
from gnn.core.nn.linear import Linear
from gnn.core.utils import add_remaining_self_loops

from .sag_pool import resolve_gnn
from .select import SelectTopK, check_ratio, coarsen_adjacency, node_relabel
from .select._checks import (
    check_batch,
    check_channels,
    check_edge_values,
    check_edges,
    check_features,
    check_probability,
    check_real,
)


class ASAPooling(torch.nn.Module):
    r"""The adaptive structure aware pooling operator (Ranjan et al., "ASAP: Adaptive Structure
    Aware Pooling for Learning Hierarchical Graph Representations").

    Every node :math:`i` with its neighbourhood (self loop included) is a candidate cluster.
    With :math:`\tilde{\mathbf{X}} = \mathrm{GNN}(\mathbf{X}, \mathbf{A})` (or :math:`\mathbf{X}`
    without ``GNN``):

    .. math::
        \mathbf{m}_i &= \mathbf{W}\max_{j \in \mathcal{N}(i)} \tilde{\mathbf{x}}_j + \mathbf{b}
            \quad\text{(master query)}\\
        \alpha_{ji} &= \mathrm{softmax}_{j \in \mathcal{N}(i)}\big(\mathrm{LeakyReLU}(
            \mathbf{a}^\top[\mathbf{m}_i \Vert \tilde{\mathbf{x}}_j] + c)\big)\\
        \mathbf{x}^c_i &= \textstyle\sum_{j \in \mathcal{N}(i)} \alpha_{ji}\, \mathbf{x}_j,
            \qquad \phi_i = \mathrm{sigmoid}(\mathrm{LEConv}(\mathbf{X}^c, \mathbf{A})_i)\\
        \mathbf{i} &= \mathrm{top}_k(\tanh(\phi \cdot \mathrm{sign}(w))),
            \qquad \mathbf{X}' = (\mathbf{X}^c \odot \phi)_{\mathbf{i}},
            \qquad \mathbf{A}' = \mathbf{S}_{:, \mathbf{i}}^\top \mathbf{A} \mathbf{S}_{:, \mathbf{i}}

    with :math:`S_{ji} = \alpha_{ji}` and :math:`\mathbf{A}` the graph with its self loops
    (weights ``edge_weight``, 1 for added loops). The ranking goes through the ``select``
    scorer (one input channel, as in PyG): its single weight :math:`w` is not trained, and a
    negative :math:`w` ranks the *least* fit clusters first, exactly as PyG does with the same
    state. The diagonal of :math:`\mathbf{A}'` is dropped, or with ``add_self_loops`` every
    cluster gets a self loop (its diagonal value, moved after the other edges).
    :math:`\mathbf{A}'` keeps every entry some path reaches, sorted by row then column; it is
    computed by two fused sparse-dense products per batch when the graphs are small, else by
    sparse joins (``gnn.pool.select.coarsen_adjacency``).

    Args:
        in_channels: size :math:`F` of each node's features.
        ratio: float in ``(0, 1)`` or an int :math:`k` (clusters kept per graph).
        GNN: optional intra-cluster conv, built as ``GNN(in_channels, in_channels, **kwargs)`` and
            called with ``(x, edge_index, edge_weight)``: a class or a name resolved through
            ``gnn.core.registry.convs`` (``"GraphConv"``, ``"gcn"``, ...).
        dropout: dropout probability of the attention :math:`\alpha` during training.
        negative_slope: slope of the LeakyReLU.
        add_self_loops: give every cluster a self loop in :math:`\mathbf{A}'`.
        **kwargs: passed to ``GNN``.

    Shapes:
        ``x`` ``[N, F]``, ``edge_index`` ``[2, E]``, ``edge_weight`` ``[E]``, ``batch`` ``[N]`` ->
        ``(x [K, F], edge_index [2, E'], edge_weight [E'] (None without input weights),
        batch [K], perm [K])``.

    Example:
        >>> pool = ASAPooling(16, ratio=0.5)
        >>> x, edge_index = torch.randn(10, 16), torch.randint(0, 10, (2, 40))
        >>> x, edge_index, edge_weight, batch, perm = pool(x, edge_index)
        >>> x.shape
        torch.Size([5, 16])
    """

    def __init__(
        self,
        in_channels: int,
        ratio: float | int = 0.5,
        GNN: Callable | None = None,  # noqa: N803 (PyG's argument name)
        dropout: float = 0.0,
        negative_slope: float = 0.2,
        add_self_loops: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        self.in_channels = check_channels(in_channels, "in_channels")
        self.ratio = check_ratio(ratio)
        self.negative_slope = check_real(negative_slope, "negative_slope")
        self.dropout = check_probability(dropout, "dropout")
        self.GNN = None if GNN is None else resolve_gnn(GNN)
        self.add_self_loops = bool(add_self_loops)
        self.lin = Linear(in_channels, in_channels, bias=True)
        self.att = Linear(2 * in_channels, 1, bias=True)
        self.gnn_score = LEConv(in_channels, 1)
        self.gnn_intra_cluster = None if self.GNN is None else self.GNN(in_channels, in_channels, **kwargs)
        self.select = SelectTopK(1, ratio)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialize every submodule."""
        self.lin.reset_parameters()
        self.att.reset_parameters()
        self.gnn_score.reset_parameters()
        if self.gnn_intra_cluster is not None:
            self.gnn_intra_cluster.reset_parameters()
        self.select.reset_parameters()

    def forward(
        self,
        x: Tensor,
        edge_index: Tensor,
        edge_weight: Tensor | None = None,
        batch: Tensor | None = None,
    ) -> tuple[Tensor, Tensor, Tensor | None, Tensor, Tensor]:
        """Pool; returns ``(x, edge_index, edge_weight, batch, perm)``."""
        x = check_features(x)
        n = x.size(0)
        if x.size(-1) != self.in_channels:
            raise ValueError(f"'x' must have {self.in_channels} features (in_channels), got {x.size(-1)}")
        check_edges(edge_index, n)
        weighted = check_edge_values(edge_weight, edge_index.size(1), "edge_weight") is not None
        if weighted and edge_weight.dim() != 1:
            raise ValueError(f"'edge_weight' must be 1-D [E], got shape {list(edge_weight.shape)}")
        batch = check_batch(batch, n, x.device)
        edge_index, edge_weight = add_remaining_self_loops(
            edge_index, edge_weight, fill_value=1.0, num_nodes=n
        )
        src, dst = edge_index[0].long(), edge_index[1].long()
        x_pool = x
        if self.gnn_intra_cluster is not None:
            x_pool = self.gnn_intra_cluster(x, edge_index, edge_weight)
        csr = ops.from_coo(dst, src, n, n)  # rows: the cluster centres; columns: their members
        query = self.lin(ops.spmm(csr, x_pool, reduce="max"))
        att_w = self.att.weight.to(x.dtype).view(2, -1)
        logit = (query @ att_w[0])[dst] + (x_pool @ att_w[1])[src]
        if self.att.bias is not None:
            logit = logit + self.att.bias.to(x.dtype)
        alpha = ops.softmax(F.leaky_relu(logit, self.negative_slope), dst, num_nodes=n)
        alpha = F.dropout(alpha, p=self.dropout, training=self.training)
        x_cluster = ops.spmm(csr, x, alpha)
        fitness = torch.sigmoid(self.gnn_score(x_cluster, edge_index)).view(-1)
        perm, _ = self.select(fitness.view(-1, 1), batch)
        x = x_cluster[perm] * fitness[perm].view(-1, 1)
        new_batch = batch[perm]

        # A' = S^T A S with S[j, i] = alpha of edge (j -> i), restricted to the kept clusters
        # (entries taken in the CSR's order, grouped by cluster centre, which saves a sort there)
        k = perm.numel()
        cluster_of = node_relabel(perm, n)[csr.row()]
        member = (cluster_of >= 0).nonzero().view(-1)
        s_index = torch.stack([csr.col[member], cluster_of[member]])
        new_edge_index, new_weight = coarsen_adjacency(
            s_index,
            csr.in_csr_order(alpha)[member],
            edge_index,
            edge_weight if weighted else None,
            n,
            k,
            node_graph=batch,
            cluster_graph=new_batch,
            a_csr_t=csr,
        )
        if self.add_self_loops:
            new_edge_index, new_weight = add_remaining_self_loops(
                new_edge_index, new_weight, fill_value=1.0, num_nodes=k
            )
        else:
            off = new_edge_index[0] != new_edge_index[1]
            new_edge_index = new_edge_index[:, off]
            new_weight = None if new_weight is None else new_weight[off]
        return x, new_edge_index, new_weight, new_batch, perm

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, ratio={self.ratio})"
