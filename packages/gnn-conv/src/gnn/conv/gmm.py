r"""GMMConv: the Gaussian mixture model convolution (MoNet, Monti et al., 2017)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.nn.parameter import Parameter, UninitializedParameter

from gnn.core import Linear, MessagePassing
from gnn.core import validation as v
from gnn.core.nn.inits import glorot, zeros
from gnn.core.nn.linear import is_lazy
from gnn.core.utils.sparse import is_sparse

from ._point import graph_input
from ._utils import add_root_and_bias, check_edge_attr, check_in_channels

#: keeps the Gaussians finite for a zero sigma
EPS = 1e-15


class GMMConv(MessagePassing):
    r"""The Gaussian mixture model convolution from "Geometric Deep Learning on Graphs and
    Manifolds using Mixture Model CNNs".

    .. math::
        \mathbf{x}^{\prime}_i = \frac{1}{|\mathcal{N}(i)|} \sum_{j \in \mathcal{N}(i)}
        \frac{1}{K} \sum_{k=1}^K \mathbf{w}_k(\mathbf{e}_{i,j}) \odot \mathbf{\Theta}_k \mathbf{x}_j
        + \mathbf{\Theta}_{root} \mathbf{x}_i + \mathbf{b},
        \qquad
        \mathbf{w}_k(\mathbf{e}) = \exp \Big( -\frac{1}{2} \sum_{d=1}^{D}
        \frac{(e_d - \mu_{k,d})^2}{\epsilon + \sigma_{k,d}^2} \Big)

    with trainable means :math:`\mu` and diagonal scales :math:`\sigma`, :math:`\mathbf{\Theta}`
    = ``g`` (``[F_in, out_channels * K]``, kernel ``k`` in columns ``k * out + m``). As in PyG
    the kernel sum is not divided by :math:`K`. With ``separate_gaussians`` every pair of
    input and output channel has its own mixture (``mu``, ``sigma``
    ``[F_in, out_channels, K, D]``) weighted by ``g``. The edge attributes are usually
    pseudo-coordinates such as :math:`\mathbf{p}_j - \mathbf{p}_i`.

    Args:
        in_channels: input size, ``-1`` for lazy, or ``(F_src, F_dst)``.
        out_channels: output size.
        dim: pseudo-coordinate dimension :math:`D`.
        kernel_size: number of kernels :math:`K`.
        separate_gaussians: one mixture per input/output channel pair.
        aggr: the aggregation (``"mean"``, ``"add"``, ``"max"`` ...).
        root_weight: add the transformed target features :math:`\mathbf{\Theta}_{root}
            \mathbf{x}_i` (PyG's layer fails in ``forward`` when this is ``False``; here the
            term is simply left out).
        bias: learn an additive bias.
        **kwargs: :class:`~gnn.core.MessagePassing` arguments.

    Shapes:
        ``x`` ``[N, F_in]`` or ``(x_src, x_dst)`` (``x_dst`` may be ``None``); ``edge_index``
        ``[2, E]`` or sparse ``adj_t`` (whose values serve as ``edge_attr`` when none is given);
        ``edge_attr`` ``[E, D]``; ``size`` ``(N_src, N_dst)`` -> ``[N_dst, out_channels]``.

    Example:
        >>> conv = GMMConv(16, 32, dim=3, kernel_size=4)
        >>> x, edge_index = torch.randn(10, 16), torch.randint(0, 10, (2, 40))
        >>> conv(x, edge_index, torch.rand(40, 3)).shape
        torch.Size([10, 32])
    """

    def __init__(
        self,
        in_channels: int | tuple[int, int],
        out_channels: int,
        dim: int,
        kernel_size: int,
        separate_gaussians: bool = False,
        aggr: str = "mean",
        root_weight: bool = True,
        bias: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(aggr=aggr, **kwargs)
        for name, value in (("dim", dim), ("kernel_size", kernel_size)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"'{name}' must be a positive int, got {value!r}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.dim = dim
        self.kernel_size = kernel_size
        self.separate_gaussians = separate_gaussians
        self.root_weight = root_weight
        sizes = (in_channels, in_channels) if isinstance(in_channels, int) else tuple(in_channels)
        self.rel_in_channels = sizes[0]
        if sizes[0] > 0:
            shapes = self._shapes(sizes[0])
            self.g = Parameter(torch.empty(shapes[0]))
            self.mu = Parameter(torch.empty(shapes[1]))
            self.sigma = Parameter(torch.empty(shapes[1]))
        else:
            self.g = UninitializedParameter()
            self.mu = UninitializedParameter()
            self.sigma = UninitializedParameter()
        self.root: Linear | None = (
            Linear(sizes[1], out_channels, bias=False, weight_initializer="glorot") if root_weight else None
        )
        if bias:
            self.bias: Parameter | None = Parameter(torch.empty(out_channels))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def _shapes(self, in_channels: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Shapes of ``g`` and of ``mu`` / ``sigma`` for ``in_channels`` input features."""
        M, K, D = self.out_channels, self.kernel_size, self.dim
        g = (in_channels, M * K)
        return g, ((in_channels, M, K, D) if self.separate_gaussians else (K, D))

    def reset_parameters(self) -> None:
        """Glorot ``g``, ``mu``, ``sigma`` (once materialized) and root weight; zero bias."""
        super().reset_parameters()
        glorot(self.g)
        glorot(self.mu)
        glorot(self.sigma)
        if self.root is not None:
            self.root.reset_parameters()
        zeros(self.bias)

    def _materialize(self, in_channels: int) -> None:
        shapes = self._shapes(in_channels)
        with torch.no_grad():
            self.g.materialize(shapes[0])
            self.mu.materialize(shapes[1])
            self.sigma.materialize(shapes[1])
        self.rel_in_channels = in_channels
        glorot(self.g)
        glorot(self.mu)
        glorot(self.sigma)

    def _load_from_state_dict(
        self,
        state_dict: dict[str, Any],
        prefix: str,
        local_metadata: dict[str, Any],
        strict: bool,
        missing_keys: list[str],
        unexpected_keys: list[str],
        error_msgs: list[str],
    ) -> None:
        src = state_dict.get(prefix + "g")
        if isinstance(src, Tensor) and not is_lazy(src) and is_lazy(self.g) and src.dim() == 2:
            self._materialize(int(src.size(0)))  # a checkpoint fills a lazy layer
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )

    def forward(
        self,
        x: Tensor | tuple[Tensor, Tensor | None],
        edge_index: Any,
        edge_attr: Tensor | None = None,
        size: tuple[int, int] | None = None,
    ) -> Tensor:
        """Weigh the neighbours' transforms by the Gaussian kernels of ``edge_attr``."""
        check_in_channels(x, self.in_channels)
        x_src, x_dst = (x, x) if isinstance(x, Tensor) else (x[0], x[1])
        v.check_tensor("x", x_src)
        if x_src.dim() != 2:
            raise ValueError(f"'x' must hold [N, F] node features, got {v.describe(x_src)}")
        graph_input(edge_index)
        if edge_attr is None and not is_sparse(edge_index):
            raise ValueError(f"'edge_attr' [E, {self.dim}] pseudo-coordinates are required, got None")
        edge_attr = check_edge_attr(edge_attr, edge_index, features=self.dim, why="dim")
        if is_lazy(self.g):
            self._materialize(x_src.size(-1))
        if self.separate_gaussians:
            out = self.propagate(edge_index, x=(x_src, x_dst), edge_attr=edge_attr, size=size)
        else:
            out = self.propagate(edge_index, x=(x_src @ self.g, x_dst), edge_attr=edge_attr, size=size)
        return add_root_and_bias(out, self.root, x_dst, self.bias)

    def message(self, x_j: Tensor, edge_attr: Tensor) -> Tensor:
        E = x_j.size(0)
        M, K, D = self.out_channels, self.kernel_size, self.dim
        if edge_attr.dim() == 1:
            edge_attr = edge_attr.view(-1, 1)
        if edge_attr.size(-1) != D:
            raise ValueError(f"'edge_attr' must have {D} features (dim), got {v.describe(edge_attr)}")
        if not self.separate_gaussians:
            diff = edge_attr.view(E, 1, D) - self.mu.view(1, K, D)
            scaled = -0.5 * diff.square() / (EPS + self.sigma.view(1, K, D).square())
            weight = scaled.sum(dim=-1).exp()  # [E, K]
            return (x_j.view(E, K, M) * weight.unsqueeze(-1)).sum(dim=1)
        F = self.g.size(0)
        diff = edge_attr.view(E, 1, 1, 1, D) - self.mu.unsqueeze(0)  # [E, F, M, K, D]
        scaled = -0.5 * diff.square() / (EPS + self.sigma.unsqueeze(0).square())
        weight = (scaled.sum(dim=-1).exp() * self.g.view(1, F, M, K)).sum(dim=-1)  # [E, F, M]
        return (x_j.view(E, F, 1) * weight).sum(dim=1)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels}, dim={self.dim})"
