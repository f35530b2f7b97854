r"""One-pass multi-reductions: any subset of sum, mean, min, max, var, std and
softmax-weighted sums of each group, computed in one pass over the groups.

For group :math:`g` with elements :math:`\mathcal{X}_g` (size :math:`n_g`), feature-wise:

=========== =====================================================================================
``sum``     :math:`\sum_{x \in \mathcal{X}_g} x`
``mean``    :math:`\frac{1}{n_g} \sum x` (0 for an empty group)
``min``     :math:`\min x` (0 for an empty group); ``max`` likewise
``var``     :math:`\frac{1}{n_g}\sum x^2 - \big(\frac{1}{n_g}\sum x\big)^2` (biased, as PyG)
``std``     :math:`\sqrt{\max(\mathrm{var}, 10^{-5})}`, set to 0 where that is
            :math:`\le \sqrt{10^{-5}}` (PyG's ``StdAggregation``)
``softmax`` :math:`\sum_x \frac{e^{t x - m_g}}{\sum_{x'} e^{t x' - m_g} + 10^{-16}}\, x` with
            :math:`m_g = \max_x t x` and inverse temperature :math:`t` (a number or a tensor
            broadcast over the features, learnable)
=========== =====================================================================================

``semi_grad`` (var, std, softmax) computes :math:`\frac{1}{n}\sum x^2`, respectively the softmax
weights, without gradient, as PyG's ``semi_grad`` options do.

Two entry points:

* :func:`multi_reduce` reduces elements ``src`` grouped by ``index`` (any order) or ``ptr``
  (sorted). The compiled backend works on the groups in sorted (CSR) order: an unsorted
  ``index`` is sorted once per index tensor and the permutation kept in the per-graph cache
  (:mod:`gnn.core.cache`), never per call; the kernel then reads ``src`` through the
  permutation, so no sorted copy of ``src`` is made.
* :func:`multi_spmm` reduces the sending nodes' features ``x[col]`` of each row of a
  :class:`~gnn.core.ops.CSR` (``MessagePassing`` with the message ``x_j``): no ``[E, F]``
  message tensor exists, forward or backward.

Both return the reductions stacked on a new axis right after the group axis (``R`` =
number of reductions), so that for 2-D inputs ``out.view(G, R * F)`` is their
concatenation along the features.

Backends: a compiled backend implements ``segment_multi(src [E, P], ptr [G + 1] int64,
perm [E] int64 or None, reductions) -> [G, R, P]`` (``perm[k]``: the row of ``src`` at sorted
position ``k``; ``None``: ``src`` is already sorted) and ``spmm_multi(graph, x [N, P],
reductions) -> [num_rows, R, P]`` (``graph`` a :class:`~gnn.core.ops.KernelGraph`); a
softmax's ``t`` reaches them as a ``[P]`` tensor. The pure-torch reference
(:mod:`gnn.core.ops.reference_multi`) takes ``(src, index, ptr, num_groups, reductions)``
and ``(csr, x, reductions)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import torch
from torch import Tensor

from .. import validation as v
from ..cache import facts, memo
from . import reference_multi
from ._dispatch import context, norm_dim, run_on_graph
from .backends import TORCH, select
from .csr import CSR

__all__ = [
    "MULTI_REDUCTIONS",
    "Reduction",
    "multi_reduce",
    "multi_spmm",
    "normalize_reductions",
    "sorted_groups",
]

#: the reductions a one-pass multi-reduction computes
MULTI_REDUCTIONS = ("sum", "mean", "min", "max", "var", "std", "softmax")
_SEMI = ("var", "std", "softmax")


class Reduction(NamedTuple):
    """One reduction of :func:`multi_reduce` / :func:`multi_spmm`.

    Attributes:
        name: one of :data:`MULTI_REDUCTIONS` (``"add"`` is read as ``"sum"``).
        t: a softmax's inverse temperature: a number, or a tensor broadcast over the
            feature dimensions (aligned with the last ones, as ``x * t`` is); may require grad.
        semi_grad: var/std: no gradient through :math:`\\frac{1}{n}\\sum x^2`; softmax: no
            gradient through the weights.
    """

    name: str
    t: float | Tensor | None = None
    semi_grad: bool = False


def normalize_reductions(reduce: str | Reduction | Sequence[str | Reduction]) -> tuple[Reduction, ...]:
    """``reduce`` (a name, a :class:`Reduction` or a sequence of them) as checked reductions."""
    items = [reduce] if isinstance(reduce, (str, Reduction)) else list(reduce)
    if not items:
        raise ValueError(f"'reduce' must name at least one of {MULTI_REDUCTIONS}, got an empty list")
    out = []
    for item in items:
        red = Reduction(item) if isinstance(item, str) else item
        if not isinstance(red, Reduction):
            raise TypeError(
                f"'reduce' entries must be names or gnn.core.ops.Reduction, got {v.describe(item)}"
            )
        name = "sum" if red.name == "add" else red.name
        if name not in MULTI_REDUCTIONS:
            raise ValueError(f"'reduce' entries must be one of {MULTI_REDUCTIONS}, got {red.name!r}")
        t = red.t
        if name == "softmax":
            if t is None:
                t = 1.0
            elif isinstance(t, bool) or not isinstance(t, (int, float, Tensor)):
                raise TypeError(f"the softmax's 't' must be a number or a tensor, got {v.describe(t)}")
        elif t is not None:
            raise ValueError(f"only the softmax takes 't', got t={v.describe(t)} for {name!r}")
        if red.semi_grad and name not in _SEMI:
            raise ValueError(f"'semi_grad' applies to {_SEMI} only, got it for {name!r}")
        out.append(Reduction(name, float(t) if isinstance(t, (int, float)) else t, bool(red.semi_grad)))
    return tuple(out)


def _flat_temperatures(
    reductions: tuple[Reduction, ...], features: tuple[int, ...], dtype: torch.dtype, device: torch.device
) -> tuple[Reduction, ...]:
    """Each softmax's ``t`` as a ``[P]`` tensor over the flattened feature dimensions."""
    size = math.prod(features)
    out = []
    for red in reductions:
        if red.name == "softmax":
            t = red.t
            if isinstance(t, Tensor):
                try:
                    shape = torch.broadcast_shapes(t.shape, features)
                except RuntimeError:
                    shape = None
                if shape != torch.Size(features):
                    raise ValueError(
                        f"the softmax's 't' must broadcast over the feature dimensions {list(features)}, "
                        f"got {v.describe(t)}"
                    )
                t = t.to(device=device, dtype=dtype).expand(features).reshape(size)
            else:
                t = torch.full((size,), float(t), dtype=dtype, device=device)
            red = red._replace(t=t)
        out.append(red)
    return tuple(out)


