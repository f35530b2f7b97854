r"""Personalized-PageRank propagation (Gasteiger et al., 2019), :class:`APPNP`."""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import Tensor

from gnn.core.message_passing import MessagePassing
from gnn.core.utils.sparse import is_sparse, to_edge_index

from ._utils import cached_gcn_norm, clear_layer_cache, num_nodes, weighted_message


class APPNP(MessagePassing):
    r"""Approximate personalized propagation of neural predictions.

    .. math::
        X^{(0)} = X, \quad
        X^{(k)} = (1 - \alpha) \hat{D}^{-1/2} \hat{A} \hat{D}^{-1/2} X^{(k-1)} + \alpha X,
        \quad X' = X^{(K)}

    Each of the ``K`` hops is a fused ``ops.spmm``.

    Args:
        K: number of iterations.
        alpha: teleport probability :math:`\alpha`.
        dropout: dropout on the normalized edge weights in every hop (training only).
        cached: cache the normalized graph for the ``edge_index`` (and
            ``edge_weight``) it was computed from; :meth:`reset_parameters`
            clears it.
        add_self_loops: add self loops before normalizing.
        normalize: apply the symmetric normalization.
        **kwargs: :class:`~gnn.core.MessagePassing` arguments.

    Shapes:
        ``x`` ``[N, F]``, ``edge_index`` ``[2, E]`` or sparse ``adj_t``,
        ``edge_weight`` ``[E]`` -> ``[N, F]``.

    Example:
        >>> prop = APPNP(K=10, alpha=0.1)
        >>> prop(torch.randn(4, 16), torch.tensor([[0, 1], [1, 2]])).shape
        torch.Size([4, 16])
    """

    fused_message = "edge_weight * x_j"

    def __init__(
        self,
        K: int,
        alpha: float,
        dropout: float = 0.0,
        cached: bool = False,
        add_self_loops: bool = True,
        normalize: bool = True,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("aggr", "add")
        super().__init__(**kwargs)
        self.K = K
        self.alpha = alpha
        self.dropout = dropout
        self.cached = cached
        self.add_self_loops = add_self_loops
        self.normalize = normalize
        self._cached_edge_index: tuple[Tensor, Tensor | None] | None = None
        self._cached_adj_t: Any = None

    def reset_parameters(self) -> None:
        """Clear the cached normalization (the layer has no parameters)."""
        super().reset_parameters()
        clear_layer_cache(self, "_cached_edge_index", "_cached_adj_t")

    def forward(self, x: Tensor, edge_index: Any, edge_weight: Tensor | None = None) -> Tensor:
        """Propagate ``x`` (see the class docstring for shapes)."""
        if not isinstance(x, Tensor):
            raise TypeError(f"'x' must be a torch.Tensor, got {type(x).__name__}")
        if self.normalize:
            n = num_nodes(self, x)
            edge_index, edge_weight = cached_gcn_norm(
                self, edge_index, edge_weight, n, False, self.add_self_loops, self.flow, x.dtype
            )
        elif is_sparse(edge_index):
            edge_weight = None
        h = x
        for _ in range(self.K):
            graph, weight = edge_index, edge_weight
            if self.dropout > 0 and self.training:
                if is_sparse(graph):
                    graph, weight = to_edge_index(graph)
                if weight is None:
                    weight = x.new_ones(graph.size(1))
                weight = F.dropout(weight, p=self.dropout)
            x = self.propagate(graph, x=x, edge_weight=weight)
            x = x * (1.0 - self.alpha) + self.alpha * h
        return x

    def message(self, x_j: Tensor, edge_weight: Tensor | None) -> Tensor:
        """``edge_weight * x_j`` (or ``x_j`` without weights)."""
        return weighted_message(x_j, edge_weight)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(K={self.K}, alpha={self.alpha})"
