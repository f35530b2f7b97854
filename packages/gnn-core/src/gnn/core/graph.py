"""The one graph reader of gnn-core.

Every message-passing call reads its graph argument here: an ``edge_index``
(``[2, E]`` integer tensor), a torch.sparse adjacency ``adj_t`` (COO, CSR or
CSC, ``[N_dst, N_src]``) or a ``torch_sparse.SparseTensor``. The result, a
:class:`Graph`, knows which row of ``edge_index`` receives, how many nodes each
side has once they are known, and gives the graph's CSR form and range checks,
computed once per graph through the per-graph cache (:mod:`gnn.core.cache`).

Example:
    >>> g = read_graph(torch.tensor([[0, 1, 2], [1, 2, 0]]))
    >>> g.set_size(0, 3, "x"); g.set_size(1, 3, "x")
    >>> g.csr().rowptr
    tensor([0, 1, 2, 3])
"""

from __future__ import annotations

import operator
from typing import Any

import torch
from torch import Tensor

from . import validation as v
from .cache import memo
from .ops.csr import CSR
from .utils.csr import to_csr
from .utils.sparse import SparseInput, from_sparse, is_sparse
from .validation import check_edge_index_side, check_edge_index_sides

__all__ = ["FLOWS", "Graph", "read_graph", "check_edge_index_side", "to_csr"]

FLOWS = ("source_to_target", "target_to_source")


class Graph:
    """A graph argument read once: ``edge_index`` plus what is known about its sides.

    Attributes:
        edge_index: ``[2, E]``; for a sparse input its entries in CSR order with the
            senders in row 0.
        size: ``[N_0, N_1]``, the numbers of nodes indexed by ``edge_index[0]`` and
            ``edge_index[1]`` (``None`` while unknown).
        i: the row of ``edge_index`` that holds the receivers (1 for
            ``flow="source_to_target"``), ``j`` the senders' row.
        sparse: the sparse input as CSR plus values, or ``None``.
        adj_t: the sparse input as given, or ``None``.
    """

    __slots__ = ("edge_index", "size", "i", "j", "sparse", "adj_t", "flow", "_checked")

    def __init__(
        self,
        edge_index: Tensor,
        size: list[Any],
        flow: str,
        sparse: SparseInput | None = None,
        adj_t: Any = None,
    ) -> None:
        self.edge_index = edge_index
        self.size = size
        self.flow = flow
        self.i, self.j = (1, 0) if flow == "source_to_target" else (0, 1)
        self.sparse = sparse
        self.adj_t = adj_t
        self._checked = sparse is not None  # a sparse input's indices are in range by construction

    @property
    def is_sparse(self) -> bool:
        return self.sparse is not None

    @property
    def num_edges(self) -> int:
        return self.edge_index.size(1)

    @property
    def value(self) -> Tensor | None:
        """The sparse input's values (in ``edge_index`` order), else ``None``."""
        return self.sparse.value if self.sparse is not None else None

    @property
    def index(self) -> Tensor:
        """``[E]`` receiver of each edge (the same view object for a static graph, so that checks
        on it are cached too)."""
        edge_index, i = self.edge_index, self.i
        return memo(edge_index, ("row", i), lambda: edge_index[i])

    @property
    def size_i(self) -> Any:
        """Number of receivers (the senders' count for a square graph of unknown size)."""
        n = self.size[self.i]
        return n if n is not None else self.size[self.j]

    @property
    def size_j(self) -> Any:
        n = self.size[self.j]
        return n if n is not None else self.size[self.i]

    def set_size(self, side: int, n: Any, name: str) -> None:
        """Record that ``edge_index[side]`` indexes ``n`` nodes (those of argument ``name``)."""
        known = self.size[side]
        if known is None:
            self.size[side] = n
            self._checked = self.sparse is not None
        elif known is not n and known != n:
            raise ValueError(f"'{name}' has {n} nodes, but 'size' / 'edge_index' expects {known}")

    def check_ranges(self) -> None:
        """Check the indices against the known sizes (one scan per graph, then cached)."""
        if not self._checked:
            check_edge_index_sides(self.edge_index, self.size[0], self.size[1])
            self._checked = True

    def set_nodes(self, num_src: Any, num_dst: Any, name: str = "x") -> None:
        """Record the senders' and the receivers' counts (checked against a sparse input's
        shape and, once per graph, against the indices)."""
        self.set_size(self.j, num_src, name)
        self.set_size(self.i, num_dst, name)
        self.check_ranges()

    def square_up(self) -> None:
        """A side no tensor fixed takes the other side's size (a square graph, as in PyG);
        then the indices are checked against the sizes."""
        size = self.size
        if size[0] is None and size[1] is not None:
            size[0] = size[1]
            self._checked = self.sparse is not None
        elif size[1] is None and size[0] is not None:
            size[1] = size[0]
            self._checked = self.sparse is not None
        self.check_ranges()

    def ptr(self) -> Tensor | None:
        """CSR offsets of a sparse input (receivers' rows), else ``None``."""
        return self.sparse.csr.rowptr if self.sparse is not None else None

    def csr(self) -> CSR:
        """The CSR form, rows receiving (sizes must be known: :meth:`square_up`)."""
        if self.sparse is not None:
            return self.sparse.csr
        size = (self.size[0], self.size[1])
        if size[0] is None or size[1] is None:
            raise ValueError("the graph's number of nodes is unknown; pass 'size' or node features")
        self.check_ranges()
        return to_csr(self.edge_index, size, self.flow)


