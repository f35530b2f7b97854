r"""The ARMA graph convolution (Bianchi et al., 2021), :class:`ARMAConv`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import Parameter, ReLU
from torch.nn.parameter import UninitializedParameter, is_lazy

from gnn.core.message_passing import MessagePassing
from gnn.core.nn.inits import glorot, zeros
from gnn.core.utils.normalization import gcn_norm

from ._utils import check_in_channels, num_nodes, weighted_message


class ARMAConv(MessagePassing):
    r"""ARMA filter: the mean of ``num_stacks`` parallel stacks of ``num_layers`` GCS layers.

    .. math::
        X' = \frac{1}{K} \sum_{k=1}^{K} X_k^{(T)}, \qquad
        X_k^{(t+1)} = \sigma\big(\hat{L} X_k^{(t)} W_k^{(t)}
            + \mathrm{Dropout}(X) V_k^{(t)} + b_k^{(t)}\big)

    with :math:`\hat{L} = D^{-1/2} A D^{-1/2}` (no self loops),
    :math:`X_k^{(0)} = X` and :math:`W_k^{(0)}` = ``init_weight``. The ``K``
    stacks are propagated together as one ``[N, K * F_out]`` fused
    ``ops.spmm`` per layer.

    Args:
        in_channels: input size (``-1``: lazy).
        out_channels: output size.
        num_stacks: number of parallel stacks :math:`K`.
        num_layers: layers per stack :math:`T`.
        shared_weights: share the weights of layers ``t >= 1`` in a stack.
        act: activation :math:`\sigma` (``None``: identity).
        dropout: dropout on the skip connection (training only).
        bias: learn biases.
        **kwargs: :class:`~gnn.core.MessagePassing` arguments.

    Shapes:
        ``x`` ``[N, in_channels]``, ``edge_index`` ``[2, E]`` or sparse
        ``adj_t``, ``edge_weight`` ``[E]`` -> ``[N, out_channels]``.
        Parameters: ``init_weight [K, F_in, F_out]``, ``weight [T', K, F_out, F_out]``,
        ``root_weight [T'', K, F_in, F_out]``, ``bias [T'', K, 1, F_out]``.

    Example:
        >>> conv = ARMAConv(16, 32, num_stacks=2, num_layers=2)
        >>> conv(torch.randn(4, 16), torch.tensor([[0, 1], [1, 2]])).shape
        torch.Size([4, 32])
    """

    fused_message = "edge_weight * x_j"

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        num_stacks: int = 1,
        num_layers: int = 1,
        shared_weights: bool = False,
        act: Callable | None = ReLU(),  # noqa: B008 - PyG's default
        dropout: float = 0.0,
        bias: bool = True,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("aggr", "add")
        super().__init__(**kwargs)
        for name, value in (("num_stacks", num_stacks), ("num_layers", num_layers)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"'{name}' must be a positive int, got {value!r}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.num_stacks = num_stacks
        self.num_layers = num_layers
        self.act = act
        self.shared_weights = shared_weights
        self.dropout = dropout
        K, T, F_in, F_out = num_stacks, num_layers, in_channels, out_channels
        T_root = 1 if shared_weights else T
        T_hidden = 1 if shared_weights else max(1, T - 1)
        self.weight = Parameter(torch.empty(T_hidden, K, F_out, F_out))
        if in_channels > 0:
            self.init_weight = Parameter(torch.empty(K, F_in, F_out))
            self.root_weight = Parameter(torch.empty(T_root, K, F_in, F_out))
        else:
            self.init_weight = UninitializedParameter()
            self.root_weight = UninitializedParameter()
        if bias:
            self.bias = Parameter(torch.empty(T_root, K, 1, F_out))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Glorot weights (the lazy ones once materialized), zero biases."""
        super().reset_parameters()
        glorot(self.weight)
        glorot(self.init_weight)
        glorot(self.root_weight)
        zeros(self.bias)

    def _materialize(self, in_channels: int) -> None:
        K, F_out = self.num_stacks, self.out_channels
        T_root = 1 if self.shared_weights else self.num_layers
        with torch.no_grad():
            self.init_weight.materialize((K, in_channels, F_out))
            self.root_weight.materialize((T_root, K, in_channels, F_out))
        glorot(self.init_weight)
        glorot(self.root_weight)

    def _hop(self, edge_index: Any, h: Tensor, edge_weight: Tensor | None) -> Tensor:
        """Propagate all stacks ``[*, K, N, F]`` at once as ``[*, N, K * F]`` (``*``: a static
        graph's batch dimension, or nothing)."""
        lead, (K, N, F_out) = h.shape[:-3], h.shape[-3:]
        flat = h.transpose(-3, -2).reshape(*lead, N, K * F_out)
        out = self.propagate(edge_index, x=flat, edge_weight=edge_weight)
        return out.view(*lead, -1, K, F_out).transpose(-3, -2)

    def forward(self, x: Tensor, edge_index: Any, edge_weight: Tensor | None = None) -> Tensor:
        """Apply the filter (see the class docstring for shapes)."""
        check_in_channels(x, self.in_channels)
        n = num_nodes(self, x)  # checked before a lazy weight is shaped after x
        if is_lazy(self.init_weight):
            self._materialize(x.size(-1))
        edge_index, edge_weight = gcn_norm(edge_index, edge_weight, n, False, False, self.flow, x.dtype)
        x = x.unsqueeze(-3)  # [1, N, F_in]
        out = x
        for t in range(self.num_layers):
            if t == 0:
                out = out @ self.init_weight
            else:
                out = out @ self.weight[0 if self.shared_weights else t - 1]
            out = self._hop(edge_index, out, edge_weight)
            root = F.dropout(x, p=self.dropout, training=self.training)
            out = out + root @ self.root_weight[0 if self.shared_weights else t]
            if self.bias is not None:
                out = out + self.bias[0 if self.shared_weights else t]
            if self.act is not None:
                out = self.act(out)
        return out.mean(dim=-3)

    def message(self, x_j: Tensor, edge_weight: Tensor | None) -> Tensor:
        """``edge_weight * x_j`` (or ``x_j`` without weights)."""
        return weighted_message(x_j, edge_weight)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.in_channels}, {self.out_channels}, "
            f"num_stacks={self.num_stacks}, num_layers={self.num_layers})"
        )