def _tensors(reductions: tuple[Reduction, ...]) -> list[Tensor]:
    return [r.t for r in reductions if isinstance(r.t, Tensor)]


def _cache_owner(index: Tensor) -> tuple[Tensor, tuple[Any, ...]]:
    """The tensor whose per-graph cache keeps facts about ``index``, and what tells ``index``
    apart there: a row view like ``edge_index[1]`` is a new object on every call, so its facts
    are kept with the tensor it views (which shares its in-place version counter)."""
    if torch.compiler.is_compiling():  # nothing is cached while tracing
        return index, ()
    base = index._base
    if base is None:
        return index, ()
    return base, (index.storage_offset(), index.stride(0), index.numel(), index.dtype)


def _sort_groups(index: Tensor, num_groups: int) -> tuple[Tensor, Tensor | None]:
    if index.numel() > 1 and not torch.compiler.is_compiling():
        in_order = bool((index[1:] >= index[:-1]).all())
        perm = None if in_order else torch.argsort(index, stable=True)
    elif index.numel() > 1:  # no data-dependent branch in a trace
        perm = torch.argsort(index, stable=True)
    else:
        perm = None
    rows = index if perm is None else index.index_select(0, perm)
    ptr = torch._convert_indices_from_coo_to_csr(rows.long(), num_groups)
    return ptr, perm


class _IndexState:
    """What the per-graph cache keeps about one index tensor (and number of groups)."""

    __slots__ = ("uses", "groups")

    def __init__(self) -> None:
        self.uses = 0
        self.groups: tuple[Tensor, Tensor | None] | None = None


