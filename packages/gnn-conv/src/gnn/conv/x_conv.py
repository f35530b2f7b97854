r"""XConv: convolution on X-transformed points (PointCNN, Li et al., 2018)."""

from __future__ import annotations

from math import ceil

import torch
from torch import Tensor
from torch.nn import ELU, Conv1d
from torch.nn import BatchNorm1d as BN
from torch.nn import Linear as L
from torch.nn import Sequential as S

from gnn.core import validation as v
from gnn.core.nn.inits import reset

from ._point import batch_pair, knn_graph


class Reshape(torch.nn.Module):
    """``x.view(*shape)``: a step of a :class:`torch.nn.Sequential` (no parameters)."""

    def __init__(self, *shape: int) -> None:
        super().__init__()
        self.shape = shape

    def forward(self, x: Tensor) -> Tensor:
        return x.view(*self.shape)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(str(s) for s in self.shape)})"


class XConv(torch.nn.Module):
    r"""The convolution on :math:`\mathcal{X}`-transformed points from "PointCNN: Convolution On
    X-Transformed Points".

    .. math::
        \mathbf{x}^{\prime}_i = \mathrm{Conv}\left(\mathbf{K},
        \gamma_{\mathbf{\Theta}}(\mathbf{P}_i - \mathbf{p}_i) \times
        \left( h_\mathbf{\Theta}(\mathbf{P}_i - \mathbf{p}_i) \, \Vert \,
        \mathbf{x}_i \right) \right)

    For every point :math:`i`, :math:`\mathbf{P}_i` holds the positions of its ``kernel_size``
    :math:`K` nearest points (itself first; with ``dilation`` :math:`d`, every :math:`d`-th of
    its :math:`K d` nearest), in order of increasing distance, ties broken by the smaller index.
    :math:`h` (``mlp1``) lifts each relative position to ``hidden_channels`` features, which are
    concatenated with the neighbours' features; :math:`\gamma` (``mlp2``) computes a
    :math:`K \times K` transformation from all :math:`K` relative positions together; the
    transformed :math:`[K, C]` neighbourhood is convolved by a depthwise convolution with kernel
    :math:`\mathbf{K}` and a linear map (``conv``). The neighbours come from
    :func:`gnn.core.ops.knn` (no pyg-lib or torch-cluster needed); every example of ``batch``
    must hold at least :math:`K d` points.

    Args:
        in_channels: input size (0 when only positions are used, ``x=None``).
        out_channels: output size.
        dim: point dimension :math:`D`.
        kernel_size: :math:`K`, neighbours per point, the point itself included.
        hidden_channels: size of the lifted positions (default ``in_channels // 4``).
        dilation: :math:`d`.
        bias: learn a bias in the last linear map.
        num_workers: accepted for PyG compatibility (the kernel uses torch's intra-op threads).

    Shapes:
        ``x`` ``[N, F_in]`` (or ``None``), ``pos`` ``[N, D]``, ``batch`` ``[N]`` sorted (optional)
        -> ``[N, out_channels]``.

    Example:
        >>> conv = XConv(16, 32, dim=3, kernel_size=8)
        >>> x, pos = torch.randn(20, 16), torch.randn(20, 3)
        >>> conv(x, pos).shape
        torch.Size([20, 32])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        dim: int,
        kernel_size: int,
        hidden_channels: int | None = None,
        dilation: int = 1,
        bias: bool = True,
        num_workers: int = 1,
    ) -> None:
        super().__init__()
        if hidden_channels is None:
            hidden_channels = in_channels // 4
        for name, value in (
            ("hidden_channels", hidden_channels),
            ("dim", dim),
            ("kernel_size", kernel_size),
            ("dilation", dilation),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                hint = " (in_channels // 4 when not given)" if name == "hidden_channels" else ""
                raise ValueError(f"'{name}' must be a positive int{hint}, got {value!r}")
        self.in_channels = in_channels
        self.hidden_channels = hidden_channels
        self.out_channels = out_channels
        self.dim = dim
        self.kernel_size = kernel_size
        self.dilation = dilation
        self.num_workers = num_workers

        D, K, C_delta = dim, kernel_size, hidden_channels
        self.mlp1 = S(
            L(D, C_delta),
            ELU(),
            BN(C_delta),
            L(C_delta, C_delta),
            ELU(),
            BN(C_delta),
            Reshape(-1, K, C_delta),
        )
        self.mlp2 = S(
            L(D * K, K**2),
            ELU(),
            BN(K**2),
            Reshape(-1, K, K),
            Conv1d(K, K**2, K, groups=K),
            ELU(),
            BN(K**2),
            Reshape(-1, K, K),
            Conv1d(K, K**2, K, groups=K),
            BN(K**2),
            Reshape(-1, K, K),
        )
        C_in = in_channels + C_delta
        depth_multiplier = int(ceil(out_channels / C_in))
        self.conv = S(
            Conv1d(C_in, C_in * depth_multiplier, K, groups=C_in),
            Reshape(-1, C_in * depth_multiplier),
            L(C_in * depth_multiplier, out_channels, bias=bias),
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Reset ``mlp1``, ``mlp2`` and ``conv``."""
        reset(self.mlp1)
        reset(self.mlp2)
        reset(self.conv)

    def forward(self, x: Tensor | None, pos: Tensor, batch: Tensor | None = None) -> Tensor:
        """Transform and convolve the neighbourhood of every point."""
        v.check_tensor("pos", pos)
        if pos.dim() == 1:
            pos = pos.unsqueeze(-1)
        if pos.dim() != 2 or pos.size(1) != self.dim or not pos.is_floating_point():
            raise ValueError(
                f"'pos' must be a [N, {self.dim}] floating-point tensor (dim), got {v.describe(pos)}"
            )
        N, D = pos.shape
        K = self.kernel_size
        if x is not None:
            v.check_tensor("x", x)
            if x.dim() == 1:
                x = x.unsqueeze(-1)
            if x.dim() != 2 or x.size(0) != N or x.size(1) != self.in_channels:
                raise ValueError(
                    f"'x' must have shape [{N}, {self.in_channels}] (one row per point, in_channels), "
                    f"got {v.describe(x)}"
                )
        if isinstance(batch, (tuple, list)):
            raise TypeError("'batch' must be a tensor or None (XConv is not bipartite)")
        b = batch_pair(batch, N, N)
        reach = K * self.dilation
        self._check_examples(b[0], N, reach)

        edge_index = knn_graph(pos, pos, reach, b)  # grouped by point, nearest first
        if self.dilation > 1:
            edge_index = edge_index[:, :: self.dilation]
        src, dst = edge_index[0], edge_index[1]
        rel = pos.index_select(0, src) - pos.index_select(0, dst)  # [N * K, D]

        lifted = self.mlp1(rel)  # [N, K, C_delta]
        if x is not None:
            lifted = torch.cat([lifted, x.index_select(0, src).view(N, K, self.in_channels)], dim=-1)
        lifted = lifted.transpose(1, 2).contiguous()  # [N, C, K]
        transform = self.mlp2(rel.view(N, K * D))  # [N, K, K]
        return self.conv(torch.matmul(lifted, transform))

    def _check_examples(self, batch: Tensor | None, num_points: int, reach: int) -> None:
        """Every example must have ``reach`` points (each point needs that many neighbours)."""
        if not v.validation_enabled() or num_points == 0 or torch.compiler.is_compiling():
            return
        if batch is None:
            smallest = num_points
        else:
            counts = torch.bincount(batch.long())
            smallest = int(counts[counts > 0].min())
        if smallest < reach:
            raise ValueError(
                f"every example must hold at least kernel_size * dilation = {reach} points, "
                f"got one with {smallest}"
            )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels})"
