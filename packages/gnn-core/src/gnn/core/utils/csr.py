"""``edge_index`` -> :class:`~gnn.core.ops.CSR`, built once per graph.

Sorting edges is the expensive part of building a CSR; for a static graph it is
done once and kept in the per-graph cache (:mod:`gnn.core.cache`), keyed by
the ``edge_index`` tensor's identity and in-place version.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from .. import cache as _cache
from ..ops.csr import CSR, from_coo

__all__ = ["clear_csr_cache", "set_csr_cache_size", "to_csr"]


def set_csr_cache_size(size: int) -> None:
    """How many graphs the per-graph cache keeps (0 disables it); see :mod:`gnn.core.cache`."""
    _cache.resize(size)


def clear_csr_cache() -> None:
    """Forget everything the per-graph cache holds."""
    _cache.clear()


def to_csr(
    edge_index: Tensor, size: tuple[Any, Any], flow: str = "source_to_target", *, cache: bool = True
) -> CSR:
    """The CSR form of ``edge_index`` whose rows are the receiving nodes (cached per graph).

    Args:
        edge_index: ``[2, E]`` integer tensor (validated by the caller).
        size: ``(N_src, N_dst)``: the numbers of nodes that ``edge_index[0]`` and
            ``edge_index[1]`` index.
        flow: ``"source_to_target"`` (rows are ``edge_index[1]``) or
            ``"target_to_source"`` (rows are ``edge_index[0]``).
        cache: reuse (and keep) the CSR of this very tensor.

    Returns:
        A :class:`~gnn.core.ops.CSR` with ``perm`` into the original edge order.
    """
    i, j = (1, 0) if flow == "source_to_target" else (0, 1)
    num_rows, num_cols = size[i], size[j]
    if not cache:
        return from_coo(edge_index[i], edge_index[j], num_rows, num_cols)
    return _cache.memo(
        edge_index,
        ("csr", i, num_rows, num_cols),
        lambda: from_coo(edge_index[i], edge_index[j], num_rows, num_cols),
    )