def _state(index: Tensor, num_groups: int) -> _IndexState | None:
    """The cached state of ``index``, or ``None`` when nothing may be cached now (tracing, the
    per-graph cache switched off)."""
    owner, where = _cache_owner(index)
    if facts(owner) is None:
        return None
    return memo(owner, ("index_state", where, num_groups), _IndexState)


def sorted_groups(index: Tensor, num_groups: int) -> tuple[Tensor, Tensor | None]:
    """``(ptr, perm)``: CSR offsets ``[num_groups + 1]`` (int64) of the groups of ``index`` and
    the stable sorting permutation ``perm`` (int64; ``None`` when ``index`` is sorted already).

    Computed once per index tensor and kept in the per-graph cache (keyed on the tensor, or
    for a view such as ``edge_index[1]`` on the tensor it views, and its in-place version).
    ``index`` must lie in ``[0, num_groups)`` (checked by the caller).

    Example:
        >>> sorted_groups(torch.tensor([2, 0, 2]), 3)
        (tensor([0, 1, 1, 3]), tensor([1, 0, 2]))
    """
    state = _state(index, num_groups)
    if state is None:
        return _sort_groups(index, num_groups)
    if state.groups is None:
        state.groups = _sort_groups(index, num_groups)
    return state.groups


def _scatter(src: Tensor, index: Tensor, dim: int, dim_size: int, reduce: str) -> Tensor:
    from .reduce import scatter

    return scatter(src, index, dim, dim_size, reduce)


def _groups_if_worth_it(index: Tensor, num_groups: int) -> tuple[Tensor, Tensor | None] | None:
    """The sorted groups of ``index`` (:func:`sorted_groups`) when they are cached, the index is
    sorted already, or it is used for the second time; ``None`` the first time an unsorted index
    is used. Sorting costs several reductions' worth of time, so it is done for an index that is
    used again (the layers of a model share their graph), never for one used once."""
    state = _state(index, num_groups)
    if state is None:  # tracing (then sort: no data-dependent branch), or the cache is off
        return _sort_groups(index, num_groups) if torch.compiler.is_compiling() else None
    state.uses += 1
    if state.groups is None:
        if state.uses > 1:
            state.groups = _sort_groups(index, num_groups)
        elif index.numel() < 2 or bool((index[1:] >= index[:-1]).all()):
            state.groups = (torch._convert_indices_from_coo_to_csr(index.long(), num_groups), None)
    return state.groups


def _check_groups(
    src: Tensor, index: Tensor | None, ptr: Tensor | None, dim: int, dim_size: int | None
) -> int:
    num = src.size(dim)
    if ptr is not None:
        v.check_ptr("ptr", ptr, num)
        if dim_size is not None and dim_size != ptr.numel() - 1:
            raise ValueError(
                f"'dim_size' ({dim_size}) must equal the number of groups in 'ptr' ({ptr.numel() - 1})"
            )
        return ptr.numel() - 1
    if index is None:
        raise ValueError("multi_reduce needs 'index' or 'ptr'")
    v.check_tensor("index", index)
    v.check_index_dtype("index", index)
    if index.dim() != 1:
        raise ValueError(f"'index' must be 1-D, got {v.describe(index)}")
    if index.numel() != num:
        raise ValueError(f"'index' has {index.numel()} entries but 'src' has {num} along dim {dim}")
    if dim_size is None:
        dim_size = int(index.max()) + 1 if index.numel() else 0
    elif dim_size < 0:
        raise ValueError(f"'dim_size' must be non-negative, got {dim_size}")
    owner, where = _cache_owner(index)
    if v.validation_enabled() and index.numel():  # one range check per index tensor and size
        memo(owner, ("range_checked", where, dim_size), lambda: _range_check(index, dim_size))
    return dim_size


def _range_check(index: Tensor, dim_size: int) -> bool:
    v.check_index_range("index", index, dim_size, "groups ('dim_size')")
    return True


