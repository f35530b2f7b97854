"""Several aggregations at once, combined by concatenation, projection,
attention or an element-wise reduction (PNA, "Adaptive Filters")."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from gnn.core import ops
from gnn.core.aggr.base import Aggregation, group_sizes, run_one_pass

MODES = ("cat", "proj", "attn", "sum", "mean", "max", "min", "logsumexp", "std", "var")


class _HeadLinears(torch.nn.Module):
    """One linear map per aggregation output (``lins["0"]``, ``lins["1"]``, ...).

    ``in_channels = -1`` makes the map lazy (its input size is inferred on
    the first call).
    """

    def __init__(self, in_channels: Sequence[int], out_channels: int) -> None:
        super().__init__()
        self.lins = torch.nn.ModuleDict(
            {
                str(i): torch.nn.LazyLinear(out_channels) if c < 0 else torch.nn.Linear(c, out_channels)
                for i, c in enumerate(in_channels)
            }
        )

    def reset_parameters(self) -> None:
        for lin in self.lins.values():
            if not isinstance(lin, torch.nn.LazyLinear) or not lin.has_uninitialized_params():
                lin.reset_parameters()

    def forward(self, xs: Sequence[Tensor]) -> list[Tensor]:
        return [self.lins[str(i)](x) for i, x in enumerate(xs)]


class MultiAggregation(Aggregation):
    r"""Runs several aggregations on the same input and combines their outputs.

    For aggregations :math:`\bigoplus_1, \dots, \bigoplus_A` with outputs
    :math:`h_a = \bigoplus_a(\mathcal{X})`, ``mode`` gives

    - ``"cat"``: :math:`[h_1 \| \dots \| h_A]` (concatenated along the last dim)
    - ``"proj"``: :math:`W [h_1 \| \dots \| h_A] + b`
      (``mode_kwargs``: ``in_channels``, ``out_channels``, other
      :class:`torch.nn.Linear` arguments)
    - ``"attn"``: each :math:`h_a` is mapped by its own linear layer to
      ``out_channels``, the ``A`` results attend to each other with
      :class:`torch.nn.MultiheadAttention` (``mode_kwargs``: ``in_channels``,
      ``out_channels``, ``num_heads``, other attention arguments) and are
      averaged
    - ``"sum"``, ``"mean"``, ``"max"``, ``"min"``, ``"logsumexp"``,
      ``"std"``, ``"var"``: that reduction over the ``A`` outputs
      (``std``/``var`` unbiased).

    With a single aggregation its output is returned as is.

    The aggregations that are one-pass reductions (sum, mean, min, max, var,
    std, softmax, ...: see :func:`gnn.core.ops.multi_reduce`) are computed
    together in one pass over the groups, with one fused backward; the others
    run one by one.

    Shapes: ``x`` ``[..., E, ..., F]`` -> ``[..., dim_size, ..., F']`` with
    ``F'`` given by :meth:`get_out_channels`.

    Args:
        aggrs: aggregations: names, classes or instances, each resolved
            through ``gnn.core.registry.aggregations``.
        aggrs_kwargs: one dict of constructor arguments per aggregation.
        mode: how the outputs are combined (see above).
        mode_kwargs: arguments of the combination (``"proj"``/``"attn"``).

    Example:
        >>> aggr = MultiAggregation(["mean", "max"])
        >>> aggr(torch.randn(6, 4), torch.tensor([0, 0, 1, 1, 1, 2])).shape
        torch.Size([3, 8])
    """

    def __init__(
        self,
        aggrs: list[str | Aggregation],
        aggrs_kwargs: list[dict[str, Any]] | None = None,
        mode: str | None = "cat",
        mode_kwargs: dict[str, Any] | None = None,
    ):
        super().__init__()
        from gnn.core.registry import aggregations

        if not isinstance(aggrs, (list, tuple)):
            raise ValueError(f"'aggrs' of MultiAggregation must be a list, got {type(aggrs).__name__}")
        if len(aggrs) == 0:
            raise ValueError("'aggrs' of MultiAggregation must not be empty")
        if aggrs_kwargs is None:
            aggrs_kwargs = [{}] * len(aggrs)
        elif len(aggrs_kwargs) != len(aggrs):
            raise ValueError(
                f"'aggrs_kwargs' must hold one dict per aggregation: got {len(aggrs_kwargs)} "
                f"for {len(aggrs)} entries in 'aggrs'"
            )
        mode = "cat" if mode is None else mode
        if mode not in MODES:
            raise ValueError(f"'mode' of MultiAggregation must be one of {MODES}, got {mode!r}")

        self.aggrs = torch.nn.ModuleList(
            [aggregations.resolve(aggr, **(kwargs or {})) for aggr, kwargs in zip(aggrs, aggrs_kwargs)]
        )
        self.mode = mode
        mode_kwargs = dict(mode_kwargs or {})
        self.in_channels = mode_kwargs.pop("in_channels", None)
        self.out_channels = mode_kwargs.pop("out_channels", None)

        if mode in ("proj", "attn"):
            if len(self.aggrs) == 1:
                raise ValueError(
                    f"mode {mode!r} of MultiAggregation needs more than one aggregation in 'aggrs'"
                )
            if self.in_channels is None or self.out_channels is None:
                raise ValueError(
                    f"mode {mode!r} of MultiAggregation needs 'in_channels' and 'out_channels' in 'mode_kwargs'"
                )
            if isinstance(self.in_channels, int):
                self.in_channels = [self.in_channels] * len(self.aggrs)
            self.in_channels = list(self.in_channels)
            if len(self.in_channels) != len(self.aggrs):
                raise ValueError(
                    f"'in_channels' in 'mode_kwargs' must give one size per aggregation "
                    f"({len(self.aggrs)}), got {len(self.in_channels)}"
                )
        if mode == "proj":
            self.lin = torch.nn.Linear(sum(self.in_channels), self.out_channels, **mode_kwargs)
        elif mode == "attn":
            num_heads = mode_kwargs.pop("num_heads", 1)
            self.lin_heads = _HeadLinears(self.in_channels, self.out_channels)
            self.multihead_attn = torch.nn.MultiheadAttention(self.out_channels, num_heads, **mode_kwargs)

    def reset_parameters(self) -> None:
        for aggr in self.aggrs:
            aggr.reset_parameters()
        if self.mode == "proj":
            self.lin.reset_parameters()
        elif self.mode == "attn":
            self.lin_heads.reset_parameters()
            self.multihead_attn._reset_parameters()

    def get_out_channels(self, in_channels: int) -> int:
        """The size of the last output dimension for inputs with ``in_channels`` features."""
        if self.out_channels is not None:
            return self.out_channels
        if self.mode == "cat":
            return in_channels * len(self.aggrs)
        return in_channels

    def one_pass_reductions(self) -> tuple[ops.Reduction, ...] | None:
        """Every aggregation's reductions, in order (``None`` unless all are one-pass)."""
        if self.forward_overridden(MultiAggregation):
            return None
        parts = [aggr.one_pass_reductions() for aggr in self.aggrs]
        if any(part is None for part in parts):
            return None
        return tuple(red for part in parts for red in part)

    def one_pass_finish(self, out: Tensor, counts: Callable[[], Tensor], dim: int) -> Tensor:
        return self.combine(self._split(out, list(self.aggrs), counts, dim))

    def _split(
        self, out: Tensor, aggrs: list[Aggregation], counts: Callable[[], Tensor], dim: int
    ) -> list[Tensor]:
        """Each aggregation's result from its slice of the stacked reductions ``out``."""
        if self.mode == "cat" and out.dim() == dim + 3 and len(aggrs) > 1 and all(_plain(a) for a in aggrs):
            # one reduction each, concatenated along the last dim: [.., G, R, F] is [.., G, R * F] already
            return [out.flatten(dim + 1)]
        results, start = [], 0
        for aggr in aggrs:
            size = len(aggr.one_pass_reductions())
            results.append(aggr.one_pass_finish(out.narrow(dim + 1, start, size), counts, dim))
            start += size
        return results

    def forward(
        self,
        x: Tensor,
        index: Tensor | None = None,
        ptr: Tensor | None = None,
        dim_size: int | None = None,
        dim: int = -2,
    ) -> Tensor:
        fused = [aggr for aggr in self.aggrs if aggr.one_pass_reductions() is not None]
        if len(fused) == len(self.aggrs):
            reductions = tuple(red for aggr in fused for red in aggr.one_pass_reductions())
            return run_one_pass(self, x, index, ptr, dim_size, dim, reductions)
        if len(fused) < 2:
            return self.combine([aggr(x, index, ptr=ptr, dim_size=dim_size, dim=dim) for aggr in self.aggrs])
        # the one-pass aggregations together, the others one by one, combined in the given order
        reductions = tuple(red for aggr in fused for red in aggr.one_pass_reductions())
        dim = dim % x.dim()
        out = ops.multi_reduce(x, reductions, index, ptr, dim, dim_size)
        groups = out.size(dim)

        def sizes() -> Tensor:
            return group_sizes(index, ptr, groups, x.dtype)

        results, start = {}, 0
        for aggr in fused:
            size = len(aggr.one_pass_reductions())
            results[id(aggr)] = aggr.one_pass_finish(out.narrow(dim + 1, start, size), sizes, dim)
            start += size
        outs = [
            results[id(aggr)] if id(aggr) in results else aggr(x, index, ptr=ptr, dim_size=dim_size, dim=dim)
            for aggr in self.aggrs
        ]
        return self.combine(outs)

    def combine(self, inputs: list[Tensor]) -> Tensor:
        """Combine the ``A`` aggregation outputs according to ``mode``."""
        if len(inputs) == 1:
            return inputs[0]
        if self.mode == "cat":
            return torch.cat(inputs, dim=-1)
        if self.mode == "proj":
            return self.lin(torch.cat(inputs, dim=-1))
        if self.mode == "attn":
            heads = torch.stack(self.lin_heads(inputs), dim=0)  # [A, ..., out]
            lead = heads.shape[1:-1]
            seq = heads.reshape(heads.size(0), -1, heads.size(-1))  # [A, batch, out]
            out, _ = self.multihead_attn(seq, seq, seq, need_weights=False)
            return out.mean(dim=0).view(*lead, heads.size(-1))
        stacked = torch.stack(inputs, dim=0)
        if self.mode in ("max", "min"):
            return getattr(stacked, self.mode)(dim=0).values
        return getattr(stacked, self.mode)(dim=0)

    def __repr__(self) -> str:
        body = "".join(f"  {aggr},\n" for aggr in self.aggrs)
        return f"{type(self).__name__}([\n{body}], mode={self.mode})"


def _plain(aggr: Aggregation) -> bool:
    """One reduction whose result is returned as is (the default finish)."""
    reductions = aggr.one_pass_reductions()
    return (
        reductions is not None
        and len(reductions) == 1
        and type(aggr).one_pass_finish is Aggregation.one_pass_finish
    )
