r"""Deep Sets aggregation ("Deep Sets"; "Graph Neural Networks with Adaptive Readouts")."""

from __future__ import annotations

import torch
from torch import Tensor

from gnn.core import Aggregation
from gnn.core.nn.mlp import MLP
from gnn.core.utils import ptr_to_index

__all__ = ["DeepSetsAggregation"]


class DeepSetsAggregation(Aggregation):
    r"""Transform each element, sum each group, transform the sums:

    .. math::
        \mathbf{o}_g = \rho_{\Theta}\Big(\sum_{i \in g} \phi_{\Theta}(\mathbf{x}_i)\Big)

    :math:`\phi` (``local_nn``) and :math:`\rho` (``global_nn``) are optional
    (identity when ``None``). The sum goes through :mod:`gnn.core.ops`, so
    ``index`` may be in any order. An :class:`~gnn.core.nn.mlp.MLP` is stored
    as ``local_mlp``/``global_mlp`` (PyG's state_dict keys) and receives the
    group assignment for graph-wise normalizations: ``local_mlp`` the
    ``index`` of each element, ``global_mlp`` one group per row.

    Args:
        local_nn: the network :math:`\phi` applied to each element.
        global_nn: the network :math:`\rho` applied to each group's sum.

    Shapes: ``x: [E, F]``, ``index: [E]`` -> ``[dim_size, F']``.

    Example:
        >>> aggr = DeepSetsAggregation(torch.nn.Linear(16, 32), torch.nn.Linear(32, 8))
        >>> aggr(torch.randn(6, 16), torch.tensor([0, 0, 1, 1, 1, 2])).shape
        torch.Size([3, 8])
    """

    def __init__(
        self, local_nn: torch.nn.Module | None = None, global_nn: torch.nn.Module | None = None
    ) -> None:
        super().__init__()
        for name, value in (("local_nn", local_nn), ("global_nn", global_nn)):
            if value is not None and not callable(value):
                raise TypeError(f"'{name}' must be a torch.nn.Module (or callable) or None, got {value!r}")
        self.local_nn: torch.nn.Module | None = None
        self.local_mlp: MLP | None = None
        self.global_nn: torch.nn.Module | None = None
        self.global_mlp: MLP | None = None
        if isinstance(local_nn, MLP):
            self.local_mlp = local_nn
        else:
            self.local_nn = local_nn
        if isinstance(global_nn, MLP):
            self.global_mlp = global_nn
        else:
            self.global_nn = global_nn

    def reset_parameters(self) -> None:
        for module in (self.local_nn, self.local_mlp, self.global_nn, self.global_mlp):
            if module is not None and hasattr(module, "reset_parameters"):
                module.reset_parameters()

    def forward(
        self,
        x: Tensor,
        index: Tensor | None = None,
        ptr: Tensor | None = None,
        dim_size: int | None = None,
        dim: int = -2,
    ) -> Tensor:
        """``x: [..., E, ..., F]`` -> ``[..., dim_size, ..., F']``."""
        if self.local_mlp is not None or self.global_mlp is not None:
            self.assert_two_dimensional_input(x, dim)
        if self.local_mlp is not None:
            if index is None and ptr is not None:
                index = ptr_to_index(ptr, x.size(0))
            x = self.local_mlp(x, index, dim_size)
        elif self.local_nn is not None:
            x = self.local_nn(x)
        out = self.reduce(x, index, ptr, dim_size, dim, reduce="sum")
        if self.global_mlp is not None:
            num_groups = out.size(0)
            out = self.global_mlp(out, torch.arange(num_groups, device=out.device), num_groups)
        elif self.global_nn is not None:
            out = self.global_nn(out)
        return out

    def __repr__(self) -> str:
        local = self.local_mlp if self.local_mlp is not None else self.local_nn
        glob = self.global_mlp if self.global_mlp is not None else self.global_nn
        return f"{self.__class__.__name__}(local_nn={local}, global_nn={glob})"
