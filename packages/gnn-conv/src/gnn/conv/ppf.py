r"""PPFConv: the PPFNet operator (Deng et al., 2018)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ._point import (
    LocalGlobalConv,
    check_points,
    check_rows,
    graph_input,
    replace_self_loops,
    source_features,
)


def _angle(a: Tensor, b: Tensor) -> Tensor:
    r"""``[E]`` angle between the rows of ``a`` and ``b`` (``[E, 3]``):
    :math:`\operatorname{atan2}(\|a \times b\|, a \cdot b)`, in :math:`[0, \pi]`."""
    return torch.atan2(torch.linalg.cross(a, b, dim=1).norm(dim=1), (a * b).sum(dim=1))


def _pair_features(pos_i: Tensor, pos_j: Tensor, normal_i: Tensor, normal_j: Tensor) -> Tensor:
    r"""``[E, 4]`` point pair features: with :math:`\mathbf{d} = \mathbf{p}_j - \mathbf{p}_i`,
    :math:`(\|\mathbf{d}\|, \angle(\mathbf{n}_i, \mathbf{d}), \angle(\mathbf{n}_j, \mathbf{d}),
    \angle(\mathbf{n}_i, \mathbf{n}_j))`."""
    d = pos_j - pos_i
    return torch.stack(
        [d.norm(dim=1), _angle(normal_i, d), _angle(normal_j, d), _angle(normal_i, normal_j)], dim=1
    )


class PPFConv(LocalGlobalConv):
    r"""The PPFNet operator from "PPFNet: Global Context Aware Local Features for Robust 3D Point
    Matching".

    .. math::
        \mathbf{x}^{\prime}_i = \gamma_{\mathbf{\Theta}} \Big( \max_{j \in \mathcal{N}(i) \cup \{ i \}}
        h_{\mathbf{\Theta}} \big( \mathbf{x}_j, \| \mathbf{d}_{j,i} \|,
        \angle(\mathbf{n}_i, \mathbf{d}_{j,i}), \angle(\mathbf{n}_j, \mathbf{d}_{j,i}),
        \angle(\mathbf{n}_i, \mathbf{n}_j) \big) \Big)

    with :math:`\mathbf{d}_{j,i} = \mathbf{p}_j - \mathbf{p}_i`, :math:`\mathbf{n}` the point
    normals, :math:`\angle(\mathbf{a}, \mathbf{b}) = \operatorname{atan2}(\|\mathbf{a} \times
    \mathbf{b}\|, \mathbf{a} \cdot \mathbf{b})`, :math:`h` = ``local_nn`` and :math:`\gamma` =
    ``global_nn`` (either may be ``None``). The four pair features follow the node features
    in :math:`h`'s input.

    Self loops are replaced as in :class:`~gnn.conv.PointNetConv` (one loop per node; the
    replaced ones are dropped from the aggregation without data-dependent shapes). For a
    bipartite graph the loops are those of the ``min(N_src, N_dst)`` first nodes (PyG adds
    ``N_dst`` of them, which fails when there are more targets than sources).

    Args:
        local_nn: :math:`h`, maps ``[E, F_in + 4]`` (``[E, 4]`` without ``x``) to ``[E, F_out]``.
        global_nn: :math:`\gamma`, maps the ``[N, F_out]`` aggregation to the output.
        add_self_loops: replace the self loops by one loop per node.
        **kwargs: :class:`~gnn.core.MessagePassing` arguments (``aggr`` defaults to ``"max"``).

    Shapes:
        ``x`` ``[N, F_in]``, ``None`` or ``(x_src, x_dst)``; ``pos`` and ``normal`` ``[N, 3]`` or
        pairs; ``edge_index`` ``[2, E]`` or sparse ``adj_t`` -> ``[N_dst, F_out]``.

    Example:
        >>> conv = PPFConv(torch.nn.Linear(16 + 4, 32))
        >>> x, pos = torch.randn(10, 16), torch.randn(10, 3)
        >>> normal = torch.nn.functional.normalize(torch.randn(10, 3), dim=1)
        >>> conv(x, pos, normal, torch.randint(0, 10, (2, 40))).shape
        torch.Size([10, 32])
    """

    def forward(
        self,
        x: Tensor | None | tuple[Tensor | None, Tensor | None],
        pos: Tensor | tuple[Tensor, Tensor],
        normal: Tensor | tuple[Tensor, Tensor],
        edge_index: Any,
    ) -> Tensor:
        """Aggregate ``local_nn([x_j, ppf(pos, normal)])`` over the neighbours (and the node itself)."""
        x_pair = source_features(x)
        pos_pair = check_points("pos", pos, 3)
        normal_pair = check_points("normal", normal, 3)
        pair = isinstance(x, (tuple, list))
        for k in (0, 1):
            rows = pos_pair[k].size(0)
            check_rows(f"x[{k}]" if pair else "x", x_pair[k], rows, "point of 'pos'")
            check_rows(
                f"normal[{k}]" if normal_pair[0] is not normal_pair[1] else "normal",
                normal_pair[k],
                rows,
                "point of 'pos'",
            )
        graph_input(edge_index)
        size = None
        looped = None
        if self.add_self_loops:
            sizes = (pos_pair[0].size(0), pos_pair[1].size(0))
            looped = replace_self_loops(self, edge_index, sizes, min(sizes))
            edge_index, size = looped.edge_index, looped.sizes
            x_pair, pos_pair, normal_pair = looped.pad(x_pair), looped.pad(pos_pair), looped.pad(normal_pair)
        out = self.propagate(edge_index, x=x_pair, pos=pos_pair, normal=normal_pair, size=size)
        return self.global_output(out, looped)

    def message(
        self, x_j: Tensor | None, pos_i: Tensor, pos_j: Tensor, normal_i: Tensor, normal_j: Tensor
    ) -> Tensor:
        return self.local_message(x_j, _pair_features(pos_i, pos_j, normal_i, normal_j))
