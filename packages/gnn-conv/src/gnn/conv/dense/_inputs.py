"""Input handling shared by the dense convolution layers (not public API).

The dense layers take node features ``x`` as ``[B, N, F]`` (or ``[N, F]``, one
graph), an adjacency ``adj`` as ``[B, N, N]`` (or ``[N, N]``) with
``adj[b, i, j]`` how much node ``j`` contributes to node ``i``, and an optional node mask
``[B, N]`` (``True`` = real node). :func:`dense_inputs` validates them and
returns the batched forms.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from gnn.core import validation as v


def dense_inputs(
    x: Any, adj: Any, mask: Any, in_channels: int | None = None
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Validate ``(x, adj, mask)`` and return them batched: ``[B, N, F]``, ``[B, N, N]``, ``[B, N]``.

    A 2-D ``x`` or ``adj`` gains a leading batch dimension of 1 (and then
    broadcasts against the other's batch size, as a matrix product does).
    ``adj`` is cast to the dtype of ``x`` (a boolean or integer adjacency is
    read as 0/1 weights).

    Raises:
        TypeError: an input is not a tensor (``mask`` may be ``None``).
        ValueError: wrong number of dimensions, a non-square adjacency, node
            counts or batch sizes that differ, or ``in_channels`` features
            that do not match.
    """
    v.check_tensor("x", x)
    v.check_tensor("adj", adj)
    if x.dim() not in (2, 3):
        raise ValueError(f"'x' must have shape [B, N, F] or [N, F], got {v.describe(x)}")
    if adj.dim() not in (2, 3):
        raise ValueError(f"'adj' must have shape [B, N, N] or [N, N], got {v.describe(adj)}")
    if not (x.is_floating_point() or x.is_complex()):
        raise TypeError(f"'x' must be a floating-point tensor, got {v.describe(x)}")
    x = x.unsqueeze(0) if x.dim() == 2 else x
    adj = adj.unsqueeze(0) if adj.dim() == 2 else adj
    num_nodes = x.size(1)
    if adj.size(-1) != adj.size(-2) or adj.size(-1) != num_nodes:
        raise ValueError(
            f"'adj' must have shape [B, N, N] with N = {num_nodes} (the nodes of 'x'), got {v.describe(adj)}"
        )
    if x.size(0) != adj.size(0) and 1 not in (x.size(0), adj.size(0)):
        raise ValueError(
            f"'x' and 'adj' must have the same batch size, got {v.describe(x)} and {v.describe(adj)}"
        )
    if in_channels is not None and in_channels > 0 and x.size(-1) != in_channels:
        raise ValueError(f"'x' must have {in_channels} features (in_channels), got {v.describe(x)}")
    if adj.dtype != x.dtype:
        adj = adj.to(x.dtype)
    if mask is not None:
        v.check_tensor("mask", mask)
        batch = max(x.size(0), adj.size(0))
        if mask.dim() == 1:
            mask = mask.unsqueeze(0)
        if mask.dim() != 2 or mask.size(1) != num_nodes or mask.size(0) not in (1, batch):
            raise ValueError(
                f"'mask' must have shape [B, N] = [{batch}, {num_nodes}], got {v.describe(mask)}"
            )
    return x, adj, mask


def apply_mask(out: Tensor, mask: Tensor | None) -> Tensor:
    """Zero the rows of padded nodes: ``out * mask[..., None]`` (``out`` unchanged without a mask)."""
    if mask is None:
        return out
    return out * mask.unsqueeze(-1).to(out.dtype)


def diagonal(adj: Tensor) -> Tensor:
    """The diagonal ``[B, N]`` of a batched adjacency (a view, no copy)."""
    return adj.diagonal(dim1=-2, dim2=-1)
