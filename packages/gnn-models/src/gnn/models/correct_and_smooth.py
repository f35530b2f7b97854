r"""Correct and Smooth (Huang et al., 2021): :class:`CorrectAndSmooth`."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from gnn.core import validation as v

from .label_prop import LabelPropagation, one_hot

__all__ = ["CorrectAndSmooth"]


class CorrectAndSmooth(torch.nn.Module):
    r"""Post-process a base predictor's soft predictions with two label propagations.

    **Correct**: the residual errors on the labelled nodes,
    :math:`\mathbf{E} = (\mathbf{Y} - \mathbf{Z}) \odot \mathbf{m}`, are propagated
    (``num_correction_layers`` steps of :class:`LabelPropagation` with
    ``correction_alpha``). With ``autoscale`` the steps clip to :math:`[-1, 1]` and the
    propagated error :math:`\hat{\mathbf{E}}` is rescaled per node to the mean absolute
    error :math:`\sigma` of the labelled nodes:
    :math:`\mathbf{Z}^{(r)} = \mathbf{Z} + \frac{\sigma}{\lVert\hat{\mathbf{e}}_i\rVert_1}\hat{\mathbf{e}}_i`
    (scale 1 where it is infinite or above 1000). Without it, every step resets the
    labelled nodes' error and :math:`\mathbf{Z}^{(r)} = \mathbf{Z} + s\,\hat{\mathbf{E}}`
    (``scale`` :math:`s`).

    **Smooth**: the labelled nodes are set to their true labels and the result is
    propagated (``num_smoothing_layers`` steps with ``smoothing_alpha``).

    Args:
        num_correction_layers, correction_alpha: the correction propagation.
        num_smoothing_layers, smoothing_alpha: the smoothing propagation.
        autoscale: rescale the propagated error automatically.
        scale: the fixed error scale without ``autoscale``.

    Shapes:
        ``y_soft`` ``[N, C]``, ``y_true`` ``[M]`` (class indices) or ``[M, C]`` for the
        ``M`` labelled nodes, ``mask`` ``[N]`` bool or ``[M]`` indices, ``edge_index``
        ``[2, E]`` -> ``[N, C]``.

    Example:
        >>> cs = CorrectAndSmooth(2, 0.8, 2, 0.8)
        >>> y_soft = torch.softmax(torch.randn(3, 2), dim=-1)
        >>> mask = torch.tensor([True, False, False])
        >>> ei = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
        >>> cs.smooth(cs.correct(y_soft, torch.tensor([1]), mask, ei), torch.tensor([1]), mask, ei).shape
        torch.Size([3, 2])
    """

    def __init__(
        self,
        num_correction_layers: int,
        correction_alpha: float,
        num_smoothing_layers: int,
        smoothing_alpha: float,
        autoscale: bool = True,
        scale: float = 1.0,
    ) -> None:
        super().__init__()
        self.autoscale = autoscale
        self.scale = scale
        self.prop1 = LabelPropagation(num_correction_layers, correction_alpha)
        self.prop2 = LabelPropagation(num_smoothing_layers, smoothing_alpha)

    def forward(self, y_soft: Tensor, *args: Any) -> Tensor:
        """:meth:`correct`, then :meth:`smooth` (same further arguments)."""
        return self.smooth(self.correct(y_soft, *args), *args)

    @staticmethod
    def _labels(y_soft: Tensor, y_true: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """``(y_true as [M, C] scores, the M labelled rows as indices)``."""
        v.check_tensor("y_soft", y_soft)
        v.check_tensor("y_true", y_true)
        v.check_tensor("mask", mask)
        rows = mask.view(-1).nonzero().view(-1) if mask.dtype == torch.bool else mask.view(-1).long()
        if y_true.size(0) != rows.numel():
            raise ValueError(
                f"'y_true' must have one row per labelled node of 'mask' ({rows.numel()}), got {v.describe(y_true)}"
            )
        if y_true.dtype == torch.long and y_true.size(0) == y_true.numel():
            y_true = one_hot(y_true.view(-1), num_classes=y_soft.size(-1), dtype=y_soft.dtype)
        return y_true, rows

    def correct(
        self, y_soft: Tensor, y_true: Tensor, mask: Tensor, edge_index: Any, edge_weight: Tensor | None = None
    ) -> Tensor:
        r"""The corrected predictions :math:`\mathbf{Z}^{(r)}` (see the class docstring)."""
        y_true, rows = self._labels(y_soft, y_true, mask)
        known = y_true - y_soft.index_select(0, rows)
        error = torch.zeros_like(y_soft).index_put_((rows,), known)
        if self.autoscale:
            smoothed = self.prop1(
                error, edge_index, edge_weight=edge_weight, post_step=lambda x: x.clamp_(-1.0, 1.0)
            )
            sigma = known.abs().sum() / rows.numel()
            scale = sigma / smoothed.abs().sum(dim=1, keepdim=True)
            scale = scale.masked_fill_(scale.isinf() | (scale > 1000), 1.0)
            return torch.addcmul(y_soft, scale, smoothed)
        smoothed = self.prop1(
            error, edge_index, edge_weight=edge_weight, post_step=lambda x: x.index_put_((rows,), known)
        )
        return torch.add(y_soft, smoothed, alpha=self.scale)

    def smooth(
        self, y_soft: Tensor, y_true: Tensor, mask: Tensor, edge_index: Any, edge_weight: Tensor | None = None
    ) -> Tensor:
        """The smoothed predictions (see the class docstring)."""
        y_true, rows = self._labels(y_soft, y_true, mask)
        y_soft = y_soft.index_put((rows,), y_true.to(y_soft.dtype))
        return self.prop2(y_soft, edge_index, edge_weight=edge_weight)

    def __repr__(self) -> str:
        p1, p2 = self.prop1, self.prop2
        return (
            f"{type(self).__name__}(\n"
            f"  correct: num_layers={p1.num_layers}, alpha={p1.alpha}\n"
            f"  smooth:  num_layers={p2.num_layers}, alpha={p2.alpha}\n"
            f"  autoscale={self.autoscale}, scale={self.scale}\n"
            ")"
        )
