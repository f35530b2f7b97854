r"""Sinusoidal positional encoding of scalars (Vaswani et al., 2017), shared by gnn-aggr's
:class:`~gnn.aggr.PatchTransformerAggregation` and gnn-models, which exports it publicly as
``gnn.models.PositionalEncoding`` (PyG's ``torch_geometric.nn.encoding.PositionalEncoding``)."""

from __future__ import annotations

import torch
from torch import Tensor

from .. import validation as v

__all__ = ["PositionalEncoding"]


class PositionalEncoding(torch.nn.Module):
    r"""Sines and cosines of a scalar at geometrically spaced frequencies.

    .. math::
        \mathrm{PE}(x) = \big[\sin(\tfrac{x}{g}\omega_k)\big]_{k} \,\Vert\,
        \big[\cos(\tfrac{x}{g}\omega_k)\big]_{k}, \qquad
        \omega_k = b^{k / (D/2 - 1)}, \; k = 0, \ldots, D/2 - 1

    with :math:`b` = ``base_freq``, :math:`g` = ``granularity`` and :math:`D` = ``out_channels``
    (even).

    Shapes:
        ``x`` any shape with ``N`` entries -> ``[N, out_channels]``.

    Example:
        >>> PositionalEncoding(8)(torch.arange(3.0)).shape
        torch.Size([3, 8])
    """

    def __init__(
        self,
        out_channels: int,
        base_freq: float = 1e-4,
        granularity: float = 1.0,
        device: torch.device | None = None,
    ) -> None:
        super().__init__()
        if out_channels % 2 != 0:
            raise ValueError(
                f"Cannot use sinusoidal positional encoding with odd 'out_channels' (got {out_channels})."
            )
        self.out_channels = out_channels
        self.base_freq = base_freq
        self.granularity = granularity
        frequency = torch.logspace(0, 1, out_channels // 2, base_freq, device=device)
        self.register_buffer("frequency", frequency)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Nothing to reset (no parameters)."""

    def forward(self, x: Tensor) -> Tensor:
        """Encode every entry of ``x``."""
        v.check_tensor("x", x)
        x = x / self.granularity if self.granularity != 1.0 else x
        out = x.reshape(-1, 1) * self.frequency.view(1, -1)
        return torch.cat([torch.sin(out), torch.cos(out)], dim=-1)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.out_channels})"
