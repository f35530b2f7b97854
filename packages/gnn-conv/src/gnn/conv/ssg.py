r"""The simple spectral graph convolution (Zhu & Koniusz, 2021), :class:`SSGConv`."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from ._utils import check_in_channels
from .sg import SGConv


class SSGConv(SGConv):
    r"""Simple spectral graph convolution (Markov diffusion kernel).

    .. math::
        X' = \Big(\alpha X + \frac{1 - \alpha}{K} \sum_{k=1}^{K} \hat{T}^k X\Big) \Theta + b,
        \quad \hat{T} = \hat{D}^{-1/2} \hat{A} \hat{D}^{-1/2}

    Args:
        in_channels: input size (``-1``: lazy).
        out_channels: output size.
        alpha: teleport probability :math:`\alpha \in [0, 1]`.
        K: number of hops.
        cached: cache the diffused features for the ``(x, edge_index,
            edge_weight)`` they were computed from; :meth:`reset_parameters`
            clears it.
        add_self_loops: add self loops before normalizing.
        bias: learn a bias.
        **kwargs: :class:`~gnn.core.MessagePassing` arguments.

    Shapes:
        ``x`` ``[N, in_channels]`` -> ``[N, out_channels]``.

    Example:
        >>> conv = SSGConv(16, 32, alpha=0.1, K=2)
        >>> conv(torch.randn(4, 16), torch.tensor([[0, 1], [1, 2]])).shape
        torch.Size([4, 32])
    """

    #: PyG's attribute holding the cached diffused features
    _cache_attr = "_cached_h"

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        alpha: float,
        K: int = 1,
        cached: bool = False,
        add_self_loops: bool = True,
        bias: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(in_channels, out_channels, K, cached, add_self_loops, bias, **kwargs)
        self.alpha = alpha

    def forward(self, x: Tensor, edge_index: Any, edge_weight: Tensor | None = None) -> Tensor:
        """Apply the layer (see the class docstring for shapes)."""
        check_in_channels(x, self.in_channels)
        return self.lin(self._smooth(x, edge_index, edge_weight, self.alpha))

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.in_channels}, {self.out_channels}, K={self.K}, alpha={self.alpha})"
        )
