r""":class:`TopKPooling`: keep the best-scored nodes of each graph (Graph U-Nets, Gao & Ji 2019)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from .select import SelectTopK, check_min_score, check_ratio, filter_edges
from .select._checks import (
    check_batch,
    check_channels,
    check_edge_values,
    check_edges,
    check_features,
    check_node_values,
    check_real,
)
from .select.gate import gate


def check_pool_inputs(
    x: Tensor, edge_index: Tensor, edge_attr: Tensor | None, batch: Tensor | None, attn: Tensor | None
) -> tuple[Tensor, Tensor, Tensor | None, Tensor, Tensor]:
    """Validated ``(x [N, F], edge_index, edge_attr, batch [N], attn [N, *])`` of a top-k pool."""
    x = check_features(x)
    n = x.size(0)
    check_edges(edge_index, n)
    check_edge_values(edge_attr, edge_index.size(1), "edge_attr")
    batch = check_batch(batch, n, x.device)
    attn = x if attn is None else check_node_values(attn, n, "attn")
    attn = attn.view(-1, 1) if attn.dim() == 1 else attn
    return x, edge_index, edge_attr, batch, attn


def scale_selected(x: Tensor, score: Tensor, perm: Tensor, multiplier: float) -> Tensor:
    r""":math:`m \cdot \mathbf{x}_{\mathrm{perm}} \odot \mathbf{y}_{\mathrm{perm}}` (the gate that lets
    gradients reach the scorer)."""
    return gate(x, score, perm, multiplier)


class TopKPooling(torch.nn.Module):
    r"""The :math:`\mathrm{top}_k` pooling operator (Gao & Ji, "Graph U-Nets"; Cangea et al.,
    "Towards Sparse Hierarchical Graph Classifiers"; Knyazev et al., "Understanding Attention and
    Generalization in Graph Neural Networks").

    .. math::
        \mathbf{y} = \sigma\!\left(\frac{\mathbf{X}\mathbf{p}}{\lVert\mathbf{p}\rVert}\right),
        \qquad \mathbf{i} = \mathrm{top}_k(\mathbf{y}),
        \qquad \mathbf{X}' = (\mathbf{X} \odot \mathbf{y})_{\mathbf{i}},
        \qquad \mathbf{A}' = \mathbf{A}_{\mathbf{i},\mathbf{i}}

    With ``min_score`` :math:`\tilde\alpha`, :math:`\mathbf{y} = \mathrm{softmax}(\mathbf{X}\mathbf{p})`
    per graph and :math:`\mathbf{i} = \{ j : y_j > \tilde\alpha \}` (each graph keeps at least its
    best node). :math:`k` is :math:`\lceil \mathrm{ratio} \cdot N_g \rceil` per graph for a float
    ``ratio`` below 1, and ``int(ratio)`` otherwise (so ``ratio=1.0`` keeps one node, as in PyG).
    Selection is vectorized over the graphs of a batch (``gnn.pool.select.topk``); nodes of equal
    score are ordered as PyG orders them (``torch.sort``'s order).

    Args:
        in_channels: size :math:`F` of each node's features (``p`` is ``select.weight``, ``[1, F]``).
        ratio: float in ``(0, 1)`` or an int :math:`k`; ignored with ``min_score``.
        min_score: minimal softmax score, or ``None``.
        multiplier: factor of the pooled features.
        nonlinearity: :math:`\sigma`, an activation name (``"tanh"``, ``"sigmoid"``, ...) or a callable.

    Shapes:
        ``x`` ``[N, F]``, ``edge_index`` ``[2, E]``, ``edge_attr`` ``[E, *]``, ``batch`` ``[N]``,
        ``attn`` ``[N, F]`` (the scored features; ``x`` by default) ->
        ``(x [K, F], edge_index [2, E'], edge_attr [E', *] or None, batch [K], perm [K], score [K])``.

    Example:
        >>> pool = TopKPooling(16, ratio=0.5)
        >>> x, edge_index = torch.randn(10, 16), torch.randint(0, 10, (2, 40))
        >>> x, edge_index, _, batch, perm, score = pool(x, edge_index)
        >>> x.shape, perm.shape
        (torch.Size([5, 16]), torch.Size([5]))
    """

    def __init__(
        self,
        in_channels: int,
        ratio: int | float = 0.5,
        min_score: float | None = None,
        multiplier: float = 1.0,
        nonlinearity: str | Callable = "tanh",
    ) -> None:
        super().__init__()
        self.in_channels = check_channels(in_channels, "in_channels")
        self.min_score = check_min_score(min_score)
        self.ratio = check_ratio(ratio, self.min_score)
        self.multiplier = check_real(multiplier, "multiplier")
        self.select = SelectTopK(in_channels, ratio, min_score, nonlinearity)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-draw the projection ``select.weight``."""
        self.select.reset_parameters()

    def forward(
        self,
        x: Tensor,
        edge_index: Tensor,
        edge_attr: Tensor | None = None,
        batch: Tensor | None = None,
        attn: Tensor | None = None,
    ) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None, Tensor, Tensor]:
        """Pool; ``batch=None`` means one graph (the returned batch is then all zeros)."""
        x, edge_index, edge_attr, batch, attn = check_pool_inputs(x, edge_index, edge_attr, batch, attn)
        if attn.size(-1) != self.in_channels:
            name = "x" if attn is x else "attn"
            raise ValueError(
                f"'{name}' must have {self.in_channels} features (in_channels), got {attn.size(-1)}"
            )
        num_nodes = x.size(0)
        if attn is x:  # score and gate the same features: one fused autograd step
            x, perm, score = self.select.select_and_gate(x, batch, self.multiplier)
        else:
            perm, score = self.select(attn, batch)
            x = scale_selected(x, score, perm, self.multiplier)
            score = score[perm]
        edge_index, edge_attr = filter_edges(edge_index, edge_attr, perm, num_nodes)
        return x, edge_index, edge_attr, batch[perm], perm, score

    def __repr__(self) -> str:
        arg = f"ratio={self.ratio}" if self.min_score is None else f"min_score={self.min_score}"
        return f"{type(self).__name__}({self.in_channels}, {arg}, multiplier={self.multiplier})"
