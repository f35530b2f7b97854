r""":class:`PANPooling`: top-:math:`k` pooling on the path-integral matrix of PANConv (Ma et al., 2020)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor
from torch.nn import Parameter

from gnn.core import ops
from gnn.core import validation as v
from gnn.core.utils import is_sparse
from gnn.core.utils.sparse import from_sparse

from .select import SelectTopK, check_min_score, check_ratio, filter_edges
from .select._checks import check_batch, check_channels, check_features, check_real
from .topk_pool import scale_selected


def matrix_entries(M: Any, num_nodes: int) -> tuple[Tensor, Tensor, Tensor]:  # noqa: N803
    """``(row, col, value)`` of an ``[N, N]`` sparse matrix: a ``torch_sparse.SparseTensor`` (or any
    object with PyG's ``coo()``), or a torch.sparse COO/CSR/CSC tensor (as gnn's PANConv returns
    without torch-sparse). Entries come in row-major order."""
    if isinstance(M, Tensor) and is_sparse(M):
        sp = from_sparse(M)
        rows, cols = sp.csr.num_rows, sp.csr.num_cols
        row, col, value = sp.csr.row(), sp.csr.col, sp.value
        if value is None:
            value = torch.ones(row.numel(), device=row.device)
    elif callable(getattr(M, "coo", None)):
        row, col, value = M.coo()
        sizes = M.sizes() if callable(getattr(M, "sizes", None)) else (num_nodes, num_nodes)
        rows, cols = int(sizes[0]), int(sizes[1])
        if value is None:
            value = torch.ones(row.numel(), device=row.device)
    else:
        raise TypeError(
            f"'M' must be the sparse [N, N] matrix PANConv returns (a torch.sparse tensor or a "
            f"SparseTensor), got {v.describe(M)}"
        )
    if (rows, cols) != (num_nodes, num_nodes):
        raise ValueError(
            f"'M' must be [{num_nodes}, {num_nodes}] for {num_nodes} nodes, got [{rows}, {cols}]"
        )
    if value.dim() != 1:
        raise ValueError(f"'M' must have one value per entry, got values of shape {list(value.shape)}")
    return row.long(), col.long(), value


class PANPooling(torch.nn.Module):
    r"""The path integral based pooling operator (Ma et al., "Path Integral Based Convolution and
    Pooling for Graph Neural Networks").

    Top-:math:`k` pooling whose node importance mixes the features with the weight a node gets
    in the MET matrix :math:`\mathbf{M}` of :class:`~gnn.conv.PANConv`:

    .. math::
        \mathbf{u} = \beta_1 \mathbf{X}\mathbf{p} + \beta_2\,\mathrm{deg}(\mathbf{M}),
        \qquad \mathrm{deg}(\mathbf{M})_j = \textstyle\sum_i M_{ij},
        \qquad \mathbf{y} = \sigma(\mathbf{u} \cdot \mathrm{sign}(w)),

    then :math:`\mathbf{i} = \mathrm{top}_k(\mathbf{y})`,
    :math:`\mathbf{X}' = m (\mathbf{X} \odot \mathbf{y})_{\mathbf{i}}`, and the pooled graph is
    :math:`\mathbf{M}` restricted to :math:`\mathbf{i}`: an entry :math:`M_{ij}` becomes the edge
    ``(j, i)`` (source ``j``, as ``PANConv`` propagates :math:`\mathbf{M}\mathbf{X}`) with weight
    :math:`M_{ij}`. As in PyG, :math:`\mathbf{u}` goes through the one-channel ``select``
    scorer, whose single untrained weight :math:`w` contributes its sign; with ``min_score``,
    :math:`\mathbf{y} = \mathrm{softmax}(w\,\mathbf{u})` per graph.

    Args:
        in_channels: size :math:`F` of each node's features (``p`` is ``[F]``).
        ratio: float in ``(0, 1)`` or an int :math:`k`; ignored with ``min_score``.
        min_score: minimal softmax score, or ``None``.
        multiplier: :math:`m`.
        nonlinearity: :math:`\sigma`, an activation name or a callable.

    Shapes:
        ``x`` ``[N, F]``, ``M`` sparse ``[N, N]``, ``batch`` ``[N]`` ->
        ``(x [K, F], edge_index [2, E'], edge_attr [E'], batch [K], perm [K], score [K])``.

    Example:
        >>> from gnn.conv import PANConv
        >>> x, edge_index = torch.randn(10, 16), torch.randint(0, 10, (2, 30))
        >>> out, M = PANConv(16, 16, filter_size=2)(x, edge_index)
        >>> x, edge_index, edge_attr, batch, perm, score = PANPooling(16)(out, M)
        >>> x.shape
        torch.Size([5, 16])
    """

    def __init__(
        self,
        in_channels: int,
        ratio: float = 0.5,
        min_score: float | None = None,
        multiplier: float = 1.0,
        nonlinearity: str | Callable = "tanh",
    ) -> None:
        super().__init__()
        self.in_channels = check_channels(in_channels, "in_channels")
        self.min_score = check_min_score(min_score)
        self.ratio = check_ratio(ratio, self.min_score)
        self.multiplier = check_real(multiplier, "multiplier")
        self.p = Parameter(torch.empty(in_channels))
        self.beta = Parameter(torch.empty(2))
        self.select = SelectTopK(1, ratio, min_score, nonlinearity)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """``p`` = 1, ``beta`` = 0.5, and a new ``select`` weight."""
        with torch.no_grad():
            self.p.fill_(1.0)
            self.beta.fill_(0.5)
        self.select.reset_parameters()

    def forward(
        self,
        x: Tensor,
        M: Any,
        batch: Tensor | None = None,  # noqa: N803 (PyG's argument name)
    ) -> tuple[Tensor, Tensor, Tensor, Tensor | None, Tensor, Tensor]:
        """Pool with the MET matrix ``M``; ``batch=None`` means one graph."""
        x = check_features(x)
        n = x.size(0)
        if x.size(-1) != self.in_channels:
            raise ValueError(f"'x' must have {self.in_channels} features (in_channels), got {v.describe(x)}")
        row, col, value = matrix_entries(M, n)
        batch = check_batch(batch, n, x.device)
        beta = self.beta.to(x.dtype)
        weight_in = ops.scatter(value.to(x.dtype), col, 0, n, "sum")
        score = beta[0] * (x @ self.p.to(x.dtype)) + beta[1] * weight_in
        perm, score = self.select(score.view(-1, 1), batch)
        out = scale_selected(x, score, perm, self.multiplier)
        edge_index, edge_attr = filter_edges(torch.stack([col, row]), value, perm, n)
        return out, edge_index, edge_attr, batch[perm], perm, score[perm]

    def __repr__(self) -> str:
        arg = f"ratio={self.ratio}" if self.min_score is None else f"min_score={self.min_score}"
        return f"{type(self).__name__}({self.in_channels}, {arg}, multiplier={self.multiplier})"
