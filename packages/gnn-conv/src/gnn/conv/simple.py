r"""A non-trainable message-passing layer, :class:`SimpleConv`."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from gnn.core.aggr.base import Aggregation
from gnn.core.message_passing import MessagePassing
from gnn.core.utils.edges import add_self_loops
from gnn.core.utils.sparse import is_sparse, to_edge_index

from ._utils import num_nodes, pair

_COMBINE = (None, "sum", "cat", "self_loop")


class SimpleConv(MessagePassing):
    r"""Aggregate (weighted) neighbour features without parameters.

    .. math::
        x_i' = \bigoplus_{j \in \mathcal{N}(i)} e_{j,i} \cdot x_j

    with :math:`\bigoplus` the ``aggr`` reduction. ``combine_root`` adds the
    node itself: ``"sum"`` (:math:`x_i + x_i'`), ``"cat"``
    (:math:`[x_i \,\|\, x_i']`) or ``"self_loop"`` (a self loop of weight 1
    is added to every node before aggregating, so it enters the reduction).

    Args:
        aggr: the aggregation (``"sum"``, ``"mean"``, ``"max"``, a list, an
            :class:`~gnn.core.Aggregation` ...).
        combine_root: ``None``, ``"sum"``, ``"cat"`` or ``"self_loop"``.
        **kwargs: :class:`~gnn.core.MessagePassing` arguments.

    Shapes:
        ``x`` ``[N, F]`` or ``([N_src, F], [N_dst, F])``, ``edge_index``
        ``[2, E]`` or sparse ``adj_t``, ``edge_weight`` ``[E]`` ->
        ``[N_dst, F]`` (``[N_dst, 2F]`` with ``"cat"``).

    Example:
        >>> conv = SimpleConv(aggr="mean", combine_root="sum")
        >>> conv(torch.randn(3, 4), torch.tensor([[0, 1], [1, 2]])).shape
        torch.Size([3, 4])
    """

    fused_message = "edge_weight * x_j"

    def __init__(
        self,
        aggr: str | list[str] | Aggregation | None = "sum",
        combine_root: str | None = None,
        **kwargs: Any,
    ) -> None:
        if combine_root not in _COMBINE:
            raise ValueError(
                f"Received invalid value for 'combine_root' (got {combine_root!r}); expected one of {_COMBINE}"
            )
        super().__init__(aggr, **kwargs)
        self.combine_root = combine_root

    def forward(
        self,
        x: Tensor | tuple[Tensor, Tensor | None],
        edge_index: Any,
        edge_weight: Tensor | None = None,
        size: tuple[int, int] | None = None,
    ) -> Tensor:
        """Aggregate neighbour features (see the class docstring)."""
        if is_sparse(edge_index):
            edge_weight = None  # the adjacency's values are the weights
        if self.combine_root == "self_loop":
            if not isinstance(x, Tensor):
                raise ValueError(
                    "Cannot use `combine_root='self_loop'` for bipartite message passing: "
                    "'x' must be a single tensor"
                )
            if is_sparse(edge_index):
                edge_index, edge_weight = to_edge_index(edge_index)
            edge_index, edge_weight = add_self_loops(edge_index, edge_weight, 1.0, num_nodes(self, x))
        x_src, x_dst = pair(x)
        out = self.propagate(edge_index, x=(x_src, x_dst), edge_weight=edge_weight, size=size)
        if x_dst is not None and self.combine_root == "sum":
            out = out + x_dst
        elif x_dst is not None and self.combine_root == "cat":
            out = torch.cat([x_dst, out], dim=-1)
        return out

    def message(self, x_j: Tensor, edge_weight: Tensor | None) -> Tensor:
        """``edge_weight * x_j`` (or ``x_j`` without weights)."""
        return x_j if edge_weight is None else edge_weight.view(-1, 1) * x_j
