r"""Weisfeiler-Leman layers: :class:`WLConv` (colour refinement) and :class:`WLConvContinuous`."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from gnn.core import ops
from gnn.core import validation as v
from gnn.core.message_passing import MessagePassing
from gnn.core.utils.sparse import is_sparse

from ._utils import edge_list, pair, weighted_message


class WLConv(torch.nn.Module):
    r"""One iteration of the Weisfeiler-Leman colour refinement.

    .. math::
        c_i' = \mathrm{hash}\big(c_i, \{\!\{ c_j : j \in \mathcal{N}(i) \}\!\}\big)

    A node's new colour identifies the pair (its colour, the multiset of its
    in-neighbours' colours). New colours are numbered ``0, 1, 2, ...`` in
    the order nodes first show them, and the table is kept across calls (so
    two graphs refined by the same layer share colours) until
    :meth:`reset_parameters`.

    Shapes:
        ``x`` ``[N]`` integer colours (or ``[N, C]`` one-hot), ``edge_index``
        ``[2, E]`` or sparse ``adj_t`` -> ``[N]`` long colours.

    Example:
        >>> conv = WLConv()
        >>> conv(torch.tensor([0, 0, 0]), torch.tensor([[0, 1], [1, 2]]))
        tensor([0, 1, 1])
    """

    def __init__(self) -> None:
        super().__init__()
        self.hashmap: dict[tuple[int, ...], int] = {}

    def reset_parameters(self) -> None:
        """Forget every colour seen so far."""
        self.hashmap = {}

    @torch.no_grad()
    def forward(self, x: Tensor, edge_index: Any) -> Tensor:
        """Refine the colouring ``x`` once (see the class docstring)."""
        v.check_tensor("x", x)
        if x.dim() > 1:
            if x.dim() != 2 or bool(((x != 0) & (x != 1)).any()) or bool((x.sum(-1) != 1).any()):
                raise ValueError(f"a 2-D 'x' must be one-hot (one 1 per row), got {v.describe(x)}")
            x = x.argmax(dim=-1)
        elif x.is_floating_point():
            raise TypeError(f"'x' must hold integer colours, got {v.describe(x)}")
        x = x.long()
        n = x.numel()
        edge_index, _ = edge_list(edge_index, None)
        v.check_edge_index_nodes(edge_index, n)
        src, dst = edge_index[0].long(), edge_index[1].long()
        # sort the in-neighbour colours of each node: by receiver, then colour
        neighbour = x[src]
        order = torch.argsort(neighbour, stable=True)
        order = order[torch.argsort(dst[order], stable=True)]
        colours = neighbour[order]
        deg = torch.bincount(dst, minlength=n)
        ptr = torch.zeros(n + 1, dtype=torch.long)
        torch.cumsum(deg, 0, out=ptr[1:])

        # signature of node i: (c_i, sorted neighbour colours); group nodes by degree
        # so that each group is a dense [n_d, d + 1] matrix deduplicated at once
        first_seen: list[tuple[int, tuple[int, ...]]] = []
        signature_of = torch.empty(n, dtype=torch.long)
        signatures: list[tuple[int, ...]] = []
        for d in torch.unique(deg).tolist():
            nodes = (deg == d).nonzero().view(-1)
            cols = ptr[nodes].view(-1, 1) + torch.arange(d).view(1, -1)
            table = torch.cat([x[nodes].view(-1, 1), colours[cols]], dim=1)
            unique, inverse = torch.unique(table, dim=0, return_inverse=True)
            first = torch.full((unique.size(0),), n, dtype=torch.long)
            first = first.scatter_reduce(0, inverse, nodes, "amin")
            offset = len(signatures)
            signatures.extend(tuple(row) for row in unique.tolist())
            signature_of[nodes] = inverse + offset
            first_seen.extend(zip(first.tolist(), range(offset, len(signatures))))
        ids = torch.empty(len(signatures), dtype=torch.long)
        for _, k in sorted(first_seen):
            key = signatures[k]
            colour = self.hashmap.get(key)
            if colour is None:
                colour = self.hashmap[key] = len(self.hashmap)
            ids[k] = colour
        return ids[signature_of].to(edge_index.device)

    def histogram(self, x: Tensor, batch: Tensor | None = None, norm: bool = False) -> Tensor:
        """``[B, num_colours]`` colour counts per graph (``norm``: each row scaled to unit length)."""
        v.check_tensor("x", x)
        num_colors = len(self.hashmap)
        if batch is None:
            batch = torch.zeros(x.numel(), dtype=torch.long, device=x.device)
        elif batch.numel() != x.numel():
            raise ValueError(f"'batch' must have {x.numel()} entries, got {v.describe(batch)}")
        if x.numel() and int(x.max()) >= num_colors:
            raise ValueError(f"'x' holds colour {int(x.max())} but the layer knows {num_colors} colours")
        batch_size = int(batch.max()) + 1 if batch.numel() else 0
        index = batch.long() * num_colors + x.long()
        ones = torch.ones(x.numel(), dtype=torch.float, device=x.device)
        out = ops.scatter(ones, index, 0, num_colors * batch_size, "sum").view(batch_size, num_colors)
        if norm:
            out = out / out.norm(dim=-1, keepdim=True)
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class WLConvContinuous(MessagePassing):
    r"""The continuous Weisfeiler-Leman operator (Togninalli et al., 2019).

    .. math::
        x_i' = \frac{1}{2}\Big(x_i + \frac{\sum_{j \in \mathcal{N}(i)} e_{j,i} \cdot x_j}
            {\sum_{j \in \mathcal{N}(i)} e_{j,i}}\Big)

    (a weighted mean of the neighbours; the plain mean without weights, 0
    for a node whose weights sum to 0). Numerator and denominator come
    from one fused ``ops.spmm`` over ``[x_src, 1]``.

    Args:
        **kwargs: :class:`~gnn.core.MessagePassing` arguments (the
            aggregation is fixed to ``"add"``).

    Shapes:
        ``x`` ``[N, F]`` or ``([N_src, F], [N_dst, F])``, ``edge_weight``
        ``[E]`` -> ``[N_dst, F]``.

    Example:
        >>> WLConvContinuous()(torch.randn(3, 4), torch.tensor([[0, 1], [1, 2]])).shape
        torch.Size([3, 4])
    """

    fused_message = "edge_weight * x_j"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(aggr="add", **kwargs)

    def forward(
        self,
        x: Tensor | tuple[Tensor, Tensor | None],
        edge_index: Any,
        edge_weight: Tensor | None = None,
        size: tuple[int, int] | None = None,
    ) -> Tensor:
        """Apply the operator (see the class docstring for shapes)."""
        x_src, x_dst = pair(x)
        v.check_tensor("x", x_src)
        if is_sparse(edge_index):
            edge_weight = None  # the adjacency's values are the weights
        if size is None and x_dst is not None:
            size = (x_src.size(self.node_dim), x_dst.size(self.node_dim))
        ones = x_src.new_ones(x_src.shape[:-1] + (1,))
        total = self.propagate(
            edge_index, x=(torch.cat([x_src, ones], dim=-1), None), edge_weight=edge_weight, size=size
        )
        deg_inv = total[..., -1:].reciprocal()
        out = total[..., :-1] * deg_inv.masked_fill(torch.isinf(deg_inv), 0.0)
        if x_dst is not None:
            out = 0.5 * (x_dst + out)
        return out

    def message(self, x_j: Tensor, edge_weight: Tensor | None) -> Tensor:
        """``edge_weight * x_j`` (or ``x_j`` without weights)."""
        return weighted_message(x_j, edge_weight)
