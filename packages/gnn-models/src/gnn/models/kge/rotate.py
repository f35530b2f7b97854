"""RotatE (Sun et al., 2019)."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor
from torch.nn import Embedding

from ._fused import Parts, Rows, dot, split
from .base import KGEModel


def _rotate(c: Tensor, s: Tensor, re: Tensor, im: Tensor) -> tuple[Tensor, Tensor]:
    """``(re + i im) * (c + i s)``."""
    return c * re - s * im, c * im + s * re


class _RotatERows(Rows):
    """score = margin - ||h e^{i theta} - t||_2 over the real and imaginary parts.

    With d = h e^{i theta} - t and G = -g d / ||d|| (0 where ||d|| = 0): d/dt = -G,
    d/dh = G e^{-i theta}, d/dtheta = G_im Re(h e^{i theta}) - G_re Im(h e^{i theta}).
    """

    criterion = "bce"

    def __init__(self, margin: float) -> None:
        self.margin = margin

    def forward(self, x: Parts, r: Parts, k: int) -> tuple[Tensor, Tensor, Any]:
        (x_re, x_im), (theta,) = x, r
        b = theta.size(0)
        (h_re, t_re, z_re), (h_im, t_im, z_im) = split(x_re, b), split(x_im, b)
        c, s = torch.cos(theta), torch.sin(theta)
        rh_re, rh_im = _rotate(c, s, h_re, h_im)
        rz_re, rz_im = _rotate(c[:k], s[:k], z_re[:k], z_im[:k])
        dp_re, dp_im = rh_re - t_re, rh_im - t_im
        dn_re, dn_im = torch.empty_like(dp_re), torch.empty_like(dp_im)
        torch.sub(rz_re, t_re[:k], out=dn_re[:k])
        torch.sub(rz_im, t_im[:k], out=dn_im[:k])
        torch.sub(rh_re[k:], z_re[k:], out=dn_re[k:])
        torch.sub(rh_im[k:], z_im[k:], out=dn_im[k:])
        dist_p = torch.sqrt(dot(dp_re, dp_re) + dot(dp_im, dp_im))
        dist_n = torch.sqrt(dot(dn_re, dn_re) + dot(dn_im, dn_im))
        saved = (c, s, rh_re, rh_im, rz_re, rz_im, dp_re, dp_im, dn_re, dn_im, dist_p, dist_n)
        return self.margin - dist_p, self.margin - dist_n, saved

    def backward(self, saved: Any, gp: Tensor, gn: Tensor, k: int) -> tuple[Parts, Parts]:
        c, s, rh_re, rh_im, rz_re, rz_im, dp_re, dp_im, dn_re, dn_im, dist_p, dist_n = saved
        b = c.size(0)

        def scale(g: Tensor, dist: Tensor) -> Tensor:
            dist = dist.unsqueeze(1)
            return torch.where(
                dist > 0, -g / dist.clamp_min(torch.finfo(dist.dtype).tiny), torch.zeros_like(g)
            )

        sp, sn = scale(gp, dist_p), scale(gn, dist_n)
        u_re, u_im = dp_re * sp, dp_im * sp  # G of the true triplets
        n_re, n_im = dn_re * sn, dn_im * sn  # G of the corrupted ones
        gx_re, gx_im = (
            c.new_empty(3 * b, c.size(1)),
            c.new_empty(3 * b, c.size(1)),
        )
        (gh_re, gt_re, gz_re), (gh_im, gt_im, gz_im) = split(gx_re, b), split(gx_im, b)
        # tails: true tails get -G of the true triplets plus -G of (z, r, t) for i < k
        torch.add(u_re[:k], n_re[:k], out=gt_re[:k]).neg_()
        torch.add(u_im[:k], n_im[:k], out=gt_im[:k]).neg_()
        torch.neg(u_re[k:], out=gt_re[k:])
        torch.neg(u_im[k:], out=gt_im[k:])
        # random rows: heads of (z, r, t) for i < k, tails of (h, r, z) for i >= k
        torch.mul(c[:k], n_re[:k], out=gz_re[:k]).addcmul_(s[:k], n_im[:k])
        torch.mul(c[:k], n_im[:k], out=gz_im[:k]).addcmul_(s[:k], n_re[:k], value=-1)
        torch.neg(n_re[k:], out=gz_re[k:])
        torch.neg(n_im[k:], out=gz_im[k:])
        # heads: G of the true triplets plus G of (h, r, z) for i >= k, rotated back
        u_re[k:] += n_re[k:]
        u_im[k:] += n_im[k:]
        torch.mul(c, u_re, out=gh_re).addcmul_(s, u_im)
        torch.mul(c, u_im, out=gh_im).addcmul_(s, u_re, value=-1)
        g_theta = torch.addcmul(u_im * rh_re, u_re, rh_im, value=-1)
        g_theta[:k].addcmul_(n_im[:k], rz_re).addcmul_(n_re[:k], rz_im, value=-1)
        return (gx_re, gx_im), (g_theta,)


class RotatE(KGEModel):
    r"""RotatE: relations as rotations in the complex plane,
    :math:`f(h, r, t) = \gamma - \| e_h \circ e^{i \theta_r} - e_t \|_2` with real parts in
    ``node_emb``, imaginary parts in ``node_emb_im`` and the phases :math:`\theta_r` in ``rel_emb``.

    Trained with the logistic loss (binary cross-entropy, true triplets 1, corrupted 0).

    Args:
        num_nodes: number of entities.
        num_relations: number of relation types.
        hidden_channels: embedding size.
        margin: :math:`\gamma`.
        sparse: sparse gradients for the embedding tables.

    Example:
        >>> model = RotatE(num_nodes=10, num_relations=2, hidden_channels=8)
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
        self.node_emb_im = Embedding(num_nodes, hidden_channels, sparse=sparse)
        self.reset_parameters()

    _criterion = "bce"

    def _make_rows(self) -> Rows:
        return _RotatERows(float(self.margin))

    def reset_parameters(self) -> None:
        """Xavier-uniform entities, phases uniform in :math:`[0, 2\\pi)`."""
        torch.nn.init.xavier_uniform_(self.node_emb.weight)
        torch.nn.init.xavier_uniform_(self.node_emb_im.weight)
        torch.nn.init.uniform_(self.rel_emb.weight, 0, 2 * math.pi)

    def _node_tables(self) -> list[Tensor]:
        return [self.node_emb.weight, self.node_emb_im.weight]

    def forward(self, head_index: Tensor, rel_type: Tensor, tail_index: Tensor) -> Tensor:
        theta = self.rel_emb(rel_type)
        re, im = _rotate(
            torch.cos(theta), torch.sin(theta), self.node_emb(head_index), self.node_emb_im(head_index)
        )
        re, im = re - self.node_emb(tail_index), im - self.node_emb_im(tail_index)
        return self.margin - torch.linalg.vector_norm(torch.stack([re, im], dim=-1), dim=(-2, -1))

    def loss(self, head_index: Tensor, rel_type: Tensor, tail_index: Tensor) -> Tensor:
        return self._loss(head_index, rel_type, tail_index, self.margin)
