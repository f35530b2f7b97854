"""Normalization layers of gnn-conv (PyG 2.8's ``torch_geometric.nn.norm``).

Every layer is imported on first access (PEP 562) and re-exported at :mod:`gnn.conv`;
all are registered by name in :data:`gnn.core.registry.norms`
(``norms.resolve("graph_norm", 64)``, ``"GraphNorm"``, ``"graph"``).

The graph-wise layers (``GraphNorm``, ``InstanceNorm``, ``LayerNorm(mode="graph")``,
``PairNorm``, ``MeanSubtractionNorm``, ``GraphSizeNorm``) take ``batch`` in any order;
a sorted one (every PyG mini-batch) takes the faster segment path. See
:mod:`gnn.conv.norm._segment` for how their statistics are computed.

Example::

    >>> from gnn.conv.norm import GraphNorm
    >>> norm = GraphNorm(16)
    >>> norm(torch.randn(5, 16), torch.tensor([0, 0, 0, 1, 1])).shape
    torch.Size([5, 16])
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .._plugin import NORMS

# public name -> module (relative to gnn.conv.norm) that defines it
_EXPORTS: dict[str, str] = {name: "." + module.rpartition(".")[2] for name, module in NORMS.items()}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # pragma: no cover
    from .batch_norm import BatchNorm  # noqa: F401
    from .diff_group_norm import DiffGroupNorm  # noqa: F401
    from .graph_norm import GraphNorm  # noqa: F401
    from .graph_size_norm import GraphSizeNorm  # noqa: F401
    from .instance_norm import InstanceNorm  # noqa: F401
    from .layer_norm import LayerNorm  # noqa: F401
    from .mean_subtraction_norm import MeanSubtractionNorm  # noqa: F401
    from .msg_norm import MessageNorm  # noqa: F401
    from .pair_norm import PairNorm  # noqa: F401


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'gnn.conv.norm' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
