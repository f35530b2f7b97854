"""Feature-wise variance and standard deviation of each group."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from gnn.core.aggr.base import Aggregation
from gnn.core.utils import group_counts

from ._utils import along

#: variances below this are treated as zero by :class:`StdAggregation`
_STD_EPS = 1e-5


class VarAggregation(Aggregation):
    r"""Feature-wise (biased) variance of each group.

    .. math::
        \mathrm{var}(\mathcal{X}) = \frac{1}{|\mathcal{X}|} \sum_{x_i \in \mathcal{X}} x_i^2
        - \Big(\frac{1}{|\mathcal{X}|} \sum_{x_i \in \mathcal{X}} x_i\Big)^2

    Shapes: ``x`` ``[..., E, ..., F]`` (elements along ``dim``) ->
    ``[..., dim_size, ..., F]``. Empty groups give 0.

    Args:
        semi_grad: if ``True``, :math:`\mathbb{E}[X^2]` is computed without
            autograd, so only the semi-gradient through the mean flows back
            (saves memory and time in backward).

    Example:
        >>> x = torch.tensor([[1.0], [3.0], [5.0]]); index = torch.tensor([0, 0, 1])
        >>> VarAggregation()(x, index)
        tensor([[1.],
                [0.]])
    """

    def __init__(self, semi_grad: bool = False) -> None:
        super().__init__()
        self.semi_grad = semi_grad

    def forward(
        self,
        x: Tensor,
        index: Tensor | None = None,
        ptr: Tensor | None = None,
        dim_size: int | None = None,
        dim: int = -2,
    ) -> Tensor:
        assert dim_size is not None
        # one count for both means (ops' "mean" would count twice)
        count = group_counts(index, ptr, dim_size, dtype=x.dtype).clamp(min=1)
        count = along(count, x.dim(), dim)
        mean = self.reduce(x, index, ptr, dim_size, dim, reduce="sum") / count
        if self.semi_grad:
            with torch.no_grad():
                mean_sq = self.reduce(x * x, index, ptr, dim_size, dim, reduce="sum") / count
        else:
            mean_sq = self.reduce(x * x, index, ptr, dim_size, dim, reduce="sum") / count
        return mean_sq - mean * mean


class StdAggregation(Aggregation):
    r"""Feature-wise standard deviation of each group.

    .. math::
        \mathrm{std}(\mathcal{X}) = \sqrt{\max(\mathrm{var}(\mathcal{X}), 10^{-5})},

    set to exactly 0 where the variance is at most :math:`10^{-5}` (so that
    constant and empty groups give 0 with a zero gradient instead of the
    infinite gradient of :math:`\sqrt{\cdot}` at 0).

    Shapes: ``x`` ``[..., E, ..., F]`` -> ``[..., dim_size, ..., F]``.

    Args:
        semi_grad: see :class:`VarAggregation`.

    Example:
        >>> x = torch.tensor([[1.0], [3.0], [5.0]]); index = torch.tensor([0, 0, 1])
        >>> StdAggregation()(x, index)
        tensor([[1.],
                [0.]])
    """

    def __init__(self, semi_grad: bool = False) -> None:
        super().__init__()
        self.var_aggr = VarAggregation(semi_grad)

    def forward(
        self,
        x: Tensor,
        index: Tensor | None = None,
        ptr: Tensor | None = None,
        dim_size: int | None = None,
        dim: int = -2,
    ) -> Tensor:
        # the arguments were validated by this module's __call__
        var = self.var_aggr.forward(x, index, ptr, dim_size, dim)
        out = var.clamp(min=_STD_EPS).sqrt()
        return out.masked_fill(out <= math.sqrt(_STD_EPS), 0.0)
