"""The basic reductions: sum, mean, max, min and product over each group."""

from __future__ import annotations

from torch import Tensor

from .. import ops
from ..utils.groups import ptr_to_index
from .base import Aggregation, run_one_pass


class _BasicReduction(Aggregation):
    """A reduction that :func:`gnn.core.ops.multi_reduce` computes in one pass over the groups
    (an unsorted ``index`` is sorted once per index tensor, see :func:`gnn.core.ops.sorted_groups`)."""

    _reduce = "sum"

    def one_pass_reductions(self) -> tuple[ops.Reduction, ...] | None:
        return None if self.forward_overridden(_BasicReduction) else (ops.Reduction(self._reduce),)

    def forward(
        self,
        x: Tensor,
        index: Tensor | None = None,
        ptr: Tensor | None = None,
        dim_size: int | None = None,
        dim: int = -2,
    ) -> Tensor:
        return run_one_pass(self, x, index, ptr, dim_size, dim, (ops.Reduction(self._reduce),))


class SumAggregation(_BasicReduction):
    r"""Feature-wise sum of each group: :math:`\mathrm{sum}(\mathcal{X}) = \sum_{x_i \in \mathcal{X}} x_i`.

    Registered as ``"sum"`` and ``"add"``. Empty groups give 0.
    """

    _reduce = "sum"


class MeanAggregation(_BasicReduction):
    r"""Feature-wise mean of each group: :math:`\frac{1}{|\mathcal{X}|} \sum_{x_i} x_i`.

    Empty groups give 0.
    """

    _reduce = "mean"


class MaxAggregation(_BasicReduction):
    r"""Feature-wise maximum of each group. Empty groups give 0."""

    _reduce = "max"


class MinAggregation(_BasicReduction):
    r"""Feature-wise minimum of each group. Empty groups give 0."""

    _reduce = "min"


class MulAggregation(_BasicReduction):
    r"""Feature-wise product of each group: :math:`\prod_{x_i \in \mathcal{X}} x_i`.

    Empty groups give 1 (the empty product, as in PyG).
    """

    _reduce = "mul"

    def one_pass_reductions(self) -> None:
        return None  # the product is not a one-pass reduction

    def forward(
        self,
        x: Tensor,
        index: Tensor | None = None,
        ptr: Tensor | None = None,
        dim_size: int | None = None,
        dim: int = -2,
    ) -> Tensor:
        # the product has no segment path in every backend; scatter is exact
        if index is None and ptr is not None:
            index = ptr_to_index(ptr, x.size(dim))
        return self.reduce(x, index, None, dim_size, dim, reduce="mul")


_FUSED = {SumAggregation: "sum", MeanAggregation: "mean", MaxAggregation: "max", MinAggregation: "min"}


def fused_reduction(aggr: object) -> str | None:
    """The ``ops.spmm`` reduction equivalent to ``aggr``, or ``None``.

    Only the exact basic classes qualify (a subclass may change ``forward``),
    whether they came from a string or were passed as an instance.
    """
    return _FUSED.get(type(aggr))  # type: ignore[arg-type]
