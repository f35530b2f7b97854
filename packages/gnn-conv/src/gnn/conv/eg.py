r"""EGConv: efficient graph convolution with aggregator fusion (Tailor et al., 2021)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from gnn.core import Linear, MessagePassing, ops
from gnn.core.graph import Graph, read_graph
from gnn.core.nn.inits import zeros
from gnn.core.utils import add_remaining_self_loops, gcn_norm

from ._utils import check_flat_nodes, check_in_channels, clear_layer_cache, layer_cache

AGGREGATORS = ("sum", "mean", "symnorm", "max", "min", "var", "std")


class EGConv(MessagePassing):
    r"""The Efficient Graph Convolution from "Adaptive Filters and Aggregator
    Fusion for Efficient Graph Convolutions".

    .. math::
        \mathbf{x}_i^{\prime} = {\LARGE \mathop{\Vert}_{h=1}^{H}}
        \sum_{\oplus \in \mathcal{A}} \sum_{b = 1}^{B} w_{i, h, \oplus, b}
        \bigoplus_{j \in \mathcal{N}(i) \cup \{i\}} \mathbf{W}_b \mathbf{x}_{j}

    :math:`B` shared basis projections :math:`\mathbf{W}_b` (``bases_lin``,
    ``out_channels / H`` features each) are aggregated with every aggregator
    :math:`\oplus` of ``aggregators``, then mixed per node and head with the
    weights :math:`w_{i} = \mathbf{W}_c \mathbf{x}_i + \mathbf{b}_c`
    (``comb_lin``); ``symnorm`` is GCN's symmetric normalization, ``std``
    is :math:`\sqrt{\max(\mathrm{var}, 10^{-5})}`.

    Args:
        in_channels: input size (``-1`` for lazy).
        out_channels: output size (divisible by ``num_heads``).
        aggregators: subset of ``["sum", "mean", "symnorm", "max", "min",
            "var", "std"]`` (default ``["symnorm"]``).
        num_heads: number of heads ``H``.
        num_bases: number of bases ``B``.
        cached: cache the self-looped (normalized) graph.
        add_self_loops: add a self loop to nodes without one.
        bias: learn an additive bias.
        **kwargs: :class:`~gnn.core.MessagePassing` arguments.

    Shapes:
        ``x`` ``[N, F]``, ``edge_index`` ``[2, E]`` or sparse ``adj_t``;
        output ``[N, out_channels]``.

    Example:
        >>> conv = EGConv(16, 32, aggregators=["sum", "max"])
        >>> conv(torch.randn(10, 16), torch.randint(0, 10, (2, 40))).shape
        torch.Size([10, 32])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        aggregators: list[str] | None = None,
        num_heads: int = 8,
        num_bases: int = 4,
        cached: bool = False,
        add_self_loops: bool = True,
        bias: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(node_dim=0, **kwargs)
        if out_channels % num_heads != 0:
            raise ValueError(
                f"'out_channels' ({out_channels}) must be divisible by 'num_heads' ({num_heads})"
            )
        if aggregators is None:
            aggregators = ["symnorm"]
        for a in aggregators:
            if a not in AGGREGATORS:
                raise ValueError(f"'aggregators' must be a subset of {list(AGGREGATORS)}, got {a!r}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.num_heads = num_heads
        self.num_bases = num_bases
        self.cached = cached
        self.add_self_loops = add_self_loops
        self.aggregators = list(aggregators)
        self._cached_edge_index: tuple[Tensor, Tensor | None] | None = None
        self._cached_adj_t: tuple[Tensor, Tensor | None] | None = None

        self.bases_lin = Linear(
            in_channels, (out_channels // num_heads) * num_bases, bias=False, weight_initializer="glorot"
        )
        self.comb_lin = Linear(in_channels, num_heads * num_bases * len(aggregators))
        if bias:
            self.bias: torch.nn.Parameter | None = torch.nn.Parameter(torch.empty(out_channels))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Reset both projections, zero bias, forget the cached graph."""
        super().reset_parameters()
        self.bases_lin.reset_parameters()
        self.comb_lin.reset_parameters()
        zeros(self.bias)
        clear_layer_cache(self, "_cached_edge_index", "_cached_adj_t")

    def _looped_graph(self, graph: Graph, num_nodes: int, dtype: torch.dtype) -> tuple[Tensor, Tensor | None]:
        """``(edge_index with self loops, symnorm weights or None)``, cached when ``cached``."""
        ei = graph.edge_index

        def compute() -> tuple[Tensor, Tensor | None]:
            looped = add_remaining_self_loops(ei, num_nodes=num_nodes)[0] if self.add_self_loops else ei
            weight = None
            if "symnorm" in self.aggregators:
                _, weight = gcn_norm(looped, None, num_nodes, False, False, self.flow, dtype=dtype)
            return looped, weight

        attr = "_cached_adj_t" if graph.is_sparse else "_cached_edge_index"
        return layer_cache(self, attr, (ei,), compute)

    def forward(self, x: Tensor, edge_index: Any) -> Tensor:
        """Aggregate the bases with every aggregator and mix them per node and head."""
        check_in_channels(x, self.in_channels)
        check_flat_nodes(self, x)
        graph = read_graph(edge_index, None, self.flow)
        n = x.size(0)
        graph.set_nodes(n, n)
        ei, symnorm_weight = self._looped_graph(graph, n, x.dtype)

        bases = self.bases_lin(x)
        weightings = self.comb_lin(x)
        # [N, A, B * F'] -> [N, A * B, F']
        aggregated = self.propagate(ei, x=bases, symnorm_weight=symnorm_weight, size=(n, n))
        aggregated = aggregated.view(
            n, len(self.aggregators) * self.num_bases, self.out_channels // self.num_heads
        )
        weightings = weightings.view(n, self.num_heads, self.num_bases * len(self.aggregators))
        out = torch.matmul(weightings, aggregated).reshape(n, self.out_channels)
        if self.bias is not None:
            out = out + self.bias
        return out

    def message(self, x_j: Tensor) -> Tensor:
        """The sender's bases ``x_j``."""
        return x_j

    def aggregate(
        self,
        inputs: Tensor,
        index: Tensor,
        ptr: Tensor | None = None,
        dim_size: int | None = None,
        symnorm_weight: Tensor | None = None,
    ) -> Tensor:
        """``[N, A, B * F']``: the messages reduced with every aggregator."""
        outs = []
        for name in self.aggregators:
            if name == "symnorm":
                assert symnorm_weight is not None
                outs.append(ops.scatter(inputs * symnorm_weight.view(-1, 1), index, 0, dim_size, "sum"))
            elif name in ("var", "std"):
                mean = ops.scatter(inputs, index, 0, dim_size, "mean")
                mean_sq = ops.scatter(inputs * inputs, index, 0, dim_size, "mean")
                out = mean_sq - mean * mean
                outs.append(out.clamp(min=1e-5).sqrt() if name == "std" else out)
            else:
                outs.append(ops.scatter(inputs, index, 0, dim_size, name))
        return torch.stack(outs, dim=1)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.in_channels}, {self.out_channels}, aggregators={self.aggregators})"
        )
