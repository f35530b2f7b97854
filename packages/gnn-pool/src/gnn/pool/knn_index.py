r"""k-nearest-neighbour search indices on faiss (``pip install gnn-pool[faiss]``).

A :class:`KNNIndex` holds data points (``add``) and returns, for query points,
the ``k`` best scores and their indices (``search``), optionally excluding
given query/point links. :class:`L2KNNIndex` and :class:`ApproxL2KNNIndex`
score by the squared euclidean distance :math:`\|q - p\|^2` (smallest
first), :class:`MIPSKNNIndex` and :class:`ApproxMIPSKNNIndex` by the inner
product :math:`q \cdot p` (largest first). The approximate indices are
faiss ``IVF{num_cells},PQ{bits_per_vector}`` indices (inverted lists over
``num_cells`` k-means cells, product-quantized vectors with
``bits_per_vector`` sub-quantizers of 8 bits), trained on the first points
added (without faiss' polysemous relabelling of the codes, which does not
change search results), searching ``num_cells_to_visit`` cells.

faiss is imported when an index is created; without it, creating one raises
an ImportError naming ``pip install gnn-pool[faiss]``. Search runs on the
CPU (faiss-cpu); results come back on the device of the queries.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import Tensor

from gnn.core import validation as v

from ._utils import import_faiss

__all__ = [
    "KNNOutput",
    "KNNIndex",
    "L2KNNIndex",
    "MIPSKNNIndex",
    "ApproxL2KNNIndex",
    "ApproxMIPSKNNIndex",
]


class KNNOutput(NamedTuple):
    """Result of :meth:`KNNIndex.search`: ``score`` ``[M, k]`` and ``index`` ``[M, k]``."""

    score: Tensor
    index: Tensor


def _as_float32(name: str, emb: Any, channels: int | None = None) -> Any:
    """``emb`` (``[N, D]`` real tensor) as a C-contiguous float32 numpy array."""
    v.check_tensor(name, emb)
    if emb.dim() != 2 or emb.is_complex() or emb.dtype == torch.bool:
        raise ValueError(f"'{name}' must be a real [N, D] tensor, got {v.describe(emb)}")
    if channels is not None and emb.size(1) != channels:
        raise ValueError(
            f"'{name}' must have {channels} columns (the index's dimension), got {v.describe(emb)}"
        )
    return emb.detach().to("cpu", torch.float32).contiguous().numpy()


class KNNIndex:
    r"""Base class of the faiss k-NN indices.

    Args:
        index_factory: a faiss index factory string (e.g. ``"Flat"``,
            ``"IVF64,Flat"``; see faiss' documentation), used with the L2 metric.
        emb: optional ``[N, D]`` points added right away.
        reserve: number of points to reserve memory for (used by GPU indices
            only; kept for PyG compatibility).

    Example:
        >>> index = KNNIndex("Flat", torch.tensor([[0.0, 0.0], [1.0, 0.0], [5.0, 0.0]]))
        >>> index.search(torch.tensor([[0.9, 0.0]]), k=2).index
        tensor([[1, 0]])
    """

    def __init__(
        self, index_factory: str | None = None, emb: Tensor | None = None, reserve: int | None = None
    ) -> None:
        import_faiss()
        self.index_factory = index_factory
        self.index: Any = None
        self.reserve = reserve
        if emb is not None:
            self.add(emb)

    def _create_index(self, channels: int) -> Any:
        """The empty faiss index for ``channels``-dimensional points."""
        faiss = import_faiss()
        if not isinstance(self.index_factory, str):
            raise TypeError(
                f"'index_factory' must be a faiss index factory string, got {v.describe(self.index_factory)}"
            )
        return faiss.index_factory(channels, self.index_factory)

    @property
    def _name(self) -> str:
        return type(self).__name__

    def add(self, emb: Tensor) -> None:
        """Add the points ``emb`` (``[N, D]``); they get the next indices.

        An index that needs training (the approximate ones) is trained on the
        first points added.
        """
        data = _as_float32("emb", emb, None if self.index is None else self.index.d)
        if self.index is None:
            self.index = self._create_index(data.shape[1])
        if not self.index.is_trained:
            if data.shape[0] == 0:
                raise ValueError(f"'{self._name}' must be trained on the first points added, got none")
            self.index.train(data)
        self.index.add(data)

    def search(self, emb: Tensor, k: int, exclude_links: Tensor | None = None) -> KNNOutput:
        r"""The ``k`` best points of the index for every query point.

        Args:
            emb: ``[M, D]`` query points.
            k: number of neighbours.
            exclude_links: optional ``[2, L]`` links never returned:
                ``exclude_links[0]`` indexes ``emb``, ``exclude_links[1]`` the
                points of the index.

        Returns:
            :class:`KNNOutput` ``(score, index)``, best first. Without
            ``exclude_links`` both are ``[M, min(k, num_points)]``; with it,
            ``[M, k]``, and places with no point left hold index ``-1`` and
            score ``-inf``.
        """
        if self.index is None:
            raise RuntimeError(f"'{self._name}' is not yet initialized. Please call `add(...)` first.")
        if isinstance(k, bool) or not isinstance(k, int):
            raise TypeError(f"'k' must be an int, got {v.describe(k)}")
        if k < 1:
            raise ValueError(f"'k' must be at least 1, got {k}")
        queries = _as_float32("emb", emb, self.index.d)
        num_queries, total = queries.shape[0], self.index.ntotal
        device = emb.device
        if exclude_links is None:
            score, index = self._search(queries, min(k, total))
            return KNNOutput(score.to(device), index.to(device))

        v.check_edge_index(exclude_links, "exclude_links")
        links = exclude_links.to("cpu", torch.long)
        v.check_index_range("exclude_links[0]", links[0], num_queries, "query points ('emb')")
        if links.numel() and int(links[1].min()) < 0:
            raise v.IndexRangeError(f"'exclude_links[1]' contains a negative index ({int(links[1].min())})")
        most = int(torch.bincount(links[0], minlength=num_queries).max()) if links.size(1) else 0
        score, index = self._search(queries, min(k + most, total))
        valid = index >= 0
        if links.size(1) and index.numel():
            stride = max(total, int(links[1].max()) + 1)
            keys = torch.arange(num_queries).view(-1, 1) * stride + index.clamp(min=0)
            valid &= ~torch.isin(keys, links[0] * stride + links[1])
        rank = valid.cumsum(1) - 1
        keep = valid & (rank < k)
        rows = torch.arange(num_queries).view(-1, 1).expand_as(index)[keep]
        out_score = torch.full((num_queries, k), float("-inf"))
        out_index = torch.full((num_queries, k), -1, dtype=torch.long)
        out_score[rows, rank[keep]] = score[keep]
        out_index[rows, rank[keep]] = index[keep]
        return KNNOutput(out_score.to(device), out_index.to(device))

    def _search(self, queries: Any, k: int) -> tuple[Tensor, Tensor]:
        if k == 0 or queries.shape[0] == 0:
            return torch.empty(queries.shape[0], k), torch.empty(queries.shape[0], k, dtype=torch.long)
        score, index = self.index.search(queries, k)  # numpy, or torch once faiss.contrib.torch_utils ran
        return torch.as_tensor(score).cpu(), torch.as_tensor(index).cpu().long()

    def get_emb(self) -> Tensor:
        """The points held by the index (``[N, D]``, as the index stores them: compressed ones decoded)."""
        if self.index is None:
            raise RuntimeError(f"'{self._name}' is not yet initialized. Please call `add(...)` first.")
        if self.index.ntotal == 0:
            return torch.empty(0, self.index.d)
        return torch.as_tensor(self.index.reconstruct_n(0, self.index.ntotal))


class L2KNNIndex(KNNIndex):
    r"""Exact k-NN search by the squared euclidean distance :math:`\|q - p\|^2` (faiss ``IndexFlatL2``).

    Args:
        emb: optional ``[N, D]`` points added right away.

    Example:
        >>> index = L2KNNIndex(torch.tensor([[0.0], [1.0], [5.0]]))
        >>> index.search(torch.tensor([[0.9]]), k=2)
        KNNOutput(score=tensor([[0.0100, 0.8100]]), index=tensor([[1, 0]]))
    """

    def __init__(self, emb: Tensor | None = None) -> None:
        super().__init__(index_factory=None, emb=emb)

    def _create_index(self, channels: int) -> Any:
        return import_faiss().IndexFlatL2(channels)


class MIPSKNNIndex(KNNIndex):
    r"""Exact k-NN search by the largest inner product :math:`q \cdot p` (faiss ``IndexFlatIP``).

    Args:
        emb: optional ``[N, D]`` points added right away.

    Example:
        >>> index = MIPSKNNIndex(torch.tensor([[1.0, 0.0], [0.0, 2.0]]))
        >>> index.search(torch.tensor([[1.0, 1.0]]), k=1).index
        tensor([[1]])
    """

    def __init__(self, emb: Tensor | None = None) -> None:
        super().__init__(index_factory=None, emb=emb)

    def _create_index(self, channels: int) -> Any:
        return import_faiss().IndexFlatIP(channels)


class _ApproxKNNIndex(KNNIndex):
    _metric = "METRIC_L2"

    def __init__(
        self,
        num_cells: int,
        num_cells_to_visit: int,
        bits_per_vector: int,
        emb: Tensor | None = None,
        reserve: int | None = None,
    ) -> None:
        for name, value in (
            ("num_cells", num_cells),
            ("num_cells_to_visit", num_cells_to_visit),
            ("bits_per_vector", bits_per_vector),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"'{name}' must be a positive int, got {v.describe(value)}")
        self.num_cells = num_cells
        self.num_cells_to_visit = num_cells_to_visit
        self.bits_per_vector = bits_per_vector
        super().__init__(index_factory=None, emb=emb, reserve=reserve)

    def _create_index(self, channels: int) -> Any:
        faiss = import_faiss()
        factory = f"IVF{self.num_cells},PQ{self.bits_per_vector}"
        index = faiss.index_factory(channels, factory, getattr(faiss, self._metric))
        index.nprobe = self.num_cells_to_visit
        # Polysemous training only relabels the PQ centroids (for Hamming-distance filtering, which
        # these indices never use): the codes' distances and so every search result are unchanged,
        # and skipping it makes training ~30x faster (it costs seconds per sub-quantizer).
        faiss.downcast_index(index).do_polysemous_training = False
        return index


class ApproxL2KNNIndex(_ApproxKNNIndex):
    r"""Approximate k-NN search by the squared euclidean distance (faiss ``IVF{num_cells},PQ{bits_per_vector}``).

    The points are split into ``num_cells`` k-means cells (trained on the
    first points added) and stored product-quantized
    (``bits_per_vector`` sub-vectors of 8 bits; it must divide ``D``); a
    search scans the ``num_cells_to_visit`` cells nearest to the query.

    Args:
        num_cells: number of cells.
        num_cells_to_visit: cells scanned per query (more: slower, more exact).
        bits_per_vector: number of sub-quantizers per vector.
        emb: optional ``[N, D]`` points added right away (at least 256 for training).
        reserve: GPU-only preallocation (kept for PyG compatibility).

    Example:
        >>> index = ApproxL2KNNIndex(num_cells=4, num_cells_to_visit=4, bits_per_vector=2)
        >>> index.add(torch.randn(1000, 8))
        >>> index.search(torch.randn(3, 8), k=5).index.shape
        torch.Size([3, 5])
    """


class ApproxMIPSKNNIndex(_ApproxKNNIndex):
    r"""Approximate k-NN search by the largest inner product (faiss ``IVF{num_cells},PQ{bits_per_vector}``).

    Arguments as :class:`ApproxL2KNNIndex`.

    Example:
        >>> index = ApproxMIPSKNNIndex(num_cells=4, num_cells_to_visit=4, bits_per_vector=2)
        >>> index.add(torch.randn(1000, 8))
        >>> index.search(torch.randn(3, 8), k=5).index.shape
        torch.Size([3, 5])
    """

    _metric = "METRIC_INNER_PRODUCT"
