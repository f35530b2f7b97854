r"""Graph networks (Battaglia et al., 2018): :class:`MetaLayer`."""

from __future__ import annotations

import torch
from torch import Tensor

from gnn.core import validation as v

__all__ = ["MetaLayer"]


class MetaLayer(torch.nn.Module):
    r"""One graph-network block: an edge, a node and a global update, each optional.

    .. math::
        \mathbf{e}'_{ij} = \phi^e(\mathbf{x}_i, \mathbf{x}_j, \mathbf{e}_{ij}, \mathbf{u}_{b(i)}),
        \quad \mathbf{x}'_i = \phi^v(\mathbf{x}, \mathcal{E}, \mathbf{e}', \mathbf{u}, b),
        \quad \mathbf{u}' = \phi^u(\mathbf{x}', \mathcal{E}, \mathbf{e}', \mathbf{u}, b)

    with :math:`i = ` ``edge_index[0]`` (source) and :math:`j = ` ``edge_index[1]``
    (target). The models are called as

    * ``edge_model(src, dst, edge_attr, u, batch[src])`` (``batch`` ``None`` stays ``None``),
    * ``node_model(x, edge_index, edge_attr, u, batch)``,
    * ``global_model(x, edge_index, edge_attr, u, batch)``,

    each after the previous one, so the node model sees the updated edges and
    the global model the updated nodes and edges.

    Args:
        edge_model: :math:`\phi^e`, or ``None`` (edges unchanged).
        node_model: :math:`\phi^v`, or ``None``.
        global_model: :math:`\phi^u`, or ``None``.

    Shapes:
        ``x`` ``[N, F]``, ``edge_index`` ``[2, E]``, ``edge_attr`` ``[E, D]``, ``u``
        ``[B, G]``, ``batch`` ``[N]`` -> ``(x', edge_attr', u')``.

    Example:
        >>> class Edge(torch.nn.Module):
        ...     def forward(self, src, dst, edge_attr, u, batch):
        ...         return src - dst
        >>> layer = MetaLayer(edge_model=Edge())
        >>> x, e, u = layer(torch.randn(3, 4), torch.tensor([[0, 1], [1, 2]]))
        >>> e.shape
        torch.Size([2, 4])
    """

    def __init__(
        self,
        edge_model: torch.nn.Module | None = None,
        node_model: torch.nn.Module | None = None,
        global_model: torch.nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.edge_model = edge_model
        self.node_model = node_model
        self.global_model = global_model
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Reset the three models (those that have ``reset_parameters``)."""
        for model in (self.node_model, self.edge_model, self.global_model):
            if hasattr(model, "reset_parameters"):
                model.reset_parameters()

    def forward(
        self,
        x: Tensor,
        edge_index: Tensor,
        edge_attr: Tensor | None = None,
        u: Tensor | None = None,
        batch: Tensor | None = None,
    ) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """``(x', edge_attr', u')`` (see the class docstring)."""
        v.check_tensor("x", x)
        v.check_edge_index(edge_index)
        v.check_index_range("edge_index", edge_index, x.size(0), "nodes of 'x'")
        src, dst = edge_index[0], edge_index[1]
        if self.edge_model is not None:
            edge_batch = None if batch is None else batch[src]
            edge_attr = self.edge_model(x[src], x[dst], edge_attr, u, edge_batch)
        if self.node_model is not None:
            x = self.node_model(x, edge_index, edge_attr, u, batch)
        if self.global_model is not None:
            u = self.global_model(x, edge_index, edge_attr, u, batch)
        return x, edge_attr, u

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(\n"
            f"  edge_model={self.edge_model},\n"
            f"  node_model={self.node_model},\n"
            f"  global_model={self.global_model}\n"
            ")"
        )
