"""gnn-pool (see the package README).

Every public name is imported on first access (PEP 562), so ``import gnn.pool`` is cheap::

    >>> from gnn.pool import TopKPooling
    >>> pool = TopKPooling(16, ratio=0.5)
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module (relative to gnn.pool) that defines it
_EXPORTS: dict[str, str] = {}

# --- selection pools (issue 13, branch h-pool2) ---------------------------------------------------
_EXPORTS.update(
    {
        "TopKPooling": ".topk_pool",
        "SAGPooling": ".sag_pool",
        "EdgePooling": ".edge_pool",
        "ClusterPooling": ".cluster_pool",
        "ASAPooling": ".asap",
        "PANPooling": ".pan_pool",
        "MemPooling": ".mem_pool",
    }
)
# --- end of selection pools -------------------------------------------------------------------------

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'gnn.pool' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
