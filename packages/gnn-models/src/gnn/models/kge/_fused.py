"""The KGE training loss in one autograd node: gather, the scores of the true and of the
corrupted triplets, the criterion, a hand-written backward and one gradient scatter per table.

``loss`` scores the true triplets and the corruptions of ``random_sample``. The
corruptions share half of their rows with the true triplets (the first half of the
batch gets random heads, the second half random tails), so the entity rows are
gathered once as ``X = [H; T; Z]`` (heads, tails, the random entities: ``3B`` rows)
and the relation rows once (``R``, ``B`` rows). Corrupted triplet ``i`` is
``(Z_i, R_i, T_i)`` for ``i < k = B // 2`` and ``(H_i, R_i, Z_i)`` otherwise.

Each model's :class:`Rows` subclass computes the scores from those rows and,
from the criterion's gradients ``gp`` (true) and ``gn`` (corrupted), the
gradients of the rows, written from the formula straight into one ``[3B, D]``
buffer per entity table (no per-role temporaries). The tables' gradients are
then one :func:`gnn.core.ops.scatter` each (or a sparse COO gradient for
``sparse=True`` embeddings), instead of one dense ``[num_nodes, D]`` gradient
per lookup.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from gnn.core import ops

Parts = tuple[Tensor, ...]


def criterion(kind: str, margin: float, pos: Tensor, neg: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """The loss and its gradients with respect to ``pos`` and ``neg`` (per entry).

    ``"margin"``: :math:`\\frac{1}{B}\\sum_i \\max(0, \\gamma - pos_i + neg_i)` (PyG's
    ``margin_ranking_loss`` with target 1); ``"bce"``: the mean binary cross-entropy of
    the logits ``[pos; neg]`` against ``[1; 0]``.
    """
    if kind == "margin":
        loss = F.margin_ranking_loss(pos, neg, torch.ones_like(pos), margin=margin)
        active = ((neg - pos + margin) > 0).to(pos.dtype) / max(pos.numel(), 1)
        return loss, -active, active
    scores = torch.cat([pos, neg])
    target = torch.cat([torch.ones_like(pos), torch.zeros_like(neg)])
    loss = F.binary_cross_entropy_with_logits(scores, target)
    g = (torch.sigmoid(scores) - target) / max(scores.numel(), 1)
    return loss, g[: pos.numel()], g[pos.numel() :]


class Rows:
    """Scores and row gradients of one model (subclassed per model).

    ``x`` holds the gathered entity rows (one ``[3B, D]`` tensor per entity
    table), ``r`` the relation rows (one ``[B, D]`` per relation table), ``k``
    the number of corrupted heads.
    """

    criterion = "margin"

    def forward(self, x: Parts, r: Parts, k: int) -> tuple[Tensor, Tensor, Any]:
        """``(pos [B], neg [B], saved)``: the scores and what :meth:`backward` needs."""
        raise NotImplementedError

    def backward(self, saved: Any, gp: Tensor, gn: Tensor, k: int) -> tuple[Parts, Parts]:
        """Gradients of the entity rows (``[3B, D]`` each) and relation rows (``[B, D]`` each)
        for score gradients ``gp``, ``gn`` of shape ``[B, 1]``."""
        raise NotImplementedError


def split(x: Tensor, b: int) -> tuple[Tensor, Tensor, Tensor]:
    """``(H, T, Z)``: the head, tail and random rows of a ``[3B, ...]`` tensor."""
    return x[:b], x[b : 2 * b], x[2 * b :]


def negative_pair(x: Tensor, b: int, k: int) -> tuple[Tensor, Tensor]:
    """The head and tail rows of the corrupted triplets, ``[Z[:k]; H[k:]]`` and ``[T[:k]; Z[k:]]``."""
    h, t, z = split(x, b)
    return torch.cat([z[:k], h[k:]]), torch.cat([t[:k], z[k:]])


class FusedKGELoss(torch.autograd.Function):
    """``loss`` of a batch for entity tables ``weights[:num_node_tables]`` and relation tables
    ``weights[num_node_tables:]``; ``node_index`` is ``[head; tail; random]`` (``3B``)."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        rows: Rows,
        margin: float,
        node_index: Tensor,
        rel_index: Tensor,
        sparse: bool,
        num_node_tables: int,
        *weights: Tensor,
    ) -> Tensor:
        b = rel_index.numel()
        k = b // 2
        x = tuple(w.index_select(0, node_index) for w in weights[:num_node_tables])
        r = tuple(w.index_select(0, rel_index) for w in weights[num_node_tables:])
        pos, neg, saved = rows.forward(x, r, k)
        loss, g_pos, g_neg = criterion(rows.criterion, margin, pos, neg)
        ctx.rows, ctx.saved, ctx.k, ctx.sparse = rows, saved, k, sparse
        ctx.num_node_tables = num_node_tables
        ctx.shapes = [w.shape for w in weights]
        ctx.save_for_backward(node_index, rel_index, g_pos, g_neg)
        return loss

    @staticmethod
    def backward(ctx: Any, grad_loss: Tensor) -> tuple[Tensor | None, ...]:
        node_index, rel_index, g_pos, g_neg = ctx.saved_tensors
        gx, gr = ctx.rows.backward(
            ctx.saved, (g_pos * grad_loss).unsqueeze(1), (g_neg * grad_loss).unsqueeze(1), ctx.k
        )
        grads = [(g, node_index) for g in gx] + [(g, rel_index) for g in gr]
        out: list[Tensor | None] = []
        for j, (grad_rows, index) in enumerate(grads):
            if not ctx.needs_input_grad[6 + j]:
                out.append(None)
            elif ctx.sparse:  # what a sparse nn.Embedding gives: an uncoalesced COO gradient
                out.append(torch.sparse_coo_tensor(index.view(1, -1), grad_rows, ctx.shapes[j]))
            else:
                out.append(ops.scatter(grad_rows, index, 0, ctx.shapes[j][0], "sum"))
        return (None, None, None, None, None, None, *out)


def dot(a: Tensor, b: Tensor) -> Tensor:
    """Row-wise dot products of two ``[n, D]`` tensors (a batched matrix product: no ``[n, D]`` temporary)."""
    return torch.bmm(a.unsqueeze(1), b.unsqueeze(2)).view(-1)


def mixed(first: Tensor, rest: Tensor, k: int, out: Tensor | None = None) -> Tensor:
    """``[first[:k]; rest[k:]]`` written into ``out`` (a new tensor by default)."""
    out = torch.empty_like(first) if out is None else out
    out[:k] = first[:k]
    out[k:] = rest[k:]
    return out
