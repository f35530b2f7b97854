"""Node sets in padded form for the global-attention models (not public API).

The attention modules of gnn-conv work on a padded batch ``[B, N_max, F]``; the
graph transformers here keep node features as ``[N, F]`` with a ``batch``
vector that need not be sorted. :func:`pad_nodes` groups the nodes by graph
(a stable sort, so nodes keep their order inside a graph) and pads them;
:func:`unpad_nodes` takes the real rows back in the caller's node order.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from gnn.core import validation as v
from gnn.core.utils import to_dense_batch

from ._utils import check_index_vector


class Padded(NamedTuple):
    """A padded batch: ``x`` ``[B, N_max, F]``, its node ``mask`` ``[B, N_max]`` (``None``: one
    graph, no padding) and ``perm``, the node order used (``None``: the input order)."""

    x: Tensor
    mask: Tensor | None
    perm: Tensor | None


def check_batch(batch: object, num_nodes: int) -> Tensor | None:
    """``batch`` is ``None`` or a 1-D integer tensor with one non-negative entry per node."""
    if batch is None:
        return None
    t = check_index_vector("batch", batch, size=num_nodes)
    if v.validation_enabled() and t.numel() and int(t.min()) < 0:
        raise ValueError(f"'batch' must hold non-negative graph indices, got minimum {int(t.min())}")
    return t


def pad_nodes(x: Tensor, batch: Tensor | None) -> Padded:
    """Group the rows of ``x`` ``[N, F]`` by graph and pad them to ``[B, N_max, F]``.

    With ``batch=None``, or a ``batch`` whose entries are all equal, all nodes form one
    graph: ``x`` is used as it is (no copy, no mask). An already sorted ``batch`` is not
    permuted. (Padding to the largest graph already needs the graph sizes on the host, so
    these two checks add no new synchronization point; under ``torch.compile`` the general
    path is taken.)
    """
    if batch is None:
        return Padded(x.unsqueeze(0), None, None)
    batch = batch.long()
    eager = not torch.compiler.is_compiling()
    if eager and batch.numel() and bool((batch == batch[0]).all()):
        return Padded(x.unsqueeze(0), None, None)
    if eager and bool((batch[1:] >= batch[:-1]).all()):
        dense, mask = to_dense_batch(x, batch)
        return Padded(dense, mask, None)
    sorted_batch, perm = torch.sort(batch, stable=True)
    dense, mask = to_dense_batch(x.index_select(0, perm), sorted_batch)
    return Padded(dense, mask, perm)


def unpad_nodes(dense: Tensor, padded: Padded) -> Tensor:
    """The real rows of ``dense`` ``[B, N_max, F']`` (laid out as ``padded``) as ``[N, F']`` in the
    node order the caller gave to :func:`pad_nodes`."""
    if padded.mask is None:
        return dense.squeeze(0)
    rows = dense[padded.mask]
    if padded.perm is None:
        return rows
    inverse = torch.empty_like(padded.perm)
    inverse[padded.perm] = torch.arange(padded.perm.numel(), device=padded.perm.device)
    return rows.index_select(0, inverse)
