"""Random walks on a CSR graph, uniform or biased as in node2vec.

:func:`random_walk` validates its inputs, draws the random numbers (so that
walks are reproducible under :func:`torch.manual_seed` on every backend),
then runs the best backend that supports the call
(:func:`gnn.core.ops.backends.select`); the pure-torch
:func:`~gnn.core.ops.reference_walk.random_walk_reference` runs otherwise and
is the correctness reference of compiled backends. No torch-cluster or pyg-lib
is involved.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .. import validation as v
from ..cache import memo
from . import backends

__all__ = ["random_walk"]


def _index(name: str, value: object) -> Tensor:
    t = v.check_tensor(name, value)
    v.check_index_dtype(name, t)
    if t.dim() != 1:
        raise ValueError(f"'{name}' must be a 1-D integer tensor, got {v.describe(t)}")
    return t.long().contiguous()


def _positive(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"'{name}' must be a positive float, got {v.describe(value)}")
    value = float(value)
    if not (math.isfinite(value) and value > 0 and math.isfinite(1.0 / value)):
        raise ValueError(f"'{name}' must be a positive finite float (with a finite inverse), got {value}")
    return value


def _sorted_neighbors(rowptr: Tensor, col: Tensor) -> Tensor:
    """``col`` with the targets of every row sorted (rows keep their CSR slices)."""
    num_nodes = rowptr.numel() - 1
    row = torch.repeat_interleave(torch.arange(num_nodes, device=col.device), rowptr.diff())
    base = row * max(num_nodes, 1)
    return (base + col).sort().values - base


def random_walk(
    rowptr: Tensor,
    col: Tensor,
    start: Tensor,
    walk_length: int,
    p: float = 1.0,
    q: float = 1.0,
) -> tuple[Tensor, Tensor]:
    r"""Random walks of ``walk_length`` steps from every node of ``start``.

    From node :math:`c`, reached from :math:`t`, the walk takes the out-edge
    :math:`c \to x` with probability proportional to

    .. math::
        \alpha_{pq}(t, x) = \begin{cases} 1/p & x = t \\ 1 & t \to x \text{ is an edge} \\
        1/q & \text{otherwise} \end{cases}

    (node2vec's second-order walk; every edge weighs 1 on the first step and
    when ``p == q == 1``, a uniform walk). Parallel edges count once each. A
    walk at a node without out-edges stays there.

    Args:
        rowptr: ``[N + 1]`` CSR offsets of the out-edges (row ``i`` owns
            ``col[rowptr[i]:rowptr[i + 1]]``).
        col: ``[E]`` edge targets in CSR order.
        start: ``[S]`` start nodes.
        walk_length: number of steps ``L`` (``>= 0``).
        p: return parameter (``1/p`` weighs the step back to ``t``).
        q: in-out parameter (``1/q`` weighs steps away from ``t``'s neighbourhood).

    Returns:
        ``(nodes, edges)``: ``nodes [S, L + 1]`` the visited nodes, the start
        first; ``edges [S, L]`` the CSR position (index into ``col``) of every
        edge taken, ``-1`` where the walk stayed at a node without out-edges.
        Reproducible under :func:`torch.manual_seed`, the same on every backend.

    Example:
        >>> rowptr, col = torch.tensor([0, 1, 2, 3]), torch.tensor([1, 2, 0])  # a 3-cycle
        >>> random_walk(rowptr, col, torch.tensor([0, 2]), 3)[0]
        tensor([[0, 1, 2, 0],
                [2, 0, 1, 2]])
    """
    rowptr, col, start = _index("rowptr", rowptr), _index("col", col), _index("start", start)
    if rowptr.numel() == 0:
        raise ValueError("'rowptr' must hold at least one entry (N + 1 offsets)")
    num_nodes = rowptr.numel() - 1
    v.check_ptr("rowptr", rowptr, col.numel())
    v.check_index_range("col", col, num_nodes)
    v.check_index_range("start", start, num_nodes)
    if col.device != rowptr.device or start.device != rowptr.device:
        raise ValueError(
            f"'rowptr', 'col' and 'start' must be on one device, got {rowptr.device}, {col.device} "
            f"and {start.device}"
        )
    if isinstance(walk_length, bool) or not isinstance(walk_length, int):
        raise TypeError(f"'walk_length' must be an int, got {v.describe(walk_length)}")
    if walk_length < 0:
        raise ValueError(f"'walk_length' must be at least 0, got {walk_length}")
    p, q = _positive("p", p), _positive("q", q)
    biased = p != 1.0 or q != 1.0
    shape = (start.numel(), walk_length, 2) if biased else (start.numel(), walk_length)
    rand = torch.rand(shape, dtype=torch.float64).to(rowptr.device)
    neighbors = None
    if biased and walk_length > 1:
        neighbors = memo(col, "walk_neighbors", lambda: _sorted_neighbors(rowptr, col), rowptr)
    work = start.numel() * walk_length
    if torch.compiler.is_compiling():
        work = None
    impl = backends.select(
        "random_walk",
        device=rowptr.device,
        dtype=torch.float64,
        reduce=None,
        requires_grad=False,
        work=work,
    )[1]
    return impl(rowptr, col, neighbors, start, rand, p, q)
