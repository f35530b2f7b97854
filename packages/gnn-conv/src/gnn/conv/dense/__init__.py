"""Dense convolution layers (``gnn.conv.dense``): layers on padded ``[B, N, N]`` adjacency matrices.

Each layer takes node features ``x`` ``[B, N, F]``, an adjacency ``adj``
``[B, N, N]`` (``adj[b, i, j]``: how much node ``j`` contributes to node ``i``;
:func:`~gnn.core.utils.to_dense_adj` puts an edge ``i -> j`` at ``[i, j]``, so
for a directed graph pass its transpose to aggregate along edge direction) and an
optional node ``mask`` ``[B, N]``, as produced by
:func:`gnn.core.utils.to_dense_batch` and :func:`gnn.core.utils.to_dense_adj`
(the 2-D forms ``[N, F]`` / ``[N, N]`` stand for one graph)::

    >>> from gnn.conv.dense import DenseGCNConv
    >>> conv = DenseGCNConv(16, 32)
    >>> conv(torch.randn(2, 5, 16), torch.ones(2, 5, 5)).shape
    torch.Size([2, 5, 32])

The names are re-exported at :mod:`gnn.conv`.
"""

from __future__ import annotations

from .gat import DenseGATConv
from .gcn import DenseGCNConv
from .gin import DenseGINConv
from .graph_conv import DenseGraphConv
from .sage import DenseSAGEConv

__all__ = ["DenseGATConv", "DenseGCNConv", "DenseGINConv", "DenseGraphConv", "DenseSAGEConv"]
