"""DistMult (Yang et al., 2015)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ._fused import Parts, Rows, dot, split
from .base import KGEModel


class _DistMultRows(Rows):
    """score = <h * r, t>; d/dh = r * t, d/dt = h * r, d/dr = h * t."""

    criterion = "margin"

    def forward(self, x: Parts, r: Parts, k: int) -> tuple[Tensor, Tensor, Any]:
        (xe,), (re,) = x, r
        b = re.size(0)
        h, t, z = split(xe, b)
        hr = h * re
        pos = dot(hr, t)
        neg = torch.cat([dot(z[:k] * re[:k], t[:k]), dot(hr[k:], z[k:])])
        return pos, neg, (xe, re)

    def backward(self, saved: Any, gp: Tensor, gn: Tensor, k: int) -> tuple[Parts, Parts]:
        xe, re = saved
        b = re.size(0)
        h, t, z = split(xe, b)
        gx = torch.empty_like(xe)
        gh, gt, gz = split(gx, b)
        u = gp * t  # what multiplies h's gradient: the true tail, plus the random tail of i >= k
        u[k:].addcmul_(gn[k:], z[k:])
        torch.mul(re, u, out=gh)
        w = gp * h  # what multiplies t's gradient: the true head, plus the random head of i < k
        w[:k].addcmul_(gn[:k], z[:k])
        torch.mul(re, w, out=gt)
        gt_neg = gn[:k] * t[:k]
        torch.mul(gt_neg, re[:k], out=gz[:k])
        torch.mul(gn[k:] * h[k:], re[k:], out=gz[k:])
        gr = h * u  # true triplets and the corrupted (h, r, z) of i >= k
        gr[:k].addcmul_(z[:k], gt_neg)  # the corrupted (z, r, t) of i < k
        return (gx,), (gr,)


class DistMult(KGEModel):
    r"""DistMult: a bilinear score with diagonal relations,
    :math:`f(h, r, t) = \sum_d e_{h,d} \, e_{r,d} \, e_{t,d}`.

    Trained with the margin ranking loss
    :math:`\frac{1}{B} \sum_i \max(0, \gamma - f(h_i, r_i, t_i) + f(h'_i, r_i, t'_i))`
    against corrupted triplets (:meth:`random_sample`).

    Args:
        num_nodes: number of entities.
        num_relations: number of relation types.
        hidden_channels: embedding size.
        margin: :math:`\gamma`.
        sparse: sparse gradients for the embedding tables.

    Example:
        >>> model = DistMult(num_nodes=10, num_relations=2, hidden_channels=8)
        >>> model(torch.tensor([0, 1]), torch.tensor([1, 0]), torch.tensor([2, 3])).shape
        torch.Size([2])
    """

    def __init__(
        self,
        num_nodes: int,
        num_relations: int,
        hidden_channels: int,
        margin: float = 1.0,
        sparse: bool = False,
    ) -> None:
        super().__init__(num_nodes, num_relations, hidden_channels, sparse)
        self.margin = margin
        self.reset_parameters()

    def _make_rows(self) -> Rows:
        return _DistMultRows()

    def reset_parameters(self) -> None:
        """Xavier-uniform embeddings."""
        torch.nn.init.xavier_uniform_(self.node_emb.weight)
        torch.nn.init.xavier_uniform_(self.rel_emb.weight)

    def forward(self, head_index: Tensor, rel_type: Tensor, tail_index: Tensor) -> Tensor:
        return (self.node_emb(head_index) * self.rel_emb(rel_type) * self.node_emb(tail_index)).sum(dim=-1)

    def loss(self, head_index: Tensor, rel_type: Tensor, tail_index: Tensor) -> Tensor:
        return self._loss(head_index, rel_type, tail_index, self.margin)
