r"""FiLMConv: graph feature-wise linear modulation (Brockschmidt, 2020)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from gnn.core import Linear, MessagePassing
from gnn.core import validation as v
from gnn.core.graph import read_graph
from gnn.core.nn.inits import reset

from . import _attention as att
from ._utils import check_in_channels

#: the default activation (stateless, shared like PyG's default argument)
_RELU = torch.nn.ReLU()


class FiLMConv(MessagePassing):
    r"""The FiLM graph convolutional operator from "GNN-FiLM: Graph Neural
    Networks with Feature-wise Linear Modulation".

    .. math::
        \mathbf{x}^{\prime}_i = \sigma\left(\boldsymbol{\gamma}_{i} \odot \mathbf{W}\mathbf{x}_i
        + \boldsymbol{\beta}_{i}\right) + \sum_{r \in \mathcal{R}} \bigoplus_{j \in \mathcal{N}_r(i)}
        \sigma\left(\boldsymbol{\gamma}_{r,i} \odot \mathbf{W}_r \mathbf{x}_{j} + \boldsymbol{\beta}_{r,i}\right)

    with :math:`[\boldsymbol{\beta}_{r,i}, \boldsymbol{\gamma}_{r,i}] = g_r(\mathbf{x}_i)`
    produced from the *target* node by ``films[r]`` (a linear map by default,
    or a copy of ``nn``), the skip terms by ``lin_skip`` / ``film_skip``,
    :math:`\sigma` = ``act`` and :math:`\bigoplus` = ``aggr`` (mean by
    default), applied per relation.

    Args:
        in_channels: input size, ``-1`` for lazy, or ``(F_src, F_dst)``.
        out_channels: output size ``C``.
        num_relations: number of edge types (``edge_type`` needed when > 1).
        nn: module mapping target features to ``2 * C`` values
            (``beta || gamma``); copied per relation and for the skip term.
        act: activation (``None`` for identity).
        aggr: aggregation per relation.
        **kwargs: :class:`~gnn.core.MessagePassing` arguments.

    Shapes:
        ``x`` ``[N, F]`` or ``([N_src, F_src], [N_dst, F_dst])``, ``edge_type``
        ``[E]`` in ``[0, num_relations)``; output ``[N_dst, C]``.

    Example:
        >>> conv = FiLMConv(16, 32, num_relations=2)
        >>> edge_index = torch.randint(0, 10, (2, 40))
        >>> conv(torch.randn(10, 16), edge_index, torch.randint(0, 2, (40,))).shape
        torch.Size([10, 32])
    """

    def __init__(
        self,
        in_channels: int | tuple[int, int],
        out_channels: int,
        num_relations: int = 1,
        nn: Callable[[Tensor], Tensor] | None = None,
        act: Callable[[Tensor], Tensor] | None = _RELU,
        aggr: str = "mean",
        **kwargs: Any,
    ) -> None:
        super().__init__(aggr=aggr, **kwargs)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.num_relations = max(num_relations, 1)
        self.act = act

        src_in, dst_in = (in_channels, in_channels) if isinstance(in_channels, int) else in_channels
        self.lins = torch.nn.ModuleList()
        self.films = torch.nn.ModuleList()
        for _ in range(self.num_relations):
            self.lins.append(Linear(src_in, out_channels, bias=False))
            self.films.append(Linear(dst_in, 2 * out_channels) if nn is None else copy.deepcopy(nn))
        self.lin_skip = Linear(dst_in, out_channels, bias=False)
        self.film_skip = Linear(dst_in, 2 * out_channels, bias=False) if nn is None else copy.deepcopy(nn)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Reset every projection and FiLM generator."""
        super().reset_parameters()
        for lin, film in zip(self.lins, self.films):
            lin.reset_parameters()
            reset(film)
        self.lin_skip.reset_parameters()
        reset(self.film_skip)

    def _film(self, film: Callable[[Tensor], Tensor], x: Tensor) -> tuple[Tensor, Tensor]:
        beta, gamma = film(x).split(self.out_channels, dim=-1)
        return beta, gamma

    def forward(
        self, x: Tensor | tuple[Tensor, Tensor], edge_index: Any, edge_type: Tensor | None = None
    ) -> Tensor:
        """Modulated messages per relation plus the modulated skip term."""
        check_in_channels(x, self.in_channels)
        x_src, x_dst = (x, x) if isinstance(x, Tensor) else x
        if x_src is None or x_dst is None:
            raise ValueError("'x' must be a tensor or a pair of tensors (x_src, x_dst), got None in it")
        graph = read_graph(edge_index, None, self.flow)
        ei = graph.edge_index
        size = att.by_row(x_src.size(self.node_dim), x_dst.size(self.node_dim), self.flow)

        beta, gamma = self._film(self.film_skip, x_dst)
        out = gamma * self.lin_skip(x_dst) + beta
        if self.act is not None:
            out = self.act(out)

        def run(edges: Tensor, lin: torch.nn.Module, film: Callable[[Tensor], Tensor]) -> Tensor:
            beta, gamma = self._film(film, x_dst)
            # pairs by edge_index row: x belongs to the sources, beta/gamma to the targets
            return self.propagate(
                edges,
                x=att.by_row(lin(x_src), None, self.flow),
                beta=att.by_row(None, beta, self.flow),
                gamma=att.by_row(None, gamma, self.flow),
                size=size,
            )

        if self.num_relations <= 1:
            return out + run(ei, self.lins[0], self.films[0])

        if edge_type is None and graph.is_sparse:
            edge_type = graph.value
        if edge_type is None:
            raise ValueError(f"'edge_type' is required when num_relations={self.num_relations} > 1")
        v.check_tensor("edge_type", edge_type)
        v.check_index_dtype("edge_type", edge_type)
        if edge_type.dim() != 1 or edge_type.numel() != ei.size(1):
            raise ValueError(
                f"'edge_type' must have shape [{ei.size(1)}] (one type per edge), got {v.describe(edge_type)}"
            )
        v.check_index_range("edge_type", edge_type, self.num_relations, "relations")
        for r, (lin, film) in enumerate(zip(self.lins, self.films)):
            out = out + run(ei[:, edge_type == r], lin, film)
        return out

    def message(self, x_j: Tensor, beta_i: Tensor, gamma_i: Tensor) -> Tensor:
        """``act(gamma_i * x_j + beta_i)``."""
        out = gamma_i * x_j + beta_i
        if self.act is not None:
            out = self.act(out)
        return out

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.in_channels}, {self.out_channels}, "
            f"num_relations={self.num_relations})"
        )
