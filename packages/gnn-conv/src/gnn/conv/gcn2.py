r"""GCN with initial residual and identity mapping (Chen et al., 2020), :class:`GCN2Conv`."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor
from torch.nn import Parameter

from gnn.core.message_passing import MessagePassing
from gnn.core.nn.inits import glorot
from gnn.core.utils.sparse import is_sparse

from ._utils import (
    cached_gcn_norm,
    check_flat_nodes,
    check_in_channels,
    clear_layer_cache,
    num_nodes,
    weighted_message,
)


class GCN2Conv(MessagePassing):
    r"""GCNII layer.

    .. math::
        X' = \big((1 - \alpha) \hat{P} X + \alpha X^{(0)}\big)
            \big((1 - \beta) I + \beta \Theta\big)

    with :math:`\hat{P} = \hat{D}^{-1/2} \hat{A} \hat{D}^{-1/2}` and
    :math:`\beta = \log(\theta / \ell + 1)` (1 when ``theta`` or ``layer``
    is ``None``). Without ``shared_weights`` the two terms get separate
    weights: :math:`(1 - \alpha) \hat{P} X ((1 - \beta) I + \beta \Theta_1)
    + \alpha X^{(0)} ((1 - \beta) I + \beta \Theta_2)`.

    Args:
        channels: feature size (input and output).
        alpha: strength of the initial residual :math:`\alpha`.
        theta: :math:`\theta` of the identity mapping.
        layer: layer index :math:`\ell`.
        shared_weights: one weight for both terms.
        cached: cache the normalized graph for the ``edge_index`` (and
            ``edge_weight``) it was computed from.
        add_self_loops: add self loops before normalizing.
        normalize: apply the symmetric normalization.
        **kwargs: :class:`~gnn.core.MessagePassing` arguments.

    Shapes:
        ``x`` ``[N, channels]``, ``x_0`` ``[N_0 >= N, channels]`` (its first
        ``N`` rows are used), ``edge_index`` ``[2, E]`` or sparse ``adj_t``,
        ``edge_weight`` ``[E]`` -> ``[N, channels]``.

    Example:
        >>> conv = GCN2Conv(16, alpha=0.1, theta=0.5, layer=1)
        >>> x = torch.randn(3, 16)
        >>> conv(x, x, torch.tensor([[0, 1], [1, 2]])).shape
        torch.Size([3, 16])
    """

    fused_message = "edge_weight * x_j"

    def __init__(
        self,
        channels: int,
        alpha: float,
        theta: float | None = None,
        layer: int | None = None,
        shared_weights: bool = True,
        cached: bool = False,
        add_self_loops: bool = True,
        normalize: bool = True,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("aggr", "add")
        super().__init__(**kwargs)
        self.channels = channels
        self.alpha = alpha
        self.beta = 1.0 if theta is None or layer is None else math.log(theta / layer + 1)
        self.cached = cached
        self.normalize = normalize
        self.add_self_loops = add_self_loops
        self._cached_edge_index: tuple[Tensor, Tensor | None] | None = None
        self._cached_adj_t: Any = None
        self.weight1 = Parameter(torch.empty(channels, channels))
        if shared_weights:
            self.register_parameter("weight2", None)
        else:
            self.weight2 = Parameter(torch.empty(channels, channels))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Glorot weights; clears the cache."""
        super().reset_parameters()
        glorot(self.weight1)
        glorot(self.weight2)
        clear_layer_cache(self, "_cached_edge_index", "_cached_adj_t")

    def forward(self, x: Tensor, x_0: Tensor, edge_index: Any, edge_weight: Tensor | None = None) -> Tensor:
        """Apply the layer (see the class docstring for shapes)."""
        check_in_channels(x, self.channels)
        check_flat_nodes(self, x)
        check_in_channels(x_0, self.channels, name="x_0")
        if x_0.size(0) < x.size(0):
            raise ValueError(
                f"'x_0' has {x_0.size(0)} rows but 'x' has {x.size(0)}; 'x_0' needs at least as many"
            )
        if self.normalize:
            n = num_nodes(self, x)
            edge_index, edge_weight = cached_gcn_norm(
                self, edge_index, edge_weight, n, False, self.add_self_loops, self.flow, x.dtype
            )
        elif is_sparse(edge_index):
            edge_weight = None
        x = self.propagate(edge_index, x=x, edge_weight=edge_weight) * (1.0 - self.alpha)
        x_0 = self.alpha * x_0[: x.size(0)]
        b = self.beta
        if self.weight2 is None:
            out = x + x_0
            return torch.addmm(out, out, self.weight1, beta=1.0 - b, alpha=b)
        return torch.addmm(x, x, self.weight1, beta=1.0 - b, alpha=b) + torch.addmm(
            x_0, x_0, self.weight2, beta=1.0 - b, alpha=b
        )

    def message(self, x_j: Tensor, edge_weight: Tensor | None) -> Tensor:
        """``edge_weight * x_j`` (or ``x_j`` without weights)."""
        return weighted_message(x_j, edge_weight)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.channels}, alpha={self.alpha}, beta={self.beta})"
