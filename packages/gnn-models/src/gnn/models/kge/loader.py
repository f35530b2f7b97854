"""Mini-batches of knowledge-graph triplets (PyG's ``KGTripletLoader``)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


class KGTripletLoader(torch.utils.data.DataLoader):
    """A :class:`torch.utils.data.DataLoader` over triplet positions that yields
    ``(head_index, rel_type, tail_index)`` batches.

    Args:
        head_index, rel_type, tail_index: ``[T]`` the triplets.
        **kwargs: :class:`~torch.utils.data.DataLoader` arguments (``batch_size``, ``shuffle``, ...).

    Example:
        >>> h, r, t = torch.tensor([0, 1, 2]), torch.tensor([0, 0, 1]), torch.tensor([1, 2, 0])
        >>> next(iter(KGTripletLoader(h, r, t, batch_size=2)))
        (tensor([0, 1]), tensor([0, 0]), tensor([1, 2]))
    """

    def __init__(self, head_index: Tensor, rel_type: Tensor, tail_index: Tensor, **kwargs: Any) -> None:
        self.head_index = head_index
        self.rel_type = rel_type
        self.tail_index = tail_index
        super().__init__(range(head_index.numel()), collate_fn=self.sample, **kwargs)

    def sample(self, index: list[int]) -> tuple[Tensor, Tensor, Tensor]:
        """The triplets at the positions ``index``."""
        pos = torch.as_tensor(index, dtype=torch.long, device=self.head_index.device)
        return self.head_index[pos], self.rel_type[pos], self.tail_index[pos]
