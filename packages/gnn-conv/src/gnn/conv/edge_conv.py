"""EdgeConv: the edge convolution of Dynamic Graph CNN (Wang et al., 2019)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from gnn.core import MessagePassing
from gnn.core import validation as v
from gnn.core.nn.inits import reset


class EdgeConv(MessagePassing):
    r"""The edge convolutional operator.

    .. math::
        \mathbf{x}^{\prime}_i = \bigoplus_{j \in \mathcal{N}(i)}
        h_{\mathbf{\Theta}}(\mathbf{x}_i \, \Vert \, \mathbf{x}_j - \mathbf{x}_i)

    where :math:`h_{\mathbf{\Theta}}` is the neural network ``nn`` and
    :math:`\bigoplus` the aggregation (``max`` by default).

    Args:
        nn: maps ``[E, 2 * F]`` edge inputs to ``[E, F_out]``
            (e.g. a :class:`torch.nn.Sequential`).
        aggr: aggregation: ``"add"``, ``"mean"``, ``"max"`` or any other name.
        **kwargs: passed to :class:`~gnn.core.MessagePassing`.

    Shapes:
        ``x`` ``[N, F]`` or ``([N_src, F], [N_dst, F])``, ``edge_index``
        ``[2, E]`` or sparse ``adj_t`` -> ``[N_dst, F_out]``.

    Example:
        >>> conv = EdgeConv(torch.nn.Linear(2 * 16, 32))
        >>> conv(torch.randn(10, 16), torch.randint(0, 10, (2, 30))).shape
        torch.Size([10, 32])
    """

    def __init__(self, nn: Callable[..., Tensor], aggr: str = "max", **kwargs: Any) -> None:
        super().__init__(aggr=aggr, **kwargs)
        self.nn = nn
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        reset(self.nn)

    def forward(self, x: Tensor | tuple[Tensor, Tensor], edge_index: Any) -> Tensor:
        """Aggregate ``nn([x_i, x_j - x_i])`` over the incoming edges of each node."""
        if isinstance(x, Tensor):
            x = (x, x)
        if not isinstance(x, (tuple, list)) or len(x) != 2:
            raise TypeError(f"'x' must be a tensor or a pair (x_src, x_dst), got {v.describe(x)}")
        for k, part in enumerate(x):
            v.check_tensor(f"x[{k}]", part)
        if x[0].size(-1) != x[1].size(-1):
            raise ValueError(
                f"'x' source and target features must have the same size, got {x[0].size(-1)} "
                f"and {x[1].size(-1)}"
            )
        return self.propagate(edge_index, x=x)

    def message(self, x_i: Tensor, x_j: Tensor) -> Tensor:
        return self.nn(torch.cat([x_i, x_j - x_i], dim=-1))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(nn={self.nn})"
