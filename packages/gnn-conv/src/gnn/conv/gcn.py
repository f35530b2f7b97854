r"""The graph convolution of Kipf & Welling (2017), :class:`GCNConv`."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.nn import Parameter

from gnn.core.message_passing import MessagePassing
from gnn.core.nn.inits import zeros
from gnn.core.nn.linear import Linear

from ._utils import cached_gcn_norm, check_in_channels, clear_layer_cache, num_nodes


class GCNConv(MessagePassing):
    r"""Graph convolution: :math:`X' = \hat{D}^{-1/2} \hat{A} \hat{D}^{-1/2} X \Theta + b`.

    :math:`\hat{A} = A + \lambda I` (:math:`\lambda = 2` when ``improved``)
    with ``A[i, j]`` the summed weight of the edges ``j -> i``, and
    :math:`\hat{D}_{ii} = \sum_j \hat{A}_{ij}`. Per node:

    .. math::
        x_i' = \Theta^\top \sum_{j \in \mathcal{N}(i) \cup \{i\}}
            \frac{e_{j,i}}{\sqrt{\hat{d}_j \hat{d}_i}} x_j + b

    The propagation takes the fused ``ops.spmm`` path (no ``[E, F]``
    message tensor), and the self-loop handling of :func:`gcn_norm` has no
    data-dependent shapes, so the layer compiles without graph breaks.

    ``improved=True`` always gives the added self loops weight 2, as the
    formula says; PyG 2.8 does so only when ``edge_weight`` is given (without
    weights its loops get 1), so outputs differ from PyG's in that one case.

    Args:
        in_channels: input feature size (``-1``: lazy).
        out_channels: output feature size.
        improved: self loops get weight 2.
        cached: cache the normalized graph for the ``edge_index`` (and
            ``edge_weight``) it was computed from; a different graph
            recomputes it, :meth:`reset_parameters` clears it.
        add_self_loops: add self loops (default: ``normalize``).
        normalize: apply the symmetric normalization.
        bias: learn an additive bias.
        **kwargs: :class:`~gnn.core.MessagePassing` arguments.

    Shapes:
        ``x`` ``[N, in_channels]``, ``edge_index`` ``[2, E]`` or sparse
        ``adj_t`` ``[N, N]``, ``edge_weight`` ``[E]`` -> ``[N, out_channels]``.

    Example:
        >>> conv = GCNConv(16, 32)
        >>> conv(torch.randn(4, 16), torch.tensor([[0, 1, 2], [1, 2, 3]])).shape
        torch.Size([4, 32])
    """

    fused_message = "edge_weight * x_j"

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        improved: bool = False,
        cached: bool = False,
        add_self_loops: bool | None = None,
        normalize: bool = True,
        bias: bool = True,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("aggr", "add")
        super().__init__(**kwargs)
        if add_self_loops is None:
            add_self_loops = normalize
        if add_self_loops and not normalize:
            raise ValueError(
                f"'{type(self).__name__}' does not support adding self-loops to the graph when no "
                "on-the-fly normalization is applied (add_self_loops=True needs normalize=True)"
            )
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.improved = improved
        self.cached = cached
        self.add_self_loops = add_self_loops
        self.normalize = normalize
        self._cached_edge_index: tuple[Tensor, Tensor | None] | None = None
        self._cached_adj_t: Any = None
        self.lin = Linear(in_channels, out_channels, bias=False, weight_initializer="glorot")
        if bias:
            self.bias = Parameter(torch.empty(out_channels))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialize the weights (glorot), zero the bias and clear the cache."""
        super().reset_parameters()
        self.lin.reset_parameters()
        zeros(self.bias)
        clear_layer_cache(self, "_cached_edge_index", "_cached_adj_t")

    def forward(self, x: Tensor, edge_index: Any, edge_weight: Tensor | None = None) -> Tensor:
        """Apply the convolution (see the class docstring for shapes)."""
        if isinstance(x, (tuple, list)):
            raise ValueError(
                f"'{type(self).__name__}' received a tuple of node features, but it does not "
                "support bipartite message passing; pass a single tensor 'x'"
            )
        check_in_channels(x, self.in_channels)
        if self.normalize:
            edge_index, edge_weight = cached_gcn_norm(
                self,
                edge_index,
                edge_weight,
                num_nodes(self, x),
                self.improved,
                self.add_self_loops,
                self.flow,
                x.dtype,
            )
        x = self.lin(x)
        out = self.propagate(edge_index, x=x, edge_weight=edge_weight)
        if self.bias is not None:
            out = out + self.bias
        return out

    def message(self, x_j: Tensor, edge_weight: Tensor | None) -> Tensor:
        """``edge_weight * x_j`` (or ``x_j`` without weights)."""
        return x_j if edge_weight is None else edge_weight.view(-1, 1) * x_j
