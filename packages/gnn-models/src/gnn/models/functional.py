r"""Penalties from "Improving Molecular Graph Neural Network Explainability with Orthonormalization
and Induced Sparsity" (Henderson et al., 2021): :func:`bro` and :func:`gini`."""

from __future__ import annotations

import torch
from torch import Tensor

from gnn.core import validation as v
from gnn.core.utils import to_dense_batch

__all__ = ["bro", "gini"]


def bro(x: Tensor, batch: Tensor, p: int | str = 2) -> Tensor:
    r"""Batch representation orthogonality: the mean over graphs of
    :math:`\lVert \mathbf{X}_g \mathbf{X}_g^\top - \mathbf{I} \rVert_p`.

    :math:`\mathbf{X}_g` holds the rows of graph :math:`g` (``batch`` sorted, as in
    every mini-batch); graphs without nodes are not counted. ``p`` is a number (the
    entry-wise vector norm, so 2 is the Frobenius norm), ``"fro"`` or ``"nuc"``.

    Shapes:
        ``x`` ``[N, F]``, ``batch`` ``[N]`` -> scalar.

    Example:
        >>> float(bro(torch.eye(2), torch.tensor([0, 1])))
        0.0
    """
    v.check_tensor("x", x)
    v.check_tensor("batch", batch)
    if batch.dim() != 1 or batch.numel() != x.size(0):
        raise ValueError(f"'batch' must have one entry per row of 'x' ({x.size(0)}), got {v.describe(batch)}")
    if batch.numel() > 1 and bool((batch[1:] < batch[:-1]).any()):
        raise ValueError("'batch' must be sorted (graph by graph)")
    _, counts = torch.unique_consecutive(batch, return_counts=True)
    dense_batch = torch.repeat_interleave(torch.arange(counts.numel(), device=x.device), counts)
    dense, mask = to_dense_batch(x, dense_batch, batch_size=counts.numel())  # [B, M, F], [B, M]
    eye = torch.diag_embed(mask.to(x.dtype))
    diff = dense @ dense.transpose(1, 2) - eye
    if p == "nuc":
        norms = torch.linalg.matrix_norm(diff, ord="nuc")
    elif p == "fro":
        norms = torch.linalg.vector_norm(diff, 2, dim=(1, 2))
    else:
        norms = torch.linalg.vector_norm(diff, float(p), dim=(1, 2))
    return norms.sum() / counts.numel()


def gini(w: Tensor) -> Tensor:
    r"""The mean Gini coefficient of the rows of ``w``:

    .. math::
        \frac{1}{R}\sum_r \frac{\sum_{i,j} |w_{ri} - w_{rj}|}{2 (n^2 - n)\,\overline{|w_r|} + \epsilon}

    with :math:`n` entries per row and :math:`\epsilon` the float32 machine epsilon.

    Shapes:
        ``w`` ``[R, n]`` -> scalar.

    Example:
        >>> float(gini(torch.tensor([[1.0, 1.0]])))
        0.0
    """
    v.check_tensor("w", w)
    if w.dim() != 2:
        raise ValueError(f"'w' must be a 2-D [rows, entries] tensor, got {v.describe(w)}")
    n = w.size(-1)
    # sum_{i,j} |w_i - w_j| = sum_i c_i w_i with c_i = 2 (#{w_j < w_i} - #{w_j > w_i}): O(n log n)
    # per row instead of n^2; c (constant) gives abs's subgradient 0 at ties, as the pairwise form
    with torch.no_grad():
        ordered = w.sort(dim=-1).values.contiguous()
        less = torch.searchsorted(ordered, w.contiguous(), right=False)
        not_greater = torch.searchsorted(ordered, w.contiguous(), right=True)
        coef = (2 * (less + not_greater - n)).to(w.dtype)
    diffs = (coef * w).sum(dim=-1)
    denom = 2 * (n * n - n) * w.abs().mean(dim=-1) + torch.finfo().eps
    return (diffs / denom).mean()
