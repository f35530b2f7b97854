r"""The CuGraph layers (PyG's API for pylibcugraphops), on gnn's own kernels on any device.

PyG's :class:`CuGraphSAGEConv` and :class:`CuGraphGATConv` need pylibcugraphops and a GPU;
here they are message-passing layers on gnn's fused ops (``ops.spmm``,
``ops.node_score_attention``), with PyG's constructor and forward signatures, ``repr``
and state_dict, so PyG checkpoints load strict and give the same numbers.

Graph inputs: PyG's ``EdgeIndex`` (its sparse size gives the number of source and target
nodes), the CSC triple ``(row, colptr, num_src_nodes)`` that :meth:`CuGraphModule.to_csc`
returns, a ``[2, E]`` ``edge_index`` or a sparse ``adj_t``. As in cugraph-ops, a bipartite
graph (``num_src_nodes != num_dst_nodes``) takes the features of all source nodes in ``x``,
and its target nodes are the first ``num_dst_nodes`` of them.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import Parameter

from gnn.core import Linear, MessagePassing, plans
from gnn.core import validation as v
from gnn.core.graph import read_graph
from gnn.core.nn.inits import zeros
from gnn.core.ops import CSR
from gnn.core.utils import is_sparse

from . import _attention as att
from ._utils import check_in_channels, csc_edge_index

__all__ = ["CuGraphModule", "CuGraphSAGEConv", "CuGraphGATConv"]

SAGE_AGGRS = ("mean", "sum", "min", "max")


class CuGraphModule(MessagePassing):
    """Base of the CuGraph layers: reads their graph inputs (see the module docstring).

    Unlike PyG's (a plain ``torch.nn.Module``), it is a :class:`~gnn.core.MessagePassing`:
    the layers aggregate through ``propagate``, so hooks and explainers work on them.
    """

    def __init__(self, aggr: str = "add", **kwargs: Any) -> None:
        super().__init__(aggr=aggr, **kwargs)

    def reset_parameters(self) -> None:
        """Resets all learnable parameters of the module."""
        super().reset_parameters()

    @staticmethod
    def to_csc(
        edge_index: Tensor, size: tuple[int, int] | None = None, edge_attr: Tensor | None = None
    ) -> Any:
        """The CSC form ``(row, colptr, num_src_nodes)`` of ``edge_index`` (PyG 2.3's input of the
        CuGraph layers), and ``edge_attr`` in the same (target-sorted) order when given:
        ``((row, colptr, num_src_nodes), edge_attr)``. Without ``size`` both sides have
        ``max(edge_index) + 1`` nodes."""
        v.check_edge_index(edge_index)
        if size is None:
            n = int(edge_index.max()) + 1 if edge_index.numel() > 0 else 0
            size = (n, n)
        v.check_edge_index_sides(edge_index, size[0], size[1])
        row, col = edge_index[0], edge_index[1]
        perm = torch.argsort(col, stable=True)
        row, col = row[perm], col[perm]
        counts = (
            torch.bincount(col.long(), minlength=size[1])[: size[1]]
            if col.numel()
            else col.new_zeros(size[1])
        )
        colptr = torch.zeros(size[1] + 1, dtype=torch.long, device=col.device)
        torch.cumsum(counts, 0, out=colptr[1:])
        csc = (row, colptr.to(col.dtype), int(size[0]))
        if edge_attr is not None:
            return csc, edge_attr[perm]
        return csc

    def read_cugraph(self, edge_index: Any) -> tuple[Any, int | None, int | None]:
        """``(graph, num_src_nodes, num_dst_nodes)`` of a graph input (sizes ``None`` when unknown)."""
        if isinstance(edge_index, (tuple, list)):
            if len(edge_index) != 3:
                raise TypeError(
                    "a CSC graph must be the triple (row, colptr, num_src_nodes) of CuGraphModule.to_csc, "
                    f"got {len(edge_index)} items"
                )
            row, colptr, num_src = edge_index
            if isinstance(num_src, Tensor):
                num_src = int(num_src)
            if isinstance(num_src, bool) or not isinstance(num_src, int) or num_src < 0:
                raise TypeError(f"'num_src_nodes' must be a non-negative int, got {v.describe(num_src)}")
            return csc_edge_index(row, colptr), num_src, colptr.numel() - 1
        if (
            isinstance(edge_index, Tensor)
            and hasattr(edge_index, "sparse_size")
            and hasattr(edge_index, "as_tensor")
        ):
            num_src, num_dst = edge_index.sparse_size()  # PyG's EdgeIndex
            return edge_index.as_tensor(), num_src, num_dst
        if is_sparse(edge_index) or isinstance(edge_index, Tensor):
            return edge_index, None, None
        raise TypeError(
            "'edge_index' must be an EdgeIndex, a [2, E] tensor, a sparse adjacency or the CSC triple "
            f"(row, colptr, num_src_nodes), got {v.describe(edge_index)}"
        )

    def _node_counts(self, x: Tensor, num_src: int | None, num_dst: int | None) -> tuple[int, int]:
        """The node counts of a call: ``x`` holds the sources; targets are its first rows."""
        n = x.size(0)
        num_src = n if num_src is None else num_src
        num_dst = num_src if num_dst is None else num_dst
        if num_src != n:
            raise ValueError(f"'x' must hold the features of all {num_src} source nodes, got {n} rows")
        if num_dst > num_src:
            raise ValueError(
                f"the graph has {num_dst} target nodes but only {num_src} source nodes; the targets are the "
                "first source nodes (cugraph's convention)"
            )
        return num_src, num_dst

    def _read_inputs(self, x: Tensor, edge_index: Any, max_num_neighbors: int | None) -> tuple[Any, int, int]:
        """``(graph, num_src, num_dst)`` of a layer call, after checking ``x`` (``[N, in_channels]``,
        the subclass's size), ``max_num_neighbors`` and the graph (:meth:`read_cugraph`,
        :meth:`_node_counts`)."""
        check_in_channels(x, self.in_channels)
        if x.dim() != 2:
            raise ValueError(f"'x' must have shape [N, F], got {v.describe(x)}")
        _check_max_num_neighbors(max_num_neighbors)
        graph, num_src, num_dst = self.read_cugraph(edge_index)
        if is_sparse(graph):
            num_dst, num_src = graph.size(0), graph.size(1)
        num_src, num_dst = self._node_counts(x, num_src, num_dst)
        return graph, num_src, num_dst

    def get_cugraph(self, edge_index: Any, max_num_neighbors: int | None = None) -> CSR:
        """The graph as gnn's :class:`~gnn.core.ops.CSR` (rows are the targets): what these layers run on
        (PyG returns a cugraph-ops graph object)."""
        graph, num_src, num_dst = self.read_cugraph(edge_index)
        g = read_graph(
            graph, None if num_src is None else (num_src, num_dst if num_dst is not None else num_src)
        )
        g.square_up()
        return g.csr()


def _check_max_num_neighbors(value: Any) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise TypeError(f"'max_num_neighbors' must be a non-negative int or None, got {v.describe(value)}")


class CuGraphSAGEConv(CuGraphModule):
    r"""GraphSAGE with the API of PyG's ``CuGraphSAGEConv``:

    .. math::
        \mathbf{x}^{\prime}_i = \mathbf{W} \big[\bigoplus_{j \in \mathcal{N}(i)} \mathbf{x}_j
        \,\Vert\, \mathbf{x}_i\big] + \mathbf{b}

    (without the root part when ``root_weight=False``), with :math:`\bigoplus` the
    ``aggr`` reduction (mean, sum, min, max; fused ``ops.spmm``), an optional projection
    :math:`\mathbf{x} \leftarrow \mathrm{ReLU}(\mathbf{W}_p \mathbf{x} + \mathbf{b}_p)` first
    (``project``) and an optional :math:`\ell_2` normalization of the output.

    Args:
        in_channels: input size.
        out_channels: output size.
        aggr: ``"mean"``, ``"sum"``, ``"min"`` or ``"max"``.
        normalize: :math:`\ell_2`-normalize the output.
        root_weight: include the target's own features.
        project: project the features first.
        bias: learn a bias (in ``lin``).

    Shapes:
        ``x`` ``[N_src, F_in]``; output ``[N_dst, out_channels]``.

    Example:
        >>> conv = CuGraphSAGEConv(8, 16)
        >>> conv(torch.randn(5, 8), torch.tensor([[0, 1, 2], [1, 2, 3]])).shape
        torch.Size([5, 16])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        aggr: str = "mean",
        normalize: bool = False,
        root_weight: bool = True,
        project: bool = False,
        bias: bool = True,
    ) -> None:
        if aggr not in SAGE_AGGRS:
            raise ValueError(
                f"Aggregation function must be either 'mean', 'sum', 'min' or 'max' (got '{aggr}')"
            )
        super().__init__(aggr=aggr)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.normalize = normalize
        self.root_weight = root_weight
        self.project = project
        if project:
            self.pre_lin = Linear(in_channels, in_channels, bias=True)
        self.lin = Linear(2 * in_channels if root_weight else in_channels, out_channels, bias=bias)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialize the linear maps."""
        super().reset_parameters()
        if self.project:
            self.pre_lin.reset_parameters()
        self.lin.reset_parameters()

    def forward(self, x: Tensor, edge_index: Any, max_num_neighbors: int | None = None) -> Tensor:
        """Aggregate the sources into the targets (see the class docstring)."""
        graph, num_src, num_dst = self._read_inputs(x, edge_index, max_num_neighbors)
        if self.project:
            x = self.pre_lin(x).relu()
        x_dst = x[:num_dst]
        out = self.propagate(graph, x=(x, x_dst), size=(num_src, num_dst))
        if self.root_weight:
            out = torch.cat([out, x_dst], dim=-1)
        out = self.lin(out)
        if self.normalize:
            out = F.normalize(out, p=2.0, dim=-1)
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels}, aggr={self.aggr})"


class CuGraphGATConv(CuGraphModule):
    r"""GAT attention with the API of PyG's ``CuGraphGATConv`` (no self loops added):

    .. math::
        \mathbf{x}^{\prime}_i = \mathop{\Big\Vert}_{h=1}^{H} \sum_{j \in \mathcal{N}(i)}
        \alpha^{h}_{i,j}\mathbf{\Theta}^{h}\mathbf{x}_{j} + \mathbf{b},\qquad
        \alpha^{h}_{i,j} = \operatorname{softmax}_{j}\big(\operatorname{LeakyReLU}(
        \mathbf{a}^{h\top}_{s}\mathbf{\Theta}^{h}\mathbf{x}_j
        + \mathbf{a}^{h\top}_{t}\mathbf{\Theta}^{h}\mathbf{x}_i)\big)

    (heads concatenated or averaged), where ``att`` ``[2 H C]`` holds
    :math:`\mathbf{a}_s` then :math:`\mathbf{a}_t`. The attention and the weighted sum run
    as one fused op (:func:`gnn.core.ops.node_score_attention`). The layer has no edge
    weights (PyG's neither: no ``edge_dim``, an attention vector of ``2 H C``), so
    ``edge_attr`` is accepted and not used, as by a GATConv without ``edge_dim``.

    Args:
        in_channels: input size.
        out_channels: output size per head.
        heads: number of heads.
        concat: concatenate (``True``) or average the heads.
        negative_slope: LeakyReLU slope.
        bias: learn a bias.

    Shapes:
        ``x`` ``[N_src, F_in]``; output ``[N_dst, H * C]`` or ``[N_dst, C]``.

    Example:
        >>> conv = CuGraphGATConv(8, 4, heads=2)
        >>> conv(torch.randn(5, 8), torch.tensor([[0, 1, 2], [1, 2, 3]]), None).shape
        torch.Size([5, 8])
    """

    fused_message = plans.NodeScoreAttention(scores="alpha")

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        heads: int = 1,
        concat: bool = True,
        negative_slope: float = 0.2,
        bias: bool = True,
    ) -> None:
        super().__init__(aggr="add", node_dim=0)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.heads = heads
        self.concat = concat
        self.negative_slope = negative_slope
        self.lin = Linear(in_channels, heads * out_channels, bias=False)
        self.att = Parameter(torch.empty(2 * heads * out_channels))
        if bias:
            self.bias = Parameter(torch.empty(heads * out_channels if concat else out_channels))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Default ``lin`` init, Xavier-normal (ReLU gain) attention, zero bias."""
        super().reset_parameters()
        self.lin.reset_parameters()
        gain = torch.nn.init.calculate_gain("relu")
        with torch.no_grad():
            torch.nn.init.xavier_normal_(self.att.view(2, self.heads, self.out_channels), gain=gain)
        zeros(self.bias)

    def forward(
        self,
        x: Tensor,
        edge_index: Any,
        edge_attr: Tensor | None = None,
        max_num_neighbors: int | None = None,
    ) -> Tensor:
        """Attend over the incoming edges of every target node (see the class docstring)."""
        graph, num_src, num_dst = self._read_inputs(x, edge_index, max_num_neighbors)
        if edge_attr is not None:
            v.check_tensor("edge_attr", edge_attr)
        H, C = self.heads, self.out_channels
        x = self.lin(x).view(-1, H, C)
        x_dst = x[:num_dst]
        a = self.att.view(2, 1, H, C)
        alpha = self.edge_updater(
            graph, alpha=(att.node_scores(x, a[0]), att.node_scores(x_dst, a[1])), size=(num_src, num_dst)
        )
        out = self.propagate(graph, x=(x, x_dst), alpha=alpha, size=(num_src, num_dst))
        out = att.heads_output(out, self.concat)
        if self.bias is not None:
            out = out + self.bias
        return out

    def edge_update(
        self, alpha_j: Tensor, alpha_i: Tensor, index: Tensor, ptr: Tensor | None, dim_size: int | None
    ) -> Tensor:
        """Normalized attention ``[E, H]``."""
        return att.normalize_scores(
            alpha_j + alpha_i,
            index,
            dim_size if dim_size is not None else 0,
            negative_slope=self.negative_slope,
            ptr=ptr,
        )

    def edge_term(self, edge_attr: Tensor | None) -> None:
        """No edge term: the layer has no edge weights."""
        return None

    def message(self, x_j: Tensor, alpha: Tensor) -> Tensor:
        """``alpha_ij * x_j`` per head."""
        return att.weighted_message(x_j, alpha)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels}, heads={self.heads})"