def multi_reduce(
    src: Tensor,
    reduce: str | Reduction | Sequence[str | Reduction],
    index: Tensor | None = None,
    ptr: Tensor | None = None,
    dim: int = 0,
    dim_size: int | None = None,
) -> Tensor:
    """Several reductions of the groups of ``src`` in one pass (see the module docstring).

    Args:
        src: ``[*pre, E, *post]`` values, grouped along ``dim``.
        reduce: the reductions: names from :data:`MULTI_REDUCTIONS` or :class:`Reduction`
            entries (repeats allowed, e.g. softmaxes of several temperatures).
        index: ``[E]`` group of each element (any order, int32 or int64).
        ptr: ``[G + 1]`` offsets of elements sorted by group (instead of ``index``).
        dim: the dimension of the elements.
        dim_size: number of groups ``G`` (default ``index.max() + 1``).

    Returns:
        ``[*pre, G, R, *post]``: reduction ``r`` of group ``g`` at ``[..., g, r, ...]``. Empty
        groups give 0 for every reduction.

    Example:
        >>> src = torch.tensor([[1.0], [3.0], [5.0]])
        >>> multi_reduce(src, ["mean", "max", "var"], torch.tensor([0, 0, 1])).squeeze(-1)
        tensor([[2., 3., 1.],
                [5., 5., 0.]])
    """
    reductions = normalize_reductions(reduce)
    v.check_tensor("src", src)
    if src.dim() == 0:
        raise ValueError(f"'src' must have at least one dimension, got {v.describe(src)}")
    dim = norm_dim(dim, src.dim())
    num_groups = _check_groups(src, index, ptr, dim, dim_size)
    pre, post = tuple(src.shape[:dim]), tuple(src.shape[dim + 1 :])
    features = pre + post
    flat = _flat_temperatures(reductions, features, src.dtype, src.device)
    moved = src.movedim(dim, 0) if pre else src
    src2d = moved.reshape(moved.size(0), math.prod(features))
    ctx = context(src, None, *_tensors(flat), work=src.numel())
    name, impl = select("segment_multi", **ctx)
    groups = None
    if name != TORCH:
        groups = (ptr.long(), None) if ptr is not None else _groups_if_worth_it(index, num_groups)
    if groups is None:
        # the pure-torch reference, or an unsorted index seen for the first time: the reductions one
        # by one, each through gnn.core.ops.scatter (on the best backend for it)
        scatter_fn = reference_multi.scatter if name == TORCH else _scatter
        out = reference_multi.segment_multi(src2d, index, ptr, num_groups, flat, scatter_fn)
    else:
        out = impl(src2d, groups[0], groups[1], flat)
    out = out.view((num_groups, len(reductions)) + features)
    if pre:  # [G, R, *pre, *post] -> [*pre, G, R, *post]
        order = list(range(2, 2 + len(pre))) + [0, 1] + list(range(2 + len(pre), out.dim()))
        out = out.permute(order)
    return out


def multi_spmm(csr: CSR, x: Tensor, reduce: str | Reduction | Sequence[str | Reduction]) -> Tensor:
    """Several reductions of the senders' features of each row in one pass:
    ``out[i, r] = reduce_r {x[col[e]] : e in row i}``, with no ``[E, F]`` message tensor.

    Args:
        csr: the graph in CSR form (rows receive, columns send).
        x: ``[num_cols, *F]`` features of the sending nodes.
        reduce: the reductions (see :func:`multi_reduce`).

    Returns:
        ``[num_rows, R, *F]``; rows without entries give 0.

    Example:
        >>> csr = ops.from_coo(torch.tensor([1, 1]), torch.tensor([0, 2]), 3, 3)
        >>> multi_spmm(csr, torch.tensor([[1.0], [2.0], [4.0]]), ["sum", "max"])[1].view(-1)
        tensor([5., 4.])
    """
    reductions = normalize_reductions(reduce)
    if not isinstance(csr, CSR):
        raise TypeError(f"'csr' must be a gnn.core.ops.CSR, got {type(csr).__name__}")
    v.check_tensor("x", x)
    if x.dim() == 0 or x.size(0) != csr.num_cols:
        raise ValueError(f"'x' must have {csr.num_cols} rows (the graph's source nodes), got {v.describe(x)}")
    features = tuple(x.shape[1:])
    flat = _flat_temperatures(reductions, features, x.dtype, x.device)
    x2d = x.reshape(x.size(0), math.prod(features))
    ctx = context(x, None, *_tensors(flat), work=csr.nnz * x2d.size(1))
    out = run_on_graph("spmm_multi", ctx, csr, x2d, flat)
    return out.view((csr.num_rows, len(reductions)) + features)
