"""Light graph containers and built-in demo graphs.

:class:`Data` (one graph), :class:`HeteroData` (typed nodes and edges),
:class:`Batch` (many graphs collated into one), and the datasets
:func:`karate_club` and :func:`planted_partition`. Attribute access follows
PyTorch Geometric's containers, so code written against ``torch_geometric.data``
objects works with these (and vice versa).
"""

from .batch import Batch, DataBatch, HeteroDataBatch
from .data import Data, Storage
from .datasets import karate_club, planted_partition
from .hetero_data import EdgeStorage, HeteroData, NodeStorage

__all__ = [
    "Batch",
    "Data",
    "DataBatch",
    "EdgeStorage",
    "HeteroData",
    "HeteroDataBatch",
    "NodeStorage",
    "Storage",
    "karate_club",
    "planted_partition",
]
