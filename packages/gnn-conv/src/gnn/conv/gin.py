r"""Graph isomorphism networks (Xu et al., 2019): :class:`GINConv` and :class:`GINEConv`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from gnn.core import plans
from gnn.core import validation as v
from gnn.core.message_passing import MessagePassing
from gnn.core.nn.inits import reset
from gnn.core.nn.linear import Linear

from ._utils import pair


class _GINBase(MessagePassing):
    """The shared part of GIN and GINE: ``nn((1 + eps) x_i + aggregated)``.

    The root term goes to propagate as its plan's ``root`` argument: added after
    the propagate hooks (they see the aggregation alone, as in PyG), and inside the
    fused neighbour sum when it can be (no extra ``[N, F]`` passes).
    """

    fused_message = plans.WeightedSum(root="root")

    def __init__(self, nn: Callable, eps: float, train_eps: bool, **kwargs: Any) -> None:
        kwargs.setdefault("aggr", "add")
        super().__init__(**kwargs)
        self.nn = nn
        self.initial_eps = eps
        if train_eps:
            self.eps = torch.nn.Parameter(torch.empty(1))
        else:
            self.register_buffer("eps", torch.empty(1))

    def reset_parameters(self) -> None:
        """Reset ``nn`` and set ``eps`` back to its initial value."""
        super().reset_parameters()
        reset(self.nn)
        self.eps.data.fill_(self.initial_eps)

    def _propagate(self, edge_index: Any, x: Any, size: Any, **kwargs: Any) -> Tensor:
        """``(1 + eps) x_dst + sum_j message``, before ``nn``."""
        x_src, x_dst = pair(x)
        if not isinstance(x_src, Tensor) or x_src.dim() < 2:
            raise ValueError(f"'x' must be a [N, F] tensor of node features, got {v.describe(x_src)}")
        eps = self.eps
        if eps.requires_grad or torch.compiler.is_compiling():
            factor: Tensor | float = 1 + eps
        else:  # a constant eps: a number the fused sum takes as is
            factor = 1.0 + eps.item()
        return self.propagate(edge_index, x=(x_src, x_dst), size=size, root=(x_dst, factor), **kwargs)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(nn={self.nn})"


class GINConv(_GINBase):
    r"""Graph isomorphism layer: :math:`x_i' = h_\Theta\big((1 + \epsilon) x_i + \sum_{j \in \mathcal{N}(i)} x_j\big)`.

    The neighbour sum runs on the fused ``ops.spmm`` path; with a constant
    :math:`\epsilon` (``train_eps=False``) the root term is added in the same pass.

    Args:
        nn: the network :math:`h_\Theta` (e.g. an MLP) applied to the result.
        eps: initial :math:`\epsilon`.
        train_eps: learn :math:`\epsilon` (a parameter; otherwise a buffer).
        **kwargs: :class:`~gnn.core.MessagePassing` arguments (``aggr``
            defaults to ``"add"``).

    Shapes:
        ``x`` ``[N, F]`` or ``([N_src, F], [N_dst, F])`` -> ``[N_dst, F_out]``
        (the output size of ``nn``).

    Example:
        >>> conv = GINConv(torch.nn.Linear(16, 32), train_eps=True)
        >>> conv(torch.randn(4, 16), torch.tensor([[0, 1], [1, 2]])).shape
        torch.Size([4, 32])
    """

    def __init__(self, nn: Callable, eps: float = 0.0, train_eps: bool = False, **kwargs: Any) -> None:
        super().__init__(nn, eps, train_eps, **kwargs)
        self.reset_parameters()

    def forward(
        self,
        x: Tensor | tuple[Tensor, Tensor | None],
        edge_index: Any,
        size: tuple[int, int] | None = None,
    ) -> Tensor:
        """Apply the layer (see the class docstring for shapes)."""
        return self.nn(self._propagate(edge_index, x, size))


def _in_channels_of(nn: Any) -> int:
    """The input size of ``nn`` (a linear layer, or a Sequential starting with one)."""
    for module in [nn, *(list(nn.children())[:1] if isinstance(nn, torch.nn.Module) else [])]:
        for attr in ("in_features", "in_channels"):
            value = getattr(module, attr, None)
            if isinstance(value, int):
                return value
    raise ValueError(
        "Could not infer the input channels from 'nn' for edge_dim; "
        "give it an 'in_features'/'in_channels' attribute (e.g. start it with a Linear)"
    )


class GINEConv(_GINBase):
    r"""GIN with edge features (Hu et al., 2020).

    .. math::
        x_i' = h_\Theta\Big((1 + \epsilon) x_i + \sum_{j \in \mathcal{N}(i)}
            \mathrm{ReLU}(x_j + W e_{j,i} + b)\Big)

    The edge transform :math:`W e + b` exists when ``edge_dim`` is given;
    otherwise ``edge_attr`` must already have the node feature size.

    Args:
        nn: the network :math:`h_\Theta`.
        eps: initial :math:`\epsilon`.
        train_eps: learn :math:`\epsilon`.
        edge_dim: edge feature size (adds ``lin``: ``edge_dim`` -> the
            input size of ``nn``).
        **kwargs: :class:`~gnn.core.MessagePassing` arguments.

    Shapes:
        ``x`` ``[N, F]`` or a pair, ``edge_attr`` ``[E, edge_dim]`` (or
        ``[E, F]``) -> ``[N_dst, F_out]``. For a sparse ``adj_t`` the edge
        attributes are its values (``[E, edge_dim]`` hybrid values).

    Example:
        >>> conv = GINEConv(torch.nn.Linear(16, 32), edge_dim=4)
        >>> ei = torch.tensor([[0, 1], [1, 2]])
        >>> conv(torch.randn(3, 16), ei, torch.randn(2, 4)).shape
        torch.Size([3, 32])
    """

    def __init__(
        self,
        nn: torch.nn.Module,
        eps: float = 0.0,
        train_eps: bool = False,
        edge_dim: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(nn, eps, train_eps, **kwargs)
        if edge_dim is not None:
            self.lin = Linear(edge_dim, _in_channels_of(nn))
        else:
            self.lin = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Reset ``nn``, ``eps`` and the edge transform."""
        super().reset_parameters()
        if self.lin is not None:
            self.lin.reset_parameters()

    def forward(
        self,
        x: Tensor | tuple[Tensor, Tensor | None],
        edge_index: Any,
        edge_attr: Tensor | None = None,
        size: tuple[int, int] | None = None,
    ) -> Tensor:
        """Apply the layer (see the class docstring for shapes)."""
        return self.nn(self._propagate(edge_index, x, size, edge_attr=edge_attr))

    def message(self, x_j: Tensor, edge_attr: Tensor | None) -> Tensor:
        """``ReLU(x_j + lin(edge_attr))``."""
        if edge_attr is None:
            raise ValueError(f"'{type(self).__name__}' needs 'edge_attr' (one row of features per edge)")
        if edge_attr.dim() == 1:
            edge_attr = edge_attr.view(-1, 1)
        if edge_attr.size(0) != x_j.size(self.node_dim):
            raise ValueError(
                f"'edge_attr' has {edge_attr.size(0)} rows but the graph has {x_j.size(self.node_dim)} edges"
            )
        if self.lin is None and x_j.size(-1) != edge_attr.size(-1):
            raise ValueError(
                "Node and edge feature dimensionalities do not match: 'edge_attr' has "
                f"{edge_attr.size(-1)} features, 'x' has {x_j.size(-1)}. Consider setting the "
                f"'edge_dim' attribute of '{type(self).__name__}'"
            )
        if self.lin is not None:
            edge_attr = self.lin(edge_attr)
        return (x_j + edge_attr).relu()
