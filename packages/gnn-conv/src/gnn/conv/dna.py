r"""DNAConv: dynamic neighbourhood aggregation (Fey, 2019, "Just Jump")."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import Parameter

from gnn.core import MessagePassing
from gnn.core import validation as v
from gnn.core.nn.inits import kaiming_uniform, uniform

from ._point import graph_input
from ._utils import cached_gcn_norm, clear_layer_cache


class GroupedLinear(torch.nn.Module):
    r"""A linear map applied group by group: the ``in_channels`` features are split into
    ``groups`` equal blocks, each mapped by its own ``[in / groups, out / groups]`` matrix, and
    the results are concatenated: :math:`\mathbf{y}_g = \mathbf{x}_g \mathbf{W}_g` (plus ``bias``).

    Parameters: ``weight [groups, in / groups, out / groups]``, ``bias [out_channels]``.
    """

    def __init__(self, in_channels: int, out_channels: int, groups: int = 1, bias: bool = True) -> None:
        super().__init__()
        if in_channels % groups or out_channels % groups:
            raise ValueError(
                f"'groups' ({groups}) must divide both in_channels ({in_channels}) and "
                f"out_channels ({out_channels})"
            )
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.groups = groups
        self.weight = Parameter(torch.empty(groups, in_channels // groups, out_channels // groups))
        if bias:
            self.bias: Parameter | None = Parameter(torch.empty(out_channels))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Kaiming-uniform weight (fan = features per group), uniform bias."""
        kaiming_uniform(self.weight, fan=self.weight.size(1), a=math.sqrt(5))
        uniform(self.weight.size(1), self.bias)

    def forward(self, x: Tensor) -> Tensor:
        """``[*, in_channels]`` -> ``[*, out_channels]``."""
        if self.groups == 1:
            out = x @ self.weight[0]
        else:
            lead = x.shape[:-1]
            blocks = x.reshape(-1, self.groups, self.in_channels // self.groups)
            out = torch.einsum("ngi,gio->ngo", blocks, self.weight).reshape(lead + (self.out_channels,))
        return out if self.bias is None else out + self.bias

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels}, groups={self.groups})"


def restricted_softmax(src: Tensor, dim: int = -1, margin: float = 0.0) -> Tensor:
    r"""Softmax over ``dim`` with one more, implicit candidate of score ``margin``:
    :math:`\exp(s_l) / (\exp(\text{margin}) + \sum_k \exp(s_k))`, computed after subtracting
    :math:`\max(0, \max_k s_k)` (so the weights may sum to less than one)."""
    shift = src.amax(dim=dim, keepdim=True).clamp(min=0.0)
    weights = (src - shift).exp()
    return weights / (weights.sum(dim=dim, keepdim=True) + (margin - shift).exp())


