"""gnn-hetero: heterogeneous-graph tools of gnn (PyG 2.8's API).

``to_hetero`` / ``to_hetero_with_bases`` turn a homogeneous model into one with a copy of
each layer per node or edge type (on :mod:`torch.fx`, with :class:`Transformer` as the
base of such rewrites); ``HeteroConv`` runs one conv per edge type; ``HGTConv``,
``HANConv`` and ``HEATConv`` are heterogeneous attention layers; ``HeteroBatchNorm``,
``HeteroLayerNorm`` and ``HeteroJumpingKnowledge`` work per type. Every name is imported
on first access (PEP 562)::

    >>> from gnn.hetero import to_hetero, HGTConv
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._plugin import CONVS, NORMS

__version__ = "0.1.0"

# public name -> module (relative to gnn.hetero) that defines it
_EXPORTS: dict[str, str] = {name: "." + module for name, module in CONVS.items()}
_EXPORTS.update({name: "." + module for name, module in NORMS.items()})
_EXPORTS.update(
    {
        "to_hetero": ".to_hetero",
        "to_hetero_with_bases": ".to_hetero_with_bases",
        "Transformer": ".fx",
        "HeteroJumpingKnowledge": ".jumping_knowledge",
    }
)

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # pragma: no cover
    from .fx import Transformer  # noqa: F401
    from .han import HANConv  # noqa: F401
    from .heat import HEATConv  # noqa: F401
    from .hetero_conv import HeteroConv  # noqa: F401
    from .hgt import HGTConv  # noqa: F401
    from .jumping_knowledge import HeteroJumpingKnowledge  # noqa: F401
    from .norm import HeteroBatchNorm, HeteroLayerNorm  # noqa: F401
    from .to_hetero import to_hetero  # noqa: F401
    from .to_hetero_with_bases import to_hetero_with_bases  # noqa: F401


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'gnn.hetero' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
