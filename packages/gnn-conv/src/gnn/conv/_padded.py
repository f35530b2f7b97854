r"""Padded layouts of a batch of graphs for per-graph (global) attention (not public API).

A batch of ``N`` nodes in ``B`` graphs (``batch[i]``: graph of node ``i``, in
any order) is laid out as one or more *buckets*: bucket ``k`` holds ``b_k``
graphs padded to ``n_k`` rows each, and the buckets follow each other in one
``[P, F]`` tensor (``P = sum_k b_k n_k``). :func:`pad` places the node rows
into that tensor (padding rows are zero), :func:`unpad` reads them back, and
the attention runs per bucket on ``[b_k, heads, n_k, head_dim]`` views.

Two layouts:

* **buckets** (:func:`bucketed_layout`, eager mode): graphs sorted by size
  are grouped so that each graph is padded to at most ``1 / ratio`` times
  its size. For ``B`` graphs of ``n_g`` nodes the attention costs at most
  :math:`\sum_g (n_g / \mathrm{ratio})^2` (about :math:`1.2 \sum_g n_g^2`
  for sizes spread uniformly) instead of :math:`B \max_g n_g^2` for one
  padded ``[B, N_max, N_max]`` batch;
* **single** (:func:`single_layout`): every graph padded to the largest one,
  ``[B, N_max]``, as :func:`gnn.core.utils.to_dense_batch` would (needed
  where the padding itself changes the result, as in Performer attention,
  and under ``torch.compile``, where it is computed without host-side
  control flow; ``B`` and ``N_max`` are read with ``.item()``, so a
  full-graph compile needs ``torch._dynamo.config.capture_scalar_outputs``).

Both are plain index arithmetic; autograd goes through ``index_copy`` /
``index_select``, whose backward passes are again gathers (no
accumulation).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from gnn.core.utils import group_counts

#: default bucket ratio: each graph is padded to at most 1 / 0.8 = 1.25 times its node count (fewer,
#: larger buckets than a finer grid: every bucket costs a few kernel launches / parallel regions)
BUCKET_RATIO = 0.8


@dataclass(eq=False)
class PaddedLayout:
    """Where each node goes in a ``[P, F]`` padded tensor made of buckets.

    Attributes:
        rows: ``[N]`` padded row of each node.
        buckets: ``(b_k, n_k)`` per bucket, in row order.
        masks: per bucket, a boolean key mask ``[b_k, 1, 1, n_k]`` (``True`` =
            real node) or ``None`` when every graph of the bucket fills it.
        num_rows: ``P``.
    """

    rows: Tensor
    buckets: list[tuple[int, int]]
    masks: list[Tensor | None]
    num_rows: int

    def split(self, padded: Tensor) -> list[Tensor]:
        """The per-bucket blocks ``[b_k, n_k, *]`` of a ``[P, *]`` tensor (``split``: its backward is one ``cat``)."""
        if len(self.buckets) == 1:
            b, n = self.buckets[0]
            return [padded.view((b, n) + padded.shape[1:])]
        blocks = torch.split(padded, [b * n for b, n in self.buckets])
        return [block.view((b, n) + padded.shape[1:]) for block, (b, n) in zip(blocks, self.buckets)]

    def merge(self, blocks: list[Tensor]) -> Tensor:
        """The inverse of :meth:`split`: per-bucket ``[b_k, n_k, *]`` blocks as one ``[P, *]`` tensor."""
        flat = [block.reshape((-1,) + block.shape[2:]) for block in blocks]
        return flat[0] if len(flat) == 1 else torch.cat(flat)


def pad(x: Tensor, layout: PaddedLayout) -> Tensor:
    """``[N, F]`` node rows -> ``[P, F]`` padded rows (zeros where no node sits)."""
    out = x.new_zeros((layout.num_rows,) + x.shape[1:])
    return out.index_copy(0, layout.rows, x)


def unpad(padded: Tensor, layout: PaddedLayout) -> Tensor:
    """``[P, F]`` padded rows -> ``[N, F]`` node rows."""
    return padded.index_select(0, layout.rows)


def _positions(batch: Tensor, counts: Tensor, sorted_batch: bool) -> Tensor:
    """``[N]`` position of each node within its graph (nodes keep their relative order)."""
    starts = counts.cumsum(0) - counts
    arange = torch.arange(batch.numel(), device=batch.device)
    if sorted_batch:
        return arange - starts[batch]
    perm = torch.argsort(batch, stable=True)
    in_graph = arange - starts[batch[perm]]
    return torch.empty_like(in_graph).index_copy_(0, perm, in_graph)


def is_sorted(batch: Tensor) -> bool:
    """Whether ``batch`` is non-decreasing (one pass, one host sync)."""
    return batch.numel() < 2 or bool((batch[1:] >= batch[:-1]).all())


def single_layout(batch: Tensor, batch_size: int, *, compiling: bool = False) -> PaddedLayout:
    """Every graph padded to the largest: one bucket ``(B, N_max)``.

    Under ``torch.compile`` (``compiling=True``) nothing depends on host-side
    branches: the batch is always treated as unsorted and the key mask is
    always built.
    """
    if compiling:
        torch._check(batch_size >= 1)
    counts = group_counts(batch, dim_size=batch_size)
    width = int(counts.max())
    if compiling:
        torch._check(width >= 1)
    sorted_batch = False if compiling else is_sorted(batch)
    rows = batch * width + _positions(batch, counts, sorted_batch)
    full = not compiling and bool((counts == width).all())
    mask = None if full else _key_mask(counts, width)
    return PaddedLayout(rows, [(batch_size, width)], [mask], batch_size * width)


def _key_mask(counts: Tensor, width: int) -> Tensor:
    """``[b, 1, 1, n]`` key mask of graphs with ``counts`` nodes padded to ``width``.

    Position 0 is always on, so that an empty graph's padded query rows
    (which are never read back) attend to something instead of producing NaN.
    """
    position = torch.arange(width, device=counts.device)
    mask = (position < counts.unsqueeze(-1)) | (position == 0)
    return mask.view(counts.numel(), 1, 1, width)


def bucketed_layout(batch: Tensor, batch_size: int, ratio: float = BUCKET_RATIO) -> PaddedLayout:
    """Graphs grouped by size into buckets (eager mode; a few host syncs, no per-graph Python loop).

    Graphs are sorted by node count (largest first); the graph of ``n`` nodes
    goes to bucket ``floor(log(n_max / n) / log(1 / ratio))``, whose graphs
    are padded to its largest member. Empty graphs take no rows.
    """
    counts = group_counts(batch, dim_size=batch_size)
    order = torch.argsort(counts, descending=True, stable=True)
    sizes = counts[order]
    nonempty = int((sizes > 0).sum())
    order, sizes = order[:nonempty], sizes[:nonempty]
    largest = sizes[:1].double()
    key = torch.floor(torch.log(largest / sizes.double()) / math.log(1.0 / ratio)).long()
    _, members = torch.unique_consecutive(key, return_counts=True)
    first = members.cumsum(0) - members
    widths = sizes[first]
    ragged = sizes[first + members - 1] != widths
    spec = torch.stack([members, widths, ragged.long()]).tolist()

    # first padded row of each graph: consecutive blocks of its bucket's width
    block = torch.repeat_interleave(widths, members, output_size=nonempty)
    start = torch.zeros_like(counts)
    start[order] = block.cumsum(0) - block
    rows = start[batch] + _positions(batch, counts, is_sorted(batch))

    buckets, masks, offset = [], [], 0
    for b, n, need_mask in zip(*spec):
        buckets.append((b, n))
        masks.append(_key_mask(sizes[offset : offset + b], n) if need_mask else None)
        offset += b
    num_rows = sum(b * n for b, n in buckets)
    return PaddedLayout(rows, buckets, masks, num_rows)
