r"""The Chebyshev spectral convolution (Defferrard et al., 2016), :class:`ChebConv`."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.nn import Parameter

from gnn.core import ops
from gnn.core import validation as v
from gnn.core.message_passing import MessagePassing
from gnn.core.nn.inits import zeros
from gnn.core.nn.linear import Linear

from ._utils import check_in_channels, edge_list
from ._utils import num_nodes as count_nodes

_NORMALIZATIONS = (None, "sym", "rw")


def scaled_laplacian(
    edge_index: Tensor,
    edge_weight: Tensor | None,
    num_nodes: int,
    normalization: str | None,
    lambda_max: Tensor,
    batch: Tensor | None,
    dtype: torch.dtype,
) -> tuple[Tensor, Tensor, Tensor]:
    r"""The off-diagonal and diagonal parts of :math:`\hat{L} = 2L / \lambda_{max} - I`.

    Self loops of the input are dropped. With ``A[i, j]`` the summed weight
    of the edges ``i -> j`` and :math:`d_i = \sum_j A_{ij}`:
    ``None``: :math:`L = D - A`; ``"sym"``: :math:`L = I - D^{-1/2} A D^{-1/2}`;
    ``"rw"``: :math:`L = I - D^{-1} A`.

    Returns:
        ``(edge_index [2, E'], off [E'], diag [N])``: the entries of
        :math:`\hat{L}` on the (loop-free) edges and on the diagonal.
    """
    keep = edge_index[0] != edge_index[1]
    edge_index = edge_index[:, keep]
    if edge_weight is None:
        edge_weight = torch.ones(edge_index.size(1), dtype=dtype, device=edge_index.device)
    else:
        edge_weight = edge_weight[keep]
    row, col = edge_index[0], edge_index[1]
    deg = ops.scatter(edge_weight, row, 0, num_nodes, "sum")
    if normalization is None:
        off, diag = -edge_weight, deg
    elif normalization == "sym":
        dis = deg.pow(-0.5).masked_fill(deg == 0, 0.0)
        off, diag = -dis[row] * edge_weight * dis[col], torch.ones_like(deg)
    else:  # "rw"
        dinv = deg.pow(-1.0).masked_fill(deg == 0, 0.0)
        off, diag = -dinv[row] * edge_weight, torch.ones_like(deg)
    lambda_max = lambda_max.to(deg.dtype).to(deg.device)
    if batch is not None and lambda_max.numel() > 1:
        node_scale = 2.0 / lambda_max[batch]
        edge_scale = node_scale[row]
    else:
        node_scale = edge_scale = 2.0 / lambda_max.reshape(())
    off = (off * edge_scale).masked_fill(torch.isinf(off * edge_scale), 0.0)
    diag = (diag * node_scale).masked_fill(torch.isinf(diag * node_scale), 0.0) - 1.0
    return edge_index, off, diag


class ChebConv(MessagePassing):
    r"""Chebyshev spectral graph convolution.

    .. math::
        X' = \sum_{k=1}^{K} Z^{(k)} \Theta^{(k)} + b, \quad
        Z^{(1)} = X, \; Z^{(2)} = \hat{L} X, \;
        Z^{(k)} = 2 \hat{L} Z^{(k-1)} - Z^{(k-2)}

    with :math:`\hat{L} = 2L / \lambda_{max} - I` and :math:`L` the
    (normalized) Laplacian of the graph without self loops (see
    :func:`scaled_laplacian`; ``A[i, j]`` is the weight of ``i -> j`` and
    :math:`\hat{L}^\top` is applied along the message flow). Each product
    with :math:`\hat{L}` is a fused ``ops.spmm`` over the edges plus a
    diagonal term.

    Args:
        in_channels: input size (``-1``: lazy).
        out_channels: output size.
        K: Chebyshev filter size (``K >= 1``).
        normalization: ``None``, ``"sym"`` or ``"rw"``.
        bias: learn a bias.
        **kwargs: :class:`~gnn.core.MessagePassing` arguments.

    Shapes:
        ``x`` ``[N, in_channels]``, ``edge_index`` ``[2, E]`` or sparse
        ``adj_t``, ``edge_weight`` ``[E]``, ``batch`` ``[N]``, ``lambda_max``
        scalar or ``[B]`` -> ``[N, out_channels]``. ``lambda_max`` defaults
        to 2 and is required unless ``normalization="sym"``.

    Example:
        >>> conv = ChebConv(16, 32, K=3)
        >>> conv(torch.randn(4, 16), torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])).shape
        torch.Size([4, 32])
    """

    fused_message = "edge_weight * x_j"

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        K: int,
        normalization: str | None = "sym",
        bias: bool = True,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("aggr", "add")
        super().__init__(**kwargs)
        if not isinstance(K, int) or K <= 0:
            raise ValueError(f"'K' must be a positive int, got {K!r}")
        if normalization not in _NORMALIZATIONS:
            raise ValueError(f"'normalization' must be one of {_NORMALIZATIONS}, got {normalization!r}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.normalization = normalization
        self.lins = torch.nn.ModuleList(
            [Linear(in_channels, out_channels, bias=False, weight_initializer="glorot") for _ in range(K)]
        )
        if bias:
            self.bias = Parameter(torch.empty(out_channels))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Glorot weights, zero bias."""
        super().reset_parameters()
        for lin in self.lins:
            lin.reset_parameters()
        zeros(self.bias)

    def forward(
        self,
        x: Tensor,
        edge_index: Any,
        edge_weight: Tensor | None = None,
        batch: Tensor | None = None,
        lambda_max: Tensor | float | None = None,
    ) -> Tensor:
        """Apply the filter (see the class docstring for shapes)."""
        check_in_channels(x, self.in_channels)
        edge_index, edge_weight = edge_list(edge_index, edge_weight)
        if self.normalization != "sym" and lambda_max is None:
            raise ValueError(
                "You need to pass 'lambda_max' to 'forward()' in case the normalization is non-symmetric"
            )
        if lambda_max is None:
            lambda_max = torch.tensor(2.0, dtype=x.dtype, device=x.device)
        elif not isinstance(lambda_max, Tensor):
            lambda_max = torch.tensor(float(lambda_max), dtype=x.dtype, device=x.device)
        num_nodes = count_nodes(self, x)
        if batch is not None:
            v.check_tensor("batch", batch)
            if batch.dim() != 1 or batch.numel() != num_nodes:
                raise ValueError(f"'batch' must have shape [{num_nodes}], got {v.describe(batch)}")
        v.check_edge_index_nodes(edge_index, num_nodes)
        edge_index, off, diag = scaled_laplacian(
            edge_index, edge_weight, num_nodes, self.normalization, lambda_max, batch, x.dtype
        )
        diag = diag.view(-1, 1)

        def apply_l(h: Tensor) -> Tensor:
            return self.propagate(edge_index, x=h, edge_weight=off) + diag * h

        tx_0 = x
        out = self.lins[0](tx_0)
        if len(self.lins) > 1:
            tx_1 = apply_l(x)
            out = self.lins[1].add_to(out, tx_1)
            for lin in self.lins[2:]:
                tx_2 = 2.0 * apply_l(tx_1) - tx_0
                out = lin.add_to(out, tx_2)
                tx_0, tx_1 = tx_1, tx_2
        if self.bias is not None:
            out = out + self.bias
        return out

    def message(self, x_j: Tensor, edge_weight: Tensor) -> Tensor:
        """``edge_weight * x_j`` with the scaled Laplacian's off-diagonal entries."""
        return edge_weight.view(-1, 1) * x_j

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.in_channels}, {self.out_channels}, "
            f"K={len(self.lins)}, normalization={self.normalization})"
        )
