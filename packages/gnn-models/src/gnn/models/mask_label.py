r"""Masked label embeddings (Shi et al., 2021): :class:`MaskLabel`."""

from __future__ import annotations

import torch
from torch import Tensor

from gnn.core import validation as v

__all__ = ["MaskLabel"]


class MaskLabel(torch.nn.Module):
    r"""Add (or concatenate) a learned embedding of the known labels to the node features.

    For the nodes in ``mask`` (whose label is used as an input):

    * ``"add"``: :math:`\mathbf{x}'_i = \mathbf{x}_i + \mathbf{E}_{y_i}`, other nodes unchanged;
    * ``"concat"``: :math:`\mathbf{x}'_i = \mathbf{x}_i \,\Vert\, \mathbf{E}_{y_i}`
      (zeros for the other nodes).

    Args:
        num_classes: number of classes.
        out_channels: embedding size (the feature size for ``"add"``).
        method: ``"add"`` or ``"concat"``.

    Shapes:
        ``x`` ``[N, C]``, ``y`` ``[N]`` (class indices), ``mask`` ``[N]`` bool ->
        ``[N, C]`` (``"add"``) or ``[N, C + out_channels]``.

    Example:
        >>> layer = MaskLabel(3, 4)
        >>> layer(torch.zeros(2, 4), torch.tensor([1, 2]), torch.tensor([True, False])).shape
        torch.Size([2, 4])
    """

    def __init__(self, num_classes: int, out_channels: int, method: str = "add") -> None:
        super().__init__()
        if method not in ("add", "concat"):
            raise ValueError(f"'method' must be either 'add' or 'concat' (got '{method}')")
        self.method = method
        self.emb = torch.nn.Embedding(num_classes, out_channels)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialize the label embedding."""
        self.emb.reset_parameters()

    def forward(self, x: Tensor, y: Tensor, mask: Tensor) -> Tensor:
        """Embed the labels of the masked nodes (see the class docstring)."""
        v.check_tensor("x", x)
        v.check_tensor("y", y)
        v.check_tensor("mask", mask)
        if y.size(0) != x.size(0) or (mask.dtype == torch.bool and mask.size(0) != x.size(0)):
            raise ValueError(
                f"'y' and a boolean 'mask' must have one entry per node of 'x' ({x.size(0)}), got "
                f"{v.describe(y)} and {v.describe(mask)}"
            )
        if mask.dtype == torch.bool:
            rows = mask.nonzero().view(-1)
        else:
            rows = mask.view(-1).long()
            v.check_index_range("mask", rows, x.size(0), "nodes of 'x'")
        labels = y[rows]
        v.check_index_range("y", labels, self.emb.num_embeddings, "classes")
        emb = self.emb(labels)
        if self.method == "concat":
            out = x.new_zeros(x.size(0), emb.size(-1)).index_put((rows,), emb.to(x.dtype))
            return torch.cat([x, out], dim=-1)
        # the masked rows are distinct: a plain put of x + E (no reduction)
        return x.index_put((rows,), x[rows] + emb.to(x.dtype))

    @staticmethod
    def ratio_mask(mask: Tensor, ratio: float) -> Tensor:
        """Keep each ``True`` entry of ``mask`` with probability ``ratio`` (a random subset)."""
        v.check_tensor("mask", mask)
        if mask.dtype != torch.bool:
            raise TypeError(f"'mask' must be a bool tensor, got {v.describe(mask)}")
        keep = torch.rand(mask.shape, device=mask.device) < ratio
        return mask & keep

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
