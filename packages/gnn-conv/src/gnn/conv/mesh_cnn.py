r"""MeshCNNConv: the edge convolution of MeshCNN (Hanocka et al., 2019)."""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import Tensor
from torch.nn import Module, ModuleList

from gnn.core import MessagePassing
from gnn.core import validation as v
from gnn.core.cache import memo
from gnn.core.nn.inits import reset

from ._utils import check_in_channels


class MeshCNNConv(MessagePassing):
    r"""The convolution of "MeshCNN: A Network With An Edge", over the edges of a triangle mesh.

    Every mesh edge :math:`e_i` has four neighbouring edges :math:`a(i), b(i)` (the
    counter-clockwise edges of the face above it) and :math:`c(i), d(i)` (of the face
    below), and

    .. math::
        \mathbf{x}^{\prime}_i = W_0 \mathbf{x}_i
        + W_1 \lvert \mathbf{x}_{a(i)} - \mathbf{x}_{c(i)} \rvert
        + W_2 (\mathbf{x}_{a(i)} + \mathbf{x}_{c(i)})
        + W_3 \lvert \mathbf{x}_{b(i)} - \mathbf{x}_{d(i)} \rvert
        + W_4 (\mathbf{x}_{b(i)} + \mathbf{x}_{d(i)}),

    symmetric under the mesh's ambiguous orientation (swapping the faces). ``kernels``
    holds the five networks :math:`W_0 .. W_4` (default: ``torch.nn.Linear(in, out)``
    each). The four neighbour terms are the messages of ``propagate`` (one per column of
    ``edge_index``), summed per edge; :math:`W_0 \mathbf{x}_i` is added in ``update``.

    ``edge_index`` is the edge adjacency ``A`` ``[2, 4 |E|]`` with columns ``4i .. 4i + 3``
    equal to ``(i, a(i)), (i, b(i)), (i, c(i)), (i, d(i))``: row 0 the edge that receives,
    row 1 its neighbours. (PyG 2.8.1's class reads the rows the other way round, so it
    gives these numbers for ``edge_index.flip(0)``; see the package README.)

    Args:
        in_channels: input size per mesh edge.
        out_channels: output size per mesh edge.
        kernels: a ``torch.nn.ModuleList`` of five networks mapping ``in_channels`` to
            ``out_channels`` features (``None``: five ``torch.nn.Linear``).

    Shapes:
        ``x`` ``[|E|, in_channels]``, ``edge_index`` ``[2, 4 |E|]`` -> ``[|E|, out_channels]``.

    Example:
        >>> conv = MeshCNNConv(8, 16)
        >>> neighbours = torch.tensor([[1, 2, 3, 4], [2, 0, 4, 5], [5, 3, 0, 1],
        ...                            [2, 5, 4, 0], [0, 3, 5, 1], [1, 4, 3, 2]])  # a tetrahedron
        >>> edge_index = torch.stack([torch.arange(6).repeat_interleave(4), neighbours.flatten()])
        >>> conv(torch.randn(6, 8), edge_index).shape
        torch.Size([6, 16])
    """

    def __init__(self, in_channels: int, out_channels: int, kernels: ModuleList | None = None) -> None:
        super().__init__(aggr="add", flow="target_to_source")
        self.in_channels = in_channels
        self.out_channels = out_channels
        if kernels is None:
            self.kernels = ModuleList([torch.nn.Linear(in_channels, out_channels) for _ in range(5)])
        else:
            self._check_kernels(kernels)
            self.kernels = kernels

    def _check_kernels(self, kernels: Any) -> None:
        if not isinstance(kernels, ModuleList) or len(kernels) != 5:
            raise TypeError(
                f"'kernels' must be a torch.nn.ModuleList of 5 networks, got {v.describe(kernels)}"
                + (f" of length {len(kernels)}" if isinstance(kernels, ModuleList) else "")
            )
        for i, net in enumerate(kernels):
            if not isinstance(net, Module):
                raise TypeError(f"'kernels[{i}]' must be a torch.nn.Module, got {v.describe(net)}")
            for side, names, want in (
                ("input", ("in_channels", "in_features"), self.in_channels),
                ("output", ("out_channels", "out_features"), self.out_channels),
            ):
                size = next((getattr(net, n) for n in names if hasattr(net, n)), None)
                if size is None:
                    warnings.warn(
                        f"kernel[{i}] does not have attribute '{names[0]}' nor '{names[1]}'; it must map "
                        f"{self.in_channels} to {self.out_channels} features",
                        UserWarning,
                        stacklevel=3,
                    )
                elif size != want:
                    raise ValueError(
                        f"'kernels[{i}]' must have {want} {side} features ({names[0]}), got {size}"
                    )

    def reset_parameters(self) -> None:
        """Re-initialize the five kernels."""
        super().reset_parameters()
        for net in self.kernels:
            reset(net)

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        """Apply the layer (see the class docstring for shapes)."""
        check_in_channels(x, self.in_channels)
        if x.dim() != 2:
            raise ValueError(f"'x' must have shape [|E|, {self.in_channels}], got {v.describe(x)}")
        v.check_edge_index(edge_index)
        num = x.size(0)
        if edge_index.size(1) != 4 * num:
            raise ValueError(
                f"'edge_index' must have 4 columns per mesh edge ([2, {4 * num}] for {num} edges), "
                f"got {v.describe(edge_index)}"
            )
        if v.validation_enabled() and not torch.compiler.is_compiling():
            memo(edge_index, "meshcnn_layout", lambda: _check_layout(edge_index, num))
        return self.propagate(edge_index, x=x, size=(num, num))

    def message(self, x_j: Tensor) -> Tensor:
        """The four neighbour terms of every mesh edge, in the columns' order ``[4 |E|, out]``."""
        n_a, n_b, n_c, n_d = x_j.view(-1, 4, x_j.size(-1)).unbind(dim=1)
        k = self.kernels
        terms = [k[1]((n_a - n_c).abs()), k[2](n_a + n_c), k[3]((n_b - n_d).abs()), k[4](n_b + n_d)]
        return torch.stack(terms, dim=1).view(x_j.size(0), terms[0].size(-1))

    def update(self, inputs: Tensor, x: Tensor) -> Tensor:
        """``W_0 x_i`` plus the summed neighbour terms."""
        return self.kernels[0](x) + inputs

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels})"


def _check_layout(edge_index: Tensor, num: int) -> bool:
    """Row 0 must be ``0, 0, 0, 0, 1, 1, 1, 1, ...`` (four columns per mesh edge, in order)."""
    expected = torch.arange(num, device=edge_index.device).repeat_interleave(4)
    if not torch.equal(edge_index[0].long(), expected):
        raise ValueError(
            "'edge_index' must list the four neighbours of mesh edge i in columns 4i .. 4i + 3 with row 0 "
            "equal to i (0, 0, 0, 0, 1, 1, 1, 1, ...)"
        )
    v.check_index_range("edge_index[1]", edge_index[1], num, "mesh edges")
    return True
