"""GENConv: the generalized graph convolution of DeeperGCN (Li et al., 2020)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import Parameter

from gnn.core import Linear, MessagePassing
from gnn.core import validation as v
from gnn.core.aggr.base import Aggregation
from gnn.core.nn.inits import reset

from ._utils import check_edge_attr, check_flat_nodes, check_in_channels

_NORMS = ("batch", "layer", "instance")


class _MLP(torch.nn.Sequential):
    """``Linear -> norm -> ReLU -> Dropout`` blocks with a plain last ``Linear``.

    The child indices (``0`` Linear, ``1`` norm, ``2`` ReLU, ``3`` Dropout,
    ``4`` Linear, ...) give GENConv's ``mlp.*`` state_dict keys.
    """

    def __init__(self, channels: list[int], norm: str | None, bias: bool, dropout: float = 0.0) -> None:
        modules: list[torch.nn.Module] = []
        for k in range(1, len(channels)):
            modules.append(Linear(channels[k - 1], channels[k], bias=bias))
            if k < len(channels) - 1:
                if norm == "batch":
                    modules.append(torch.nn.BatchNorm1d(channels[k], affine=True))
                elif norm == "layer":
                    modules.append(torch.nn.LayerNorm(channels[k], elementwise_affine=True))
                elif norm == "instance":
                    modules.append(torch.nn.InstanceNorm1d(channels[k], affine=False))
                elif norm:
                    raise ValueError(f"'norm' must be one of {_NORMS} or None, got {norm!r}")
                modules.append(torch.nn.ReLU())
                modules.append(torch.nn.Dropout(dropout))
        super().__init__(*modules)


class _MessageNorm(torch.nn.Module):
    r""":math:`\mathbf{x}_i + s \cdot \lVert \mathbf{x}_i \rVert_2 \cdot \mathbf{m}_i / \lVert \mathbf{m}_i \rVert_2`
    without the residual: rescales each aggregated message to the norm of its node's features."""

    def __init__(self, learn_scale: bool = False) -> None:
        super().__init__()
        self.scale = Parameter(torch.empty(1), requires_grad=learn_scale)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.scale.fill_(1.0)

    def forward(self, x: Tensor, msg: Tensor, p: float = 2.0) -> Tensor:
        return F.normalize(msg, p=p, dim=-1) * x.norm(p=p, dim=-1, keepdim=True) * self.scale

    def __repr__(self) -> str:
        return f"MessageNorm(learn_scale={self.scale.requires_grad})"


