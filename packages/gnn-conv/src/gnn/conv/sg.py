r"""The simplified graph convolution (Wu et al., 2019), :class:`SGConv`."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from gnn.core.message_passing import MessagePassing
from gnn.core.nn.linear import Linear
from gnn.core.utils.normalization import gcn_norm

from ._utils import check_in_channels, clear_layer_cache, layer_cache, num_nodes, weighted_message


class SGConv(MessagePassing):
    r"""Simplified graph convolution: :math:`X' = (\hat{D}^{-1/2} \hat{A} \hat{D}^{-1/2})^K X \Theta + b`.

    :math:`\hat{A} = A + I` (without ``add_self_loops``: :math:`A`). The
    ``K`` hops are fused ``ops.spmm`` calls.

    Args:
        in_channels: input size (``-1``: lazy).
        out_channels: output size.
        K: number of hops.
        cached: cache the propagated features
            :math:`(\hat{D}^{-1/2} \hat{A} \hat{D}^{-1/2})^K X` for the
            ``(x, edge_index, edge_weight)`` they were computed from (for
            transductive learning); :meth:`reset_parameters` clears it.
        add_self_loops: add self loops before normalizing.
        bias: learn a bias.
        **kwargs: :class:`~gnn.core.MessagePassing` arguments.

    Shapes:
        ``x`` ``[N, in_channels]``, ``edge_index`` ``[2, E]`` or sparse
        ``adj_t``, ``edge_weight`` ``[E]`` -> ``[N, out_channels]``.

    Example:
        >>> conv = SGConv(16, 32, K=2)
        >>> conv(torch.randn(4, 16), torch.tensor([[0, 1], [1, 2]])).shape
        torch.Size([4, 32])
    """

    fused_message = "edge_weight * x_j"

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        K: int = 1,
        cached: bool = False,
        add_self_loops: bool = True,
        bias: bool = True,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("aggr", "add")
        super().__init__(**kwargs)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.K = K
        self.cached = cached
        self.add_self_loops = add_self_loops
        setattr(self, self._cache_attr, None)
        self.lin = Linear(in_channels, out_channels, bias=bias)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialize the linear map and clear the cache."""
        super().reset_parameters()
        self.lin.reset_parameters()
        clear_layer_cache(self, self._cache_attr)

    #: PyG's attribute holding the cached diffused features
    _cache_attr = "_cached_x"

    def _smooth(self, x: Tensor, edge_index: Any, edge_weight: Tensor | None, alpha: float | None) -> Tensor:
        """``K`` normalized hops of ``x`` (cached); with ``alpha``, SSGConv's weighted sum of hops."""

        def compute() -> Tensor:
            ei, weight = gcn_norm(
                edge_index,
                edge_weight,
                num_nodes(self, x),
                False,
                self.add_self_loops,
                self.flow,
                x.dtype,
                exact=self.exact_edges,
            )
            h, out = (x if alpha is None else alpha * x), x
            for _ in range(self.K):
                out = self.propagate(ei, x=out, edge_weight=weight)
                if alpha is not None:
                    h = h + (1.0 - alpha) / self.K * out
            return out if alpha is None else h

        if self.exact_edges or not self.cached:
            return compute()
        computed: list[bool] = []

        def compute_once() -> Tensor:
            computed.append(True)
            return compute()

        out = layer_cache(self, self._cache_attr, (x, edge_index, edge_weight), compute_once)
        return out if computed else out.detach()  # a reused result carries no graph (as in PyG)

    def forward(self, x: Tensor, edge_index: Any, edge_weight: Tensor | None = None) -> Tensor:
        """Apply the layer (see the class docstring for shapes)."""
        check_in_channels(x, self.in_channels)
        return self.lin(self._smooth(x, edge_index, edge_weight, None))

    def message(self, x_j: Tensor, edge_weight: Tensor | None) -> Tensor:
        """``edge_weight * x_j`` (or ``x_j`` without weights)."""
        return weighted_message(x_j, edge_weight)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels}, K={self.K})"
