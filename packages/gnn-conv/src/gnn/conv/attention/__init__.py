"""Attention modules (``gnn.conv.attention``): global attention over padded node sets.

Each module takes a padded batch ``x`` ``[B, N, F]`` (see
:func:`gnn.core.utils.to_dense_batch`) and, where it has one, a boolean node
``mask`` ``[B, N]``::

    >>> from gnn.conv.attention import PerformerAttention
    >>> attn = PerformerAttention(channels=16, heads=2, head_channels=8)
    >>> attn(torch.randn(4, 10, 16)).shape
    torch.Size([4, 10, 16])

The names are re-exported at :mod:`gnn.conv`.
"""

from __future__ import annotations

from .performer import PerformerAttention
from .polynormer import PolynormerAttention
from .qformer import QFormer
from .sgformer import SGFormerAttention

__all__ = ["PerformerAttention", "PolynormerAttention", "QFormer", "SGFormerAttention"]
