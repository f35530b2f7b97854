"""Learnable Commutative Monoid aggregation: a binary-tree reduction with a
learned, symmetrised GRU operator."""

from __future__ import annotations

import torch
from torch import Tensor

from gnn.core.aggr.base import Aggregation


class LCMAggregation(Aggregation):
    r"""Learnable Commutative Monoid aggregation from `Ong & Veličković (2022)
    <https://arxiv.org/abs/2212.08541>`_.

    Elements are (optionally) projected, :math:`x_i \leftarrow
    \mathrm{ReLU}(W x_i + b)`, then reduced pairwise along a balanced binary
    tree of depth :math:`\lceil \log_2 n \rceil` with the commutative
    operator

    .. math::
        a \oplus b = \tfrac{1}{2}\big(\mathrm{GRU}(a, b) + \mathrm{GRU}(b, a)\big)

    (``GRU(input, hidden)`` a :class:`torch.nn.GRUCell`). At each level the
    elements are combined in consecutive pairs and a last unpaired element
    moves up unchanged. Groups are padded with zero vectors to the size of
    the largest group (or ``max_num_elements``), and the padding takes part
    in the reduction, as in PyG.

    Needs 2-D ``x`` and ``index`` sorted by group.

    Shapes: ``x`` ``[E, in_channels]`` -> ``[dim_size, out_channels]``.

    Args:
        in_channels: size of each input element.
        out_channels: size of each output.
        project: apply the projection; without it ``in_channels`` must
            equal ``out_channels``.

    Example:
        >>> aggr = LCMAggregation(4, 8)
        >>> aggr(torch.randn(5, 4), torch.tensor([0, 0, 0, 1, 1])).shape
        torch.Size([2, 8])
    """

    def __init__(self, in_channels: int, out_channels: int, project: bool = True):
        super().__init__()
        if in_channels != out_channels and not project:
            raise ValueError(
                f"LCMAggregation needs project=True when 'in_channels' ({in_channels}) differs from "
                f"'out_channels' ({out_channels})"
            )
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.project = project
        if project:
            self.lin = torch.nn.Linear(in_channels, out_channels)
        else:
            self.lin = None
        self.gru_cell = torch.nn.GRUCell(out_channels, out_channels)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.lin is not None:
            self.lin.reset_parameters()
        self.gru_cell.reset_parameters()

    def combine(self, a: Tensor, b: Tensor) -> Tensor:
        """The symmetrised operator :math:`a \\oplus b` on ``[*, C]`` tensors."""
        shape = a.shape
        a, b = a.reshape(-1, shape[-1]), b.reshape(-1, shape[-1])
        out = self.gru_cell(torch.cat([a, b], dim=0), torch.cat([b, a], dim=0))
        ab, ba = out.chunk(2, dim=0)
        return ((ab + ba) / 2).view(shape)

    def forward(
        self,
        x: Tensor,
        index: Tensor | None = None,
        ptr: Tensor | None = None,
        dim_size: int | None = None,
        dim: int = -2,
        max_num_elements: int | None = None,
    ) -> Tensor:
        if self.lin is not None:
            x = self.lin(x).relu()
        elif x.size(-1) != self.out_channels:
            raise ValueError(f"'x' must have {self.out_channels} channels, got {x.size(-1)}")
        dense, _ = self.to_dense_batch(x, index, ptr, dim_size, dim, max_num_elements=max_num_elements)
        # dense: [G, N, C]
        if dense.size(1) == 0:
            return dense.new_zeros(dense.size(0), dense.size(2))
        while dense.size(1) > 1:
            n = dense.size(1)
            even = n - n % 2
            merged = self.combine(dense[:, 0:even:2], dense[:, 1:even:2])
            dense = torch.cat([merged, dense[:, even:]], dim=1) if n % 2 else merged
        return dense[:, 0]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels}, project={self.project})"
