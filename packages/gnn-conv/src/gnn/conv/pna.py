"""PNAConv: Principal Neighbourhood Aggregation (Corso et al., 2020)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor

from gnn.aggr.scaler import DegreeScalerAggregation
from gnn.core import Linear, MessagePassing, ops
from gnn.core import validation as v
from gnn.core.graph import read_graph
from gnn.core.nn.inits import reset
from gnn.core.nn.linear import is_lazy
from gnn.core.nn.mlp import resolve_activation

from ._utils import check_edge_attr, check_in_channels


class PNAConv(MessagePassing):
    r"""The Principal Neighbourhood Aggregation graph convolution.

    .. math::
        \mathbf{x}_i^{\prime} = \mathbf{W} \, \Big\Vert_{t=1}^{T} \gamma_t\Big(
        \mathbf{x}_i, \underset{j \in \mathcal{N}(i)}{\bigoplus}
        h_t(\mathbf{x}_i, \mathbf{x}_j, \mathbf{e}_{j,i})\Big) + \mathbf{b},
        \qquad \bigoplus = \underbrace{\begin{bmatrix} 1 \\ S(\mathbf{D}, \alpha=1) \\
        S(\mathbf{D}, \alpha=-1) \end{bmatrix}}_{\text{scalers}} \otimes
        \underbrace{\begin{bmatrix} \mu \\ \sigma \\ \max \\ \min \end{bmatrix}}_{\text{aggregators}}

    For each of the ``towers`` towers :math:`t`, the pre-network :math:`h_t`
    (``pre_nns[t]``) maps ``[x_i, x_j, edge_encoder(e_ji)]`` to ``F_in``
    features; the messages are aggregated by every aggregator and scaled by
    every degree scaler (:class:`~gnn.aggr.DegreeScalerAggregation`); the
    post-network :math:`\gamma_t` (``post_nns[t]``) maps ``[x_i, aggregated]``
    to ``out_channels / towers`` features; the towers are concatenated and
    mixed by the final linear map ``lin``.

    Without edge features and with one-layer pre-networks (``edge_dim=None``,
    ``pre_layers=1``), the message is linear in :math:`[\mathbf{x}_i,
    \mathbf{x}_j]`: :math:`\mathbf{W}_t [\mathbf{x}_i, \mathbf{x}_j] + \mathbf{b}_t =
    \mathbf{a}_i + \mathbf{b}_j` with :math:`\mathbf{a} = \mathbf{W}_{t,i}\mathbf{x}`
    and :math:`\mathbf{b} = \mathbf{W}_{t,j}\mathbf{x} + \mathbf{b}_t` computed per
    node. Then mean, min, max and softmax shift by :math:`\mathbf{a}_i`, sum by
    :math:`d_i \mathbf{a}_i`, and var/std do not change, so the aggregations run
    over :math:`\mathbf{b}_j` gathered by :func:`gnn.core.ops.multi_spmm` in one
    pass, with no per-edge message tensor. Edge features, deeper pre-networks,
    hooks, explain mode and subclasses that change the message take the
    per-edge path.

    Args:
        in_channels: input feature size.
        out_channels: output feature size (divisible by ``towers``).
        aggregators: aggregation names (``"mean"``, ``"min"``, ``"max"``, ``"std"``, ``"var"``, ``"sum"``).
        scalers: scaler names (``"identity"``, ``"amplification"``,
            ``"attenuation"``, ``"linear"``, ``"inverse_linear"``).
        deg: ``[D]`` in-degree histogram of the training graphs (see
            :meth:`get_degree_histogram`).
        edge_dim: edge feature size (``None``: no edge features).
        towers: number of towers.
        pre_layers: linear layers of each pre-network.
        post_layers: linear layers of each post-network.
        divide_input: split the input features between the towers
            (``in_channels`` divisible by ``towers``) instead of giving each tower all of them.
        act: activation between the layers of the pre/post networks.
        act_kwargs: arguments of a named activation.
        train_norm: learn the degree normalizers of the scalers.
        **kwargs: passed to :class:`~gnn.core.MessagePassing`.

    Shapes:
        ``x`` ``[N, in_channels]``, ``edge_index`` ``[2, E]`` or sparse
        ``adj_t``, ``edge_attr`` ``[E, edge_dim]`` -> ``[N, out_channels]``.

    Example:
        >>> deg = torch.tensor([0, 4, 3, 3])
        >>> conv = PNAConv(16, 32, ["mean", "max"], ["identity", "amplification"], deg, towers=2)
        >>> conv(torch.randn(10, 16), torch.randint(0, 10, (2, 30))).shape
        torch.Size([10, 32])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        aggregators: list[str],
        scalers: list[str],
        deg: Tensor,
        edge_dim: int | None = None,
        towers: int = 1,
        pre_layers: int = 1,
        post_layers: int = 1,
        divide_input: bool = False,
        act: str | Callable[..., Any] | None = "relu",
        act_kwargs: dict[str, Any] | None = None,
        train_norm: bool = False,
        **kwargs: Any,
    ) -> None:
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels), ("towers", towers)):
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"'{name}' must be a positive int, got {value!r}")
        if divide_input and in_channels % towers != 0:
            raise ValueError(
                f"'in_channels' ({in_channels}) must be divisible by 'towers' ({towers}) with divide_input=True"
            )
        if out_channels % towers != 0:
            raise ValueError(f"'out_channels' ({out_channels}) must be divisible by 'towers' ({towers})")
        for name, value in (("pre_layers", pre_layers), ("post_layers", post_layers)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"'{name}' must be a positive int, got {value!r}")
        aggr = DegreeScalerAggregation(aggregators, scalers, deg, train_norm)
        super().__init__(aggr=aggr, node_dim=0, **kwargs)

        self.in_channels = in_channels
        self.out_channels = out_channels
        self.edge_dim = edge_dim
        self.towers = towers
        self.divide_input = divide_input
        self.F_in = in_channels // towers if divide_input else in_channels
        self.F_out = out_channels // towers

        if edge_dim is not None:
            self.edge_encoder = Linear(edge_dim, self.F_in)
        self.pre_nns = torch.nn.ModuleList()
        self.post_nns = torch.nn.ModuleList()
        pre_in = (3 if edge_dim is not None else 2) * self.F_in
        post_in = (len(aggregators) * len(scalers) + 1) * self.F_in
        for _ in range(towers):
            self.pre_nns.append(self._mlp(pre_in, self.F_in, pre_layers, act, act_kwargs))
            self.post_nns.append(self._mlp(post_in, self.F_out, post_layers, act, act_kwargs))
        self.lin = Linear(out_channels, out_channels)
        self.reset_parameters()

    @staticmethod
    def _mlp(
        f_in: int, f_out: int, layers: int, act: Any, act_kwargs: dict[str, Any] | None
    ) -> torch.nn.Sequential:
        """``Linear(f_in, f_out)`` then ``layers - 1`` times ``act, Linear(f_out, f_out)``."""
        modules: list[torch.nn.Module] = [Linear(f_in, f_out)]
        for _ in range(layers - 1):
            modules.append(resolve_activation(act, act_kwargs))
            modules.append(Linear(f_out, f_out))
        return torch.nn.Sequential(*modules)

    def reset_parameters(self) -> None:
        super().reset_parameters()
        if self.edge_dim is not None:
            self.edge_encoder.reset_parameters()
        for nn in self.pre_nns:
            reset(nn)
        for nn in self.post_nns:
            reset(nn)
        self.lin.reset_parameters()

    def forward(self, x: Tensor, edge_index: Any, edge_attr: Tensor | None = None) -> Tensor:
        """Per-tower message networks, scaled multi-aggregation, per-tower update networks."""
        if isinstance(x, (tuple, list)):
            raise TypeError(f"'x' must be a single [N, in_channels] tensor for PNAConv, got {v.describe(x)}")
        check_in_channels(x, self.in_channels)
        if x.dim() != 2:
            raise ValueError(f"'x' must have shape [N, in_channels], got {v.describe(x)}")
        check_edge_attr(edge_attr, edge_index, features=self.edge_dim, why="edge_dim")
        if edge_attr is not None and self.edge_dim is None:
            raise ValueError("'edge_attr' was given but the layer was built with edge_dim=None")
        if self.divide_input:
            x = x.view(-1, self.towers, self.F_in)
        else:
            x = x.view(-1, 1, self.F_in).expand(-1, self.towers, -1)
        out = self._linear_message_path(x, edge_index) if self._messages_are_linear() else None
        if out is None:
            out = self.propagate(edge_index, x=x, edge_attr=edge_attr)  # [N, towers, A * S * F_in]
        out = torch.cat([x, out], dim=-1)
        out = torch.cat([nn(out[:, t]) for t, nn in enumerate(self.post_nns)], dim=1)
        return self.lin(out)

    def message(self, x_i: Tensor, x_j: Tensor, edge_attr: Tensor | None) -> Tensor:
        # without edge_dim the layer has no edge features (sparse adjacency values are ignored)
        if edge_attr is None or self.edge_dim is None:
            h = torch.cat([x_i, x_j], dim=-1)
        else:
            e = self.edge_encoder(edge_attr if edge_attr.dim() > 1 else edge_attr.unsqueeze(-1))
            e = e.view(-1, 1, self.F_in).expand(-1, self.towers, -1)
            h = torch.cat([x_i, x_j, e], dim=-1)
        return torch.stack([nn(h[:, t]) for t, nn in enumerate(self.pre_nns)], dim=1)

    # -- per-node messages ------------------------------------------------------------------
    def _messages_are_linear(self) -> bool:
        """Whether the message is ``W [x_i, x_j] + b`` per tower and nothing observes messages."""
        cls = type(self)
        if self.edge_dim is not None or self.decomposed_layers > 1 or self.exact_edges:
            return False
        if (
            cls.message is not PNAConv.message
            or cls.propagate is not MessagePassing.propagate
            or cls.aggregate is not MessagePassing.aggregate
            or cls.update is not MessagePassing.update
        ):
            return False
        if not all(_one_linear(nn) for nn in self.pre_nns):
            return False
        reductions = self.aggr_module.one_pass_reductions()
        return reductions is not None and all(r.name in _SHIFTS for r in reductions)

    def _linear_message_path(self, x: Tensor, edge_index: Any) -> Tensor | None:
        """The aggregated messages ``[N, towers, A * S * F_in]`` from per-node terms (see the
        class docstring); ``None`` sends the call to ``propagate``."""
        graph = read_graph(edge_index, None, self.flow)
        graph.set_nodes(x.size(0), x.size(0), "x")
        csr = graph.csr()
        if csr.num_rows != x.size(0):
            raise ValueError(f"sparse adjacency has {csr.num_rows} rows, expected {x.size(0)}")
        f_in = self.F_in
        src, dst = [], []
        for t, nn in enumerate(self.pre_nns):
            lin = nn[0]
            weight = lin.weight  # [F_in, 2 F_in]: the x_i half, then the x_j half
            both = torch.nn.functional.linear(x[:, t], torch.cat([weight[:, f_in:], weight[:, :f_in]]))
            b = both[:, :f_in] if lin.bias is None else both[:, :f_in] + lin.bias
            src.append(b)
            dst.append(both[:, f_in:])
        # [N, towers, F_in] (one tower: [N, F_in], so that the aggregations concatenate as a view)
        one = self.towers == 1
        b = src[0] if one else torch.stack(src, dim=1)  # the sender's part, with the bias
        a = dst[0] if one else torch.stack(dst, dim=1)  # the receiver's part
        reductions = self.aggr_module.one_pass_reductions()
        out = ops.multi_spmm(csr, b, reductions)  # [N, R, (towers,) F_in]
        if any(_SHIFTS[r.name] != "none" for r in reductions):
            deg = csr.degree().to(x.dtype)
            by = {"degree": deg, "node": (deg > 0).to(x.dtype), "none": torch.zeros_like(deg)}
            coef = torch.stack([by[_SHIFTS[r.name]] for r in reductions], dim=1)  # [N, R]
            coef = coef.view((x.size(0), len(reductions)) + (1,) * (a.dim() - 1))
            out = out + coef * a.unsqueeze(1)
        out = self.aggr_module.one_pass_finish(out, csr.degree, 0)
        return out.unsqueeze(1) if one else out

    @staticmethod
    def get_degree_histogram(loader: Iterable[Any]) -> Tensor:
        """The in-degree histogram ``deg`` over every graph of ``loader``.

        Each item needs ``edge_index`` and ``num_nodes`` (PyG ``Data``/``Batch``
        objects and gnn's own containers qualify); ``deg[k]`` counts the nodes
        with ``k`` incoming edges.
        """
        hist = torch.zeros(1, dtype=torch.long)
        for data in loader:
            edge_index = v.check_edge_index(data.edge_index, "data.edge_index")
            num_nodes = int(data.num_nodes)
            v.check_index_range("data.edge_index", edge_index[1], num_nodes)
            in_deg = torch.bincount(edge_index[1].long(), minlength=num_nodes)
            counts = torch.bincount(in_deg, minlength=hist.numel())
            hist = hist.to(counts.device)
            if counts.numel() > hist.numel():
                hist = torch.cat([hist, hist.new_zeros(counts.numel() - hist.numel())])
            hist = hist + counts
        return hist

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.in_channels}, {self.out_channels}, towers={self.towers}, "
            f"edge_dim={self.edge_dim})"
        )


#: how a reduction of the messages a_i + b_j differs from that of b_j in a group of d > 0
#: elements: shifted by a_i ("node"), by d a_i ("degree") or not at all ("none")
_SHIFTS = {
    "sum": "degree",
    "mean": "node",
    "min": "node",
    "max": "node",
    "softmax": "node",
    "var": "none",
    "std": "none",
}


def _one_linear(nn: torch.nn.Module) -> bool:
    """A pre-network that is exactly one materialized :class:`~gnn.core.Linear`, without hooks."""
    if type(nn) is not torch.nn.Sequential or len(nn) != 1 or type(nn[0]) is not Linear:
        return False
    lin = nn[0]
    return not (
        is_lazy(lin.weight)
        or nn._forward_hooks
        or nn._forward_pre_hooks
        or lin._forward_hooks
        or lin._forward_pre_hooks
    )
