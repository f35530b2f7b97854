r"""The sort pooling of DGCNN ("An End-to-End Deep Learning Architecture for Graph Classification")."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from gnn.core import Aggregation

__all__ = ["SortAggregation"]


class SortAggregation(Aggregation):
    r"""Keep the ``k`` elements of each group with the largest last feature channel.

    The elements of group :math:`g` are sorted in descending order of
    :math:`x_{i,F-1}`; the first ``k`` rows are concatenated into one vector.
    A group with fewer than ``k`` elements is padded with zero rows (after
    its real elements), as in PyG. With ``max_num_elements`` only the first
    ``max_num_elements`` elements of each group (in ``index`` order) are
    considered.

    Needs ``index`` sorted in ascending order (an unsorted ``index`` raises
    ``ValueError``).

    Args:
        k: number of elements kept per group (positive).

    Shapes: ``x: [E, F]``, ``index: [E]`` (sorted) -> ``[dim_size, k * F]``.

    Example:
        >>> aggr = SortAggregation(k=2)
        >>> x = torch.tensor([[1.0, 0.0], [2.0, 3.0], [5.0, 1.0]])
        >>> aggr(x, torch.tensor([0, 0, 0]))
        tensor([[2., 3., 5., 1.]])
    """

    def __init__(self, k: int) -> None:
        super().__init__()
        if not isinstance(k, int) or isinstance(k, bool) or k <= 0:
            raise ValueError(f"'k' must be a positive int, got {k!r}")
        self.k = k

    def forward(
        self,
        x: Tensor,
        index: Tensor | None = None,
        ptr: Tensor | None = None,
        dim_size: int | None = None,
        dim: int = -2,
        max_num_elements: int | None = None,
    ) -> Tensor:
        """``x: [E, F]`` -> ``[dim_size, k * F]``."""
        if max_num_elements is not None and (
            not isinstance(max_num_elements, int)
            or isinstance(max_num_elements, bool)
            or max_num_elements <= 0
        ):
            raise ValueError(f"'max_num_elements' must be a positive int or None, got {max_num_elements!r}")
        dense, mask = self.to_dense_batch(x, index, ptr, dim_size, dim, max_num_elements=max_num_elements)
        num_groups, num_slots, channels = dense.shape
        if channels == 0:
            return dense.new_zeros(num_groups, 0)

        # padded slots (zeros) sort behind every real element (stable sort keeps real ones first on ties)
        key = dense[..., -1].masked_fill(~mask, float("-inf"))
        perm = key.argsort(dim=-1, descending=True, stable=True)
        dense = dense.gather(1, perm.unsqueeze(-1).expand(-1, -1, channels))

        if num_slots >= self.k:
            dense = dense[:, : self.k]
        else:
            dense = F.pad(dense, (0, 0, 0, self.k - num_slots))
        return dense.reshape(num_groups, self.k * channels)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(k={self.k})"
