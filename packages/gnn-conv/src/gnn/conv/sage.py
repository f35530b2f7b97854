r"""GraphSAGE (Hamilton et al., 2017), :class:`SAGEConv`."""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import Tensor

from gnn.core.aggr.base import Aggregation
from gnn.core.message_passing import MessagePassing
from gnn.core.nn.linear import Linear

from ._utils import check_in_channels, pair


class SAGEConv(MessagePassing):
    r"""GraphSAGE: :math:`x_i' = W_1 x_i + W_2 \cdot \bigoplus_{j \in \mathcal{N}(i)} x_j`.

    With ``project=True`` the neighbours are first projected,
    :math:`x_j \leftarrow \mathrm{ReLU}(W_3 x_j + b)`; with ``normalize=True``
    the output is :math:`\ell_2`-normalized per node. With a basic reduction
    (``"sum"``, ``"mean"``, ``"max"``, ``"min"``) the aggregation takes the
    fused ``ops.spmm`` path.

    Args:
        in_channels: input size, or ``(F_src, F_dst)`` for bipartite graphs
            (``-1``: lazy).
        out_channels: output size.
        aggr: aggregation (default ``"mean"``; a list gives a
            ``MultiAggregation``; ``"lstm"`` gets its channels set).
        normalize: :math:`\ell_2`-normalize the output.
        root_weight: add the transformed root features :math:`W_1 x_i`.
        project: project neighbour features first.
        bias: learn a bias (in ``lin_l``).
        **kwargs: :class:`~gnn.core.MessagePassing` arguments.

    Shapes:
        ``x`` ``[N, F]`` or ``([N_src, F_src], [N_dst, F_dst])`` ->
        ``[N_dst, out_channels]``.

    Example:
        >>> conv = SAGEConv(16, 32, aggr="max")
        >>> conv(torch.randn(4, 16), torch.tensor([[0, 1, 2], [1, 2, 3]])).shape
        torch.Size([4, 32])
    """

    def __init__(
        self,
        in_channels: int | tuple[int, int],
        out_channels: int,
        aggr: str | list[str] | Aggregation | None = "mean",
        normalize: bool = False,
        root_weight: bool = True,
        project: bool = False,
        bias: bool = True,
        **kwargs: Any,
    ) -> None:
        channels = (in_channels, in_channels) if isinstance(in_channels, int) else tuple(in_channels)
        if aggr == "lstm":
            kwargs.setdefault("aggr_kwargs", {})
            kwargs["aggr_kwargs"].setdefault("in_channels", channels[0])
            kwargs["aggr_kwargs"].setdefault("out_channels", channels[0])
        super().__init__(aggr, **kwargs)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.normalize = normalize
        self.root_weight = root_weight
        self.project = project
        if project:
            if channels[0] <= 0:
                raise ValueError(
                    f"'{type(self).__name__}' does not support lazy initialization (in_channels=-1) "
                    "with project=True"
                )
            self.lin = Linear(channels[0], channels[0], bias=True)
        get_out = getattr(self.aggr_module, "get_out_channels", None)
        aggr_out = get_out(channels[0]) if callable(get_out) else channels[0]
        self.lin_l = Linear(aggr_out, out_channels, bias=bias)
        if root_weight:
            self.lin_r = Linear(channels[1], out_channels, bias=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialize every linear map (and the aggregation)."""
        super().reset_parameters()
        if self.project:
            self.lin.reset_parameters()
        self.lin_l.reset_parameters()
        if self.root_weight:
            self.lin_r.reset_parameters()

    def forward(
        self,
        x: Tensor | tuple[Tensor, Tensor | None],
        edge_index: Any,
        size: tuple[int, int] | None = None,
    ) -> Tensor:
        """Apply the layer (see the class docstring for shapes)."""
        check_in_channels(x, self.in_channels)
        x_src, x_dst = pair(x)
        if self.project:
            x_src = self.lin(x_src).relu()
        out = self.propagate(edge_index, x=(x_src, x_dst), size=size)
        out = self.lin_l(out)
        if self.root_weight and x_dst is not None:
            out = self.lin_r.add_to(out, x_dst)
        if self.normalize:
            out = F.normalize(out, p=2.0, dim=-1)
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels}, aggr={self.aggr})"
