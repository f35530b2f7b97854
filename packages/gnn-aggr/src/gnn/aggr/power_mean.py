"""Power-mean aggregation with a (learnable) power (DeeperGCN)."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import Parameter

from gnn.core import ops
from gnn.core.aggr.base import Aggregation


class PowerMeanAggregation(Aggregation):
    r"""Power-mean aggregation from `DeeperGCN <https://arxiv.org/abs/2006.07739>`_.

    .. math::
        \mathrm{powermean}(\mathcal{X} | p) = \Big(\frac{1}{|\mathcal{X}|}
        \sum_{x_i \in \mathcal{X}} \mathrm{clamp}(x_i)^p\Big)^{1/p}

    feature-wise. Inputs are clamped to ``[clamp_min, clamp_max]`` and so is
    the mean before the :math:`1/p` root (the power mean is defined for
    positive inputs). :math:`p = 1` (not learnable) is the plain mean,
    without clamping.

    Shapes: ``x`` ``[..., E, ..., F]`` -> ``[..., dim_size, ..., F]``; empty
    groups give :math:`\mathrm{clamp\_min}^{1/p}` (0 for the plain mean).

    Args:
        p: initial power.
        learn: make ``p`` a learnable parameter (shape ``[channels]``).
        channels: number of independent powers (needs ``learn=True``).
        clamp_min: lower clamp (``None``: none).
        clamp_max: upper clamp (``None``: none).

    Example:
        >>> x = torch.tensor([[1.0], [7.0]]); index = torch.tensor([0, 0])
        >>> PowerMeanAggregation(p=2.0)(x, index)  # sqrt((1 + 49) / 2)
        tensor([[5.]])
    """

    def __init__(
        self,
        p: float = 1.0,
        learn: bool = False,
        channels: int = 1,
        clamp_min: float | None = 1e-4,
        clamp_max: float | None = 100.0,
    ) -> None:
        super().__init__()
        if not learn and channels != 1:
            raise ValueError(
                f"'channels' must be 1 when PowerMeanAggregation is not learnable (learn=False), "
                f"got {channels}"
            )
        if channels < 1:
            raise ValueError(f"'channels' must be positive, got {channels}")
        self._init_p = p
        self.learn = learn
        self.channels = channels
        self.min_value = clamp_min
        self.max_value = clamp_max
        self.p: Tensor | float = Parameter(torch.empty(channels)) if learn else p
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if isinstance(self.p, Tensor):
            with torch.no_grad():
                self.p.fill_(self._init_p)

    def _clamp(self, x: Tensor) -> Tensor:
        if self.min_value is None and self.max_value is None:
            return x
        return x.clamp(min=self.min_value, max=self.max_value)

    def one_pass_reductions(self) -> tuple[ops.Reduction, ...] | None:
        """The plain mean when ``p = 1`` is fixed; other powers transform the input first."""
        p = self.p
        if self.forward_overridden(PowerMeanAggregation) or isinstance(p, Tensor) or p != 1:
            return None
        return (ops.Reduction("mean"),)

    def forward(
        self,
        x: Tensor,
        index: Tensor | None = None,
        ptr: Tensor | None = None,
        dim_size: int | None = None,
        dim: int = -2,
    ) -> Tensor:
        p = self.p
        if not isinstance(p, Tensor) and p == 1:
            x_p = x
        else:
            if self.channels != 1 and x.size(-1) != self.channels:
                raise ValueError(
                    f"'x' has {x.size(-1)} channels but PowerMeanAggregation has {self.channels} powers"
                )
            x_p = self._clamp(x).pow(p)
        # the mean through the one-pass reduction (an unsorted index is sorted once per index tensor)
        dim = dim % x.dim()
        out = ops.multi_reduce(x_p, ["mean"], index, ptr, dim, dim_size).select(dim + 1, 0)
        if x_p is x:
            return out
        return self._clamp(out).pow(1.0 / p)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(learn={self.learn})"
