"""Softmax aggregation with a (learnable) inverse temperature (DeeperGCN)."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import Parameter

from gnn.core import ops
from gnn.core.aggr.base import Aggregation, run_one_pass


class SoftmaxAggregation(Aggregation):
    r"""Softmax aggregation from `DeeperGCN <https://arxiv.org/abs/2006.07739>`_.

    .. math::
        \mathrm{softmax}(\mathcal{X} | t) = \sum_{x_i \in \mathcal{X}}
        \frac{\exp(t \cdot x_i)}{\sum_{x_j \in \mathcal{X}} \exp(t \cdot x_j)} \cdot x_i

    feature-wise, with inverse temperature :math:`t`. :math:`t \to 0` gives
    the mean, :math:`t \to \infty` the max.

    Shapes: ``x`` ``[..., E, ..., F]`` -> ``[..., dim_size, ..., F]``; empty
    groups give 0. Computed in one pass over the groups with a fused backward
    (:func:`gnn.core.ops.multi_reduce`): no ``[E, F]`` weight tensor is kept.

    Args:
        t: initial inverse temperature.
        learn: make ``t`` a learnable parameter (shape ``[channels]``).
        semi_grad: compute the softmax weights without autograd (only when
            ``t`` is not learnable); saves memory and time in backward.
        channels: number of independent temperatures (one per feature
            channel; needs ``learn=True``).

    Example:
        >>> x = torch.tensor([[0.0], [1.0]]); index = torch.tensor([0, 0])
        >>> SoftmaxAggregation(t=1.0)(x, index)  # (0 * 1 + 1 * e) / (1 + e)
        tensor([[0.7311]])
    """

    def __init__(self, t: float = 1.0, learn: bool = False, semi_grad: bool = False, channels: int = 1):
        super().__init__()
        if learn and semi_grad:
            raise ValueError(
                "'semi_grad' cannot be enabled in SoftmaxAggregation when the temperature 't' is "
                "learnable (learn=True)"
            )
        if not learn and channels != 1:
            raise ValueError(
                f"'channels' must be 1 when SoftmaxAggregation is not learnable (learn=False), got {channels}"
            )
        if channels < 1:
            raise ValueError(f"'channels' must be positive, got {channels}")
        self._init_t = t
        self.learn = learn
        self.semi_grad = semi_grad
        self.channels = channels
        self.t: Tensor | float = Parameter(torch.empty(channels)) if learn else t
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if isinstance(self.t, Tensor):
            with torch.no_grad():
                self.t.fill_(self._init_t)

    def one_pass_reductions(self) -> tuple[ops.Reduction, ...] | None:
        return None if self.forward_overridden(SoftmaxAggregation) else self._reductions()

    def _reductions(self) -> tuple[ops.Reduction, ...]:
        return (ops.Reduction("softmax", t=self.t, semi_grad=self.semi_grad),)

    def forward(
        self,
        x: Tensor,
        index: Tensor | None = None,
        ptr: Tensor | None = None,
        dim_size: int | None = None,
        dim: int = -2,
    ) -> Tensor:
        if self.channels != 1 and x.size(-1) != self.channels:
            raise ValueError(
                f"'x' has {x.size(-1)} channels but SoftmaxAggregation has {self.channels} temperatures"
            )
        return run_one_pass(self, x, index, ptr, dim_size, dim, self._reductions())

    def __repr__(self) -> str:
        return f"{type(self).__name__}(learn={self.learn})"
