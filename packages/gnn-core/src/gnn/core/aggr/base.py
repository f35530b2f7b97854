"""The :class:`Aggregation` base class (PyG 2.8's API)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from .. import ops
from .. import validation as v
from ..cache import memo
from ..ops.multi import _cache_owner
from ..utils.dense import to_dense_batch
from ..utils.groups import group_counts, ptr_to_index


class Aggregation(torch.nn.Module):
    """Base class of aggregations: reduce a set of elements into one vector per group.

    An aggregation maps ``x`` of shape ``[..., E, ..., F]`` (elements along
    ``dim``) and a group assignment into ``[..., dim_size, ..., F']``. The
    assignment is either ``index`` (``[E]``, any order) or ``ptr``
    (``[dim_size + 1]`` offsets of elements sorted by group).

    Subclasses implement :meth:`forward` with the signature
    ``forward(x, index=None, ptr=None, dim_size=None, dim=-2, **kwargs)``
    and usually call :meth:`reduce` (which goes through :mod:`gnn.core.ops`)
    or :meth:`to_dense_batch`. Calling the module validates the arguments
    and fills defaults: no ``index``/``ptr`` means one group, ``dim_size``
    defaults to ``ptr.numel() - 1`` or ``index.max() + 1``.

    An aggregation computed from one-pass reductions (:func:`gnn.core.ops.multi_reduce`)
    says so with :meth:`one_pass_reductions` and :meth:`one_pass_finish`; containers
    (``MultiAggregation``, ``DegreeScalerAggregation``) and the fused message-passing path
    then compute it together with the others in one pass over the groups
    (:func:`run_one_pass`).

    Example:
        >>> from gnn.core import MeanAggregation
        >>> x = torch.randn(6, 4); index = torch.tensor([0, 0, 1, 1, 1, 3])
        >>> MeanAggregation()(x, index).shape
        torch.Size([4, 4])
    """

    def __call__(
        self,
        x: Tensor,
        index: Tensor | None = None,
        ptr: Tensor | None = None,
        dim_size: int | None = None,
        dim: int = -2,
        **kwargs: Any,
    ) -> Tensor:
        if isinstance(x, torch.fx.Proxy):
            # symbolic tracing (torch.fx, e.g. gnn.hetero.to_hetero): the call is recorded as is
            return super().__call__(x, index=index, ptr=ptr, dim_size=dim_size, dim=dim, **kwargs)
        v.check_tensor("x", x)
        if not -x.dim() <= dim < x.dim():
            raise ValueError(
                f"'dim' {dim} is out of range for 'x' with {x.dim()} dimensions ({v.describe(x)})"
            )
        num_elements = x.size(dim)
        if ptr is not None:
            v.check_ptr("ptr", ptr, num_elements)
            if dim_size is None:
                dim_size = ptr.numel() - 1
            elif dim_size != ptr.numel() - 1:
                raise ValueError(
                    f"'dim_size' ({dim_size}) must equal the number of groups in 'ptr' ({ptr.numel() - 1})"
                )
        if index is None and ptr is None:
            index = torch.zeros(num_elements, dtype=torch.long, device=x.device)
            dim_size = 1 if dim_size is None else dim_size
        if index is not None:
            v.check_tensor("index", index)
            v.check_index_dtype("index", index)
            if index.dim() != 1:
                raise ValueError(f"'index' must be 1-D, got {v.describe(index)}")
            if index.numel() != num_elements:
                raise ValueError(
                    f"'index' has {index.numel()} entries but 'x' has {num_elements} elements along dim {dim}"
                )
            if dim_size is None:
                dim_size = _index_bound(index)
            elif dim_size < 0:
                raise ValueError(f"'dim_size' must be non-negative, got {dim_size}")
            if v.validation_enabled() and index.numel():  # once per index tensor and size
                owner, where = _cache_owner(index)
                memo(owner, ("range_checked", where, dim_size), lambda: _check_range(index, dim_size))
        return super().__call__(x, index=index, ptr=ptr, dim_size=dim_size, dim=dim, **kwargs)

    def forward(
        self,
        x: Tensor,
        index: Tensor | None = None,
        ptr: Tensor | None = None,
        dim_size: int | None = None,
        dim: int = -2,
    ) -> Tensor:
        """Aggregate ``x`` (``[..., E, ..., F]``) into ``[..., dim_size, ..., F']``."""
        raise NotImplementedError

    def reset_parameters(self) -> None:
        """Reset learnable parameters (none by default)."""

    # -- one-pass protocol ----------------------------------------------------------------
    def one_pass_reductions(self) -> tuple[ops.Reduction, ...] | None:
        """The reductions of :func:`gnn.core.ops.multi_reduce` this aggregation is computed
        from, or ``None`` when it is not (the default).

        Implementations return ``None`` for a subclass that overrides ``forward``
        (:meth:`forward_overridden`): its result is no longer theirs."""
        return None

    def forward_overridden(self, owner: type) -> bool:
        """Whether this object's class overrides ``forward`` of ``owner`` (one of its bases)."""
        return type(self).forward is not owner.forward

    def one_pass_finish(self, out: Tensor, counts: Callable[[], Tensor], dim: int) -> Tensor:
        """This aggregation's result from the outputs of its :meth:`one_pass_reductions`.

        Args:
            out: ``[*pre, G, R, *post]``, the ``R`` reductions on axis ``dim + 1``.
            counts: gives the ``[G]`` group sizes (computed on first call).
            dim: the (non-negative) group axis.

        The default returns the single reduction.
        """
        return out.select(dim + 1, 0)

    # -- helpers for subclasses -----------------------------------------------------------
    def reduce(
        self,
        x: Tensor,
        index: Tensor | None = None,
        ptr: Tensor | None = None,
        dim_size: int | None = None,
        dim: int = -2,
        reduce: str = "sum",
    ) -> Tensor:
        """Basic reduction over groups, through :mod:`gnn.core.ops`.

        Uses the segment (``ptr``) path when ``ptr`` is given, else scatter.
        """
        if ptr is not None:
            return ops.segment(x, ptr, dim=dim, reduce=reduce)
        if index is None:
            raise ValueError(f"{type(self).__name__} needs 'index' or 'ptr'")
        return ops.scatter(x, index, dim=dim, dim_size=dim_size, reduce=reduce)

    def to_dense_batch(
        self,
        x: Tensor,
        index: Tensor | None = None,
        ptr: Tensor | None = None,
        dim_size: int | None = None,
        dim: int = -2,
        fill_value: float = 0.0,
        max_num_elements: int | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Pad the groups into ``[dim_size, max_elements, F]`` and a mask.

        Needs sorted ``index`` and 2-D ``x`` aggregated along its first dim.
        """
        self.assert_two_dimensional_input(x, dim)
        if index is None and ptr is not None:
            index = ptr_to_index(ptr, x.size(0))
        self.assert_index_present(index)
        self.assert_sorted_index(index)
        return to_dense_batch(
            x, index, fill_value=fill_value, max_num_nodes=max_num_elements, batch_size=dim_size
        )

    def assert_index_present(self, index: Tensor | None) -> None:
        if index is None:
            raise ValueError(f"{type(self).__name__} needs 'index' (or 'ptr') to be given")

    def assert_sorted_index(self, index: Tensor | None) -> None:
        if (
            index is not None
            and v.validation_enabled()
            and index.numel() > 1
            and bool((index[1:] < index[:-1]).any())
        ):
            raise ValueError(
                f"{type(self).__name__} needs 'index' sorted in ascending order "
                "(sort the elements by group first)"
            )

    def assert_two_dimensional_input(self, x: Tensor, dim: int) -> None:
        if x.dim() != 2:
            raise ValueError(f"{type(self).__name__} needs 2-D 'x', got {v.describe(x)}")
        if dim not in (-2, 0):
            raise ValueError(f"{type(self).__name__} aggregates along dim 0/-2 only, got dim={dim}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def _index_bound(index: Tensor) -> int:
    """``index.max() + 1`` (0 for an empty index), once per index tensor."""
    if not index.numel():
        return 0
    owner, where = _cache_owner(index)
    return memo(owner, ("max_plus_one", where), lambda: int(index.max()) + 1)


def _check_range(index: Tensor, dim_size: int) -> bool:
    v.check_index_range("index", index, dim_size, "groups ('dim_size' too small?)")
    return True


def group_sizes(index: Tensor | None, ptr: Tensor | None, dim_size: int, dtype: torch.dtype) -> Tensor:
    """``[G]`` number of elements per group (from ``ptr``, else counted once per index tensor)."""
    if ptr is not None:
        return (ptr[1:] - ptr[:-1]).to(dtype)
    assert index is not None
    owner, where = _cache_owner(index)
    counts = memo(owner, ("group_sizes", where, dim_size), lambda: group_counts(index, None, dim_size))
    return counts.to(dtype)


def run_one_pass(
    aggr: Aggregation,
    x: Tensor,
    index: Tensor | None,
    ptr: Tensor | None,
    dim_size: int | None,
    dim: int,
    reductions: tuple[ops.Reduction, ...] | None = None,
) -> Tensor:
    """``aggr`` (whose :meth:`~Aggregation.one_pass_reductions` are not ``None``) computed by one
    :func:`gnn.core.ops.multi_reduce` call and its :meth:`~Aggregation.one_pass_finish`."""
    if reductions is None:
        reductions = aggr.one_pass_reductions()
        assert reductions is not None
    dim = dim % x.dim()
    out = ops.multi_reduce(x, reductions, index, ptr, dim, dim_size)
    groups = out.size(dim)
    return aggr.one_pass_finish(out, lambda: group_sizes(index, ptr, groups, x.dtype), dim)
