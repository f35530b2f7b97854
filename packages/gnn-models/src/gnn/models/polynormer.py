r"""Polynormer (Deng et al., 2024): a polynomial-expressive graph transformer in linear time, :class:`Polynormer`."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from gnn.conv import GATConv, GCNConv, PolynormerAttention
from gnn.core import validation as v

from ._padding import check_batch, pad_nodes, unpad_nodes
from .sgformer import check_node_features


class Polynormer(torch.nn.Module):
    r"""Polynormer: local (GNN) layers with multiplicative gates, then linear global attention.

    Local stage, for :math:`l = 1, \dots, L` (``local_layers``), with
    :math:`\beta` = ``beta`` and ``Conv`` a GCN (or, with ``local_attn``, a
    GAT without self loops):

    .. math::
        g &= \mathrm{ReLU}(H_l(x)), \qquad
        x \leftarrow \mathrm{drop}\big(\mathrm{ReLU}(\mathrm{BN}_l(\mathrm{Conv}_l(x) + W_l x + b_l))\big) \\
        x &\leftarrow (1 - \beta)\,\mathrm{LN}_l(g \odot x) + \beta\,x, \qquad
        x_{\mathrm{local}} = \textstyle\sum_l x

    (``pre_ln`` normalizes :math:`x` before each layer, ``post_bn=False`` drops
    :math:`\mathrm{BN}_l`). The model predicts :math:`\mathrm{log\_softmax}(x_{\mathrm{local}} W^\top + b)`
    until the global stage is switched on by setting the attribute ``_global = True``
    (as PyG's training recipe does after a warm-up); then
    :math:`\mathrm{LN}(x_{\mathrm{local}})` goes through ``global_layers``
    :class:`~gnn.conv.PolynormerAttention` layers over the nodes of each graph
    and ``pred_global`` makes the prediction.

    The global attention layers take ``hidden_channels`` inputs, as in PyG 2.8, so the
    global stage needs ``heads=1`` (the local stage works with any ``heads``).

    Args:
        in_channels: input feature size.
        hidden_channels: hidden size per head.
        out_channels: number of classes.
        local_layers: number of local layers (at least one is built, as in PyG).
        global_layers: number of global attention layers.
        in_dropout: dropout of the input features.
        dropout: dropout of the local layers.
        global_dropout: dropout of the global attention layers.
        heads: number of heads (the hidden size is ``heads * hidden_channels``).
        beta: the mixing weight :math:`\beta`.
        qk_shared: share the query and key maps of the attention.
        pre_ln: layer norm before each local layer.
        post_bn: batch norm after each local convolution.
        local_attn: use GAT instead of GCN as local convolution.

    Shapes:
        ``x`` ``[N, in_channels]``, ``edge_index`` ``[2, E]`` (or a sparse
        ``adj_t``), ``batch`` ``[N]`` or ``None`` (one graph) ->
        ``[N, out_channels]`` log-probabilities.

    Example:
        >>> model = Polynormer(16, 32, 4, local_layers=2)
        >>> model._global = True
        >>> edge_index = torch.tensor([[0, 1, 2], [1, 2, 0]])
        >>> model(torch.randn(3, 16), edge_index, torch.zeros(3, dtype=torch.long)).shape
        torch.Size([3, 4])
    """

    def __init__(
        self,
        in_channels: int,
        hidden_channels: int,
        out_channels: int,
        local_layers: int = 7,
        global_layers: int = 2,
        in_dropout: float = 0.15,
        dropout: float = 0.5,
        global_dropout: float = 0.5,
        heads: int = 1,
        beta: float = 0.9,
        qk_shared: bool = False,
        pre_ln: bool = False,
        post_bn: bool = True,
        local_attn: bool = False,
    ) -> None:
        super().__init__()
        if not isinstance(local_layers, int) or isinstance(local_layers, bool):
            raise TypeError(f"'local_layers' must be an int, got {local_layers!r}")
        self._global = False
        self.in_channels = in_channels
        self.in_drop = in_dropout
        self.dropout = dropout
        self.pre_ln = pre_ln
        self.post_bn = post_bn
        self.beta = beta

        inner = heads * hidden_channels
        self.h_lins = torch.nn.ModuleList()
        self.local_convs = torch.nn.ModuleList()
        self.lins = torch.nn.ModuleList()
        self.lns = torch.nn.ModuleList()
        if pre_ln:
            self.pre_lns = torch.nn.ModuleList()
        if post_bn:
            self.post_bns = torch.nn.ModuleList()
        for layer in range(max(local_layers, 1)):  # PyG 2.8 always builds the first layer
            size_in = in_channels if layer == 0 else inner
            self.h_lins.append(torch.nn.Linear(size_in, inner))
            if local_attn:
                conv = GATConv(
                    size_in, hidden_channels, heads=heads, concat=True, add_self_loops=False, bias=False
                )
            else:
                conv = GCNConv(size_in, inner, cached=False, normalize=True)
            self.local_convs.append(conv)
            self.lins.append(torch.nn.Linear(size_in, inner))
            self.lns.append(torch.nn.LayerNorm(inner))
            if pre_ln:
                self.pre_lns.append(torch.nn.LayerNorm(size_in))
            if post_bn:
                self.post_bns.append(torch.nn.BatchNorm1d(inner))

        self.lin_in = torch.nn.Linear(in_channels, inner)
        self.ln = torch.nn.LayerNorm(inner)
        self.global_attn = torch.nn.ModuleList(
            [
                PolynormerAttention(
                    channels=hidden_channels,
                    heads=heads,
                    head_channels=hidden_channels,
                    beta=beta,
                    dropout=global_dropout,
                    qk_shared=qk_shared,
                )
                for _ in range(global_layers)
            ]
        )
        self.pred_local = torch.nn.Linear(inner, out_channels)
        self.pred_global = torch.nn.Linear(inner, out_channels)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialize every layer."""
        groups = [self.local_convs, self.global_attn, self.lins, self.h_lins, self.lns]
        if self.pre_ln:
            groups.append(self.pre_lns)
        if self.post_bn:
            groups.append(self.post_bns)
        for group in groups:
            for module in group:
                module.reset_parameters()
        for module in (self.lin_in, self.ln, self.pred_local, self.pred_global):
            module.reset_parameters()

    def forward(self, x: Tensor, edge_index: Any, batch: Tensor | None) -> Tensor:
        """Log-probabilities per node (see the class docstring)."""
        if v.validation_enabled():
            x = check_node_features(x, self.in_channels)
            batch = check_batch(batch, x.size(0))
        x = F.dropout(x, p=self.in_drop, training=self.training)
        x_local: Tensor | None = None
        for i, conv in enumerate(self.local_convs):
            if self.pre_ln:
                x = self.pre_lns[i](x)
            gate = F.relu(self.h_lins[i](x))
            x = conv(x, edge_index) + self.lins[i](x)
            if self.post_bn:
                x = self.post_bns[i](x)
            x = F.dropout(F.relu(x), p=self.dropout, training=self.training)
            x = (1 - self.beta) * self.lns[i](gate * x) + self.beta * x
            x_local = x if x_local is None else x_local + x

        if not self._global:
            return F.log_softmax(self.pred_local(x_local), dim=-1)
        padded = pad_nodes(self.ln(x_local), batch)
        h = padded.x
        for attn in self.global_attn:
            h = attn(h, padded.mask)
        return F.log_softmax(self.pred_global(unpad_nodes(h, padded)), dim=-1)
