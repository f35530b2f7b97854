"""LightGCN (He et al., 2020) and the BPR loss."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import Embedding, ModuleList
from torch.nn.modules.loss import _Loss

from gnn.conv import LGConv
from gnn.core import validation as v
from gnn.core.utils import is_sparse, to_edge_index

from ._utils import check_int


class BPRLoss(_Loss):
    r"""Bayesian personalized ranking loss with L2 regularization:

    .. math::
        -\frac{1}{B}\sum_i \log \sigma(\hat{y}^+_i - \hat{y}^-_i)
        + \frac{\lambda}{B} \|\Theta\|_2^2

    Args:
        lambda_reg: :math:`\lambda`.
        **kwargs: :class:`torch.nn.modules.loss._Loss` arguments.
    """

    __constants__ = ["lambda_reg"]
    lambda_reg: float

    def __init__(self, lambda_reg: float = 0, **kwargs: Any) -> None:
        super().__init__(None, None, "sum", **kwargs)
        self.lambda_reg = lambda_reg

    def forward(self, positives: Tensor, negatives: Tensor, parameters: Tensor | None = None) -> Tensor:
        """The loss of ``[B]`` positive and negative ranks (``parameters``: what is regularized)."""
        loss = -F.logsigmoid(positives - negatives).mean()
        if self.lambda_reg != 0:
            if parameters is None:
                raise ValueError("'parameters' must be given when 'lambda_reg' is not 0")
            loss = loss + self.lambda_reg * parameters.pow(2).sum() / positives.size(0)
        return loss


class LightGCN(torch.nn.Module):
    r"""LightGCN: embeddings smoothed by ``num_layers`` parameter-free
    :class:`~gnn.conv.LGConv` hops and combined,

    .. math::
        \mathbf{x} = \sum_{l=0}^{L} \alpha_l \mathbf{x}^{(l)}, \qquad
        \mathbf{x}^{(l+1)} = \sum_{j \in \mathcal{N}(i)} \frac{1}{\sqrt{\deg(i)\deg(j)}} \mathbf{x}^{(l)}_j,

    and a link ``(i, j)`` scored by :math:`\mathbf{x}_i^\top \mathbf{x}_j`.

    Args:
        num_nodes: number of nodes (users and items together).
        embedding_dim: embedding size.
        num_layers: number of hops :math:`L`.
        alpha: the weights :math:`\alpha_l` (one float for all, or a ``[L + 1]`` tensor;
            default :math:`1 / (L + 1)`).
        **kwargs: :class:`~gnn.conv.LGConv` arguments.

    Example:
        >>> model = LightGCN(num_nodes=4, embedding_dim=8, num_layers=2)
        >>> edge_index = torch.tensor([[0, 1, 2, 3], [2, 3, 0, 1]])
        >>> model(edge_index).shape
        torch.Size([4])
    """

    def __init__(
        self,
        num_nodes: int,
        embedding_dim: int,
        num_layers: int,
        alpha: float | Tensor | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        self.num_nodes = check_int("num_nodes", num_nodes, 1)
        self.embedding_dim = check_int("embedding_dim", embedding_dim, 1)
        self.num_layers = check_int("num_layers", num_layers, 0)
        if alpha is None:
            alpha = 1.0 / (num_layers + 1)
        if isinstance(alpha, Tensor):
            if alpha.dim() != 1 or alpha.size(0) != num_layers + 1:
                raise ValueError(
                    f"'alpha' must have shape [{num_layers + 1}] (num_layers + 1), got {v.describe(alpha)}"
                )
        elif isinstance(alpha, (int, float)) and not isinstance(alpha, bool):
            alpha = torch.tensor([float(alpha)] * (num_layers + 1))
        else:
            raise TypeError(f"'alpha' must be a float or a tensor, got {v.describe(alpha)}")
        self.register_buffer("alpha", alpha)
        self.embedding = Embedding(num_nodes, embedding_dim)
        self.convs = ModuleList([LGConv(**kwargs) for _ in range(num_layers)])
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Xavier-uniform embedding."""
        torch.nn.init.xavier_uniform_(self.embedding.weight)
        for conv in self.convs:
            conv.reset_parameters()

    def get_embedding(self, edge_index: Any, edge_weight: Tensor | None = None) -> Tensor:
        """The combined embeddings :math:`\\sum_l \\alpha_l \\mathbf{x}^{(l)}` (``[N, D]``)."""
        x = self.embedding.weight
        out = x * self.alpha[0]
        for i, conv in enumerate(self.convs):
            x = conv(x, edge_index, edge_weight)
            out = out + x * self.alpha[i + 1]
        return out

    def forward(
        self, edge_index: Any, edge_label_index: Tensor | None = None, edge_weight: Tensor | None = None
    ) -> Tensor:
        """Scores ``[E']`` of the links in ``edge_label_index`` (default: the graph's edges)."""
        if edge_label_index is None:
            edge_label_index = to_edge_index(edge_index)[0] if is_sparse(edge_index) else edge_index
        edge_label_index = v.check_edge_index(edge_label_index, "edge_label_index")
        for side in (0, 1):
            v.check_index_range(f"edge_label_index[{side}]", edge_label_index[side], self.num_nodes)
        out = self.get_embedding(edge_index, edge_weight)
        return (out[edge_label_index[0]] * out[edge_label_index[1]]).sum(dim=-1)

    def predict_link(
        self,
        edge_index: Any,
        edge_label_index: Tensor | None = None,
        edge_weight: Tensor | None = None,
        prob: bool = False,
    ) -> Tensor:
        """Link probabilities (``prob=True``) or 0/1 predictions of ``edge_label_index``."""
        pred = self(edge_index, edge_label_index, edge_weight).sigmoid()
        return pred if prob else pred.round()

    def recommend(
        self,
        edge_index: Any,
        edge_weight: Tensor | None = None,
        src_index: Tensor | None = None,
        dst_index: Tensor | None = None,
        k: int = 1,
        sorted: bool = True,
    ) -> Tensor:
        """The ``k`` best-scored destinations (among ``dst_index``) of every source (of ``src_index``):
        ``[num_src, k]`` node indices."""
        check_int("k", k, 1)
        out_src = out_dst = self.get_embedding(edge_index, edge_weight)
        if src_index is not None:
            out_src = out_src[src_index]
        if dst_index is not None:
            out_dst = out_dst[dst_index]
        if k > out_dst.size(0):
            raise ValueError(f"'k' ({k}) must be at most the number of destinations ({out_dst.size(0)})")
        top = (out_src @ out_dst.t()).topk(k, dim=-1, sorted=sorted).indices
        return top if dst_index is None else dst_index[top]

    def link_pred_loss(self, pred: Tensor, edge_label: Tensor, **kwargs: Any) -> Tensor:
        """Binary cross-entropy of link scores ``pred`` against 0/1 ``edge_label``."""
        return torch.nn.BCEWithLogitsLoss(**kwargs)(pred, edge_label.to(pred.dtype))

    def recommendation_loss(
        self,
        pos_edge_rank: Tensor,
        neg_edge_rank: Tensor,
        node_id: Tensor | None = None,
        lambda_reg: float = 1e-4,
        **kwargs: Any,
    ) -> Tensor:
        """The BPR loss of positive and negative ranks, regularizing the embeddings of
        ``node_id`` (all by default)."""
        emb = self.embedding.weight if node_id is None else self.embedding.weight[node_id]
        return BPRLoss(lambda_reg, **kwargs)(pos_edge_rank, neg_edge_rank, emb)

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}({self.num_nodes}, {self.embedding_dim}, num_layers={self.num_layers})"
        )
