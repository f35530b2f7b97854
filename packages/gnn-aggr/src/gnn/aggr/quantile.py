"""Feature-wise quantiles (and the median) of each group."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from gnn.core.aggr.base import Aggregation
from gnn.core.utils import group_counts

from ._utils import norm_dim, sort_within_groups

INTERPOLATIONS = ("linear", "lower", "higher", "midpoint", "nearest")


class QuantileAggregation(Aggregation):
    r"""Feature-wise :math:`q`-th quantile of each group.

    With the ``n`` values of a group sorted, :math:`v_0 \le \dots \le v_{n-1}`,
    the quantile sits at the fractional position :math:`i = q (n - 1)`:

    - ``"linear"``: :math:`v_{\lfloor i \rfloor} + (i - \lfloor i \rfloor)
      (v_{\lceil i \rceil} - v_{\lfloor i \rfloor})`
    - ``"lower"`` / ``"higher"``: :math:`v_{\lfloor i \rfloor}` / :math:`v_{\lceil i \rceil}`
    - ``"midpoint"``: :math:`(v_{\lfloor i \rfloor} + v_{\lceil i \rceil}) / 2`
    - ``"nearest"``: the value at the rounded position; an exact tie
      (:math:`i` ending in ``.5``) is rounded to the even position counted
      over all elements (groups laid out one after another), as PyG does.

    Shapes: ``x`` ``[..., E, ..., F]`` -> ``[..., dim_size, ..., Q * F]`` for
    ``Q`` quantiles (the outputs of the quantiles are concatenated along the
    last dimension, quantile-major). Empty groups give ``fill_value``.

    Args:
        q: a quantile or a list of quantiles, each in ``[0, 1]``.
        interpolation: one of ``"linear"``, ``"lower"``, ``"higher"``,
            ``"midpoint"``, ``"nearest"``.
        fill_value: the output of empty groups.

    Example:
        >>> x = torch.tensor([[1.0], [2.0], [4.0], [8.0]]); index = torch.tensor([0, 0, 0, 0])
        >>> QuantileAggregation(0.5)(x, index)  # position 1.5 between 2 and 4
        tensor([[3.]])
    """

    interpolations = INTERPOLATIONS

    def __init__(self, q: float | Sequence[float], interpolation: str = "linear", fill_value: float = 0.0):
        super().__init__()
        qs = [float(v) for v in q] if isinstance(q, (list, tuple)) else [float(q)]
        if len(qs) == 0:
            raise ValueError("'q' must hold at least one quantile, got an empty list")
        if not all(0.0 <= v <= 1.0 for v in qs):
            raise ValueError(f"'q' must lie in [0, 1], got {q!r}")
        if interpolation not in INTERPOLATIONS:
            raise ValueError(f"'interpolation' must be one of {INTERPOLATIONS}, got {interpolation!r}")
        self._q = q
        self.register_buffer("q", torch.tensor(qs).view(-1, 1))
        self.interpolation = interpolation
        self.fill_value = fill_value

    def forward(
        self,
        x: Tensor,
        index: Tensor | None = None,
        ptr: Tensor | None = None,
        dim_size: int | None = None,
        dim: int = -2,
    ) -> Tensor:
        assert dim_size is not None
        dim = norm_dim(dim, x.dim())
        num_q = self.q.size(0)
        shape = list(x.shape)
        shape[dim] = dim_size
        if x.size(dim) == 0 or dim_size == 0:
            out = x.new_full(shape, self.fill_value)
            return torch.cat([out] * num_q, dim=-1) if num_q > 1 else out

        values = sort_within_groups(x, index, ptr, dim)
        count = group_counts(index, ptr, dim_size, dtype=torch.long)
        start = count.cumsum(0) - count
        # the position of each quantile inside its group, computed in the
        # buffer's precision (float32 unless the module was cast)
        local = self.q * (count - 1).clamp(min=0).to(self.q.dtype)  # [Q, G]
        low = local.floor()
        if self.interpolation == "nearest":
            # round the position counted over all elements, ties to even
            pos = torch.round(start.to(torch.float64) + local.to(torch.float64)).long()
            out = self._take(values, pos, dim)
        else:
            lo_pos = start + low.long()
            hi_pos = start + local.ceil().long()
            if self.interpolation == "lower":
                out = self._take(values, lo_pos, dim)
            elif self.interpolation == "higher":
                out = self._take(values, hi_pos, dim)
            else:
                lo, hi = self._take(values, lo_pos, dim), self._take(values, hi_pos, dim)
                if self.interpolation == "midpoint":
                    out = (lo + hi) / 2
                else:  # linear
                    frac = (local - low).to(x.dtype)
                    out = lo + (hi - lo) * self._view(frac, x.dim(), dim)
        empty = self._view((count == 0).view(1, -1), x.dim(), dim)
        out = out.masked_fill(empty, self.fill_value)
        if num_q == 1:
            return out.squeeze(0)
        return torch.cat(out.unbind(0), dim=-1)

    @staticmethod
    def _view(per_group: Tensor, ndim: int, dim: int) -> Tensor:
        """``[Q, G]`` -> ``[Q, 1, .., G (at dim + 1), .., 1]`` to broadcast against ``_take``."""
        shape = [per_group.size(0)] + [1] * ndim
        shape[dim + 1] = per_group.size(1)
        return per_group.view(shape)

    @staticmethod
    def _take(values: Tensor, pos: Tensor, dim: int) -> Tensor:
        """``values`` at the ``[Q, G]`` positions along ``dim`` -> ``[Q, ..., G, ..., F]``."""
        pos = pos.clamp(0, values.size(dim) - 1)
        out = values.index_select(dim, pos.reshape(-1))
        shape = list(values.shape)
        shape[dim] = pos.size(1)
        return out.view(shape[:dim] + [pos.size(0), pos.size(1)] + shape[dim + 1 :]).movedim(dim, 0)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(q={self._q})"


class MedianAggregation(QuantileAggregation):
    r"""Feature-wise median of each group: the lower median, :math:`v_{\lfloor (n-1)/2 \rfloor}`.

    Shapes: ``x`` ``[..., E, ..., F]`` -> ``[..., dim_size, ..., F]``; empty
    groups give ``fill_value``.

    Args:
        fill_value: the output of empty groups.

    Example:
        >>> x = torch.tensor([[1.0], [2.0], [4.0], [8.0]]); index = torch.tensor([0, 0, 0, 0])
        >>> MedianAggregation()(x, index)
        tensor([[2.]])
    """

    def __init__(self, fill_value: float = 0.0):
        super().__init__(0.5, "lower", fill_value)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
