r"""Instance normalization over graphs (Ulyanov et al., 2016), :class:`InstanceNorm`."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn.modules.instancenorm import _InstanceNorm

from ._common import check_features
from ._segment import graph_affine, graphs_of


def _instance_stats(
    sums: Tensor,
    squares: Tensor,
    counts: Tensor,
    weight: Tensor | None,
    bias: Tensor | None,
    eps: float,
    keep: dict | None,
) -> tuple[Tensor, Tensor]:
    """``y = (x - mean) R + Q`` with ``R = gamma / sqrt(M / n + eps)`` and ``Q = beta`` per
    graph and channel; the statistics go to ``keep`` for the running averages."""
    if keep is not None:
        keep["sums"], keep["squares"] = sums.detach(), squares.detach()
    scale = torch.rsqrt(squares / counts.clamp(min=1) + eps)
    if weight is not None:
        scale = scale * weight
    return scale, None if bias is None else bias.unsqueeze(0)


class InstanceNorm(_InstanceNorm):
    r"""Instance normalization: each graph normalized over its own nodes, per channel.

    .. math::
        \mathbf{x}'_i = \frac{\mathbf{x}_i - \mathrm{E}[\mathbf{x}]}
        {\sqrt{\mathrm{Var}[\mathbf{x}] + \epsilon}} \odot \boldsymbol{\gamma} + \boldsymbol{\beta}

    with the mean and the (biased) variance taken per channel over the nodes of the graph of
    node :math:`i`. With ``track_running_stats``, training updates
    ``running_mean``/``running_var`` with the average over the ``B`` graphs of the batch of
    their means and unbiased variances (an empty graph counts with mean and variance 0,
    a one-node graph with variance 0):
    :math:`r \leftarrow (1 - m) r + m \bar{s}`; evaluation then normalizes with them.
    ``momentum=None`` gives the cumulative average over the batches seen (counted in
    ``num_batches_tracked``; PyG fails with a ``TypeError`` there).

    Args:
        in_channels: size of each input sample.
        eps: added to the variance for numerical stability.
        momentum: weight :math:`m` of the current batch in the running averages.
        affine: learn the per-channel :math:`\gamma` and :math:`\beta`.
        track_running_stats: keep running averages and use them in evaluation mode.
        device: device of the parameters and buffers.

    Shapes:
        ``x`` ``[N, in_channels]``, ``batch`` ``[N]`` -> ``[N, in_channels]``.

    Example:
        >>> norm = InstanceNorm(16)
        >>> x, batch = torch.randn(5, 16), torch.tensor([0, 0, 0, 1, 1])
        >>> norm(x, batch).shape
        torch.Size([5, 16])
    """

    def __init__(
        self,
        in_channels: int,
        eps: float = 1e-5,
        momentum: float = 0.1,
        affine: bool = False,
        track_running_stats: bool = False,
        device: torch.device | None = None,
    ):
        super().__init__(in_channels, eps, momentum, affine, track_running_stats, device=device)

    def reset_parameters(self) -> None:
        r"""Resets the running statistics, :math:`\gamma` to one and :math:`\beta` to zero."""
        super().reset_parameters()

    def forward(self, x: Tensor, batch: Tensor | None = None, batch_size: int | None = None) -> Tensor:
        """Normalize ``x`` graph by graph.

        Args:
            x: ``[N, in_channels]`` node features.
            batch: ``[N]`` graph of each node (any order; sorted is fastest), or ``None``
                for a single graph.
            batch_size: the number of graphs ``B`` (default ``batch.max() + 1``).
        """
        check_features(x, self.num_features)
        use_running = self.track_running_stats and not self.training
        if use_running:
            scale = torch.rsqrt(self.running_var + self.eps)
            if self.weight is not None:
                scale = scale * self.weight
            shift = -self.running_mean * scale
            if self.bias is not None:
                shift = shift + self.bias
            return torch.addcmul(shift.to(x.dtype), x, scale.to(x.dtype))
        if batch is None and self.training and x.size(0) == 1:
            raise ValueError(
                "'x' holds a single node and no 'batch': instance statistics need more than one "
                "node per graph in training (as torch.nn.InstanceNorm1d)"
            )
        graphs = graphs_of(x, batch, batch_size)
        update = self.training and self.track_running_stats
        keep: dict | None = {} if update else None
        eps = self.eps
        out = graph_affine(
            x,
            graphs,
            lambda s, m, n, w, b: _instance_stats(s, m, n, w, b, eps, keep),
            self.weight,
            self.bias,
        )
        if update and graphs.size > 0:
            self._update_running_stats(keep["sums"], keep["squares"], graphs.counts)
        return out

    @torch.no_grad()
    def _update_running_stats(self, sums: Tensor, squares: Tensor, counts: Tensor) -> None:
        if self.momentum is None:
            self.num_batches_tracked.add_(1)
            factor = 1.0 / self.num_batches_tracked.item()
        else:
            factor = self.momentum
        mean = (sums / counts.clamp(min=1)).mean(dim=0)
        var = (squares / (counts - 1).clamp(min=1)).mean(dim=0)
        self.running_mean.lerp_(mean.to(self.running_mean.dtype), factor)
        self.running_var.lerp_(var.to(self.running_var.dtype), factor)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.num_features})"
