"""Feature-wise variance and standard deviation of each group."""

from __future__ import annotations

from torch import Tensor

from gnn.core import ops
from gnn.core.aggr.base import Aggregation, run_one_pass


class VarAggregation(Aggregation):
    r"""Feature-wise (biased) variance of each group.

    .. math::
        \mathrm{var}(\mathcal{X}) = \frac{1}{|\mathcal{X}|} \sum_{x_i \in \mathcal{X}} x_i^2
        - \Big(\frac{1}{|\mathcal{X}|} \sum_{x_i \in \mathcal{X}} x_i\Big)^2

    Shapes: ``x`` ``[..., E, ..., F]`` (elements along ``dim``) ->
    ``[..., dim_size, ..., F]``. Empty groups give 0.

    Computed in one pass over the groups with a fused backward
    (:func:`gnn.core.ops.multi_reduce`).

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

    def one_pass_reductions(self) -> tuple[ops.Reduction, ...] | None:
        return None if self.forward_overridden(VarAggregation) else self._reductions()

    def _reductions(self) -> tuple[ops.Reduction, ...]:
        return (ops.Reduction("var", semi_grad=self.semi_grad),)

    def forward(
        self,
        x: Tensor,
        index: Tensor | None = None,
        ptr: Tensor | None = None,
        dim_size: int | None = None,
        dim: int = -2,
    ) -> Tensor:
        return run_one_pass(self, x, index, ptr, dim_size, dim, self._reductions())


class StdAggregation(Aggregation):
    r"""Feature-wise standard deviation of each group.

    .. math::
        \mathrm{std}(\mathcal{X}) = \sqrt{\max(\mathrm{var}(\mathcal{X}), 10^{-5})},

    set to exactly 0 where the variance is at most :math:`10^{-5}` (so that
    constant and empty groups give 0 with a zero gradient instead of the
    infinite gradient of :math:`\sqrt{\cdot}` at 0).

    Shapes: ``x`` ``[..., E, ..., F]`` -> ``[..., dim_size, ..., F]``. Computed in one
    pass over the groups with a fused backward (:func:`gnn.core.ops.multi_reduce`).

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

    def one_pass_reductions(self) -> tuple[ops.Reduction, ...] | None:
        return None if self.forward_overridden(StdAggregation) else self._reductions()

    def _reductions(self) -> tuple[ops.Reduction, ...]:
        return (ops.Reduction("std", semi_grad=self.var_aggr.semi_grad),)

    def forward(
        self,
        x: Tensor,
        index: Tensor | None = None,
        ptr: Tensor | None = None,
        dim_size: int | None = None,
        dim: int = -2,
    ) -> Tensor:
        return run_one_pass(self, x, index, ptr, dim_size, dim, self._reductions())
