"""ComplEx (Trouillon et al., 2016)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.nn import Embedding

from ._fused import Parts, Rows, dot, split
from .base import KGEModel


class _ComplExRows(Rows):
    """score = Re(<h r, conj(t)>) = <P_re, t_re> + <P_im, t_im> with P = h r (complex product).

    With u = g t: d/dh = (r_re u_re + r_im u_im, r_re u_im - r_im u_re), d/dr the same
    with h for r; with v = g h: d/dt = v r.
    """

    criterion = "bce"

    def forward(self, x: Parts, r: Parts, k: int) -> tuple[Tensor, Tensor, Any]:
        (x_re, x_im), (r_re, r_im) = x, r
        b = r_re.size(0)
        (h_re, t_re, z_re), (h_im, t_im, z_im) = split(x_re, b), split(x_im, b)
        p_re = h_re * r_re - h_im * r_im
        p_im = h_re * r_im + h_im * r_re
        pos = dot(p_re, t_re) + dot(p_im, t_im)
        q_re = z_re[:k] * r_re[:k] - z_im[:k] * r_im[:k]
        q_im = z_re[:k] * r_im[:k] + z_im[:k] * r_re[:k]
        neg = torch.cat(
            [dot(q_re, t_re[:k]) + dot(q_im, t_im[:k]), dot(p_re[k:], z_re[k:]) + dot(p_im[k:], z_im[k:])]
        )
        return pos, neg, (x_re, x_im, r_re, r_im)

    def backward(self, saved: Any, gp: Tensor, gn: Tensor, k: int) -> tuple[Parts, Parts]:
        x_re, x_im, r_re, r_im = saved
        b = r_re.size(0)
        (h_re, t_re, z_re), (h_im, t_im, z_im) = split(x_re, b), split(x_im, b)
        gx_re, gx_im = torch.empty_like(x_re), torch.empty_like(x_im)
        (gh_re, gt_re, gz_re), (gh_im, gt_im, gz_im) = split(gx_re, b), split(gx_im, b)
        # u: the tails h meets (true tails; random tails for i >= k), times g
        u_re, u_im = gp * t_re, gp * t_im
        u_re[k:].addcmul_(gn[k:], z_re[k:])
        u_im[k:].addcmul_(gn[k:], z_im[k:])
        torch.mul(r_re, u_re, out=gh_re).addcmul_(r_im, u_im)
        torch.mul(r_re, u_im, out=gh_im).addcmul_(r_im, u_re, value=-1)
        # v: the heads t meets (true heads; random heads for i < k), times g
        v_re, v_im = gp * h_re, gp * h_im
        v_re[:k].addcmul_(gn[:k], z_re[:k])
        v_im[:k].addcmul_(gn[:k], z_im[:k])
        torch.mul(v_re, r_re, out=gt_re).addcmul_(v_im, r_im, value=-1)
        torch.mul(v_re, r_im, out=gt_im).addcmul_(v_im, r_re)
        # random rows: heads of (z, r, t) for i < k, tails of (h, r, z) for i >= k
        w_re, w_im = gn[:k] * t_re[:k], gn[:k] * t_im[:k]
        torch.mul(r_re[:k], w_re, out=gz_re[:k]).addcmul_(r_im[:k], w_im)
        torch.mul(r_re[:k], w_im, out=gz_im[:k]).addcmul_(r_im[:k], w_re, value=-1)
        y_re, y_im = gn[k:] * h_re[k:], gn[k:] * h_im[k:]
        torch.mul(y_re, r_re[k:], out=gz_re[k:]).addcmul_(y_im, r_im[k:], value=-1)
        torch.mul(y_re, r_im[k:], out=gz_im[k:]).addcmul_(y_im, r_re[k:])
        gr_re = torch.addcmul(h_re * u_re, h_im, u_im)
        gr_im = torch.addcmul(h_re * u_im, h_im, u_re, value=-1)
        gr_re[:k].addcmul_(z_re[:k], w_re).addcmul_(z_im[:k], w_im)
        gr_im[:k].addcmul_(z_re[:k], w_im).addcmul_(z_im[:k], w_re, value=-1)
        return (gx_re, gx_im), (gr_re, gr_im)


class ComplEx(KGEModel):
    r"""ComplEx: complex embeddings, :math:`f(h, r, t) = \mathrm{Re}\left(\sum_d e_{h,d} \,
    e_{r,d} \, \overline{e_{t,d}}\right)` with real parts in ``node_emb``/``rel_emb`` and
    imaginary parts in ``node_emb_im``/``rel_emb_im``.

    Trained with the logistic loss: binary cross-entropy of the scores, true
    triplets labelled 1 and corrupted ones 0.

    Args:
        num_nodes: number of entities.
        num_relations: number of relation types.
        hidden_channels: embedding size (of each part).
        sparse: sparse gradients for the embedding tables.

    Example:
        >>> model = ComplEx(num_nodes=10, num_relations=2, hidden_channels=8)
        >>> model(torch.tensor([0, 1]), torch.tensor([1, 0]), torch.tensor([2, 3])).shape
        torch.Size([2])
    """

    _criterion = "bce"

    def _make_rows(self) -> Rows:
        return _ComplExRows()

    def __init__(
        self, num_nodes: int, num_relations: int, hidden_channels: int, sparse: bool = False
    ) -> None:
        super().__init__(num_nodes, num_relations, hidden_channels, sparse)
        self.node_emb_im = Embedding(num_nodes, hidden_channels, sparse=sparse)
        self.rel_emb_im = Embedding(num_relations, hidden_channels, sparse=sparse)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Xavier-uniform embeddings (all four tables)."""
        for emb in (self.node_emb, self.node_emb_im, self.rel_emb, self.rel_emb_im):
            torch.nn.init.xavier_uniform_(emb.weight)

    def _node_tables(self) -> list[Tensor]:
        return [self.node_emb.weight, self.node_emb_im.weight]

    def _rel_tables(self) -> list[Tensor]:
        return [self.rel_emb.weight, self.rel_emb_im.weight]

    def forward(self, head_index: Tensor, rel_type: Tensor, tail_index: Tensor) -> Tensor:
        h = (self.node_emb(head_index), self.node_emb_im(head_index))
        r = (self.rel_emb(rel_type), self.rel_emb_im(rel_type))
        t = (self.node_emb(tail_index), self.node_emb_im(tail_index))
        (h_re, h_im), (r_re, r_im), (t_re, t_im) = h, r, t
        return ((h_re * r_re - h_im * r_im) * t_re + (h_re * r_im + h_im * r_re) * t_im).sum(dim=-1)

    def loss(self, head_index: Tensor, rel_type: Tensor, tail_index: Tensor) -> Tensor:
        return self._loss(head_index, rel_type, tail_index, 0.0)
