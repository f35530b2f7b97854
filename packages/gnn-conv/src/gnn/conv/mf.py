"""MFConv: the molecular fingerprint convolution (Duvenaud et al., 2015)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from gnn.core import Linear, MessagePassing
from gnn.core import validation as v
from gnn.core.utils import is_sparse
from gnn.core.utils.sparse import from_sparse

from ._utils import check_in_channels


class MFConv(MessagePassing):
    r"""The molecular fingerprint graph convolution.

    .. math::
        \mathbf{x}^{\prime}_i = \mathbf{W}^{(\deg(i))}_1 \mathbf{x}_i +
        \mathbf{W}^{(\deg(i))}_2 \sum_{j \in \mathcal{N}(i)} \mathbf{x}_j

    with one pair of weight matrices per node degree; degrees above
    ``max_degree`` share the last pair. :math:`\mathbf{W}_2` (``lins_l``)
    carries the bias, :math:`\mathbf{W}_1` (``lins_r``) has none. The neighbour
    sum takes the fused ``ops.spmm`` path (no ``[E, F]`` message tensor).
    Values of a sparse ``adj_t`` are ignored: every entry counts as one edge.

    Args:
        in_channels: input feature size, ``(F_src, F_dst)`` for bipartite
            graphs, or ``-1`` to infer it on the first call.
        out_channels: output feature size.
        max_degree: degrees are clamped to this value.
        bias: learn a bias per degree.
        **kwargs: passed to :class:`~gnn.core.MessagePassing`.

    Shapes:
        ``x`` ``[N, F_in]`` or ``([N_src, F_src], [N_dst, F_dst])`` (``x_dst``
        may be ``None``), ``edge_index`` ``[2, E]`` or sparse ``adj_t`` ->
        ``[N_dst, out_channels]``.

    Example:
        >>> conv = MFConv(16, 32, max_degree=5)
        >>> conv(torch.randn(10, 16), torch.randint(0, 10, (2, 30))).shape
        torch.Size([10, 32])
    """

    def __init__(
        self,
        in_channels: int | tuple[int, int],
        out_channels: int,
        max_degree: int = 10,
        bias: bool = True,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("aggr", "add")
        super().__init__(**kwargs)
        if not isinstance(max_degree, int) or max_degree < 0:
            raise ValueError(f"'max_degree' must be a non-negative int, got {max_degree!r}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.max_degree = max_degree
        src, dst = (in_channels, in_channels) if isinstance(in_channels, int) else tuple(in_channels)
        self.lins_l = torch.nn.ModuleList(
            [Linear(src, out_channels, bias=bias) for _ in range(max_degree + 1)]
        )
        self.lins_r = torch.nn.ModuleList(
            [Linear(dst, out_channels, bias=False) for _ in range(max_degree + 1)]
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        for lin in self.lins_l:
            lin.reset_parameters()
        for lin in self.lins_r:
            lin.reset_parameters()

    def forward(
        self,
        x: Tensor | tuple[Tensor, Tensor | None],
        edge_index: Any,
        size: tuple[int, int] | None = None,
    ) -> Tensor:
        """Sum the neighbours, then apply the degree-specific linear maps."""
        check_in_channels(x, self.in_channels)
        if isinstance(x, Tensor):
            x = (x, x)
        x_src, x_dst = x
        if x_src.dim() < 2 or (x_dst is not None and x_dst.dim() < 2):
            raise ValueError(
                f"'x' must hold [N, F] (or static [B, N, F]) node features, got {v.describe(x_src)}"
            )
        h = self.propagate(edge_index, x=x, size=size)  # [*, N_dst, F_src]
        deg = self._degree(edge_index, h.size(-2))
        return self._per_degree(h, x_dst, deg.clamp(max=self.max_degree))

    def _degree(self, edge_index: Any, num_dst: int) -> Tensor:
        if is_sparse(edge_index):
            return from_sparse(edge_index).csr.degree()
        index = edge_index[1] if self.flow == "source_to_target" else edge_index[0]
        return torch.bincount(index, minlength=num_dst)

    def _per_degree(self, h: Tensor, x_dst: Tensor | None, deg: Tensor) -> Tensor:
        # group the nodes by degree (stable), apply each group's maps, undo the grouping
        # (along the node dimension -2: a static graph's [B, N, F] features work alike)
        perm = torch.argsort(deg, stable=True)
        counts = torch.bincount(deg, minlength=self.max_degree + 1).tolist()
        h_parts = h.index_select(-2, perm).split(counts, dim=-2)
        x_parts = (
            x_dst.index_select(-2, perm).split(counts, dim=-2) if x_dst is not None else [None] * len(counts)
        )
        outs = []
        for lin_l, lin_r, h_part, x_part in zip(self.lins_l, self.lins_r, h_parts, x_parts):
            r = lin_l(h_part)
            if x_part is not None:
                r = r + lin_r(x_part)
            outs.append(r)
        grouped = torch.cat(outs, dim=-2)
        return grouped.new_empty(grouped.shape).index_copy_(-2, perm, grouped)
