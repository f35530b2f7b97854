r"""SuperGATConv: self-supervised graph attention (Kim & Oh, 2021)."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from gnn.core import Linear, MessagePassing
from gnn.core import validation as v
from gnn.core.graph import read_graph
from gnn.core.nn.inits import glorot, zeros

from . import _attention as att
from ._utils import check_flat_nodes, check_in_channels

ATTENTION_TYPES = ("MX", "SD")


def _negative_edges(
    edge_index: Tensor,
    num_nodes: int,
    num_samples: int,
    batch: Tensor | None = None,
    undirected: bool = False,
    rounds: int = 4,
) -> Tensor:
    """Up to ``num_samples`` random node pairs ``[2, K]`` that are not edges (nor self loops).

    With ``batch`` both ends lie in the same graph; with ``undirected`` the
    pairs come in both directions. Dense graphs may yield fewer pairs.
    """
    device = edge_index.device
    if num_samples <= 0 or num_nodes < 2:
        return edge_index.new_empty(2, 0)
    existing = edge_index[0].long() * num_nodes + edge_index[1].long()
    if batch is not None:
        order = torch.argsort(batch, stable=True)
        counts = torch.bincount(batch, minlength=int(batch.max()) + 1 if batch.numel() else 0)
        offsets = torch.cumsum(counts, 0) - counts
    wanted = num_samples // 2 if undirected else num_samples
    found: list[Tensor] = []
    have = 0
    for _ in range(rounds):
        draw = 2 * wanted + 8
        src = torch.randint(0, num_nodes, (draw,), device=device)
        if batch is None:
            dst = torch.randint(0, num_nodes, (draw,), device=device)
        else:
            g = batch[src]
            pick = (torch.rand(draw, device=device) * counts[g]).long()
            dst = order[offsets[g] + pick]
        if undirected:
            src, dst = torch.minimum(src, dst), torch.maximum(src, dst)
        keys = src * num_nodes + dst
        ok = (src != dst) & ~torch.isin(keys, existing)
        keys = torch.unique(keys[ok])
        keys = keys[torch.randperm(keys.numel(), device=device)]
        if found:
            keys = keys[~torch.isin(keys, torch.cat(found))]
        found.append(keys[: wanted - have])
        have += found[-1].numel()
        if have >= wanted:
            break
    keys = torch.cat(found)
    pairs = torch.stack([keys // num_nodes, keys % num_nodes]).to(edge_index.dtype)
    if undirected:
        pairs = torch.cat([pairs, pairs.flip(0)], dim=1)
    return pairs


class SuperGATConv(MessagePassing):
    r"""The self-supervised graph attentional operator from "How to Find Your
    Friendly Neighborhood: Graph Attention Design with Self-Supervision".

    .. math::
        \mathbf{x}^{\prime}_i = \mathop{\Big\Vert}_{h=1}^{H}
        \sum_{j \in \mathcal{N}(i) \cup \{ i \}} \alpha^h_{i,j} \mathbf{\Theta}^h \mathbf{x}_j,
        \qquad
        \alpha^h_{i,j} = \operatorname{softmax}_j\left(\operatorname{LeakyReLU}(e^h_{i,j})\right)

    with the score :math:`e_{i,j}` of the attention type:

    * ``"MX"`` (mixed): :math:`e_{i,j} = \left(\mathbf{a}_l^{\top}\mathbf{\Theta}\mathbf{x}_j
      + \mathbf{a}_r^{\top}\mathbf{\Theta}\mathbf{x}_i\right) \cdot
      \sigma\left((\mathbf{\Theta}\mathbf{x}_i)^{\top}\mathbf{\Theta}\mathbf{x}_j\right)`;
    * ``"SD"`` (scaled dot product): :math:`e_{i,j} =
      (\mathbf{\Theta}\mathbf{x}_i)^{\top}\mathbf{\Theta}\mathbf{x}_j / \sqrt{C}`.

    In training mode the layer also scores positive edges (a fraction
    ``edge_sample_ratio`` of the self-looped graph) and negative ones
    (``neg_edge_index``, or ``neg_sample_ratio`` times as many random
    non-edges, within each graph of ``batch``) with the logits
    :math:`(\mathbf{\Theta}\mathbf{x}_i)^{\top}\mathbf{\Theta}\mathbf{x}_j`
    (divided by :math:`\sqrt{C}` for ``"SD"``), stored in ``att_x`` with
    labels ``att_y``; :meth:`get_attention_loss` is their binary
    cross-entropy, to be added to the training loss.

    Args:
        in_channels: input size (``-1`` for lazy).
        out_channels: output size per head ``C``.
        heads: number of heads ``H``.
        concat: concatenate the heads or average them.
        negative_slope: LeakyReLU slope.
        dropout: dropout probability of the attention coefficients.
        add_self_loops: replace the self loops with one loop per node.
        bias: learn an additive bias.
        attention_type: ``"MX"`` or ``"SD"``.
        neg_sample_ratio: negatives per positive sample.
        edge_sample_ratio: fraction of edges used as positive samples.
        is_undirected: sample negative pairs in both directions.
        **kwargs: :class:`~gnn.core.MessagePassing` arguments.

    Shapes:
        ``x`` ``[N, F]``, ``edge_index`` ``[2, E]`` or sparse ``adj_t``,
        ``neg_edge_index`` ``[2, E_neg]``, ``batch`` ``[N]``; output
        ``[N, H * C]`` (or ``[N, C]``).

    Example:
        >>> conv = SuperGATConv(16, 8, heads=2)
        >>> out = conv(torch.randn(10, 16), torch.randint(0, 10, (2, 40)))
        >>> loss = out.sum() + conv.get_attention_loss()
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        heads: int = 1,
        concat: bool = True,
        negative_slope: float = 0.2,
        dropout: float = 0.0,
        add_self_loops: bool = True,
        bias: bool = True,
        attention_type: str = "MX",
        neg_sample_ratio: float = 0.5,
        edge_sample_ratio: float = 1.0,
        is_undirected: bool = False,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("aggr", "add")
        super().__init__(node_dim=0, **kwargs)
        if attention_type not in ATTENTION_TYPES:
            raise ValueError(f"'attention_type' must be one of {ATTENTION_TYPES}, got {attention_type!r}")
        if not 0.0 < edge_sample_ratio <= 1.0:
            raise ValueError(f"'edge_sample_ratio' must lie in (0, 1], got {edge_sample_ratio}")
        if neg_sample_ratio <= 0.0:
            raise ValueError(f"'neg_sample_ratio' must be positive, got {neg_sample_ratio}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.heads = heads
        self.concat = concat
        self.negative_slope = negative_slope
        self.dropout = dropout
        self.add_self_loops = add_self_loops
        self.attention_type = attention_type
        self.neg_sample_ratio = neg_sample_ratio
        self.edge_sample_ratio = edge_sample_ratio
        self.is_undirected = is_undirected

        self.lin = Linear(in_channels, heads * out_channels, bias=False, weight_initializer="glorot")
        if attention_type == "MX":
            self.att_l: torch.nn.Parameter | None = torch.nn.Parameter(torch.empty(1, heads, out_channels))
            self.att_r: torch.nn.Parameter | None = torch.nn.Parameter(torch.empty(1, heads, out_channels))
        else:
            self.register_parameter("att_l", None)
            self.register_parameter("att_r", None)
        out = heads * out_channels if concat else out_channels
        if bias:
            self.bias: torch.nn.Parameter | None = torch.nn.Parameter(torch.empty(out))
        else:
            self.register_parameter("bias", None)
        self.att_x: Tensor | None = None
        self.att_y: Tensor | None = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Glorot weights and attention vectors, zero bias."""
        super().reset_parameters()
        self.lin.reset_parameters()
        glorot(self.att_l)
        glorot(self.att_r)
        zeros(self.bias)

    def forward(
        self,
        x: Tensor,
        edge_index: Any,
        neg_edge_index: Tensor | None = None,
        batch: Tensor | None = None,
    ) -> Tensor:
        """Attend over the incoming edges; in training mode also record the self-supervision logits."""
        check_in_channels(x, self.in_channels)
        check_flat_nodes(self, x)
        graph = read_graph(edge_index, None, self.flow)
        n = x.size(0)
        graph.set_nodes(n, n)
        ei = graph.edge_index
        if neg_edge_index is not None:
            v.check_edge_index(neg_edge_index, "neg_edge_index")
            read_graph(neg_edge_index, None, self.flow).set_nodes(n, n)
        if batch is not None:
            v.check_tensor("batch", batch)
            v.check_index_dtype("batch", batch)
            if batch.dim() != 1 or batch.numel() != n:
                raise ValueError(
                    f"'batch' must have shape [{n}] (one entry per node), got {v.describe(batch)}"
                )

        h = self.lin(x).view(-1, self.heads, self.out_channels)
        loop_mask = None
        if self.add_self_loops:
            loops = att.replace_self_loops(ei, None, n, exact=self.exact_edges)
            ei, loop_mask = loops.edge_index, loops.dropped

        alpha = self.edge_updater(ei, x=h, loop_mask=loop_mask)
        out = self.propagate(ei, x=h, alpha=alpha, size=(n, n))

        if self.training:
            graph_edges = ei if loop_mask is None else ei[:, ~loop_mask]
            pos = self.positive_sampling(graph_edges)
            if neg_edge_index is None:
                neg_edge_index = self.negative_sampling(graph_edges, n, batch)
            pairs = torch.cat([pos, neg_edge_index.to(pos.dtype)], dim=1)
            j, i = (0, 1) if self.flow == "source_to_target" else (1, 0)
            self.att_x = self._logits(h.index_select(0, pairs[i]), h.index_select(0, pairs[j]))
            self.att_y = h.new_zeros(pairs.size(1))
            self.att_y[: pos.size(1)] = 1.0

        out = att.heads_output(out, self.concat)
        if self.bias is not None:
            out = out + self.bias
        return out

    def negative_sampling(self, edge_index: Tensor, num_nodes: int, batch: Tensor | None = None) -> Tensor:
        """``[2, K]`` random node pairs that are not edges, ``K = neg_sample_ratio * edge_sample_ratio * E``
        (both ends in the same graph of ``batch``; both directions with ``is_undirected``)."""
        v.check_edge_index(edge_index)
        num = int(self.neg_sample_ratio * self.edge_sample_ratio * edge_index.size(1))
        return _negative_edges(edge_index, int(num_nodes), num, batch, self.is_undirected)

    def positive_sampling(self, edge_index: Tensor) -> Tensor:
        """The edges whose attention is supervised: a random ``edge_sample_ratio`` share of them."""
        v.check_edge_index(edge_index)
        return self._positive_edges(edge_index)

    def _positive_edges(self, edge_index: Tensor) -> Tensor:
        if self.edge_sample_ratio >= 1.0:
            return edge_index
        k = int(self.edge_sample_ratio * edge_index.size(1))
        perm = torch.randperm(edge_index.size(1), device=edge_index.device)[:k]
        return edge_index[:, perm]

    def _logits(self, x_i: Tensor, x_j: Tensor) -> Tensor:
        """``[E, H]`` dot-product logits (scaled by ``1/sqrt(C)`` for ``"SD"``)."""
        dot = torch.einsum("ehc,ehc->eh", x_i, x_j)
        if self.attention_type == "SD":
            dot = dot / math.sqrt(self.out_channels)
        return dot

    def edge_update(
        self,
        x_i: Tensor,
        x_j: Tensor,
        loop_mask: Tensor | None,
        index: Tensor,
        ptr: Tensor | None,
        dim_size: int | None,
    ) -> Tensor:
        """Normalized attention ``[E, H]`` (see the class docstring for the scores)."""
        logits = self._logits(x_i, x_j)
        if self.attention_type == "MX":
            scores = att.node_scores(x_j, self.att_l) + att.node_scores(x_i, self.att_r)
            scores = scores * logits.sigmoid()
        else:
            scores = logits
        return att.normalize_scores(
            scores,
            index,
            dim_size if dim_size is not None else 0,
            negative_slope=self.negative_slope,
            dropout=self.dropout,
            training=self.training,
            ptr=ptr,
            mask=loop_mask,
        )

    def message(self, x_j: Tensor, alpha: Tensor) -> Tensor:
        """``alpha_ij * x_j`` per head."""
        return att.weighted_message(x_j, alpha)

    def get_attention_loss(self) -> Tensor:
        """Binary cross-entropy of the recorded logits (mean over heads) against ``att_y``.

        Zero in eval mode. Call after a training-mode forward pass.
        """
        if not self.training:
            return torch.tensor([0], device=self.lin.weight.device)
        if self.att_x is None or self.att_y is None:
            raise ValueError("get_attention_loss() needs a forward pass in training mode first")
        return F.binary_cross_entropy_with_logits(self.att_x.mean(dim=-1), self.att_y)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.in_channels}, {self.out_channels}, "
            f"heads={self.heads}, type={self.attention_type})"
        )
