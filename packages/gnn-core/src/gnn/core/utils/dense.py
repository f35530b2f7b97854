"""Conversions from node lists with a ``batch`` vector to dense, padded tensors."""

from __future__ import annotations

import torch
from torch import Tensor

from .. import ops
from .. import validation as v


def _batch_layout(batch: Tensor | None, num_nodes: int, batch_size: int | None, device: torch.device):
    if batch is None:
        batch = torch.zeros(num_nodes, dtype=torch.long, device=device)
    v.check_tensor("batch", batch)
    v.check_index_dtype("batch", batch)
    if batch.dim() != 1 or batch.numel() != num_nodes:
        raise ValueError(f"'batch' must be 1-D with {num_nodes} entries, got {v.describe(batch)}")
    batch = batch.long()
    if batch_size is None:
        batch_size = int(batch.max()) + 1 if batch.numel() else 1
    v.check_index_range("batch", batch, batch_size, "graphs ('batch_size')")
    counts = ops.scatter(torch.ones_like(batch), batch, 0, batch_size, "sum")
    start = torch.cat([counts.new_zeros(1), counts.cumsum(0)[:-1]])
    return batch, batch_size, counts, start


def to_dense_batch(
    x: Tensor,
    batch: Tensor | None = None,
    fill_value: float = 0.0,
    max_num_nodes: int | None = None,
    batch_size: int | None = None,
) -> tuple[Tensor, Tensor]:
    """Pad node features into a ``[B, N_max, *]`` tensor and a ``[B, N_max]`` mask.

    Nodes of one graph must be contiguous in ``x`` (``batch`` sorted).
    Nodes past ``max_num_nodes`` in a graph are dropped.

    Example:
        >>> x = torch.arange(3.).view(3, 1); batch = torch.tensor([0, 0, 1])
        >>> out, mask = to_dense_batch(x, batch)  # out: [2, 2, 1]
    """
    v.check_tensor("x", x)
    batch, batch_size, counts, start = _batch_layout(batch, x.size(0), batch_size, x.device)
    if v.validation_enabled() and batch.numel() > 1 and bool((batch[1:] < batch[:-1]).any()):
        raise ValueError("'batch' must be sorted (nodes of one graph contiguous)")
    if max_num_nodes is None:
        max_num_nodes = int(counts.max()) if counts.numel() else 0
    pos = torch.arange(batch.numel(), device=x.device) - start[batch]
    keep = pos < max_num_nodes
    out = x.new_full((batch_size * max_num_nodes,) + x.shape[1:], fill_value)
    flat = batch[keep] * max_num_nodes + pos[keep]
    out[flat] = x[keep]
    mask = torch.zeros(batch_size * max_num_nodes, dtype=torch.bool, device=x.device)
    mask[flat] = True
    return out.view((batch_size, max_num_nodes) + x.shape[1:]), mask.view(batch_size, max_num_nodes)


def to_dense_adj(
    edge_index: Tensor,
    batch: Tensor | None = None,
    edge_attr: Tensor | None = None,
    max_num_nodes: int | None = None,
    batch_size: int | None = None,
) -> Tensor:
    """Dense ``[B, N_max, N_max(, *)]`` adjacency; duplicate edges add up.

    Example:
        >>> to_dense_adj(torch.tensor([[0, 1], [1, 0]]))
        tensor([[[0., 1.],
                 [1., 0.]]])
    """
    v.check_edge_index(edge_index)
    num_nodes = int(edge_index.max()) + 1 if edge_index.numel() else 0
    if batch is not None:
        num_nodes = max(num_nodes, batch.numel())
        if v.validation_enabled():
            v.check_index_range("edge_index", edge_index, batch.numel())
    batch, batch_size, counts, start = _batch_layout(batch, num_nodes, batch_size, edge_index.device)
    if max_num_nodes is None:
        max_num_nodes = int(counts.max()) if counts.numel() else 0
    src, dst = edge_index[0].long(), edge_index[1].long()
    graph = batch[src]
    a, b = src - start[graph], dst - start[batch[dst]]
    keep = (a < max_num_nodes) & (b < max_num_nodes)
    if edge_attr is None:
        edge_attr = torch.ones(src.numel(), device=edge_index.device)
    flat = (graph * max_num_nodes + a) * max_num_nodes + b
    size = batch_size * max_num_nodes * max_num_nodes
    out = ops.scatter(edge_attr[keep], flat[keep], 0, size, "sum")
    return out.view((batch_size, max_num_nodes, max_num_nodes) + edge_attr.shape[1:])