def _check_size(size: Any) -> list[Any]:
    if size is None:
        return [None, None]
    if not isinstance(size, (tuple, list)) or len(size) != 2:
        raise ValueError(f"'size' must be a pair (N_src, N_dst), got {size!r}")
    out: list[Any] = []
    for s in size:
        if s is not None and not isinstance(s, torch.SymInt):
            if isinstance(s, bool):
                raise TypeError(f"'size' must hold ints or None, got {size!r}")
            try:
                s = operator.index(s)
            except TypeError:
                raise TypeError(f"'size' must hold ints or None, got {size!r}") from None
            if s < 0:
                raise ValueError(f"'size' must be non-negative, got {size!r}")
        out.append(s)
    return out


def read_graph(edge_index: Any, size: Any = None, flow: str = "source_to_target") -> Graph:
    """Read a graph argument into a :class:`Graph` (validated; sizes from ``size``).

    Args:
        edge_index: ``[2, E]`` integer tensor, torch.sparse COO/CSR/CSC ``adj_t`` of
            shape ``[N_dst, N_src]``, or a ``torch_sparse.SparseTensor``.
        size: ``(N_src, N_dst)`` or ``None`` (inferred later from node tensors).
        flow: ``"source_to_target"`` or ``"target_to_source"``.

    Raises:
        TypeError / ValueError naming ``edge_index`` or ``size``.
    """
    sizes = [None, None] if size is None else _check_size(size)
    if isinstance(edge_index, Tensor) and edge_index.layout == torch.strided:
        v.check_edge_index(edge_index)
        graph = Graph(edge_index, sizes, flow)
        if size is not None:
            graph.check_ranges()
        return graph
    if is_sparse(edge_index):
        if flow != "source_to_target":
            raise ValueError(
                "flow='target_to_source' is not supported for sparse 'edge_index' inputs; "
                "pass the transposed adjacency instead"
            )
        sparse = _read_sparse(edge_index)
        for k, n in enumerate(sparse.size):
            if sizes[k] is not None and sizes[k] != n:
                raise ValueError(
                    f"'size' {tuple(sizes)} contradicts the sparse adjacency of "
                    f"[N_dst, N_src] = [{sparse.size[1]}, {sparse.size[0]}]"
                )
        return Graph(sparse.edge_index(), list(sparse.size), flow, sparse, edge_index)
    raise TypeError(
        "'edge_index' must be a [2, E] integer tensor, a torch.sparse adjacency or a "
        f"torch_sparse.SparseTensor, got {v.describe(edge_index)}"
    )


def _read_sparse(adj_t: Any) -> SparseInput:
    """A sparse input as CSR plus values; a torch.sparse tensor is converted once per graph."""
    if isinstance(adj_t, Tensor):
        return memo(adj_t, "sparse_input", lambda: from_sparse(adj_t))
    return from_sparse(adj_t)
