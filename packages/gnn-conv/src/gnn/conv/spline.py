r"""SplineConv: the spline-based convolution of SplineCNN (Fey et al., 2018)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.nn import Parameter
from torch.nn.parameter import UninitializedParameter, is_lazy

from gnn.core import Linear, MessagePassing, ops
from gnn.core import validation as v
from gnn.core.cache import memo
from gnn.core.nn.inits import uniform, zeros
from gnn.core.utils import is_sparse

from ._utils import add_root_and_bias, check_edge_attr, check_in_channels


def _per_dim(name: str, value: Any, dim: int) -> list[Any]:
    """``value`` repeated to ``dim`` entries (a list shorter than ``dim`` repeats its last one, as PyG)."""
    if isinstance(value, Tensor):
        value = value.tolist()
    if not isinstance(value, (list, tuple)):
        return [value] * dim
    if len(value) == 0:
        raise ValueError(f"'{name}' must not be empty")
    values = list(value)[:dim]
    return values + [values[-1]] * (dim - len(values))


class SplineConv(MessagePassing):
    r"""The spline-based convolution from "SplineCNN: Fast Geometric Deep Learning with
    Continuous B-Spline Kernels".

    .. math::
        \mathbf{x}^{\prime}_i = \frac{1}{|\mathcal{N}(i)|} \sum_{j \in \mathcal{N}(i)}
        \mathbf{x}_j \cdot h_{\mathbf{\Theta}}(\mathbf{e}_{i,j})
        \;+\; \mathbf{W}_{\text{root}} \mathbf{x}_i + \mathbf{b},
        \qquad
        h_{\mathbf{\Theta}}(\mathbf{u}) = \sum_{\mathbf{p}} \mathbf{\Theta}_{\mathbf{p}}
        \prod_{d=1}^{D} N^{m}_{d, p_d}(u_d)

    with :math:`N^m_{d, p}` the B-spline basis functions of degree :math:`m` on
    ``kernel_size[d]`` uniform knots (open or closed per dimension), so that each edge's
    kernel is a weighted sum of :math:`(m + 1)^D` of the :math:`K = \prod_d k_d` matrices
    :math:`\mathbf{\Theta}_{\mathbf{p}}` (``weight``). The basis and the weighting run as
    :func:`gnn.core.ops.spline_basis` / :func:`gnn.core.ops.spline_weighting` (compiled with
    gnn-kernels, pure torch otherwise); the basis of a static ``edge_attr`` is computed once
    (per-graph cache).

    Args:
        in_channels: input size, ``-1`` for lazy, or ``(F_src, F_dst)`` for bipartite graphs.
        out_channels: output size.
        dim: number of pseudo-coordinates :math:`D` (columns of ``edge_attr``).
        kernel_size: kernel weights per dimension (an int or one per dimension).
        is_open_spline: open (``True``) or closed B-spline per dimension.
        degree: B-spline degree (1, 2 or 3).
        aggr: aggregation (default ``"mean"``).
        root_weight: add :math:`\mathbf{W}_{\text{root}} \mathbf{x}_i`.
        bias: learn an additive bias.
        **kwargs: :class:`~gnn.core.MessagePassing` arguments.

    Shapes:
        ``x`` ``[N, F_in]`` or ``([N_src, F_src], [N_dst, F_dst])``; ``edge_index`` ``[2, E]``
        or sparse ``adj_t`` (its values are the pseudo-coordinates when ``edge_attr`` is
        ``None``); ``edge_attr`` ``[E, dim]`` (or ``[E]`` for ``dim=1``) in ``[0, 1]``;
        output ``[N_dst, out_channels]``.

    Example:
        >>> conv = SplineConv(16, 32, dim=2, kernel_size=5)
        >>> x, edge_index = torch.randn(10, 16), torch.randint(0, 10, (2, 40))
        >>> conv(x, edge_index, torch.rand(40, 2)).shape
        torch.Size([10, 32])
    """

    def __init__(
        self,
        in_channels: int | tuple[int, int],
        out_channels: int,
        dim: int,
        kernel_size: int | list[int],
        is_open_spline: bool = True,
        degree: int = 1,
        aggr: str = "mean",
        root_weight: bool = True,
        bias: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(aggr=aggr, **kwargs)
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise ValueError(f"'dim' must be a positive int, got {dim!r}")
        if isinstance(degree, bool) or degree not in (1, 2, 3):
            raise ValueError(f"'degree' must be 1, 2 or 3, got {degree!r}")
        sizes = [int(k) for k in _per_dim("kernel_size", kernel_size, dim)]
        opened = [bool(o) for o in _per_dim("is_open_spline", is_open_spline, dim)]
        for d, (k, is_open) in enumerate(zip(sizes, opened)):
            if k < 1 or (is_open and k <= degree):
                raise ValueError(
                    f"'kernel_size' must be positive and, for an open B-spline, exceed the degree "
                    f"({degree}); got {k} in dimension {d}"
                )
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.dim = dim
        self.degree = degree
        self.root_weight = root_weight
        self.register_buffer("kernel_size", torch.tensor(sizes, dtype=torch.long))
        self.register_buffer("is_open_spline", torch.tensor(opened, dtype=torch.uint8))
        self.K = 1
        for k in sizes:
            self.K *= k

        src, dst = (in_channels, in_channels) if isinstance(in_channels, int) else tuple(in_channels)
        if src > 0:
            self.weight = Parameter(torch.empty(self.K, src, out_channels))
        else:
            self.weight = UninitializedParameter()
        if root_weight:
            self.lin = Linear(dst, out_channels, bias=False, weight_initializer="uniform")
        if bias:
            self.bias = Parameter(torch.empty(out_channels))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Uniform kernel weights (bound ``1 / sqrt(K * F_in)``) and root weight, zero bias."""
        super().reset_parameters()
        if not is_lazy(self.weight):
            uniform(self.weight.size(0) * self.weight.size(1), self.weight)
        if self.root_weight:
            self.lin.reset_parameters()
        zeros(self.bias)

    def forward(
        self,
        x: Tensor | tuple[Tensor, Tensor | None],
        edge_index: Any,
        edge_attr: Tensor | None = None,
        size: tuple[int, int] | None = None,
    ) -> Tensor:
        """Spline-weighted messages, aggregated, plus root term and bias."""
        check_in_channels(x, self.in_channels)
        if isinstance(x, Tensor):
            x = (x, x)
        x_src = x[0]
        if x_src is None or x_src.dim() != 2:
            raise ValueError(f"'x' must hold [N, F] source node features, got {v.describe(x_src)}")
        if isinstance(self.weight, UninitializedParameter):
            with torch.no_grad():
                self.weight.materialize((self.K, x_src.size(-1), self.out_channels))
            uniform(self.weight.size(0) * self.weight.size(1), self.weight)
        if edge_attr is None and not is_sparse(edge_index):
            raise ValueError("'edge_attr' is required: SplineConv reads the pseudo-coordinates from it")
        check_edge_attr(edge_attr, edge_index, features=self.dim, why="dim")
        if size is None and x[1] is not None:
            size = (x_src.size(0), x[1].size(0))  # the message reads x_j only
        out = self.propagate(edge_index, x=x, edge_attr=edge_attr, size=size)
        return add_root_and_bias(out, self.lin if self.root_weight else None, x[1], self.bias)

    def message(self, x_j: Tensor, edge_attr: Tensor) -> Tensor:
        """``x_j`` times the edge's kernel :math:`h_\\Theta(\\mathbf{e}_{i,j})`."""
        pseudo = edge_attr.view(-1, 1) if edge_attr.dim() == 1 else edge_attr
        if pseudo.size(-1) != self.dim:
            raise ValueError(f"'edge_attr' must have {self.dim} features (dim), got {v.describe(edge_attr)}")
        pseudo = pseudo.to(x_j.dtype)
        basis, index = memo(
            edge_attr,
            ("spline_basis", x_j.dtype, self.degree),
            lambda: ops.spline_basis(pseudo, self.kernel_size, self.is_open_spline, self.degree),
            self.kernel_size,
            self.is_open_spline,
        )
        return ops.spline_weighting(x_j, self.weight, basis, index)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels}, dim={self.dim})"
