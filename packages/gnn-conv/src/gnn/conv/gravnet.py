r"""GravNetConv: the GravNet operator (Qasim et al., 2019)."""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import Tensor

from gnn.core import Linear, MessagePassing
from gnn.core import validation as v

from ._point import batch_pair, knn_graph, node_pair
from ._utils import check_in_channels


class GravNetConv(MessagePassing):
    r"""The GravNet operator from "Learning Representations of Irregular Particle-detector
    Geometry with Distance-weighted Graph Networks", on a graph built on the fly.

    Every point is projected into a learned space :math:`\mathbf{s} = \mathbf{W}_s\mathbf{x}
    + \mathbf{b}_s` of ``space_dimensions`` :math:`S` and to features :math:`\mathbf{h} =
    \mathbf{W}_h\mathbf{x} + \mathbf{b}_h` of ``propagate_dimensions``. Each target gathers its
    ``k`` nearest sources in that space (within its example of ``batch``), weighted by
    :math:`w_{j,i} = \exp(-10\,\|\mathbf{s}_j - \mathbf{s}_i\|^2)`:

    .. math::
        \mathbf{x}'_i = \mathbf{W}_1 \mathbf{x}_i + \mathbf{W}_2 \Big[
        \operatorname{mean}_{j \in \mathcal{N}_k(i)} w_{j,i}\mathbf{h}_j \,\Big\Vert\,
        \max_{j \in \mathcal{N}_k(i)} w_{j,i}\mathbf{h}_j \Big] + \mathbf{b}_2

    The neighbours are found with :func:`gnn.core.ops.knn` (a compiled kernel when gnn-kernels
    is installed; no pyg-lib or torch-cluster needed); gradients reach :math:`\mathbf{W}_s`
    through the weights :math:`w`.

    Args:
        in_channels: input size, or ``-1`` for lazy.
        out_channels: output size.
        space_dimensions: :math:`S`, dimension of the space the neighbours are searched in.
        propagate_dimensions: size of the propagated features :math:`\mathbf{h}`.
        k: neighbours per point.
        num_workers: deprecated (as in PyG): gives a warning and is ignored.
        **kwargs: :class:`~gnn.core.MessagePassing` arguments.

    Shapes:
        ``x`` ``[N, F_in]`` or ``(x_src, x_dst)``; ``batch`` ``[N]``, ``(batch_src, batch_dst)`` or
        ``None``, sorted -> ``[N_dst, out_channels]``.

    Example:
        >>> conv = GravNetConv(16, 32, space_dimensions=4, propagate_dimensions=8, k=5)
        >>> x, batch = torch.randn(20, 16), torch.tensor([0] * 10 + [1] * 10)
        >>> conv(x, batch).shape
        torch.Size([20, 32])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        space_dimensions: int,
        propagate_dimensions: int,
        k: int,
        num_workers: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(aggr=["mean", "max"], flow="source_to_target", **kwargs)
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise ValueError(f"'k' must be a positive int, got {k!r}")
        if num_workers is not None:
            warnings.warn(
                f"'num_workers' attribute in '{type(self).__name__}' is deprecated and will be "
                "removed in a future release",
                stacklevel=2,
            )
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.k = k
        self.lin_s = Linear(in_channels, space_dimensions)
        self.lin_h = Linear(in_channels, propagate_dimensions)
        self.lin_out1 = Linear(in_channels, out_channels, bias=False)
        self.lin_out2 = Linear(2 * propagate_dimensions, out_channels)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Reset the four linear maps."""
        super().reset_parameters()
        self.lin_s.reset_parameters()
        self.lin_h.reset_parameters()
        self.lin_out1.reset_parameters()
        self.lin_out2.reset_parameters()

    def forward(
        self, x: Tensor | tuple[Tensor, Tensor], batch: Tensor | tuple[Tensor, Tensor] | None = None
    ) -> Tensor:
        """Build the kNN graph in the learned space and propagate the weighted features."""
        bipartite = not isinstance(x, Tensor)
        if isinstance(x, (tuple, list)) and len(x) == 2 and isinstance(x[0], Tensor) and x[0].dim() != 2:
            raise ValueError(f"Static graphs not supported in '{type(self).__name__}': 'x' must be [N, F]")
        if isinstance(x, Tensor) and x.dim() != 2:
            raise ValueError(f"Static graphs not supported in '{type(self).__name__}': 'x' must be [N, F]")
        check_in_channels(x, self.in_channels)
        x_src, x_dst = node_pair(x, "x")
        assert x_src is not None and x_dst is not None
        if x_dst.dim() != 2:
            raise ValueError(f"'x[1]' must have shape [N, F], got {v.describe(x_dst)}")
        n_src, n_dst = x_src.size(0), x_dst.size(0)
        b = batch_pair(batch, n_src, n_dst)

        h_src = self.lin_h(x_src)
        s_src = self.lin_s(x_src)
        s_dst = self.lin_s(x_dst) if bipartite else s_src
        edge_index = knn_graph(s_src, s_dst, self.k, b)
        diff = s_src.index_select(0, edge_index[0]) - s_dst.index_select(0, edge_index[1])
        edge_weight = torch.exp(-10.0 * diff.square().sum(dim=-1))
        out = self.propagate(edge_index, x=(h_src, None), edge_weight=edge_weight, size=(n_src, n_dst))
        return self.lin_out2.add_to(self.lin_out1(x_dst), out)

    def message(self, x_j: Tensor, edge_weight: Tensor) -> Tensor:
        return x_j * edge_weight.unsqueeze(1)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels}, k={self.k})"
