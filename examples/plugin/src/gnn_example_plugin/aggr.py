"""``LogSumExpAggregation``: a smooth maximum of each group."""

from __future__ import annotations

import torch
from torch import Tensor

from gnn.core import Aggregation


class LogSumExpAggregation(Aggregation):
    r"""Feature-wise log-sum-exp of each group.

    .. math::
        \mathrm{lse}(\mathcal{X}) = \log \sum_{x_k \in \mathcal{X}} \exp(x_k)
        = m + \log \sum_{x_k \in \mathcal{X}} \exp(x_k - m),\quad m = \max_{x_k \in \mathcal{X}} x_k

    computed in the shifted form so that large inputs do not overflow. Empty
    groups give 0.

    Shapes:
        ``x`` ``[..., E, ..., F]`` grouped along ``dim`` by ``index`` ``[E]``
        (or sorted, by ``ptr`` ``[G + 1]``) -> ``[..., G, ..., F]``.

    Example:
        >>> aggr = LogSumExpAggregation()
        >>> aggr(torch.tensor([[0.0], [0.0], [1.0]]), torch.tensor([0, 0, 1]))
        tensor([[0.6931],
                [1.0000]])
    """

    def forward(
        self,
        x: Tensor,
        index: Tensor | None = None,
        ptr: Tensor | None = None,
        dim_size: int | None = None,
        dim: int = -2,
    ) -> Tensor:
        dim = dim % x.dim()
        if index is None:
            assert ptr is not None  # Aggregation.__call__ fills index or ptr
            counts = ptr[1:] - ptr[:-1]
            index = torch.repeat_interleave(torch.arange(counts.numel(), device=x.device), counts)
        # the group maximum, detached: the result does not depend on the shift
        peak = self.reduce(x.detach(), index, ptr, dim_size, dim, reduce="max")
        shifted = torch.exp(x - peak.index_select(dim, index))
        total = self.reduce(shifted, index, ptr, dim_size, dim, reduce="sum")
        out = peak + torch.log(total.clamp_min(torch.finfo(x.dtype).tiny))
        return torch.where(total > 0, out, torch.zeros_like(out))
