r"""Dense pooling on padded batches: DiffPool, MinCut pooling, DMoN.

Inputs are dense: features ``x`` ``[B, N, F]``, adjacency ``adj`` ``[B, N, N]``,
an assignment ``s`` ``[B, N, C]`` of the ``N`` nodes to ``C`` clusters and an
optional node ``mask`` ``[B, N]`` (``True`` for real nodes; see
:func:`gnn.core.utils.to_dense_batch` / :func:`gnn.core.utils.to_dense_adj`).
2-D ``x``/``s`` and a 2-D ``adj`` are taken as one graph. With
:math:`S = \mathrm{softmax}(s)` (row-wise over the clusters), every pool
returns the coarsened graph :math:`X' = S^\top X` ``[B, C, F]``,
:math:`A' = S^\top A S` ``[B, C, C]`` and its auxiliary losses.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from gnn.core import MLP
from gnn.core import validation as v

__all__ = ["dense_diff_pool", "dense_mincut_pool", "DMoNPooling"]

#: added where a quantity may vanish (log of a zero assignment, a zero degree)
_EPS = 1e-15


def _batched(
    x: Tensor, adj: Tensor, s: Tensor, mask: Tensor | None
) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
    """Check the dense inputs and give them a batch dimension."""
    for name, value in (("x", x), ("adj", adj), ("s", s)):
        v.check_tensor(name, value)
    x = x.unsqueeze(0) if x.dim() == 2 else x
    adj = adj.unsqueeze(0) if adj.dim() == 2 else adj
    s = s.unsqueeze(0) if s.dim() == 2 else s
    if x.dim() != 3:
        raise ValueError(f"'x' must have shape [B, N, F] (or [N, F]), got {v.describe(x)}")
    batch, num = x.size(0), x.size(1)
    if adj.dim() != 3 or adj.size(1) != num or adj.size(2) != num or adj.size(0) not in (1, batch):
        raise ValueError(f"'adj' must have shape [{batch}, {num}, {num}] (like 'x'), got {v.describe(adj)}")
    if s.dim() != 3 or s.size(1) != num or s.size(0) not in (1, batch):
        raise ValueError(f"'s' must have shape [{batch}, {num}, C] (like 'x'), got {v.describe(s)}")
    if s.size(2) == 0:
        raise ValueError(f"'s' must assign the nodes to at least one cluster, got {v.describe(s)}")
    if mask is not None:
        v.check_tensor("mask", mask)
        if mask.dim() == 1:
            mask = mask.unsqueeze(0)
        if mask.shape != (batch, num):
            raise ValueError(f"'mask' must have shape [{batch}, {num}], got {v.describe(mask)}")
    return x, adj, s, mask


def _masked(x: Tensor, s: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor]:
    if mask is None:
        return x, s
    keep = mask.view(mask.size(0), mask.size(1), 1)
    return x * keep.to(x.dtype), s * keep.to(s.dtype)


def _orthogonality(s: Tensor) -> Tensor:
    r""":math:`\left\| \frac{S^\top S}{\|S^\top S\|_F} - \frac{I_C}{\sqrt C} \right\|_F`, averaged over the batch."""
    ss = s.transpose(1, 2) @ s
    clusters = s.size(-1)
    eye = torch.eye(clusters, dtype=s.dtype, device=s.device) / math.sqrt(clusters)
    ss = ss / torch.linalg.matrix_norm(ss, keepdim=True)
    return torch.linalg.matrix_norm(ss - eye).mean()


def _normalized_pooled_adjacency(out_adj: Tensor) -> Tensor:
    r""":math:`\tilde D^{-1/2} \tilde A \tilde D^{-1/2}` with :math:`\tilde A` = ``out_adj`` without its diagonal."""
    clusters = out_adj.size(-1)
    off = 1 - torch.eye(clusters, dtype=out_adj.dtype, device=out_adj.device)
    out_adj = out_adj * off
    root = out_adj.sum(-1).sqrt() + _EPS
    return out_adj / root.unsqueeze(-1) / root.unsqueeze(-2)


def dense_diff_pool(
    x: Tensor, adj: Tensor, s: Tensor, mask: Tensor | None = None, normalize: bool = True
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    r"""Differentiable pooling (DiffPool, Ying et al., 2018).

    .. math::
        X' = S^\top X, \quad A' = S^\top A S, \quad
        \mathcal{L}_{link} = \| A - S S^\top \|_F, \quad
        \mathcal{L}_{ent} = \frac{1}{BN} \sum_{b,n} H(S_{b,n})

    with :math:`S = \mathrm{softmax}(s)`, :math:`H(p) = -\sum_c p_c \log(p_c + 10^{-15})`;
    with ``normalize``, :math:`\mathcal{L}_{link}` is divided by the number
    of entries of ``adj``. Masked-out nodes get zero features and assignments.

    Args:
        x: ``[B, N, F]`` node features.
        adj: ``[B, N, N]`` adjacency.
        s: ``[B, N, C]`` assignment logits.
        mask: optional ``[B, N]`` bool mask of real nodes.
        normalize: divide the link loss by ``adj.numel()``.

    Returns:
        ``(X' [B, C, F], A' [B, C, C], link_loss, ent_loss)`` (the losses are 0-d).

    Example:
        >>> x, adj, s = torch.randn(2, 5, 8), torch.rand(2, 5, 5), torch.randn(2, 5, 3)
        >>> out, out_adj, link, ent = dense_diff_pool(x, adj, s)
        >>> out.shape, out_adj.shape
        (torch.Size([2, 3, 8]), torch.Size([2, 3, 3]))
    """
    x, adj, s, mask = _batched(x, adj, s, mask)
    s = torch.softmax(s, dim=-1)
    x, s = _masked(x, s, mask)
    st = s.transpose(1, 2)
    out = st @ x
    out_adj = st @ adj @ s
    link_loss = torch.linalg.vector_norm(adj - s @ st)
    if normalize:
        link_loss = link_loss / adj.numel()
    ent_loss = (-s * torch.log(s + _EPS)).sum(dim=-1).mean()
    return out, out_adj, link_loss, ent_loss


def dense_mincut_pool(
    x: Tensor, adj: Tensor, s: Tensor, mask: Tensor | None = None, temp: float = 1.0
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    r"""MinCut pooling (Bianchi et al., 2020).

    With :math:`S = \mathrm{softmax}(s / temp)` and :math:`D` the degree matrix of :math:`A`:

    .. math::
        X' = S^\top X, \quad
        \mathcal{L}_{cut} = -\frac{\mathrm{Tr}(S^\top A S)}{\mathrm{Tr}(S^\top D S)}, \quad
        \mathcal{L}_{o} = \left\| \frac{S^\top S}{\|S^\top S\|_F} - \frac{I_C}{\sqrt{C}} \right\|_F

    (each averaged over the batch), and the returned adjacency is
    :math:`\tilde D^{-1/2} \tilde A \tilde D^{-1/2}` where :math:`\tilde A` is
    :math:`S^\top A S` with its diagonal zeroed and :math:`\tilde D` its degrees
    (:math:`\sqrt{d} + 10^{-15}`).

    Args:
        x: ``[B, N, F]`` node features.
        adj: ``[B, N, N]`` adjacency.
        s: ``[B, N, C]`` assignment logits.
        mask: optional ``[B, N]`` bool mask of real nodes.
        temp: softmax temperature.

    Returns:
        ``(X' [B, C, F], A' [B, C, C], mincut_loss, ortho_loss)`` (the losses are 0-d).

    Example:
        >>> x, adj, s = torch.randn(2, 5, 8), torch.rand(2, 5, 5), torch.randn(2, 5, 3)
        >>> out, out_adj, mincut, ortho = dense_mincut_pool(x, adj, s)
        >>> out.shape, out_adj.shape
        (torch.Size([2, 3, 8]), torch.Size([2, 3, 3]))
    """
    x, adj, s, mask = _batched(x, adj, s, mask)
    s = torch.softmax(s / temp if temp != 1.0 else s, dim=-1)
    x, s = _masked(x, s, mask)
    st = s.transpose(1, 2)
    out = st @ x
    out_adj = st @ adj @ s
    cut = torch.diagonal(out_adj, dim1=-2, dim2=-1).sum(-1)
    degree = adj.sum(-1)
    volume = (degree.unsqueeze(-1) * s * s).sum(dim=(-2, -1))  # Tr(S^T D S)
    mincut_loss = (-(cut / volume)).mean()
    ortho_loss = _orthogonality(s)
    return out, _normalized_pooled_adjacency(out_adj), mincut_loss, ortho_loss


class DMoNPooling(torch.nn.Module):
    r"""Deep Modularity Network pooling (DMoN, Tsitsulin et al., 2023).

    The assignment is learned, :math:`S = \mathrm{softmax}(\mathrm{MLP}(X))`
    (dropout on the logits), and with :math:`d` the degrees of :math:`A`,
    :math:`m = \frac12 \sum_i d_i`, :math:`n` the number of (real) nodes:

    .. math::
        X' = \mathrm{SELU}(S^\top X), \quad
        \mathcal{L}_{s} = -\frac{1}{2m} \mathrm{Tr}\left(S^\top \left(A - \frac{d d^\top}{2m}\right) S\right),

        \mathcal{L}_{o} = \left\| \frac{S^\top S}{\|S^\top S\|_F} - \frac{I_C}{\sqrt{C}} \right\|_F, \quad
        \mathcal{L}_{c} = \frac{\sqrt{C}}{n} \left\| \sum_i S_i \right\|_2 - 1

    (each averaged over the batch; padded nodes have degree 0); the returned
    adjacency is normalized as in :func:`dense_mincut_pool`. With a ``mask``,
    :math:`\mathcal{L}_c` is, as in PyG 2.8, the mean over all pairs of graphs
    :math:`(b, b')` of :math:`\frac{\sqrt{C}}{n_{b'}} \|\sum_i S_{b,i}\|_2 - 1` (the
    per-graph value when ``B = 1``), so that losses equal PyG's.

    Args:
        channels: input feature size, or a list of the MLP's layer sizes
            (the last layer maps to ``k``).
        k: number of clusters.
        dropout: dropout probability on the assignment logits.

    Shapes:
        ``forward(x [B, N, F], adj [B, N, N], mask [B, N] = None)`` returns
        ``(S [B, N, k], X' [B, k, F], A' [B, k, k], spectral_loss, ortho_loss, cluster_loss)``.

    Example:
        >>> pool = DMoNPooling(16, k=4)
        >>> s, out, out_adj, *losses = pool(torch.randn(2, 10, 16), torch.rand(2, 10, 10))
        >>> s.shape, out.shape
        (torch.Size([2, 10, 4]), torch.Size([2, 4, 16]))
    """

    def __init__(self, channels: int | list[int], k: int, dropout: float = 0.0) -> None:
        super().__init__()
        if isinstance(channels, int) and not isinstance(channels, bool):
            channels = [channels]
        if not isinstance(channels, (list, tuple)) or not all(
            isinstance(c, int) and not isinstance(c, bool) and c > 0 for c in channels
        ):
            raise TypeError(
                f"'channels' must be a positive int or a list of them, got {v.describe(channels)}"
            )
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"'k' must be a positive int (the number of clusters), got {v.describe(k)}")
        if not 0.0 <= float(dropout) <= 1.0:
            raise ValueError(f"'dropout' must lie in [0, 1], got {dropout}")
        self.mlp = MLP(list(channels) + [k], act=None, norm=None)
        self.dropout = dropout
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialize the MLP."""
        self.mlp.reset_parameters()

    def forward(
        self, x: Tensor, adj: Tensor, mask: Tensor | None = None
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
        """Pool ``x`` ``[B, N, F]`` over ``adj`` ``[B, N, N]`` (see the class docstring)."""
        v.check_tensor("x", x)
        x = x.unsqueeze(0) if x.dim() == 2 else x
        logits = self.mlp(x)
        logits = F.dropout(logits, p=self.dropout, training=self.training)
        x, adj, logits, mask = _batched(x, adj, logits, mask)
        s = torch.softmax(logits, dim=-1)
        num, clusters = x.size(1), s.size(-1)
        x, s = _masked(x, s, mask)
        st = s.transpose(1, 2)
        out = F.selu(st @ x)
        out_adj = st @ adj @ s

        degree = adj.sum(-1)  # [B, N]
        if mask is not None:  # padded nodes have no degree
            degree = degree * mask.to(degree.dtype)
        edges = degree.sum(-1) / 2  # m, [B]
        trace = torch.diagonal(out_adj, dim1=-2, dim2=-1).sum(-1)  # Tr(S^T A S)
        pooled_degree = (st @ degree.unsqueeze(-1)).squeeze(-1)  # S^T d, [B, C]
        null = (pooled_degree * pooled_degree).sum(-1) / (2 * edges)  # Tr(S^T d d^T S) / 2m
        spectral_loss = (-(trace - null) / (2 * edges)).mean()

        ortho_loss = _orthogonality(s)

        sizes = torch.linalg.vector_norm(s.sum(1), dim=-1)  # ||sum_i S_i||, [B]
        if mask is None:
            cluster_loss = (sizes / num * math.sqrt(clusters) - 1).mean()
        else:  # PyG 2.8 pairs every graph's cluster sizes with every graph's node count: kept for parity
            nodes = mask.sum(-1).to(x.dtype)
            cluster_loss = (sizes.unsqueeze(0) / nodes.unsqueeze(1) * math.sqrt(clusters) - 1).mean()

        return s, out, _normalized_pooled_adjacency(out_adj), spectral_loss, ortho_loss, cluster_loss

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.mlp.in_channels}, num_clusters={self.mlp.out_channels})"
