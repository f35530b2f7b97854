"""SignedConv: the signed graph convolution (Derr et al., 2018)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from gnn.core import Linear, MessagePassing
from gnn.core import validation as v


class SignedConv(MessagePassing):
    r"""The signed graph convolutional operator.

    With ``first_aggr=True`` (first layer, input ``[N, F]``):

    .. math::
        \mathbf{x}_i^{(\textrm{pos})} = \mathbf{\Theta}^{(\textrm{pos})}_1
        \frac{1}{|\mathcal{N}^{+}(i)|} \sum_{j \in \mathcal{N}^{+}(i)} \mathbf{x}_j
        + \mathbf{\Theta}^{(\textrm{pos})}_2 \mathbf{x}_i

        \mathbf{x}_i^{(\textrm{neg})} = \mathbf{\Theta}^{(\textrm{neg})}_1
        \frac{1}{|\mathcal{N}^{-}(i)|} \sum_{j \in \mathcal{N}^{-}(i)} \mathbf{x}_j
        + \mathbf{\Theta}^{(\textrm{neg})}_2 \mathbf{x}_i

    With ``first_aggr=False`` the input is ``[x^(pos), x^(neg)]`` (``2F``
    features) and balance theory mixes the two halves:

    .. math::
        \mathbf{x}_i^{(\textrm{pos})} = \mathbf{\Theta}^{(\textrm{pos})}_1
        \left[ \mathrm{mean}_{j \in \mathcal{N}^{+}(i)} \mathbf{x}_j^{(\textrm{pos})},
        \mathrm{mean}_{j \in \mathcal{N}^{-}(i)} \mathbf{x}_j^{(\textrm{neg})} \right]
        + \mathbf{\Theta}^{(\textrm{pos})}_2 \mathbf{x}_i^{(\textrm{pos})}

        \mathbf{x}_i^{(\textrm{neg})} = \mathbf{\Theta}^{(\textrm{neg})}_1
        \left[ \mathrm{mean}_{j \in \mathcal{N}^{+}(i)} \mathbf{x}_j^{(\textrm{neg})},
        \mathrm{mean}_{j \in \mathcal{N}^{-}(i)} \mathbf{x}_j^{(\textrm{pos})} \right]
        + \mathbf{\Theta}^{(\textrm{neg})}_2 \mathbf{x}_i^{(\textrm{neg})}

    The output is :math:`[\mathbf{x}^{(\textrm{pos})}, \mathbf{x}^{(\textrm{neg})}]`
    (``2 * out_channels`` features). The means take the fused ``ops.spmm``
    path; values of a sparse ``adj_t`` are ignored.

    Args:
        in_channels: input feature size ``F`` (``-1``: lazy, only with ``first_aggr=True``).
        out_channels: size of each half of the output.
        first_aggr: whether this is the first layer (see above).
        bias: learn the biases of the root maps :math:`\mathbf{\Theta}_2`.
        **kwargs: passed to :class:`~gnn.core.MessagePassing`.

    Shapes:
        ``x`` ``[N, F]`` (``first_aggr``) or ``[N, 2F]``, or a bipartite pair;
        ``pos_edge_index``/``neg_edge_index`` ``[2, E±]`` or sparse ``adj_t``
        -> ``[N_dst, 2 * out_channels]``.

    Example:
        >>> conv = SignedConv(16, 32, first_aggr=True)
        >>> x = torch.randn(10, 16)
        >>> conv(x, torch.randint(0, 10, (2, 30)), torch.randint(0, 10, (2, 20))).shape
        torch.Size([10, 64])
    """

    def __init__(
        self, in_channels: int, out_channels: int, first_aggr: bool, bias: bool = True, **kwargs: Any
    ) -> None:
        kwargs.setdefault("aggr", "mean")
        super().__init__(**kwargs)
        if not first_aggr and (not isinstance(in_channels, int) or in_channels <= 0):
            raise ValueError(
                f"'in_channels' must be a positive int when first_aggr=False, got {in_channels!r}"
            )
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.first_aggr = first_aggr
        agg_in = in_channels if first_aggr else 2 * in_channels
        self.lin_pos_l = Linear(agg_in, out_channels, False)
        self.lin_pos_r = Linear(in_channels, out_channels, bias)
        self.lin_neg_l = Linear(agg_in, out_channels, False)
        self.lin_neg_r = Linear(in_channels, out_channels, bias)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        self.lin_pos_l.reset_parameters()
        self.lin_pos_r.reset_parameters()
        self.lin_neg_l.reset_parameters()
        self.lin_neg_r.reset_parameters()

    def forward(self, x: Tensor | tuple[Tensor, Tensor], pos_edge_index: Any, neg_edge_index: Any) -> Tensor:
        """The positive and negative representations, concatenated."""
        if isinstance(x, Tensor):
            x = (x, x)
        if not isinstance(x, (tuple, list)) or len(x) != 2:
            raise TypeError(f"'x' must be a tensor or a pair (x_src, x_dst), got {v.describe(x)}")
        expected = self.in_channels if self.first_aggr else 2 * self.in_channels
        for k, part in enumerate(x):
            v.check_tensor(f"x[{k}]", part)
            if expected > 0 and part.size(-1) != expected:
                raise ValueError(
                    f"'x' must have {expected} features "
                    f"({'in_channels' if self.first_aggr else '2 * in_channels'}), got {v.describe(part)}"
                )
        if self.first_aggr:
            out_pos = self.lin_pos_l(self.propagate(pos_edge_index, x=x)) + self.lin_pos_r(x[1])
            out_neg = self.lin_neg_l(self.propagate(neg_edge_index, x=x)) + self.lin_neg_r(x[1])
            return torch.cat([out_pos, out_neg], dim=-1)

        f = self.in_channels
        pos = (x[0][..., :f], x[1][..., :f])
        neg = (x[0][..., f:], x[1][..., f:])
        agg_pos = torch.cat(
            [self.propagate(pos_edge_index, x=pos), self.propagate(neg_edge_index, x=neg)], dim=-1
        )
        agg_neg = torch.cat(
            [self.propagate(pos_edge_index, x=neg), self.propagate(neg_edge_index, x=pos)], dim=-1
        )
        out_pos = self.lin_pos_l(agg_pos) + self.lin_pos_r(pos[1])
        out_neg = self.lin_neg_l(agg_neg) + self.lin_neg_r(neg[1])
        return torch.cat([out_pos, out_neg], dim=-1)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels}, first_aggr={self.first_aggr})"
