"""DirGNNConv: direction-aware wrapper of a convolution (Rossi et al., 2023)."""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import Tensor

from gnn.core import MessagePassing
from gnn.core import validation as v
from gnn.core.utils import is_sparse


def _reverse(edge_index: Any) -> Any:
    """The graph with every edge reversed (``[2, E]`` or a sparse ``adj_t``)."""
    if is_sparse(edge_index):
        return edge_index.t()
    v.check_edge_index(edge_index)
    return edge_index.flip([0])


class DirGNNConv(torch.nn.Module):
    r"""Runs a convolution along and against the edge directions.

    .. math::
        \mathbf{x}^{\prime}_i = \alpha \, \mathrm{conv}_{\mathrm{out}}(\mathbf{X},
        \mathcal{E}^{\top})_i + (1 - \alpha) \, \mathrm{conv}_{\mathrm{in}}(\mathbf{X},
        \mathcal{E})_i + \mathbf{W} \mathbf{x}_i + \mathbf{b}

    ``conv_in`` aggregates over incoming edges, ``conv_out`` over outgoing
    edges (the reversed graph); both are deep copies of ``conv`` with their
    own self loops (``add_self_loops``) and root weights (``root_weight``)
    switched off, so that the root term is the separate linear map.

    Args:
        conv: the convolution to wrap; it must have ``in_channels`` and
            ``out_channels`` attributes when ``root_weight=True``.
        alpha: weight of the outgoing-edge convolution.
        root_weight: add the linear root term :math:`\mathbf{W}\mathbf{x}_i + \mathbf{b}`.

    Shapes:
        ``x`` ``[N, F_in]``, ``edge_index`` ``[2, E]`` or sparse ``adj_t``
        -> ``[N, F_out]``.

    Example:
        >>> from gnn.conv.gcn import GCNConv
        >>> conv = DirGNNConv(GCNConv(16, 32), alpha=0.5)
        >>> conv(torch.randn(10, 16), torch.randint(0, 10, (2, 30))).shape
        torch.Size([10, 32])
    """

    def __init__(self, conv: MessagePassing, alpha: float = 0.5, root_weight: bool = True) -> None:
        super().__init__()
        if not isinstance(conv, torch.nn.Module):
            raise TypeError(f"'conv' must be a torch.nn.Module, got {v.describe(conv)}")
        self.alpha = alpha
        self.root_weight = root_weight
        self.conv_in = copy.deepcopy(conv)
        self.conv_out = copy.deepcopy(conv)
        for copied in (self.conv_in, self.conv_out):
            if hasattr(copied, "add_self_loops"):
                copied.add_self_loops = False
            if hasattr(copied, "root_weight"):
                copied.root_weight = False
        if root_weight:
            for attr in ("in_channels", "out_channels"):
                value = getattr(conv, attr, None)
                if not isinstance(value, int) or value <= 0:
                    raise ValueError(
                        f"'conv' needs a positive integer '{attr}' attribute for root_weight=True "
                        f"(lazy sizes are not supported), got {value!r}"
                    )
            self.lin: torch.nn.Linear | None = torch.nn.Linear(conv.in_channels, conv.out_channels)
        else:
            self.lin = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Reset both convolutions and the root linear map."""
        self.conv_in.reset_parameters()
        self.conv_out.reset_parameters()
        if self.lin is not None:
            self.lin.reset_parameters()

    def forward(self, x: Tensor, edge_index: Any) -> Tensor:
        """Mix the incoming- and outgoing-edge convolutions and add the root term."""
        v.check_tensor("x", x)
        x_in = self.conv_in(x, edge_index)
        x_out = self.conv_out(x, _reverse(edge_index))
        out = self.alpha * x_out + (1 - self.alpha) * x_in
        if self.lin is not None:
            out = out + self.lin(x)
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.conv_in}, alpha={self.alpha})"
