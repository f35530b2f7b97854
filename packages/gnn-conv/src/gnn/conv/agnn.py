r"""AGNNConv: the attention-based propagation layer (Thekumparampil et al., 2018)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from gnn.core import MessagePassing
from gnn.core.graph import read_graph

from . import _attention as att
from ._utils import check_flat_nodes, check_in_channels


class AGNNConv(MessagePassing):
    r"""The graph attentional propagation layer from "Attention-based Graph
    Neural Network for Semi-Supervised Learning".

    .. math::
        \mathbf{x}^{\prime}_i = \sum_{j \in \mathcal{N}(i) \cup \{ i \}} \alpha_{i,j} \mathbf{x}_j,
        \qquad
        \alpha_{i,j} = \operatorname{softmax}_j\left(\beta \cdot
        \cos\left(\mathbf{x}_i, \mathbf{x}_j\right)\right)

    with a learnable temperature :math:`\beta` (a fixed buffer equal to 1
    when ``requires_grad=False``).

    Args:
        requires_grad: learn :math:`\beta`.
        add_self_loops: replace the self loops with one loop per node.
        **kwargs: :class:`~gnn.core.MessagePassing` arguments.

    Shapes:
        ``x`` ``[N, F]``, ``edge_index`` ``[2, E]`` or sparse ``adj_t``;
        output ``[N, F]``.

    Example:
        >>> conv = AGNNConv()
        >>> conv(torch.randn(10, 16), torch.randint(0, 10, (2, 40))).shape
        torch.Size([10, 16])
    """

    def __init__(self, requires_grad: bool = True, add_self_loops: bool = True, **kwargs: Any) -> None:
        kwargs.setdefault("aggr", "add")
        super().__init__(**kwargs)
        self.requires_grad = requires_grad
        self.add_self_loops = add_self_loops
        if requires_grad:
            self.beta = torch.nn.Parameter(torch.empty(1))
        else:
            self.register_buffer("beta", torch.ones(1))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Set :math:`\\beta` back to 1."""
        super().reset_parameters()
        if self.requires_grad:
            with torch.no_grad():
                self.beta.fill_(1.0)

    def forward(self, x: Tensor, edge_index: Any) -> Tensor:
        """Propagate ``x`` with cosine-similarity attention."""
        check_in_channels(x, -1)
        check_flat_nodes(self, x)
        graph = read_graph(edge_index, None, self.flow)
        n = x.size(0)
        graph.set_nodes(n, n)
        ei = graph.edge_index
        loop_mask = None
        if self.add_self_loops:
            loops = att.replace_self_loops(ei, None, n, exact=self.exact_edges)
            ei, loop_mask = loops.edge_index, loops.dropped
        x_norm = F.normalize(x, p=2.0, dim=-1)
        alpha = self.edge_updater(ei, x_norm=x_norm, loop_mask=loop_mask)
        return self.propagate(ei, x=x, alpha=alpha)

    def edge_update(
        self,
        x_norm_i: Tensor,
        x_norm_j: Tensor,
        loop_mask: Tensor | None,
        index: Tensor,
        ptr: Tensor | None,
        dim_size: int | None,
    ) -> Tensor:
        """``[E]`` attention: softmax over each target of ``beta * cos(x_i, x_j)``."""
        scores = self.beta * torch.einsum("ef,ef->e", x_norm_i, x_norm_j)
        return att.normalize_scores(
            scores, index, dim_size if dim_size is not None else 0, ptr=ptr, mask=loop_mask
        )

    def message(self, x_j: Tensor, alpha: Tensor) -> Tensor:
        """``alpha_ij * x_j``."""
        return att.weighted_message(x_j, alpha)
