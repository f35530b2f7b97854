r"""FusedGATConv: GATConv's attention in one fused kernel (the API of PyG's dgNN-based layer)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from gnn.core import validation as v
from gnn.core.utils import is_sparse

from ._utils import csc_edge_index
from .gat import GATConv


def _sorted_lexicographic(first: Tensor, second: Tensor, bound: int) -> Tensor:
    """The stable permutation that sorts the pairs ``(first, second)`` lexicographically."""
    key = first.long() * max(bound, 1) + second.long()
    return torch.argsort(key, stable=True)


def _offsets(index: Tensor, size: int | None) -> Tensor:
    """``[size + 1]`` offsets of a sorted index (``size``: ``max + 1`` when not given)."""
    if size is None:
        size = int(index.max()) + 1 if index.numel() > 0 else 0
    counts = torch.bincount(index.long(), minlength=size)[:size] if index.numel() else index.new_zeros(size)
    ptr = torch.zeros(size + 1, dtype=torch.long, device=index.device)
    torch.cumsum(counts, 0, out=ptr[1:])
    return ptr.to(index.dtype)


class FusedGATConv(GATConv):
    r"""GATConv computed by gnn's fused attention op, with the API of PyG's ``FusedGATConv``.

    The math is :class:`GATConv`'s (without self loops or edge features, which the layer
    refuses, as PyG's does):

    .. math::
        \mathbf{x}^{\prime}_i = \mathop{\Big\Vert}_{h=1}^{H} \sum_{j \in \mathcal{N}(i)}
        \alpha^{h}_{i,j}\mathbf{\Theta}^{h}\mathbf{x}_{j} + \mathbf{b},\qquad
        \alpha^{h}_{i,j} = \operatorname{softmax}_{j}\Big(\operatorname{LeakyReLU}\big(
        \mathbf{a}^{h\top}_{s}\mathbf{\Theta}^{h}\mathbf{x}_j
        + \mathbf{a}^{h\top}_{t}\mathbf{\Theta}^{h}\mathbf{x}_i\big)\Big)

    computed by :func:`gnn.core.ops.node_score_attention` (scores, softmax and weighted sum
    in one pass, no ``[E, H, C]`` tensor on a compiled backend; CPU and CUDA). PyG's layer
    needs dgNN and a GPU; this one runs anywhere. Attention dropout in training and
    message hooks take GATConv's general path.

    The graph is given as PyG's :meth:`to_graph_format` returns it, ``(csr, csc, perm)``
    (messages flow from ``edge_index[0]`` to ``edge_index[1]``, as in GATConv: the CSC part
    lists each target's sources), or as an ``edge_index`` / sparse ``adj_t`` in ``csr``
    with ``csc`` and ``perm`` left out.

    Args:
        *args, **kwargs: :class:`GATConv`'s arguments; ``add_self_loops=False`` and
            ``edge_dim=None`` are required (add self loops beforehand).

    Shapes:
        ``x`` ``[N, F_in]``; output ``[N, H * C]`` (``concat``) or ``[N, C]``.

    Example:
        >>> conv = FusedGATConv(16, 8, heads=2, add_self_loops=False)
        >>> edge_index = torch.randint(0, 10, (2, 40))
        >>> csr, csc, perm = FusedGATConv.to_graph_format(edge_index, size=(10, 10))
        >>> conv(torch.randn(10, 16), csr, csc, perm).shape
        torch.Size([10, 16])
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.add_self_loops:
            raise ValueError(
                f"'{type(self).__name__}' does not support adding self-loops. Please add them manually "
                "in a pre-processing step and set `add_self_loops=False`."
            )
        if self.edge_dim is not None:
            raise ValueError(
                f"'{type(self).__name__}' does not support edge features. Set `edge_dim=None` in order to proceed."
            )

    @staticmethod
    def to_graph_format(
        edge_index: Tensor, size: tuple[int, int] | None = None
    ) -> tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor], Tensor]:
        """``edge_index`` as ``((rowptr, col), (row, colptr), perm)``, int32, as PyG returns it.

        ``(rowptr, col)``: the edges sorted by ``(edge_index[0], edge_index[1])``, compressed
        by source; ``(row, colptr)``: sorted by ``(edge_index[1], edge_index[0])``, compressed
        by target; ``perm[k]``: the position in the first order of the ``k``-th edge of the
        second. Without ``size`` each side has ``max + 1`` entries.
        """
        v.check_edge_index(edge_index)
        if size is not None and (not isinstance(size, (tuple, list)) or len(size) != 2):
            raise ValueError(f"'size' must be a pair (N_src, N_dst), got {size!r}")
        if size is not None:
            v.check_edge_index_sides(edge_index, size[0], size[1])
        edge_index = edge_index.to(torch.int)
        bound = int(edge_index.max()) + 1 if edge_index.numel() > 0 else 1
        by_row = edge_index[:, _sorted_lexicographic(edge_index[0], edge_index[1], bound)]
        rowptr = _offsets(by_row[0], size[0] if size else None)
        col = by_row[1]
        order = _sorted_lexicographic(by_row[1], by_row[0], bound)
        row = by_row[0, order]
        colptr = _offsets(by_row[1, order], size[1] if size else None)
        perm = order.to(torch.int)
        return (rowptr, col), (row, colptr), perm

    def forward(  # type: ignore[override]
        self,
        x: Tensor,
        csr: Any,
        csc: tuple[Tensor, Tensor] | None = None,
        perm: Tensor | None = None,
    ) -> Tensor:
        """Attend over the incoming edges of every node.

        Args:
            x: ``[N, F_in]`` node features.
            csr: ``(rowptr, col)`` of :meth:`to_graph_format`, or an ``edge_index`` /
                sparse ``adj_t`` (then leave ``csc`` and ``perm`` out).
            csc: ``(row, colptr)`` of :meth:`to_graph_format`.
            perm: its ``perm`` (accepted for PyG compatibility; the transposed pattern that
                the backward pass needs is built and cached by gnn itself).
        """
        v.check_tensor("x", x)
        if x.dim() != 2:
            raise ValueError(
                f"'x' must have shape [N, F] (static graphs are not supported), got {v.describe(x)}"
            )
        if csc is None:
            if isinstance(csr, Tensor) and (is_sparse(csr) or csr.dim() == 2):
                return super().forward(x, csr)
            raise TypeError(
                "'csr' must be the (rowptr, col) pair of FusedGATConv.to_graph_format (with 'csc' and 'perm'), "
                f"or an edge_index / sparse adjacency, got {v.describe(csr)}"
            )
        edge_index = self._edges_of(csc, x.size(0))
        return super().forward(x, edge_index)

    @staticmethod
    def _edges_of(csc: Any, num_nodes: int) -> Tensor:
        """The ``[2, E]`` edge_index (sorted by target) of a ``(row, colptr)`` pair, cached per graph."""
        if not isinstance(csc, (tuple, list)) or len(csc) != 2:
            raise TypeError(f"'csc' must be the pair (row, colptr), got {v.describe(csc)}")
        return csc_edge_index(csc[0], csc[1], "csc", num_nodes)
