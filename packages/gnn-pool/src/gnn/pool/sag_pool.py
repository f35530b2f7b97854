r""":class:`SAGPooling`: top-:math:`k` pooling scored by a graph convolution (Lee et al., 2019)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from gnn.conv.graph_conv import GraphConv
from gnn.core import validation as v

from .select import SelectTopK, check_min_score, check_ratio, filter_edges
from .select._checks import check_channels, check_real
from .topk_pool import check_pool_inputs, scale_selected


def resolve_gnn(gnn: Any, name: str = "GNN") -> type:
    """A conv class, or a name resolved through ``gnn.core.registry.convs`` (``"GraphConv"``, ``"graph"``).

    A class (or any callable building a module) is used as is.
    """
    if isinstance(gnn, str):
        from gnn.core import registry

        return registry.convs.lookup(gnn)
    if isinstance(gnn, torch.nn.Module) or not callable(gnn):
        raise TypeError(f"'{name}' must be a conv class or a registered conv name, got {v.describe(gnn)}")
    return gnn


class SAGPooling(torch.nn.Module):
    r"""The self-attention graph pooling operator (Lee et al., "Self-Attention Graph Pooling";
    Knyazev et al., "Understanding Attention and Generalization in Graph Neural Networks").

    .. math::
        \mathbf{y} = \sigma\big(\mathrm{GNN}(\mathbf{X}, \mathbf{A}) \cdot \mathrm{sign}(w)\big),
        \qquad \mathbf{i} = \mathrm{top}_k(\mathbf{y}),
        \qquad \mathbf{X}' = (\mathbf{X} \odot \mathbf{y})_{\mathbf{i}},
        \qquad \mathbf{A}' = \mathbf{A}_{\mathbf{i},\mathbf{i}}

    The one-channel GNN output goes through the ``select`` scorer
    (:class:`~gnn.pool.select.SelectTopK` with one input channel, as in PyG), whose single
    weight :math:`w` only contributes its sign (:math:`\sigma(s w / |w|)`); with ``min_score``
    :math:`\mathbf{y} = \mathrm{softmax}(w\,\mathrm{GNN}(\mathbf{X}, \mathbf{A}))` per graph.
    :math:`k` follows :class:`TopKPooling`.

    Args:
        in_channels: size :math:`F` of each node's features.
        ratio: float in ``(0, 1)`` or an int :math:`k`; ignored with ``min_score``.
        GNN: the scoring conv, built as ``GNN(in_channels, 1, **kwargs)``: a class (used as
            is) or a name resolved through ``gnn.core.registry.convs`` (``"GraphConv"``,
            ``"graph"``, ``"GCNConv"``, ...).
        min_score: minimal softmax score, or ``None``.
        multiplier: factor of the pooled features.
        nonlinearity: :math:`\sigma`, an activation name or a callable.
        **kwargs: passed to ``GNN``.

    Shapes:
        As :class:`TopKPooling`: ``(x [K, F], edge_index, edge_attr, batch [K], perm [K], score [K])``.

    Example:
        >>> pool = SAGPooling(16, ratio=0.5, GNN="gcn")
        >>> out = pool(torch.randn(10, 16), torch.randint(0, 10, (2, 40)))
        >>> out[0].shape
        torch.Size([5, 16])
    """

    def __init__(
        self,
        in_channels: int,
        ratio: float | int = 0.5,
        GNN: torch.nn.Module = GraphConv,  # noqa: N803 (PyG's argument name)
        min_score: float | None = None,
        multiplier: float = 1.0,
        nonlinearity: str | Callable = "tanh",
        **kwargs: Any,
    ) -> None:
        super().__init__()
        self.in_channels = check_channels(in_channels, "in_channels")
        self.min_score = check_min_score(min_score)
        self.ratio = check_ratio(ratio, self.min_score)
        self.multiplier = check_real(multiplier, "multiplier")
        self.gnn = resolve_gnn(GNN)(in_channels, 1, **kwargs)
        self.select = SelectTopK(1, ratio, min_score, nonlinearity)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialize the scoring GNN and ``select``."""
        self.gnn.reset_parameters()
        self.select.reset_parameters()

    def forward(
        self,
        x: Tensor,
        edge_index: Tensor,
        edge_attr: Tensor | None = None,
        batch: Tensor | None = None,
        attn: Tensor | None = None,
    ) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None, Tensor, Tensor]:
        """Pool; ``attn`` (default ``x``) is what the GNN scores. ``edge_attr`` is filtered, not scored."""
        x, edge_index, edge_attr, batch, attn = check_pool_inputs(x, edge_index, edge_attr, batch, attn)
        out = self.gnn(attn, edge_index)
        if out.numel() != x.size(0):
            raise ValueError(
                f"'GNN' must give one score per node ({x.size(0)}), got an output of shape {list(out.shape)}"
            )
        perm, score = self.select(out.view(-1, 1), batch)
        num_nodes = x.size(0)
        x = scale_selected(x, score, perm, self.multiplier)
        edge_index, edge_attr = filter_edges(edge_index, edge_attr, perm, num_nodes)
        return x, edge_index, edge_attr, batch[perm], perm, score[perm]

    def __repr__(self) -> str:
        arg = f"ratio={self.ratio}" if self.min_score is None else f"min_score={self.min_score}"
        return (
            f"{type(self).__name__}({type(self.gnn).__name__}, {self.in_channels}, {arg}, "
            f"multiplier={self.multiplier})"
        )
