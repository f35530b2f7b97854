r"""The LightGCN propagation (He et al., 2020), :class:`LGConv`."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from gnn.core.message_passing import MessagePassing
from gnn.core.utils.normalization import gcn_norm
from gnn.core.utils.sparse import is_sparse

from ._utils import num_nodes, weighted_message


class LGConv(MessagePassing):
    r"""Light graph convolution: :math:`x_i' = \sum_{j \in \mathcal{N}(i)} \frac{e_{j,i}}{\sqrt{d_i d_j}} x_j`.

    No self loops and no parameters; the hop is a fused ``ops.spmm``.

    Args:
        normalize: apply the symmetric normalization.
        **kwargs: :class:`~gnn.core.MessagePassing` arguments.

    Shapes:
        ``x`` ``[N, F]``, ``edge_index`` ``[2, E]`` or sparse ``adj_t``,
        ``edge_weight`` ``[E]`` -> ``[N, F]``.

    Example:
        >>> LGConv()(torch.randn(3, 8), torch.tensor([[0, 1], [1, 2]])).shape
        torch.Size([3, 8])
    """

    fused_message = "edge_weight * x_j"

    def __init__(self, normalize: bool = True, **kwargs: Any) -> None:
        kwargs.setdefault("aggr", "add")
        super().__init__(**kwargs)
        self.normalize = normalize

    def forward(self, x: Tensor, edge_index: Any, edge_weight: Tensor | None = None) -> Tensor:
        """Propagate ``x`` once (see the class docstring for shapes)."""
        if not isinstance(x, Tensor):
            raise TypeError(f"'x' must be a torch.Tensor, got {type(x).__name__}")
        if self.normalize:
            edge_index, edge_weight = gcn_norm(
                edge_index, edge_weight, num_nodes(self, x), False, False, self.flow, x.dtype
            )
        elif is_sparse(edge_index):
            edge_weight = None
        return self.propagate(edge_index, x=x, edge_weight=edge_weight)

    def message(self, x_j: Tensor, edge_weight: Tensor | None) -> Tensor:
        """``edge_weight * x_j`` (or ``x_j`` without weights)."""
        return weighted_message(x_j, edge_weight)
