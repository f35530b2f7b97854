r"""The local extremum operator (Ranjan et al., 2020), :class:`LEConv`."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from gnn.core.message_passing import MessagePassing
from gnn.core.nn.linear import Linear
from gnn.core.utils.sparse import is_sparse

from ._utils import check_in_channels, pair


class LEConv(MessagePassing):
    r"""Local extremum graph convolution (from ASAP pooling).

    .. math::
        x_i' = \sum_{j \in \mathcal{N}(i)} e_{j,i} (\Theta_1 x_j - \Theta_2 x_i) + \Theta_3 x_i

    (:math:`\Theta_1` and :math:`\Theta_3` carry biases.)

    Args:
        in_channels: input size or ``(F_src, F_dst)`` (``-1``: lazy).
        out_channels: output size.
        bias: learn biases in ``lin1`` and ``lin3``.
        **kwargs: :class:`~gnn.core.MessagePassing` arguments.

    Shapes:
        ``x`` ``[N, F]`` or ``([N_src, F_src], [N_dst, F_dst])``,
        ``edge_weight`` ``[E]`` -> ``[N_dst, out_channels]``.

    Example:
        >>> conv = LEConv(16, 32)
        >>> conv(torch.randn(3, 16), torch.tensor([[0, 1], [1, 2]])).shape
        torch.Size([3, 32])
    """

    def __init__(
        self, in_channels: int | tuple[int, int], out_channels: int, bias: bool = True, **kwargs: Any
    ) -> None:
        kwargs.setdefault("aggr", "add")
        super().__init__(**kwargs)
        self.in_channels = in_channels
        self.out_channels = out_channels
        channels = (in_channels, in_channels) if isinstance(in_channels, int) else tuple(in_channels)
        self.lin1 = Linear(channels[0], out_channels, bias=bias)
        self.lin2 = Linear(channels[1], out_channels, bias=False)
        self.lin3 = Linear(channels[1], out_channels, bias=bias)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialize the three linear maps."""
        super().reset_parameters()
        self.lin1.reset_parameters()
        self.lin2.reset_parameters()
        self.lin3.reset_parameters()

    def forward(
        self, x: Tensor | tuple[Tensor, Tensor], edge_index: Any, edge_weight: Tensor | None = None
    ) -> Tensor:
        """Apply the layer (see the class docstring for shapes)."""
        check_in_channels(x, self.in_channels)
        x_src, x_dst = pair(x)
        if x_dst is None:
            raise ValueError("'x' must give destination features: LEConv needs x_i for every receiver")
        if is_sparse(edge_index):
            edge_weight = None  # the adjacency's values are the weights
        a = self.lin1(x_src)
        b = self.lin2(x_dst)
        # ``a`` lives on the senders' side, ``b`` on the receivers' (rows of edge_index by flow)
        j = 0 if self.flow == "source_to_target" else 1
        a_pair, b_pair = [None, None], [None, None]
        a_pair[j], b_pair[1 - j] = a, b
        out = self.propagate(edge_index, a=tuple(a_pair), b=tuple(b_pair), edge_weight=edge_weight)
        return self.lin3.add_to(out, x_dst)

    def message(self, a_j: Tensor, b_i: Tensor, edge_weight: Tensor | None) -> Tensor:
        """``edge_weight * (a_j - b_i)``."""
        out = a_j - b_i
        return out if edge_weight is None else out * edge_weight.view(-1, 1)
