r"""DynamicEdgeConv: EdgeConv on a kNN graph built from the features (DGCNN, Wang et al., 2019)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from gnn.core import MessagePassing
from gnn.core import validation as v
from gnn.core.nn.inits import reset

from ._point import batch_pair, knn_graph, linear_parts, messages_unobserved

#: input width of ``nn``'s first linear layer from which it is applied per node
_PER_NODE_MIN_IN = 16


class DynamicEdgeConv(MessagePassing):
    r"""The dynamic edge convolution from "Dynamic Graph CNN for Learning on Point Clouds":
    :class:`~gnn.conv.EdgeConv` on the graph that links every target to its ``k`` nearest
    sources in feature space (itself included when it is a source), within its example of
    ``batch``.

    .. math::
        \mathbf{x}^{\prime}_i = \bigoplus_{j \in \mathcal{N}_k(i)}
        h_{\mathbf{\Theta}}(\mathbf{x}_i \, \Vert \, \mathbf{x}_j - \mathbf{x}_i)

    The neighbours are found with :func:`gnn.core.ops.knn` (a compiled kernel when gnn-kernels
    is installed; no pyg-lib or torch-cluster needed): squared euclidean distances, ties broken
    by the smaller index. Unless hooks or explain mode watch, a first linear layer of ``nn`` with
    at least 16 inputs is applied per node (:math:`W [\mathbf{x}_i, \mathbf{x}_j - \mathbf{x}_i]
    + b = \mathbf{a}_i + \mathbf{b}_j`) and only the rest of ``nn`` per edge.

    Args:
        nn: :math:`h`, maps ``[E, 2 * F_in]`` to ``[E, F_out]``.
        k: neighbours per point.
        aggr: the aggregation :math:`\bigoplus` (``"max"``, ``"mean"``, ``"add"`` ...).
        num_workers: accepted for PyG compatibility (the kernel uses torch's intra-op threads).
        **kwargs: :class:`~gnn.core.MessagePassing` arguments.

    Shapes:
        ``x`` ``[N, F_in]`` or ``(x_src, x_dst)``; ``batch`` ``[N]``, ``(batch_src, batch_dst)`` or
        ``None``, sorted -> ``[N_dst, F_out]``.

    Example:
        >>> nn = torch.nn.Sequential(torch.nn.Linear(2 * 16, 32), torch.nn.ReLU())
        >>> conv = DynamicEdgeConv(nn, k=6)
        >>> x, batch = torch.randn(20, 16), torch.tensor([0] * 10 + [1] * 10)
        >>> conv(x, batch).shape
        torch.Size([20, 32])
    """

    def __init__(
        self, nn: Callable[..., Tensor], k: int, aggr: str = "max", num_workers: int = 1, **kwargs: Any
    ) -> None:
        super().__init__(aggr=aggr, flow="source_to_target", **kwargs)
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise ValueError(f"'k' must be a positive int, got {k!r}")
        self.nn = nn
        self.k = k
        self.num_workers = num_workers
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Reset ``nn``."""
        super().reset_parameters()
        reset(self.nn)

    def forward(
        self, x: Tensor | tuple[Tensor, Tensor], batch: Tensor | tuple[Tensor, Tensor] | None = None
    ) -> Tensor:
        """Build the kNN graph of ``x`` and apply EdgeConv on it."""
        if isinstance(x, Tensor):
            x = (x, x)
        if not isinstance(x, (tuple, list)) or len(x) != 2:
            raise TypeError(f"'x' must be a tensor or a pair (x_src, x_dst), got {v.describe(x)}")
        for k, part in enumerate(x):
            v.check_tensor(f"x[{k}]", part)
            if part.dim() != 2:
                raise ValueError(
                    f"Static graphs not supported in '{type(self).__name__}': 'x' must be [N, F], "
                    f"got {v.describe(part)}"
                )
        if x[0].size(1) != x[1].size(1):
            raise ValueError(
                f"'x' source and target features must have the same size, got {x[0].size(1)} and {x[1].size(1)}"
            )
        b = batch_pair(batch, x[0].size(0), x[1].size(0))
        edge_index = knn_graph(x[0], x[1], self.k, b)
        out = self._per_node_first_layer(x[0], x[1], edge_index)
        if out is None:
            out = self.propagate(edge_index, x=(x[0], x[1]))
        return out

    def message(self, x_i: Tensor, x_j: Tensor) -> Tensor:
        return self.nn(torch.cat([x_i, x_j - x_i], dim=-1))

    def _per_node_first_layer(self, x_src: Tensor, x_dst: Tensor, edge_index: Tensor) -> Tensor | None:
        r"""EdgeConv with ``nn``'s first linear layer applied per node, when nothing observes the
        messages and that layer is wide enough to pay for it: :math:`W [\mathbf{x}_i, \mathbf{x}_j -
        \mathbf{x}_i] + b = \mathbf{a}_i + \mathbf{b}_j` with :math:`\mathbf{a} = (W_1 - W_2)
        \mathbf{x} + b`, :math:`\mathbf{b} = W_2 \mathbf{x}`; the rest of ``nn`` runs per edge.
        ``None``: use ``propagate``."""
        nn = self.nn
        first, rest = (nn[0], list(nn)[1:]) if type(nn) is torch.nn.Sequential and len(nn) else (nn, [])
        parts = linear_parts(first)
        if parts is None or not messages_unobserved(self, DynamicEdgeConv):
            return None
        weight, bias = parts
        f_in = x_src.size(1)
        # an [E, 2F] x [2F, H] product against two [E, H] gathers: worth it from about 2F = 16
        if weight.size(1) != 2 * f_in or 2 * f_in < _PER_NODE_MIN_IN or x_src.dtype != weight.dtype:
            return None
        w_root, w_diff = weight[:, :f_in], weight[:, f_in:]
        a = torch.nn.functional.linear(x_dst, w_root - w_diff, bias)
        b = torch.nn.functional.linear(x_src, w_diff)
        src, dst = edge_index[0], edge_index[1]
        h = a.index_select(0, dst) + b.index_select(0, src)
        for module in rest:
            h = module(h)
        return self.aggregate(h, dst, dim_size=x_dst.size(0))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(nn={self.nn}, k={self.k})"
