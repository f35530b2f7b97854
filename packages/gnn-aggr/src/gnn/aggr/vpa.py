"""Variance-preserving aggregation (GNN-VPA)."""

from __future__ import annotations

from torch import Tensor

from gnn.core.aggr.base import Aggregation
from gnn.core.utils import group_counts

from ._utils import along


class VariancePreservingAggregation(Aggregation):
    r"""Variance-preserving aggregation from `GNN-VPA <https://arxiv.org/abs/2403.04747>`_.

    .. math::
        \mathrm{vpa}(\mathcal{X}) = \frac{1}{\sqrt{|\mathcal{X}|}} \sum_{x_i \in \mathcal{X}} x_i

    (between sum and mean: it keeps the variance of i.i.d. inputs).

    Shapes: ``x`` ``[..., E, ..., F]`` -> ``[..., dim_size, ..., F]``; empty
    groups give 0.

    Example:
        >>> x = torch.tensor([[1.0], [3.0], [5.0], [7.0]]); index = torch.tensor([0, 0, 0, 0])
        >>> VariancePreservingAggregation()(x, index)  # 16 / sqrt(4)
        tensor([[8.]])
    """

    def __init__(self) -> None:
        super().__init__()

    def forward(
        self,
        x: Tensor,
        index: Tensor | None = None,
        ptr: Tensor | None = None,
        dim_size: int | None = None,
        dim: int = -2,
    ) -> Tensor:
        assert dim_size is not None
        out = self.reduce(x, index, ptr, dim_size, dim, reduce="sum")
        count = group_counts(index, ptr, dim_size, dtype=out.dtype).clamp(min=1)
        return out / along(count.sqrt(), out.dim(), dim)