class GENConv(MessagePassing):
    r"""The GENeralized Graph Convolution of DeeperGCN.

    .. math::
        \mathbf{x}_i^{\prime} = \mathrm{MLP} \left( \mathbf{x}_i +
        \mathrm{AGG} \left( \left\{ \mathrm{ReLU} \left( \mathbf{x}_j + \mathbf{e_{ji}}
        \right) + \epsilon : j \in \mathcal{N}(i) \right\} \right) \right)

    ``AGG`` is a softmax aggregation with temperature ``t`` (``aggr="softmax"``,
    or ``"softmax_sg"`` for the semi-gradient variant), a power mean with
    exponent ``p`` (``aggr="powermean"``/``"power"``) or any other aggregation.
    ``lin_src``/``lin_dst``/``lin_edge`` project the source, target and edge
    features to ``out_channels`` when their sizes differ; ``msg_norm=True``
    rescales the aggregate by :math:`s \lVert \mathbf{x}_i \rVert_2 / \lVert
    \mathrm{AGG}_i \rVert_2` (MessageNorm). The MLP has ``num_layers`` linear
    layers with hidden size ``expansion * out_channels`` and ``norm``
    (``"batch"``, ``"layer"``, ``"instance"`` or ``None``) plus ReLU between them.

    Args:
        in_channels: input feature size, ``(F_src, F_dst)`` for bipartite
            graphs, or ``-1`` (lazy).
        out_channels: output feature size.
        aggr: the aggregation (name, list of names, or instance).
        t: initial softmax temperature. learn_t: learn it.
        p: initial power. learn_p: learn it.
        msg_norm: apply MessageNorm. learn_msg_scale: learn its scale :math:`s`.
        norm: normalization of the MLP's hidden layers.
        num_layers: linear layers of the MLP.
        expansion: hidden-size factor of the MLP.
        eps: :math:`\epsilon` added to every message.
        bias: learn biases in all linear maps.
        edge_dim: edge feature size (``None``: edge features, if any, already
            have ``out_channels`` features).
        **kwargs: passed to :class:`~gnn.core.MessagePassing` (``aggr_kwargs``
            overrides the ``t``/``p`` arguments).

    Shapes:
        ``x`` ``[N, F_in]`` or ``([N_src, F_src], [N_dst, F_dst])`` (``x_dst``
        may be ``None``), ``edge_index`` ``[2, E]`` or sparse ``adj_t``,
        ``edge_attr`` ``[E, edge_dim]`` -> ``[N_dst, out_channels]``. The values
        of a sparse ``adj_t`` serve as edge features when ``edge_attr`` is
        ``None`` and ``edge_dim`` is set (or the values are 2-D).

    Example:
        >>> conv = GENConv(16, 32, aggr="softmax", learn_t=True, edge_dim=4)
        >>> conv(torch.randn(10, 16), torch.randint(0, 10, (2, 30)), torch.randn(30, 4)).shape
        torch.Size([10, 32])
    """

    def __init__(
        self,
        in_channels: int | tuple[int, int],
        out_channels: int,
        aggr: str | list[str] | Aggregation | None = "softmax",
        t: float = 1.0,
        learn_t: bool = False,
        p: float = 1.0,
        learn_p: bool = False,
        msg_norm: bool = False,
        learn_msg_scale: bool = False,
        norm: str = "batch",
        num_layers: int = 2,
        expansion: int = 2,
        eps: float = 1e-7,
        bias: bool = False,
        edge_dim: int | None = None,
        **kwargs: Any,
    ) -> None:
        semi_grad = aggr == "softmax_sg"
        if aggr == "softmax_sg":
            aggr = "softmax"
        elif aggr == "power":
            aggr = "powermean"
        if "aggr_kwargs" not in kwargs:
            if aggr == "softmax":
                kwargs["aggr_kwargs"] = dict(t=t, learn=learn_t, semi_grad=semi_grad)
            elif aggr == "powermean":
                kwargs["aggr_kwargs"] = dict(p=p, learn=learn_p)
        super().__init__(aggr=aggr, **kwargs)
        if norm and norm not in _NORMS:
            raise ValueError(f"'norm' must be one of {_NORMS} or None, got {norm!r}")
        if not isinstance(num_layers, int) or num_layers < 1:
            raise ValueError(f"'num_layers' must be a positive int, got {num_layers!r}")

        self.in_channels = in_channels
        self.out_channels = out_channels
        self.edge_dim = edge_dim
        self.eps = eps
        src, dst = (in_channels, in_channels) if isinstance(in_channels, int) else tuple(in_channels)
        if src != out_channels:
            self.lin_src = Linear(src, out_channels, bias=bias)
        if edge_dim is not None and edge_dim != out_channels:
            self.lin_edge = Linear(edge_dim, out_channels, bias=bias)
        get_out = getattr(self.aggr_module, "get_out_channels", None)
        aggr_out = get_out(out_channels) if get_out is not None else out_channels
        if aggr_out != out_channels:
            self.lin_aggr_out = Linear(aggr_out, out_channels, bias=bias)
        if dst != out_channels:
            self.lin_dst = Linear(dst, out_channels, bias=bias)
        channels = [out_channels] + [out_channels * expansion] * (num_layers - 1) + [out_channels]
        self.mlp = _MLP(channels, norm=norm, bias=bias)
        if msg_norm:
            self.msg_norm = _MessageNorm(learn_msg_scale)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        reset(self.mlp)
        for name in ("msg_norm", "lin_src", "lin_edge", "lin_aggr_out", "lin_dst"):
            module = getattr(self, name, None)
            if module is not None:
                module.reset_parameters()

    def forward(
        self,
        x: Tensor | tuple[Tensor, Tensor | None],
        edge_index: Any,
        edge_attr: Tensor | None = None,
        size: tuple[int, int] | None = None,
    ) -> Tensor:
        """Aggregate ``ReLU(x_j + e_ji) + eps``, add the target features, apply the MLP."""
        check_in_channels(x, self.in_channels)
        check_flat_nodes(self, x)
        if isinstance(x, Tensor):
            x = (x, x)
        x_src, x_dst = x
        if self.edge_dim is not None:
            check_edge_attr(edge_attr, edge_index, features=self.edge_dim, why="edge_dim")
        else:  # 1-D values would be read as sparse adjacency weights, not as features
            why = "out_channels, as edge_dim is None"
            check_edge_attr(edge_attr, edge_index, features=self.out_channels, why=why, allow_vector=False)
        if hasattr(self, "lin_src"):
            x_src = self.lin_src(x_src)
        if size is None and x_dst is not None:
            # the message reads only x_j: give propagate the target count of a bipartite x
            size = (x_src.size(0), x_dst.size(0))
        out = self.propagate(edge_index, x=(x_src, x_dst), edge_attr=edge_attr, size=size)
        if hasattr(self, "lin_aggr_out"):
            out = self.lin_aggr_out(out)
        if hasattr(self, "msg_norm"):
            out = self.msg_norm(x_dst if x_dst is not None else x_src, out)
        if x_dst is not None:
            out = out + (self.lin_dst(x_dst) if hasattr(self, "lin_dst") else x_dst)
        return self.mlp(out)

    def message(self, x_j: Tensor, edge_attr: Tensor | None) -> Tensor:
        # 1-D values without edge_dim come from a sparse adjacency's weights: not edge features
        if edge_attr is not None and (self.edge_dim is not None or edge_attr.dim() > 1):
            edge_attr = edge_attr if edge_attr.dim() > 1 else edge_attr.unsqueeze(-1)
            if hasattr(self, "lin_edge"):
                edge_attr = self.lin_edge(edge_attr)
            if edge_attr.size(-1) != x_j.size(-1):
                raise ValueError(
                    f"edge features must have {x_j.size(-1)} channels after 'lin_edge', got "
                    f"{v.describe(edge_attr)}"
                )
            x_j = x_j + edge_attr
        return x_j.relu() + self.eps

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels}, aggr={self.aggr})"
