r"""FAConv: the frequency adaptive graph convolution (Bo et al., 2021)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from gnn.core import Linear, MessagePassing
from gnn.core.graph import Graph, read_graph
from gnn.core.utils import gcn_norm

from . import _attention as att
from ._utils import check_edge_attr, check_flat_nodes, check_in_channels, clear_layer_cache, layer_cache


class FAConv(MessagePassing):
    r"""The Frequency Adaptive Graph Convolution operator from "Beyond
    Low-Frequency Information in Graph Convolutional Networks".

    .. math::
        \mathbf{x}^{\prime}_i = \epsilon \cdot \mathbf{x}^{(0)}_i +
        \sum_{j \in \mathcal{N}(i)} \frac{\alpha_{i,j}}{\sqrt{d_i d_j}} \mathbf{x}_{j},
        \qquad
        \alpha_{i,j} = \tanh\left(\mathbf{a}_l^{\top}\mathbf{x}_j + \mathbf{a}_r^{\top}\mathbf{x}_i\right)

    The coefficients may be negative (high-frequency signals pass). With
    ``normalize`` the graph gets GCN's symmetric normalization (and self
    loops with ``add_self_loops``); otherwise ``edge_weight`` must be given
    and is used as is.

    Args:
        channels: feature size (input = output).
        eps: weight of the initial features ``x_0``.
        dropout: dropout probability of the coefficients :math:`\alpha`.
        cached: cache the normalized graph (static graphs, transductive use).
        add_self_loops: add self loops during normalization.
        normalize: apply the symmetric normalization.
        **kwargs: :class:`~gnn.core.MessagePassing` arguments.

    Shapes:
        ``x`` and ``x_0`` ``[N, channels]``; output ``[N, channels]``; with
        ``return_attention_weights=True`` also ``(edge_index, alpha [E'])``
        (the sparse form for sparse inputs).

    Example:
        >>> conv = FAConv(16)
        >>> x = torch.randn(10, 16)
        >>> conv(x, x, torch.randint(0, 10, (2, 40))).shape
        torch.Size([10, 16])
    """

    fused_message = "edge_weight * x_j"

    def __init__(
        self,
        channels: int,
        eps: float = 0.1,
        dropout: float = 0.0,
        cached: bool = False,
        add_self_loops: bool = True,
        normalize: bool = True,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("aggr", "add")
        super().__init__(**kwargs)
        self.channels = channels
        self.eps = eps
        self.dropout = dropout
        self.cached = cached
        self.add_self_loops = add_self_loops
        self.normalize = normalize
        self._cached_edge_index: tuple[Tensor, Tensor] | None = None
        self._cached_adj_t: tuple[Tensor, Tensor] | None = None
        self.att_l = Linear(channels, 1, bias=False)
        self.att_r = Linear(channels, 1, bias=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Reset the attention vectors and forget the cached graph."""
        super().reset_parameters()
        self.att_l.reset_parameters()
        self.att_r.reset_parameters()
        clear_layer_cache(self, "_cached_edge_index", "_cached_adj_t")

    def _normalized(
        self, graph: Graph, edge_weight: Tensor | None, num_nodes: int, dtype: torch.dtype
    ) -> tuple[Tensor, Tensor]:
        """``(edge_index, edge_weight)`` normalized as configured (cached with ``cached``)."""
        ei = graph.edge_index
        if graph.is_sparse:
            edge_weight = graph.value
        edge_weight = check_edge_attr(edge_weight, ei.size(1), "edge_weight")
        exact = self.exact_edges

        def compute() -> tuple[Tensor, Tensor]:
            if self.normalize:
                if edge_weight is not None and edge_weight.dim() != 1:
                    raise ValueError(f"'edge_weight' must be 1-D, got shape {list(edge_weight.shape)}")
                ei_norm, weight = gcn_norm(
                    ei,
                    edge_weight,
                    num_nodes,
                    False,
                    self.add_self_loops,
                    self.flow,
                    dtype=dtype,
                    exact=exact,
                )
                return ei_norm, weight
            if edge_weight is None:
                raise ValueError("'edge_weight' must be given when normalize=False")
            return ei, edge_weight.view(-1)

        if exact:
            return compute()
        attr = "_cached_adj_t" if graph.is_sparse else "_cached_edge_index"
        return layer_cache(self, attr, (graph.edge_index, edge_weight), compute)

    def _replaced_loops(self, graph: Graph, num_nodes: int) -> Tensor | None:
        """``keep`` mask of the normalized edges without the given self loops (which gcn_norm keeps
        with weight 0 unless ``exact``), or ``None`` when nothing was kept."""
        if not (self.normalize and self.add_self_loops) or self.exact_edges:
            return None
        ei = graph.edge_index
        return torch.cat([ei[0] != ei[1], ei.new_ones(num_nodes, dtype=torch.bool)])

    def forward(
        self,
        x: Tensor,
        x_0: Tensor,
        edge_index: Any,
        edge_weight: Tensor | None = None,
        return_attention_weights: bool | None = None,
    ) -> Tensor | tuple[Tensor, Any]:
        """Propagate ``x`` with signed, normalized attention and add ``eps * x_0``.

        Returns ``out``, or ``(out, attention)`` when ``return_attention_weights``
        is true.
        """
        check_in_channels(x, self.channels)
        check_flat_nodes(self, x)
        check_in_channels(x_0, self.channels, "x_0")
        if x_0.shape != x.shape:
            raise ValueError(f"'x_0' must have the shape of 'x' {list(x.shape)}, got {list(x_0.shape)}")
        graph = read_graph(edge_index, None, self.flow)
        n = x.size(0)
        graph.set_nodes(n, n)
        ei, weight = self._normalized(graph, edge_weight, n, x.dtype)

        alpha = self.edge_updater(ei, alpha=(self.att_l(x), self.att_r(x)))
        coef = F.dropout(alpha, p=self.dropout, training=self.training) * weight
        out = self.propagate(ei, x=x, edge_weight=coef)
        out = out + self.eps * x_0

        if return_attention_weights:
            keep = self._replaced_loops(graph, n)
            if keep is not None:
                ei, alpha = ei[:, keep], alpha[keep]
            return out, att.attention_result(graph, ei, alpha, (n, n))
        return out

    def edge_update(self, alpha_j: Tensor, alpha_i: Tensor) -> Tensor:
        """``[E]`` signed coefficients ``tanh(a_l^T x_j + a_r^T x_i)``."""
        return torch.tanh(alpha_j + alpha_i).view(-1)

    def message(self, x_j: Tensor, edge_weight: Tensor) -> Tensor:
        """``edge_weight_ij * x_j`` (the weight holds attention times normalization)."""
        return edge_weight.view(-1, 1) * x_j

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.channels}, eps={self.eps})"