class MultiHead(torch.nn.Module):
    r"""Grouped multi-head dot-product attention with a restricted softmax (DNAConv's attention).

    Queries, keys and values are projected by :class:`GroupedLinear` maps ``lin_q``, ``lin_k``,
    ``lin_v``; each of the ``heads`` heads attends with scores
    :math:`\mathbf{q}\mathbf{k}^\top / \sqrt{C / H}` normalized by :func:`restricted_softmax`.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        heads: int = 1,
        groups: int = 1,
        dropout: float = 0.0,
        bias: bool = True,
    ) -> None:
        super().__init__()
        for name, value in (("heads", heads), ("groups", groups)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"'{name}' must be a positive int, got {value!r}")
        if in_channels % heads or out_channels % heads:
            raise ValueError(f"'heads' ({heads}) must divide the number of channels ({out_channels})")
        if max(groups, heads) % min(groups, heads):
            raise ValueError(f"one of 'heads' ({heads}) and 'groups' ({groups}) must divide the other")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.heads = heads
        self.groups = groups
        self.dropout = dropout
        self.bias = bias
        self.lin_q = GroupedLinear(in_channels, out_channels, groups, bias)
        self.lin_k = GroupedLinear(in_channels, out_channels, groups, bias)
        self.lin_v = GroupedLinear(in_channels, out_channels, groups, bias)

    def reset_parameters(self) -> None:
        self.lin_q.reset_parameters()
        self.lin_k.reset_parameters()
        self.lin_v.reset_parameters()

    def _split(self, t: Tensor) -> Tensor:
        """``[*, L, C]`` -> ``[*, H, L, C / H]``."""
        return t.reshape(t.shape[:-1] + (self.heads, t.size(-1) // self.heads)).transpose(-2, -3)

    def forward(self, query: Tensor, key: Tensor, value: Tensor) -> Tensor:
        """``query [*, Q, C]``, ``key``/``value`` ``[*, L, C]`` -> ``[*, Q, out_channels]``."""
        q = self._split(self.lin_q(query))
        k = self._split(self.lin_k(key))
        val = self._split(self.lin_v(value))
        score = (q @ k.transpose(-2, -1)) / math.sqrt(k.size(-1))
        score = F.dropout(restricted_softmax(score, dim=-1), p=self.dropout, training=self.training)
        out = (score @ val).transpose(-3, -2)  # [*, Q, H, C / H]
        return out.reshape(out.shape[:-2] + (self.out_channels,))

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.in_channels}, {self.out_channels}, heads={self.heads}, "
            f"groups={self.groups}, dropout={self.dropout}, bias={self.bias})"
        )


class DNAConv(MessagePassing):
    r"""The dynamic neighbourhood aggregation operator from "Just Jump: Towards Dynamic
    Neighborhood Aggregation in Graph Neural Networks".

    .. math::
        \mathbf{x}_v^{(t)} = h_{\mathbf{\Theta}}^{(t)} \left( \mathbf{x}_{v \leftarrow v}^{(t)},
        \left\{ \mathbf{x}_{v \leftarrow w}^{(t)} : w \in \mathcal{N}(v) \right\} \right),
        \qquad
        \mathbf{x}_{v \leftarrow w}^{(t)} = \textrm{Attention} \left( \mathbf{x}^{(t-1)}_v
        \mathbf{\Theta}_Q^{(t)}, [\mathbf{x}_w^{(1)}, \ldots, \mathbf{x}_w^{(t-1)}]
        \mathbf{\Theta}_K^{(t)}, [\mathbf{x}_w^{(1)}, \ldots, \mathbf{x}_w^{(t-1)}]
        \mathbf{\Theta}_V^{(t)} \right)

    For every edge :math:`w \to v` the last layer's features of :math:`v` attend over all
    layers of :math:`w` (multi-head dot-product attention with grouped projections and a
    restricted softmax, :class:`MultiHead`); :math:`h` is a non-trainable GCN: the results
    are summed with the weights :math:`\hat{D}^{-1/2} (A + I) \hat{D}^{-1/2}` (``normalize``)
    or the given ``edge_weight``.

    Args:
        channels: features per layer ``C`` (input and output).
        heads: attention heads.
        groups: groups of the projections.
        dropout: dropout probability of the attention weights.
        cached: keep the normalized graph (PyG's ``_cached_edge_index`` / ``_cached_adj_t``).
        normalize: add self loops and normalize symmetrically.
        add_self_loops: add self loops when normalizing.
        bias: learn biases in the projections.
        **kwargs: :class:`~gnn.core.MessagePassing` arguments (``aggr`` defaults to ``"add"``).

    Shapes:
        ``x`` ``[N, L, C]`` (the node features of the ``L`` previous layers), ``edge_index``
        ``[2, E]`` or sparse ``adj_t``, ``edge_weight`` ``[E]`` -> ``[N, C]``.

    Example:
        >>> conv = DNAConv(32, heads=4)
        >>> x, edge_index = torch.randn(10, 3, 32), torch.randint(0, 10, (2, 40))
        >>> conv(x, edge_index).shape
        torch.Size([10, 32])
    """

    def __init__(
        self,
        channels: int,
        heads: int = 1,
        groups: int = 1,
        dropout: float = 0.0,
        cached: bool = False,
        normalize: bool = True,
        add_self_loops: bool = True,
        bias: bool = True,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("aggr", "add")
        super().__init__(node_dim=0, **kwargs)
        self.bias = bias
        self.cached = cached
        self.normalize = normalize
        self.add_self_loops = add_self_loops
        self._cached_edge_index: tuple[Tensor, Tensor | None] | None = None
        self._cached_adj_t: Any = None
        self.multi_head = MultiHead(channels, channels, heads, groups, dropout, bias)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-draw the projections and clear the cached normalization."""
        super().reset_parameters()
        self.multi_head.reset_parameters()
        clear_layer_cache(self, "_cached_edge_index", "_cached_adj_t")

    def forward(self, x: Tensor, edge_index: Any, edge_weight: Tensor | None = None) -> Tensor:
        """Attend over the layers of every neighbour, then sum with the GCN weights."""
        v.check_tensor("x", x)
        if x.dim() != 3:
            raise ValueError(f"'x' must have shape [num_nodes, num_layers, channels], got {v.describe(x)}")
        channels = self.multi_head.in_channels
        if x.size(-1) != channels:
            raise ValueError(f"'x' must have {channels} channels in its last dimension, got {v.describe(x)}")
        graph_input(edge_index)
        if self.normalize:
            edge_index, edge_weight = cached_gcn_norm(
                self, edge_index, edge_weight, x.size(0), False, self.add_self_loops, self.flow, x.dtype
            )
        return self.propagate(edge_index, x=x, edge_weight=edge_weight)

    def message(self, x_i: Tensor, x_j: Tensor, edge_weight: Tensor | None) -> Tensor:
        out = self.multi_head(x_i[:, -1:], x_j, x_j).squeeze(1)  # [E, C]
        return out if edge_weight is None else edge_weight.view(-1, 1) * out

    def __repr__(self) -> str:
        mh = self.multi_head
        return f"{type(self).__name__}({mh.in_channels}, heads={mh.heads}, groups={mh.groups})"
