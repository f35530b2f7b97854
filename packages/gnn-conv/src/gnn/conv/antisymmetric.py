"""AntiSymmetricConv: the anti-symmetric deep graph network layer (Gravina et al., 2023)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor
from torch.nn import Parameter

from gnn.core import MessagePassing
from gnn.core import validation as v
from gnn.core.nn.mlp import resolve_activation

from ._utils import check_in_channels


class AntiSymmetricConv(torch.nn.Module):
    r"""The anti-symmetric deep graph network layer.

    Repeats ``num_iters`` forward-Euler steps of a stable ODE:

    .. math::
        \mathbf{x}_i \leftarrow \mathbf{x}_i + \epsilon \, \sigma\left(
        (\mathbf{W} - \mathbf{W}^{\top} - \gamma \mathbf{I}) \mathbf{x}_i +
        \Phi(\mathbf{X}, \mathcal{N}_i) + \mathbf{b}\right)

    where :math:`\Phi` is the aggregation layer ``phi`` (by default
    ``GCNConv(in_channels, in_channels, bias=False)``) and :math:`\sigma` the
    activation ``act``.

    Args:
        in_channels: node feature size (input and output).
        phi: the neighbourhood aggregation; called as ``phi(x, edge_index, *args, **kwargs)``.
        num_iters: number of Euler steps (weights are shared across steps).
        epsilon: step size :math:`\epsilon`.
        gamma: diffusion strength :math:`\gamma`.
        act: activation (name, callable or ``None``).
        act_kwargs: arguments of a named activation.
        bias: learn the bias :math:`\mathbf{b}`.

    Shapes:
        ``x`` ``[N, in_channels]``, ``edge_index`` ``[2, E]`` or sparse
        ``adj_t`` -> ``[N, in_channels]``.

    Example:
        >>> conv = AntiSymmetricConv(16)
        >>> conv(torch.randn(10, 16), torch.randint(0, 10, (2, 30))).shape
        torch.Size([10, 16])
    """

    def __init__(
        self,
        in_channels: int,
        phi: MessagePassing | None = None,
        num_iters: int = 1,
        epsilon: float = 0.1,
        gamma: float = 0.1,
        act: str | Callable[..., Any] | None = "tanh",
        act_kwargs: dict[str, Any] | None = None,
        bias: bool = True,
    ) -> None:
        super().__init__()
        if not isinstance(in_channels, int) or in_channels <= 0:
            raise ValueError(f"'in_channels' must be a positive int, got {in_channels!r}")
        self.in_channels = in_channels
        self.num_iters = num_iters
        self.gamma = gamma
        self.epsilon = epsilon
        self.act = resolve_activation(act, act_kwargs)
        if phi is None:
            from .gcn import GCNConv

            phi = GCNConv(in_channels, in_channels, bias=False)
        self.W = Parameter(torch.empty(in_channels, in_channels))
        self.register_buffer("eye", torch.eye(in_channels))
        self.phi = phi
        if bias:
            self.bias: Parameter | None = Parameter(torch.empty(in_channels))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Kaiming-uniform ``W`` (as ``torch.nn.Linear``), zero bias, reset ``phi``."""
        torch.nn.init.kaiming_uniform_(self.W, a=math.sqrt(5))
        self.phi.reset_parameters()
        if self.bias is not None:
            torch.nn.init.zeros_(self.bias)

    def forward(self, x: Tensor, edge_index: Any, *args: Any, **kwargs: Any) -> Tensor:
        """Run ``num_iters`` Euler steps; extra arguments go to ``phi``."""
        if isinstance(x, (tuple, list)):
            raise TypeError(f"'x' must be a single tensor for AntiSymmetricConv, got {v.describe(x)}")
        check_in_channels(x, self.in_channels)
        weight = self.W - self.W.t() - self.gamma * self.eye
        for _ in range(self.num_iters):
            h = x @ weight.t() + self.phi(x, edge_index, *args, **kwargs)
            if self.bias is not None:
                h = h + self.bias
            if self.act is not None:
                h = self.act(h)
            x = x + self.epsilon * h
        return x

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.in_channels}, phi={self.phi}, num_iters={self.num_iters}, "
            f"epsilon={self.epsilon}, gamma={self.gamma})"
        )
