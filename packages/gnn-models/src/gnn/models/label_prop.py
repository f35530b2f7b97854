r"""Label propagation (Zhu & Ghahramani, 2002; Zhou et al., 2004): :class:`LabelPropagation`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from gnn.core import plans
from gnn.core import validation as v
from gnn.core.cache import memo
from gnn.core.message_passing import MessagePassing
from gnn.core.utils import gcn_norm, is_sparse

__all__ = ["LabelPropagation", "one_hot"]


def one_hot(index: Tensor, num_classes: int | None = None, dtype: torch.dtype | None = None) -> Tensor:
    """``[N, C]`` one-hot rows of the class indices ``index`` (``C`` default ``max + 1``)."""
    index = index.view(-1).long()
    if num_classes is None:
        num_classes = int(index.max()) + 1 if index.numel() else 0
    if index.numel():
        v.check_index_range("y", index, num_classes, "classes")
    return torch.nn.functional.one_hot(index, num_classes).to(dtype or torch.float32)


def _is_torch_sparse_tensor(obj: Any) -> bool:
    return isinstance(obj, Tensor) and obj.layout != torch.strided


class LabelPropagation(MessagePassing):
    r"""Spread the known labels over the graph.

    .. math::
        \mathbf{Y}^{(0)} = \mathbf{Y} \odot \mathbf{m}, \qquad
        \mathbf{Y}^{(k+1)} = \mathrm{clip}_{[0, 1]}\big(\alpha\,\hat{\mathbf{A}}\mathbf{Y}^{(k)}
        + (1 - \alpha)\,\mathbf{Y}^{(0)}\big)

    for ``num_layers`` steps, with :math:`\hat{\mathbf{A}} = \mathbf{D}^{-1/2}\mathbf{A}
    \mathbf{D}^{-1/2}` (no self loops, in-degrees) when no ``edge_weight`` is given (a
    given ``edge_weight``, or the values of a ``torch_sparse.SparseTensor``, are used as
    they are). ``post_step(out)`` replaces the clipping when given. Runs without
    autograd. Labels given as class indices ``[N]`` are one-hot encoded.

    Args:
        num_layers: number of propagation steps.
        alpha: :math:`\alpha`, the weight of the propagated labels.

    Shapes:
        ``y`` ``[N, C]`` or ``[N]`` (class indices), ``edge_index`` ``[2, E]`` or sparse
        ``adj_t``, ``mask`` ``[N]`` (bool or indices) -> ``[N, C]``.

    Example:
        >>> prop = LabelPropagation(num_layers=2, alpha=0.9)
        >>> y = torch.tensor([0, 1, 0])
        >>> prop(y, torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]]), mask=torch.tensor([True, True, False])).shape
        torch.Size([3, 2])
    """

    fused_message = plans.WeightedSum(weight="edge_weight", root="root")

    def __init__(self, num_layers: int, alpha: float) -> None:
        super().__init__(aggr="add")
        if isinstance(num_layers, bool) or not isinstance(num_layers, int) or num_layers < 0:
            raise ValueError(f"'num_layers' must be a non-negative int, got {num_layers!r}")
        self.num_layers = num_layers
        self.alpha = alpha

    @torch.no_grad()
    def forward(
        self,
        y: Tensor,
        edge_index: Any,
        mask: Tensor | None = None,
        edge_weight: Tensor | None = None,
        post_step: Callable[[Tensor], Tensor] | None = None,
    ) -> Tensor:
        """Propagate ``y`` (see the class docstring)."""
        v.check_tensor("y", y)
        if mask is not None:
            v.check_tensor("mask", mask)
        out = self._initial(y, mask)
        edge_index, edge_weight = self._normalized(edge_index, edge_weight, out)
        alpha = float(self.alpha)
        res = (1 - alpha) * out
        if isinstance(edge_weight, Tensor) and not self.exact_edges:
            # alpha A Y + (1 - alpha) Y0 as one fused pass: the weights scaled by alpha once per
            # graph, the root term (1 - alpha) Y0 added inside the spmm (nothing can observe the
            # scaled messages: no hooks, no explain mode)
            scaled = memo(edge_weight, ("label_prop_scaled", alpha), lambda: edge_weight * alpha)
            for _ in range(self.num_layers):
                out = self.propagate(edge_index, x=out, edge_weight=scaled, root=(res, 1.0))
                out = post_step(out) if post_step is not None else out.clamp_(0.0, 1.0)
            return out
        for _ in range(self.num_layers):
            out = self.propagate(edge_index, x=out, edge_weight=edge_weight)
            out = torch.add(res, out, alpha=alpha, out=out)  # alpha * out + res, in place
            out = post_step(out) if post_step is not None else out.clamp_(0.0, 1.0)
        return out

    @staticmethod
    def _initial(y: Tensor, mask: Tensor | None) -> Tensor:
        r""":math:`\mathbf{Y} \odot \mathbf{m}` (class indices one-hot encoded), without boolean indexing."""
        if y.dtype == torch.long and y.size(0) == y.numel():
            labels = y.view(-1)
            num_classes = int(labels.max()) + 1 if labels.numel() else 0
            if labels.numel():
                v.check_index_range("y", labels, num_classes, "classes")
            if mask is None:
                keep = torch.ones(labels.numel(), device=y.device)
            elif mask.dtype == torch.bool:
                keep = mask.view(-1).to(torch.float32)
            else:
                keep = torch.zeros(labels.numel(), device=y.device).index_fill(0, mask.view(-1), 1.0)
            out = torch.zeros(labels.numel(), num_classes, device=y.device)
            return out.index_put_((torch.arange(labels.numel(), device=y.device), labels), keep)
        if y.dim() != 2:
            raise ValueError(f"'y' must be [N, C] label scores or [N] class indices, got {v.describe(y)}")
        if mask is None:
            return y
        if mask.dtype == torch.bool:
            return torch.where(mask.view(-1, 1), y, y.new_zeros(()))
        out = torch.zeros_like(y)
        out[mask] = y[mask]
        return out

    def _normalized(
        self, edge_index: Any, edge_weight: Tensor | None, y: Tensor
    ) -> tuple[Any, Tensor | None]:
        """The symmetrically normalized graph, unless the weights are given."""
        if is_sparse(edge_index):
            if _is_torch_sparse_tensor(edge_index):
                return gcn_norm(edge_index, None, y.size(0), add_self_loops=False, dtype=y.dtype)[0], None
            if edge_index.storage.value() is None:  # a torch_sparse.SparseTensor without values
                return gcn_norm(edge_index, None, y.size(0), add_self_loops=False, dtype=y.dtype)[0], None
            return edge_index, None
        if edge_weight is None:
            return gcn_norm(edge_index, None, y.size(0), add_self_loops=False, dtype=y.dtype)
        return edge_index, edge_weight

    def message(self, x_j: Tensor, edge_weight: Tensor | None) -> Tensor:
        """``edge_weight * x_j`` (or ``x_j`` without weights)."""
        return x_j if edge_weight is None else edge_weight.view(-1, 1) * x_j

    def __repr__(self) -> str:
        return f"{type(self).__name__}(num_layers={self.num_layers}, alpha={self.alpha})"
