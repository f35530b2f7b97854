r"""Top-:math:`k` node selection per graph, shared by every selection pool.

:func:`topk` keeps, in each graph of a batch, the :math:`k` nodes of highest
score (or, with ``min_score``, the nodes scoring above a threshold);
:class:`SelectTopK` is the learned scorer in front of it
(:math:`y = \sigma(\mathbf{X}\mathbf{p} / \lVert\mathbf{p}\rVert)`) that
TopKPooling, SAGPooling, ASAPooling and PANPooling hold as their ``select``
submodule (state key ``select.weight``, as in PyG).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor
from torch.nn import Parameter

from gnn.core import ops
from gnn.core import validation as v
from gnn.core.nn.inits import uniform
from gnn.core.nn.mlp import resolve_activation

from .gate import project_gate

__all__ = ["SelectTopK", "check_ratio", "check_min_score", "resolve_nonlinearity", "topk", "topk_counts"]


def check_ratio(ratio: Any, min_score: Any = None, name: str = "ratio") -> int | float | None:
    """``ratio`` is a float in ``(0, 1)``, or a number ``>= 1`` (then ``k = int(ratio)``, as PyG).

    ``None`` is allowed only together with a ``min_score``.
    """
    if ratio is None:
        if min_score is None:
            raise ValueError(f"'{name}' and 'min_score' cannot both be None: give one of them")
        return None
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)):
        raise TypeError(f"'{name}' must be a float in (0, 1) or an int >= 1, got {v.describe(ratio)}")
    if not (ratio > 0 and math.isfinite(ratio)):
        raise ValueError(f"'{name}' must be a float in (0, 1) or an int >= 1, got {ratio!r}")
    return ratio


def check_min_score(min_score: Any) -> float | None:
    """``min_score`` is ``None`` or a finite real number."""
    if min_score is None:
        return None
    if isinstance(min_score, bool) or not isinstance(min_score, (int, float)) or not math.isfinite(min_score):
        raise ValueError(f"'min_score' must be a finite number or None, got {v.describe(min_score)}")
    return min_score


def resolve_nonlinearity(nonlinearity: Any) -> Callable[[Tensor], Tensor]:
    """A name (``"tanh"``, ``"sigmoid"``, any :mod:`torch.nn` activation) or a callable."""
    if isinstance(nonlinearity, str):
        try:
            return resolve_activation(nonlinearity)
        except ValueError as error:
            raise ValueError(f"'nonlinearity' {nonlinearity!r} is not a known activation: {error}") from None
    if callable(nonlinearity):
        return nonlinearity
    raise TypeError(
        f"'nonlinearity' must be an activation name or a callable, got {v.describe(nonlinearity)}"
    )


def _group_runs(sorted_batch: Tensor) -> tuple[Tensor, Tensor]:
    """For a sorted ``[N]`` group vector: each element's rank in its run and its run's length."""
    n = sorted_batch.numel()
    pos = torch.arange(n, device=sorted_batch.device)
    new_run = torch.ones(n, dtype=torch.bool, device=sorted_batch.device)
    new_run[1:] = sorted_batch[1:] != sorted_batch[:-1]
    start = torch.where(new_run, pos, 0).cummax(0).values
    last = torch.ones_like(new_run)
    last[:-1] = new_run[1:]
    end = torch.where(last, pos, n).flip(0).cummin(0).values.flip(0)
    return pos - start, end - start + 1


def topk_counts(ratio: int | float, num_nodes: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
    r"""Number of kept nodes per graph: :math:`\lceil \mathrm{ratio} \cdot N_g \rceil` for a ratio
    below 1, else ``int(ratio)`` (at most :math:`N_g` are kept in the end).

    The product is computed in ``dtype`` (the score's, at least float32) like PyG, so that a
    ratio such as 0.3 rounds identically (``ceil(0.3 * 10)`` is 3 in float32, 4 in float64).
    """
    if ratio >= 1:
        return torch.full_like(num_nodes, int(ratio))
    if dtype not in (torch.float32, torch.float64):
        dtype = torch.float32
    return (float(ratio) * num_nodes.to(dtype)).ceil().long()


#: the padded per-graph selection may use up to this many slots per node (plus a floor)
_PADDING_PER_NODE = 2
_PADDING_FLOOR = 1 << 12


def _padded_topk(score: Tensor, ratio: int | float, batch: Tensor | None) -> Tensor | None:
    """The top-k of each graph from a ``[B, N_max]`` padded score matrix (``torch.topk`` per row).

    Exact and fast for a sorted ``batch`` of similar-sized graphs; returns ``None`` (use the global
    sort) when the batch is unsorted, the padding would be large, a score is not finite, or two
    scores of a graph tie among its kept nodes or at the cut: the global sort then breaks the tie
    exactly as PyG does.
    """
    n = score.numel()
    device = score.device
    if batch is None:
        counts = torch.full((1,), n, dtype=torch.long, device=device)
        batch = torch.zeros(n, dtype=torch.long, device=device)
    else:
        if n > 1 and not bool((batch[1:] >= batch[:-1]).all()):
            return None
        batch = batch.long()
        counts = ops.scatter(torch.ones_like(batch), batch, 0, int(batch[-1]) + 1, "sum")
    num_graphs = counts.numel()
    n_max = int(counts.max())
    if num_graphs * n_max > _PADDING_PER_NODE * n + _PADDING_FLOOR or not bool(torch.isfinite(score).all()):
        return None
    first = torch.cumsum(counts, 0) - counts
    k = torch.minimum(topk_counts(ratio, counts, score.dtype), counts)
    width = min(int(k.max()) + 1, n_max)
    dense = score.new_full((num_graphs, n_max), -math.inf)
    dense.view(-1)[batch * n_max + torch.arange(n, device=device) - first[batch]] = score
    values, local = torch.topk(dense, width, dim=1)
    slot = torch.arange(width, device=device).view(1, -1)
    checked = slot[:, 1:] < torch.minimum(k + 1, counts).view(-1, 1)
    if bool(((values[:, 1:] == values[:, :-1]) & checked).any()):
        return None
    return (local + first.view(-1, 1))[slot < k.view(-1, 1)]


def topk(
    score: Tensor,
    ratio: int | float | None,
    batch: Tensor | None = None,
    min_score: float | None = None,
    tol: float = 1e-7,
) -> Tensor:
    r"""Indices of the nodes kept by top-:math:`k` selection in each graph.

    With ``min_score`` :math:`\tilde\alpha`, node :math:`i` of graph :math:`g` is kept when
    :math:`y_i > \min(\max_{j \in g} y_j - \mathrm{tol}, \tilde\alpha)` (so every non-empty
    graph keeps at least its best node), and the result is in node order. Otherwise graph
    :math:`g` keeps its :math:`k_g` best nodes (:func:`topk_counts`; all of them when it has
    fewer), and the result lists the graphs in increasing order, each by decreasing score.
    Equal scores come in the order of ``torch.sort(score, descending=True)`` (not a stable
    sort): the order PyG uses, so ties are broken as in PyG on the same device, but that order
    is torch's choice and may differ between devices or torch versions.

    Vectorized over graphs: for a sorted ``batch`` of similar-sized graphs, ``torch.topk`` on the
    ``[B, N_max]`` padded scores; otherwise (or when scores tie, or while compiling) one sort by
    score, one stable sort by graph, then each node's rank inside its graph from the run
    boundaries (no Python loop, no host sync). Both give the same result.

    Args:
        score: ``[N]`` node scores.
        ratio: float in ``(0, 1)`` or ``k`` itself (see :func:`check_ratio`); ignored with ``min_score``.
        batch: ``[N]`` graph of each node (any order); ``None`` for one graph.
        min_score: the score threshold, or ``None``.
        tol: margin below each graph's best score for the ``min_score`` rule.

    Returns:
        ``perm`` ``[K]`` (int64) indices into the nodes.

    Example:
        >>> topk(torch.tensor([0.1, 0.5, 0.3, 0.9]), 0.5, torch.tensor([0, 0, 1, 1]))
        tensor([1, 3])
    """
    score = score.view(-1)
    device = score.device
    if min_score is not None:
        if batch is None:
            group_max = score.max().view(1) if score.numel() else score.new_zeros(1)
            threshold = (group_max - tol).clamp(max=min_score).expand_as(score)
        else:
            group_max = ops.scatter(score.detach(), batch, 0, None, "max")
            threshold = (group_max - tol).clamp(max=min_score)[batch]
        return (score > threshold).nonzero().view(-1)
    if ratio is None:
        raise ValueError("'ratio' and 'min_score' cannot both be None: give one of them")
    if score.numel() and not torch.compiler.is_compiling():
        perm = _padded_topk(score.detach(), ratio, batch)
        if perm is not None:
            return perm
    order = torch.sort(score.detach(), descending=True).indices  # tie order as PyG's (see above)
    if batch is None:
        sorted_batch = torch.zeros(score.numel(), dtype=torch.long, device=device)
    else:
        by_graph = torch.sort(batch[order], stable=True)
        order, sorted_batch = order[by_graph.indices], by_graph.values
    rank, size = _group_runs(sorted_batch)
    keep = rank < topk_counts(ratio, size, score.dtype)
    return order[keep]


class SelectTopK(torch.nn.Module):
    r"""Scores nodes with a learned projection and keeps the top :math:`k` of each graph.

    .. math::
        \mathbf{y} = \sigma\!\left(\frac{\mathbf{X}\mathbf{p}}{\lVert\mathbf{p}\rVert}\right)
        \quad\text{or, with ``min_score``,}\quad
        \mathbf{y} = \mathrm{softmax}_{g}(\mathbf{X}\mathbf{p}),
        \qquad \mathbf{i} = \mathrm{top}_k(\mathbf{y})

    Args:
        in_channels: size :math:`F` of each node's input (``p`` is ``[1, F]``).
        ratio: see :func:`topk`.
        min_score: see :func:`topk`.
        act: :math:`\sigma`, a name or a callable.

    Shapes:
        ``x`` ``[N, F]`` (or ``[N]`` when ``F = 1``), ``batch`` ``[N]`` ->
        ``(perm [K], score [N])``.

    Example:
        >>> select = SelectTopK(8, ratio=0.5)
        >>> perm, score = select(torch.randn(10, 8))
        >>> perm.shape, score.shape
        (torch.Size([5]), torch.Size([10]))
    """

    def __init__(
        self,
        in_channels: int,
        ratio: int | float = 0.5,
        min_score: float | None = None,
        act: str | Callable = "tanh",
    ) -> None:
        super().__init__()
        if isinstance(in_channels, bool) or not isinstance(in_channels, int) or in_channels < 1:
            raise ValueError(f"'in_channels' must be an int >= 1, got {v.describe(in_channels)}")
        self.in_channels = in_channels
        self.min_score = check_min_score(min_score)
        self.ratio = check_ratio(ratio, self.min_score)
        self.act = resolve_nonlinearity(act)
        self.weight = Parameter(torch.empty(1, in_channels))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """``weight`` from :math:`\\mathcal{U}(-1/\\sqrt{F}, 1/\\sqrt{F})`."""
        uniform(self.in_channels, self.weight)

    def forward(self, x: Tensor, batch: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``(perm, score)``: kept node indices and every node's score."""
        x = x.view(-1, 1) if x.dim() == 1 else x
        if x.size(-1) != self.in_channels:
            raise ValueError(
                f"'x' must have {self.in_channels} features (in_channels) in its last dimension, "
                f"got {v.describe(x)}"
            )
        weight = self.weight.view(-1).to(x.dtype)
        score = self._scorer(batch, raw_size=x.size(0))(x @ self._projection(weight))
        return topk(score, self.ratio, batch, self.min_score), score

    def _projection(self, weight: Tensor) -> Tensor:
        """``p / ||p||`` (``p`` itself with ``min_score``, whose softmax is scale-sensitive)."""
        return weight / weight.norm(p=2) if self.min_score is None else weight

    def _scorer(self, batch: Tensor | None, raw_size: int) -> Callable[[Tensor], Tensor]:
        if self.min_score is None:
            return self.act
        index = torch.zeros(raw_size, dtype=torch.long, device=self.weight.device) if batch is None else batch
        return lambda raw: ops.softmax(raw, index)

    def select_and_gate(
        self, x: Tensor, batch: Tensor | None = None, multiplier: float = 1.0
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Score ``x`` itself, select, and gate: ``(multiplier * x[perm] * y[perm], perm, y[perm])``.

        The same numbers as :meth:`forward` followed by the gate, with ``x``'s gradient built in
        one ``[N, F]`` buffer (:func:`gnn.pool.select.gate.project_gate`).
        """
        weight = self.weight.view(-1).to(x.dtype)
        return project_gate(
            x,
            self._projection(weight),
            self._scorer(batch, x.size(0)),
            lambda score: topk(score, self.ratio, batch, self.min_score),
            multiplier,
        )

    def __repr__(self) -> str:
        arg = f"ratio={self.ratio}" if self.min_score is None else f"min_score={self.min_score}"
        return f"{type(self).__name__}({self.in_channels}, {arg})"
