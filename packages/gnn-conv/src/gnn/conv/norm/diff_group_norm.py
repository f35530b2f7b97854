r"""Differentiable group normalization (Zhou et al., 2020), :class:`DiffGroupNorm`."""

from __future__ import annotations

import torch
from torch import Tensor

from gnn.core import validation as v

from ._common import check_features


def _column_moments(x: Tensor, assign: Tensor) -> tuple[Tensor, Tensor]:
    r"""Mean and biased variance over the rows of the ``[G, F]`` columns
    :math:`z_{ngf} = s_{ng} x_{nf}`, without forming ``z``.

    With reference points :math:`m \approx \mathrm{E}[x]` and :math:`a \approx \mathrm{E}[s]`
    (means of a sample of rows; constants: the results do not depend on them),
    :math:`x' = x - m`, :math:`s' = s - a` and :math:`D = s'x' + m s' + a x' = z - am`:

    .. math::
        \mathrm{E}[z] = \mathrm{E}[D] + am, \qquad
        \mathrm{Var}[z] = \mathrm{E}[D^2] - \mathrm{E}[D]^2,

        \mathrm{E}[D^2] = \mathrm{E}[s'^2 x'^2] + m^2 \mathrm{E}[s'^2] + a^2 \mathrm{E}[x'^2]
        + 2m \mathrm{E}[s'^2 x'] + 2a \mathrm{E}[s' x'^2] + 2am \mathrm{E}[s' x']

    The moments are two products :math:`P^\top x'` and :math:`P^\top x'^2` with
    :math:`P = [1, s', s'^2]` (``[N, 2G + 1]``). Every term is a moment of near-centred
    values, so nothing large cancels in float32 (unlike :math:`\mathrm{E}[z^2] - \mathrm{E}[z]^2`).
    """
    n, groups = x.size(0), assign.size(1)
    step = max(1, n // 1024)
    with torch.no_grad():
        m = x[::step].mean(dim=0, keepdim=True)  # [1, F]
        a = assign[::step].mean(dim=0).unsqueeze(1)  # [G, 1]
    xc = x - m
    sc = assign - a.t()
    basis = torch.cat([sc.new_ones(n, 1), sc, sc * sc], dim=1)  # [N, 2G + 1]
    first = basis.t().mm(xc) / n  # E[x'], E[s'x'], E[s'^2 x']
    second = basis.t().mm(xc * xc) / n  # E[x'^2], E[s'x'^2], E[s'^2 x'^2]
    basis_mean = basis.mean(dim=0)
    s1, s2 = basis_mean[1 : 1 + groups].unsqueeze(1), basis_mean[1 + groups :].unsqueeze(1)  # E[s'], E[s'^2]
    x1, sx, s2x = first[:1], first[1 : 1 + groups], first[1 + groups :]
    x2, sx2, s2x2 = second[:1], second[1 : 1 + groups], second[1 + groups :]
    dev_mean = sx + m * s1 + a * x1
    dev_square = s2x2 + m * m * s2 + a * a * x2 + 2 * m * s2x + 2 * a * sx2 + 2 * (a * m) * sx
    return dev_mean + a * m, (dev_square - dev_mean * dev_mean).clamp(min=0)


class DiffGroupNorm(torch.nn.Module):
    r"""Normalizes node features group-wise through a learned soft cluster assignment.

    .. math::
        \mathbf{S} = \mathrm{softmax}(\mathbf{X} \mathbf{W}), \qquad
        \mathbf{X}' = \mathbf{X} + \lambda \sum_{g=1}^G \mathrm{BatchNorm}(\mathbf{S}[:, g] \odot \mathbf{X})

    with :math:`\mathbf{W} \in \mathbb{R}^{F \times G}` (``lin``, no bias) and one batch
    normalization over the :math:`G \cdot F` columns (``norm``, a
    :class:`torch.nn.BatchNorm1d` holding the statistics and :math:`\gamma, \beta`).

    No ``[N, G, F]`` tensor is formed. With :math:`z_{ngf} = s_{ng} x_{nf}`, the batch
    mean and variance of the columns come from two ``[N, 2G + 1]^T [N, F]`` matrix products
    of near-centred moments (see :func:`_column_moments`), and the sum over groups of the
    normalized columns folds into

    .. math::
        \mathbf{X}' = \mathbf{X} \odot (1 + \lambda \mathbf{S} \mathbf{A}) + \lambda \mathbf{c},
        \qquad \mathbf{A} = \frac{\boldsymbol{\gamma}}{\sqrt{\sigma^2 + \epsilon}}, \quad
        \mathbf{c} = \sum_g (\boldsymbol{\beta} - \mu \odot \mathbf{A})_g

    (:math:`\mathbf{A}, \mu, \sigma^2, \gamma, \beta` as ``[G, F]``). Autograd differentiates
    this through the products, so the backward pass forms no ``[N, G, F]`` tensor either.
    The running statistics follow :class:`torch.nn.BatchNorm1d` (unbiased variance,
    ``momentum=None`` for the cumulative average).

    Args:
        in_channels: size of each input sample :math:`F`.
        groups: the number of groups :math:`G`.
        lamda: the balance :math:`\lambda` between input and normalized features.
        eps: added to the variance for numerical stability.
        momentum: weight of the current batch in the running averages.
        affine: learn :math:`\gamma` and :math:`\beta`.
        track_running_stats: keep running averages and use them in evaluation mode.
        device: device of the parameters and buffers.

    Shapes:
        ``x`` ``[N, in_channels]`` -> ``[N, in_channels]``.

    Example:
        >>> norm = DiffGroupNorm(16, groups=4)
        >>> norm(torch.randn(10, 16)).shape
        torch.Size([10, 16])
    """

    def __init__(
        self,
        in_channels: int,
        groups: int,
        lamda: float = 0.01,
        eps: float = 1e-5,
        momentum: float = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        device: torch.device | None = None,
    ):
        super().__init__()
        self.in_channels = in_channels
        self.groups = groups
        self.lamda = lamda
        self.lin = torch.nn.Linear(in_channels, groups, bias=False, device=device)
        self.norm = torch.nn.BatchNorm1d(
            groups * in_channels, eps, momentum, affine, track_running_stats, device=device
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        r"""Resets the assignment weights, the running statistics, :math:`\gamma` and :math:`\beta`."""
        self.lin.reset_parameters()
        self.norm.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        """Normalize ``x``.

        Args:
            x: ``[N, in_channels]`` node features.
        """
        check_features(x, self.in_channels)
        norm, n = self.norm, x.size(0)
        shape = (self.groups, self.in_channels)
        assign = torch.softmax(self.lin(x), dim=-1)  # [N, G]
        batch_stats = self.training or not norm.track_running_stats
        update = self.training and norm.track_running_stats
        if update:
            norm.num_batches_tracked.add_(1)
        if batch_stats:
            if n == 0:
                return x.clone()
            if self.training and n == 1:
                raise ValueError(
                    f"'x' must hold more than one node in training (batch statistics), got {v.describe(x)}"
                )
            mean, var = _column_moments(x, assign)
            if update:
                self._update_running_stats(mean, var, n)
        else:
            mean = norm.running_mean.view(shape)
            var = norm.running_var.view(shape)
        scale = torch.rsqrt(var + norm.eps)
        if norm.weight is not None:
            scale = scale * norm.weight.view(shape)
        offset = -(mean * scale)
        if norm.bias is not None:
            offset = offset + norm.bias.view(shape)
        lamda = self.lamda
        factor = torch.addmm(x.new_ones(1, self.in_channels), assign, scale, alpha=lamda)  # 1 + lamda S A
        return torch.addcmul(offset.sum(dim=0) * lamda, x, factor)

    @torch.no_grad()
    def _update_running_stats(self, mean: Tensor, var: Tensor, n: int) -> None:
        norm = self.norm
        factor = 1.0 / norm.num_batches_tracked.item() if norm.momentum is None else norm.momentum
        unbiased = var * (n / (n - 1))
        norm.running_mean.lerp_(mean.reshape(-1).to(norm.running_mean.dtype), factor)
        norm.running_var.lerp_(unbiased.reshape(-1).to(norm.running_var.dtype), factor)

    @staticmethod
    def group_distance_ratio(x: Tensor, y: Tensor, eps: float = 1e-5) -> float:
        r"""The ratio of inter-group to intra-group distance of the node embeddings ``x``
        grouped by the labels ``y``.

        .. math::
            R = \frac{\frac{1}{(C - 1)^2} \sum_i \frac{1}{|\mathbf{X}_i| |\overline{\mathbf{X}_i}|}
            \sum_{\mathbf{u} \in \mathbf{X}_i} \sum_{\mathbf{w} \notin \mathbf{X}_i} \|\mathbf{u} - \mathbf{w}\|_2}
            {\frac{1}{C} \sum_i \frac{1}{|\mathbf{X}_i|^2}
            \sum_{\mathbf{u}, \mathbf{w} \in \mathbf{X}_i} \|\mathbf{u} - \mathbf{w}\|_2 + \epsilon}

        with :math:`\mathbf{X}_i` the nodes of class :math:`i`, :math:`\overline{\mathbf{X}_i}`
        all other nodes and :math:`C = \max(y) + 1` classes (PyG's numbers: the inter-group
        term of class :math:`i` averages its distances to all nodes outside it). Needs every
        class present and at least two classes. Costs one ``[N, N]`` distance matrix.

        Args:
            x: ``[N, F]`` node embeddings.
            y: ``[N]`` class of each node.
            eps: added to the denominator.

        Returns:
            the ratio, a Python float.
        """
        v.check_tensor("x", x)
        v.check_tensor("y", y)
        v.check_index_dtype("y", y)
        if x.dim() != 2 or y.dim() != 1 or y.numel() != x.size(0):
            raise ValueError(
                f"'x' must be [N, F] and 'y' [N] with the same N, got {v.describe(x)} and {v.describe(y)}"
            )
        if y.numel() == 0:
            raise ValueError("'y' is empty: the ratio needs nodes of at least two classes")
        if int(y.min()) < 0:
            raise ValueError(f"'y' must hold class indices >= 0, got {int(y.min())}")
        classes = int(y.max()) + 1
        onehot = torch.zeros(y.numel(), classes, dtype=x.dtype, device=x.device)
        onehot[torch.arange(y.numel(), device=y.device), y.long()] = 1
        counts = onehot.sum(dim=0)
        if classes < 2 or bool((counts == 0).any()):
            raise ValueError(
                f"'y' must contain every class 0..max(y) and at least two classes, got counts {counts.tolist()}"
            )
        dist = torch.cdist(x.unsqueeze(0), x.unsqueeze(0)).squeeze(0)
        pair = onehot.t().mm(dist.mm(onehot))  # [C, C] summed distances between classes
        within = pair.diagonal()
        outside = pair.sum(dim=1) - within
        numerator = (outside / (counts * (y.numel() - counts))).sum() / (classes - 1) ** 2
        denominator = (within / (counts * counts)).sum() / classes
        return float(numerator / (denominator + eps))

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.in_channels}, groups={self.groups})"
