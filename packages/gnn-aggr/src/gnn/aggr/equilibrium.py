"""Equilibrium aggregation: the output minimises a learned energy."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from gnn.core import ops
from gnn.core.aggr.base import Aggregation
from gnn.core.utils import ptr_to_index


class _ResNetPotential(torch.nn.Module):
    r"""The potential :math:`F(\mathbf{x}, \mathbf{y})` of one element, an MLP with
    residual maps from its input.

    With :math:`z = [\mathbf{x} \| \mathbf{y}]`, :math:`h_0 = z` and
    :math:`h_{l+1} = \tanh(\mathrm{LN}(W_l h_l)) + R_l z` for the hidden
    layers, and :math:`F = W_L h_L + R_L z` (a scalar). The energy of a set of
    groups is :math:`\sum_g \mathrm{mean}_{i \in g} F(\mathbf{x}_i, \mathbf{y}_g)`.
    """

    def __init__(self, in_channels: int, out_channels: int, num_layers: Sequence[int]) -> None:
        super().__init__()
        sizes = [in_channels + out_channels, *num_layers]
        layers: list[torch.nn.Module] = [
            torch.nn.Sequential(torch.nn.Linear(a, b), torch.nn.LayerNorm(b), torch.nn.Tanh())
            for a, b in zip(sizes[:-1], sizes[1:])
        ]
        layers.append(torch.nn.Linear(sizes[-1], 1))
        self.layers = torch.nn.ModuleList(layers)
        self.res_trans = torch.nn.ModuleList(
            [torch.nn.Linear(in_channels + out_channels, b) for b in [*num_layers, 1]]
        )

    def reset_parameters(self) -> None:
        for module in self.modules():
            if module is not self and isinstance(module, (torch.nn.Linear, torch.nn.LayerNorm)):
                module.reset_parameters()

    def forward(self, x: Tensor, y: Tensor, index: Tensor, dim_size: int) -> Tensor:
        z = torch.cat([x, y.index_select(0, index)], dim=-1)
        h = z
        for layer, res in zip(self.layers, self.res_trans):
            h = layer(h) + res(z)
        return ops.scatter(h, index, 0, dim_size, "mean").sum()


class _MomentumOptimizer(torch.nn.Module):
    r"""Unrolled gradient descent with momentum on :math:`\mathbf{y}`.

    :math:`v_{k+1} = \mu v_k - \eta \nabla_{\mathbf{y}} E(\mathbf{y}_k)`,
    :math:`\mathbf{y}_{k+1} = \mathbf{y}_k + v_{k+1}` with :math:`v_0 = 0`,
    learnable step size :math:`\eta = \mathrm{softplus}(\cdot)` and momentum
    :math:`\mu = \mathrm{sigmoid}(\cdot)`.
    """

    def __init__(self, learning_rate: float = 0.1, momentum: float = 0.9) -> None:
        super().__init__()
        self._initial_lr = learning_rate
        self._initial_mom = momentum
        self._lr = torch.nn.Parameter(torch.empty(1))
        self._mom = torch.nn.Parameter(torch.empty(1))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self._lr.fill_(self._initial_lr)
            self._mom.fill_(self._initial_mom)

    @property
    def learning_rate(self) -> Tensor:
        return F.softplus(self._lr)

    @property
    def momentum(self) -> Tensor:
        return torch.sigmoid(self._mom)

    def forward(self, y: Tensor, energy: Callable[[Tensor], Tensor], iterations: int) -> Tensor:
        # differentiate through the unrolled steps only when the caller records a graph
        create_graph = torch.is_grad_enabled()
        with torch.enable_grad():
            if not y.requires_grad:
                y = y.requires_grad_()
            velocity = torch.zeros_like(y)
            lr, mom = self.learning_rate, self.momentum
            for _ in range(iterations):
                (grad,) = torch.autograd.grad(energy(y), y, create_graph=create_graph)
                velocity = mom * velocity - lr * grad
                y = y + velocity
                if not create_graph:
                    velocity = velocity.detach()
                    y = y.detach().requires_grad_()
        return y if create_graph else y.detach()


class EquilibriumAggregation(Aggregation):
    r"""Equilibrium aggregation from `Bartunov et al. (2022) <https://arxiv.org/abs/2202.12795>`_.

    The output of each group is the minimiser of a learned energy,

    .. math::
        \mathbf{y}^\star = \operatorname{argmin}_{\mathbf{y}}\; R(\mathbf{y}) + \sum_g
        \frac{1}{|g|} \sum_{i \in g} F(\mathbf{x}_i, \mathbf{y}_g),
        \qquad R(\mathbf{y}) = \mathrm{softplus}(\lambda) \cdot
        \frac{1}{G} \sum_g \|\mathbf{y}_g\|_2^2,

    approximated by ``grad_iter`` unrolled steps of gradient descent with
    momentum from :math:`\mathbf{y} = 0` (step size and momentum learnable).
    :math:`F` is a residual MLP with hidden sizes ``num_layers``. Gradients
    flow through the unrolled steps to ``x`` and every parameter.

    Needs 2-D ``x`` aggregated along its first dimension.

    Shapes: ``x`` ``[E, in_channels]`` -> ``[dim_size, out_channels]``; empty
    groups give 0.

    Args:
        in_channels: size of each input element.
        out_channels: size of each output.
        num_layers: hidden sizes of the potential :math:`F`.
        grad_iter: number of gradient steps.
        lamb: initial regularisation weight :math:`\lambda`.

    Example:
        >>> aggr = EquilibriumAggregation(4, 3, num_layers=[8, 8])
        >>> aggr(torch.randn(5, 4), torch.tensor([0, 0, 1, 1, 1])).shape
        torch.Size([2, 3])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        num_layers: list[int],
        grad_iter: int = 5,
        lamb: float = 0.1,
    ):
        super().__init__()
        if grad_iter < 0:
            raise ValueError(f"'grad_iter' must be non-negative, got {grad_iter}")
        self.potential = _ResNetPotential(in_channels, out_channels, num_layers)
        self.optimizer = _MomentumOptimizer()
        self.initial_lamb = lamb
        self.lamb = torch.nn.Parameter(torch.empty(1))
        self.grad_iter = grad_iter
        self.output_dim = out_channels
        self.reset_parameters()

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.lamb.fill_(self.initial_lamb)
        self.potential.reset_parameters()
        self.optimizer.reset_parameters()

    def reg(self, y: Tensor) -> Tensor:
        """:math:`R(\\mathbf{y}) = \\mathrm{softplus}(\\lambda) \\cdot \\mathrm{mean}_g \\|\\mathbf{y}_g\\|^2`."""
        return F.softplus(self.lamb) * y.square().sum(dim=-1).mean()

    def energy(self, x: Tensor, y: Tensor, index: Tensor, dim_size: int) -> Tensor:
        """The energy minimised by the output: potential plus regulariser (a scalar)."""
        return self.potential(x, y, index, dim_size) + self.reg(y)

    def forward(
        self,
        x: Tensor,
        index: Tensor | None = None,
        ptr: Tensor | None = None,
        dim_size: int | None = None,
        dim: int = -2,
    ) -> Tensor:
        self.assert_two_dimensional_input(x, dim)
        assert dim_size is not None
        if index is None:
            assert ptr is not None
            index = ptr_to_index(ptr, x.size(0))
        index = index.long()
        y = x.new_zeros(dim_size, self.output_dim)
        if dim_size == 0:
            return y
        return self.optimizer(y, lambda y_: self.energy(x, y_, index, dim_size), self.grad_iter)
