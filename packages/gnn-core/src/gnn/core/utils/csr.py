"""``edge_index`` -> :class:`~gnn.core.ops.CSR`, with a small reusable cache.

Sorting edges is the expensive part of building a CSR; for a static graph
it is done once. The cache keeps the last few graphs, keyed by the identity
and in-place version counter of the ``edge_index`` tensor (a cache entry
holds a reference to the tensor, so its identity cannot be reused while the
entry lives); any in-place change to ``edge_index`` is a miss.
"""

from __future__ import annotations

from torch import Tensor

from ..ops.csr import CSR, from_coo
from .cache import TensorCache

_cache = TensorCache(8)


def set_csr_cache_size(size: int) -> None:
    """How many graphs the CSR cache keeps (0 disables it)."""
    _cache.resize(size)


def clear_csr_cache() -> None:
    """Forget every cached CSR."""
    _cache.clear()


def to_csr(
    edge_index: Tensor,
    size: tuple[int, int],
    flow: str = "source_to_target",
    *,
    cache: bool = True,
) -> CSR:
    """The CSR form of ``edge_index`` whose rows are the receiving nodes.

    Args:
        edge_index: ``[2, E]`` integer tensor (validated by the caller).
        size: ``(N_src, N_dst)``, the number of nodes indexed by
            ``edge_index[0]`` and ``edge_index[1]``.
        flow: ``"source_to_target"`` (rows are ``edge_index[1]``) or
            ``"target_to_source"`` (rows are ``edge_index[0]``).
        cache: reuse a CSR built for the same tensor before.

    Returns:
        A :class:`~gnn.core.ops.CSR` with ``perm`` into the original edges.
    """
    i, j = (1, 0) if flow == "source_to_target" else (0, 1)
    num_rows, num_cols = int(size[i]), int(size[j])

    def build() -> CSR:
        return from_coo(edge_index[i], edge_index[j], num_rows, num_cols)

    if not cache:
        return build()
    return _cache.get((edge_index,), ("csr", i, num_rows, num_cols), build)
