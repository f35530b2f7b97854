r"""CuGraphRGCNConv: PyG's cugraph-ops RGCN layer (signature, parameters), on gnn's kernels."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.nn import Parameter

from gnn.core import validation as v
from gnn.core.graph import read_graph
from gnn.core.nn.inits import glorot, zeros
from gnn.core.ops import ptr_to_index

from . import _relational as rel
from ._utils import check_in_channels
from .cugraph import CuGraphModule


def _plain(edge_index: Tensor) -> Tensor:
    """A PyG ``EdgeIndex`` (a ``Tensor`` subclass) as a plain tensor; others unchanged."""
    as_tensor = getattr(edge_index, "as_tensor", None)
    return as_tensor() if callable(as_tensor) and type(edge_index) is not Tensor else edge_index


class CuGraphRGCNConv(CuGraphModule):
    r"""The relational graph convolution (:class:`RGCNConv`'s formula) with the signature and
    parameters of PyG's cugraph-ops layer, running on gnn's kernels on any device (no
    pylibcugraphops needed):

    .. math::
        \mathbf{x}^{\prime}_i = \mathbf{\Theta}_{\textrm{root}} \mathbf{x}_i +
        \sum_{r} \operatorname{aggr}_{j \in \mathcal{N}_r(i)} \mathbf{\Theta}_r \mathbf{x}_j
        + \mathbf{b}

    with ``aggr`` the per-relation mean or sum. As in cugraph-ops, ``weight`` stacks the
    relation matrices (or the ``num_bases`` bases, combined by ``comp``) and, last, the root
    matrix: ``[R + 1, F_in, F_out]``; and the target nodes of a bipartite graph are the first
    ``N_dst`` rows of ``x``. The per-relation aggregation is one ``propagate`` over the graph
    whose receivers are split by relation (see :class:`RGCNConv`).

    Args:
        in_channels: input size.
        out_channels: output size.
        num_relations: number of relations ``R``.
        num_bases: use the basis decomposition with this many bases.
        aggr: ``"mean"``, ``"sum"`` or ``"add"``.
        root_weight: add the transformed root features.
        bias: learn an additive bias.

    Shapes:
        ``x`` ``[N_src, F_in]``; the graph as PyG's ``EdgeIndex`` or a ``[2, E]`` tensor
        (senders in row 0), or as the CSC tuple ``(row, colptr, num_src_nodes)`` of
        :meth:`~gnn.conv.cugraph.CuGraphModule.to_csc` (inherited, as in PyG); ``edge_type`` ``[E]`` in the order of the graph's edges ->
        ``[N_dst, out_channels]``.

    Example:
        >>> conv = CuGraphRGCNConv(16, 32, num_relations=3)
        >>> x, edge_index = torch.randn(10, 16), torch.randint(0, 10, (2, 40))
        >>> conv(x, edge_index, torch.randint(0, 3, (40,))).shape
        torch.Size([10, 32])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        num_relations: int,
        num_bases: int | None = None,
        aggr: str = "mean",
        root_weight: bool = True,
        bias: bool = True,
    ) -> None:
        if aggr not in ("sum", "add", "mean"):
            raise ValueError(f"Aggregation function must be either 'mean' or 'sum' (got '{aggr}')")
        super().__init__(aggr=aggr, node_dim=0)
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels)):
            rel.check_relations(name, value)
        rel.check_relations("num_relations", num_relations)
        rel.check_relations("num_bases", num_bases, optional=True)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.num_relations = num_relations
        self.num_bases = num_bases
        self.root_weight = root_weight
        mats = (num_bases if num_bases is not None else num_relations) + (1 if root_weight else 0)
        self.weight = Parameter(torch.empty(mats, in_channels, out_channels))
        if num_bases is not None:
            self.comp = Parameter(torch.empty(num_relations, num_bases))
        else:
            self.register_parameter("comp", None)
        if bias:
            self.bias = Parameter(torch.empty(out_channels))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Glorot relation (or basis) matrices, root matrix and composition; zero bias."""
        super().reset_parameters()
        end = -1 if self.root_weight else None
        glorot(self.weight[:end])
        if self.comp is not None:
            glorot(self.comp)
        if self.root_weight:
            glorot(self.weight[-1])
        zeros(self.bias)

    def _read(self, edge_index: Any, num_src: Any) -> tuple[Any, tuple[Any, Any] | None]:
        """``([2, E] edge_index or sparse adjacency, size)`` of any accepted graph form."""
        if isinstance(edge_index, (tuple, list)):
            if len(edge_index) != 3:
                raise ValueError(
                    "'edge_index' given as a tuple must be the CSC form (row, colptr, num_src_nodes), "
                    f"got {len(edge_index)} items"
                )
            row, colptr, num_src_nodes = edge_index
            v.check_tensor("edge_index[0] (row)", row)
            v.check_tensor("edge_index[1] (colptr)", colptr)
            v.check_ptr("colptr", colptr, row.numel())
            col = ptr_to_index(colptr, row.numel())
            ei = torch.stack([row, col.to(row.dtype)])
            return ei, (int(num_src_nodes), colptr.numel() - 1)
        if isinstance(edge_index, Tensor) and edge_index.layout == torch.strided:
            sizes = getattr(edge_index, "sparse_size", None)
            size = tuple(sizes()) if callable(sizes) else (None, None)
            plain = _plain(edge_index)
            n_src = size[0] if size[0] is not None else num_src
            return plain, (n_src, size[1] if size[1] is not None else n_src)
        return edge_index, None

    def forward(
        self,
        x: Tensor,
        edge_index: Any,
        edge_type: Tensor,
        max_num_neighbors: int | None = None,
    ) -> Tensor:
        """Apply the convolution (see the class docstring for shapes).

        ``max_num_neighbors`` is cugraph-ops' performance hint; accepted and not needed.
        """
        if max_num_neighbors is not None and (
            isinstance(max_num_neighbors, bool) or not isinstance(max_num_neighbors, int)
        ):
            raise TypeError(
                f"'max_num_neighbors' must be an int or None, got {v.describe(max_num_neighbors)}"
            )
        check_in_channels(x, self.in_channels)
        if x.dim() != 2:
            raise ValueError(f"'x' must hold [N, {self.in_channels}] node features, got {v.describe(x)}")
        graph_input, size = self._read(edge_index, x.size(0))
        graph = read_graph(graph_input, size, self.flow)
        num_src = x.size(0)
        known = graph.size[graph.i]
        num_dst = known if known is not None else num_src
        if isinstance(num_dst, int) and isinstance(num_src, int) and num_dst > num_src:
            raise ValueError(
                f"the graph has {num_dst} target nodes but 'x' only {num_src} rows; the target nodes "
                "must be the first rows of 'x'"
            )
        graph.set_nodes(num_src, num_dst)
        edge_type = rel.read_edge_type(graph, edge_type, self.num_relations)

        R = self.num_relations
        ei = rel.relation_edges(graph, edge_type, R, senders=False, receivers=True)
        h = self.propagate(ei, x=x, size=rel.expanded_size(graph, num_src, num_dst * R))
        mats = self.num_bases if self.num_bases is not None else R
        if self.comp is not None:  # aggregates per basis: sum_r comp[r, b] h_r
            h = torch.einsum("nrf,rb->nbf", h.view(-1, R, self.in_channels), self.comp)
        out = h.reshape(-1, mats * self.in_channels) @ self.weight[:mats].reshape(-1, self.out_channels)
        if self.root_weight:
            out = out + x[:num_dst] @ self.weight[-1]
        if self.bias is not None:
            out = out + self.bias
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels}, num_relations={self.num_relations})"
