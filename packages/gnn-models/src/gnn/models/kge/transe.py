"""TransE (Bordes et al., 2013)."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ._fused import Parts, Rows, dot, split
from .base import KGEModel

_EPS = 1e-12  # F.normalize's


class _TransERows(Rows):
    """score = -||y_h + r - y_t||_p with y = x / max(||x||_p, eps), p in {1, 2}.

    d score / d r = -G with G = sign(d) (p = 1) or d / ||d|| (p = 2) for d = y_h + r - y_t;
    d/dy_h = -G, d/dy_t = G; then y's gradient to x: (g - (g . y) dn) / n with
    dn = sign(x) (p = 1) or y (p = 2), or g / eps where n <= eps.
    """

    criterion = "margin"

    def __init__(self, p: float) -> None:
        self.p = p

    def forward(self, x: Parts, r: Parts, k: int) -> tuple[Tensor, Tensor, Any]:
        (xe,), (re,) = x, r
        b = re.size(0)
        n = torch.linalg.vector_norm(xe, ord=self.p, dim=-1, keepdim=True)
        y = xe / n.clamp_min(_EPS)
        h, t, z = split(y, b)
        dp = torch.add(h, re).sub_(t)
        dn = torch.empty_like(dp)
        torch.add(z[:k], re[:k], out=dn[:k]).sub_(t[:k])
        torch.add(h[k:], re[k:], out=dn[k:]).sub_(z[k:])
        np_ = torch.linalg.vector_norm(dp, ord=self.p, dim=-1)
        nn_ = torch.linalg.vector_norm(dn, ord=self.p, dim=-1)
        return -np_, -nn_, (y, n, dp, dn, np_, nn_)

    def _dnorm(self, d: Tensor, norm: Tensor, g: Tensor) -> Tensor:
        """``-g * d||d||/dd``: the gradient of ``-||d||`` scaled by ``g``; 0 where the norm is 0."""
        if self.p == 1.0:
            return torch.sign(d).mul_(-g)
        norm = norm.unsqueeze(1)
        return d * torch.where(norm > 0, -g / norm.clamp_min(torch.finfo(d.dtype).tiny), torch.zeros_like(g))

    def backward(self, saved: Any, gp: Tensor, gn: Tensor, k: int) -> tuple[Parts, Parts]:
        y, n, dp, dn, np_, nn_ = saved
        b = dp.size(0)
        g_pos = self._dnorm(dp, np_, gp)  # d loss / d r of the true triplets
        g_neg = self._dnorm(dn, nn_, gn)
        gx = torch.empty_like(y)
        gh, gt, gz = split(gx, b)
        gh[:k] = g_pos[:k]
        torch.add(g_pos[k:], g_neg[k:], out=gh[k:])
        torch.add(g_pos[:k], g_neg[:k], out=gt[:k]).neg_()
        torch.neg(g_pos[k:], out=gt[k:])
        gz[:k] = g_neg[:k]
        torch.neg(g_neg[k:], out=gz[k:])
        gr = g_pos.add_(g_neg)
        # through the normalization
        small = (n <= _EPS).view(-1)
        kept = gx[small] if bool(small.any()) else None
        inner = dot(gx, y).unsqueeze(1)
        gx.addcmul_(torch.sign(y) if self.p == 1.0 else y, inner, value=-1).div_(n.clamp_min(_EPS))
        if kept is not None:
            gx[small] = kept / _EPS
        return (gx,), (gr,)


class TransE(KGEModel):
    r"""TransE: relations as translations, :math:`f(h, r, t) = -\| \hat{e}_h + e_r - \hat{e}_t \|_p`
    with :math:`\hat{e} = e / \max(\|e\|_p, \epsilon)` (entity embeddings normalized).

    Trained with the margin ranking loss
    :math:`\frac{1}{B} \sum_i \max(0, \gamma - f(h_i, r_i, t_i) + f(h'_i, r_i, t'_i))`
    against corrupted triplets (:meth:`random_sample`).

    Args:
        num_nodes: number of entities.
        num_relations: number of relation types.
        hidden_channels: embedding size.
        margin: :math:`\gamma`.
        p_norm: the norm :math:`p`.
        sparse: sparse gradients for the embedding tables.

    Example:
        >>> model = TransE(num_nodes=10, num_relations=2, hidden_channels=8)
        >>> model(torch.tensor([0, 1]), torch.tensor([1, 0]), torch.tensor([2, 3])).shape
        torch.Size([2])
    """

    def __init__(
        self,
        num_nodes: int,
        num_relations: int,
        hidden_channels: int,
        margin: float = 1.0,
        p_norm: float = 1.0,
        sparse: bool = False,
    ) -> None:
        super().__init__(num_nodes, num_relations, hidden_channels, sparse)
        self.p_norm = p_norm
        self.margin = margin
        self.reset_parameters()

    def _make_rows(self) -> Rows | None:
        p = float(self.p_norm)
        return _TransERows(p) if p in (1.0, 2.0) else None

    def reset_parameters(self) -> None:
        """Uniform in :math:`\\pm 6 / \\sqrt{d}`; relation rows normalized."""
        bound = 6.0 / math.sqrt(self.hidden_channels)
        torch.nn.init.uniform_(self.node_emb.weight, -bound, bound)
        torch.nn.init.uniform_(self.rel_emb.weight, -bound, bound)
        with torch.no_grad():
            self.rel_emb.weight.copy_(F.normalize(self.rel_emb.weight, p=self.p_norm, dim=-1))

    def forward(self, head_index: Tensor, rel_type: Tensor, tail_index: Tensor) -> Tensor:
        head = F.normalize(self.node_emb(head_index), p=self.p_norm, dim=-1)
        tail = F.normalize(self.node_emb(tail_index), p=self.p_norm, dim=-1)
        return -torch.linalg.vector_norm(head + self.rel_emb(rel_type) - tail, ord=self.p_norm, dim=-1)

    def loss(self, head_index: Tensor, rel_type: Tensor, tail_index: Tensor) -> Tensor:
        return self._loss(head_index, rel_type, tail_index, self.margin)
