"""gnn-models: ready-made models of gnn (PyG 2.8's ``torch_geometric.nn.models`` API).

Every public name is imported on first access (PEP 562), so ``import
gnn.models`` is cheap and works without the optional extras (captum,
huggingface_hub)::

    >>> from gnn.models import TransE
    >>> model = TransE(num_nodes=100, num_relations=5, hidden_channels=16)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> module (relative to gnn.models) that defines it
_EXPORTS: dict[str, str] = {}

# -- embeddings, KGE, scale-out and ecosystem bridges (issue 15, second half) --------------------
_EXPORTS.update(
    {
        "Node2Vec": ".node2vec",
        "MetaPath2Vec": ".metapath2vec",
        "LightGCN": ".lightgcn",
        "KGEModel": ".kge",
        "TransE": ".kge",
        "DistMult": ".kge",
        "ComplEx": ".kge",
        "RotatE": ".kge",
        "DataParallel": ".data_parallel",
        "PyGModelHubMixin": ".model_hub",
        "to_captum_model": ".captum",
        "to_captum_input": ".captum",
        "captum_output_to_dicts": ".captum",
    }
)
# -- end of the issue-15 second-half block -------------------------------------------------------

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # pragma: no cover
    from .captum import captum_output_to_dicts, to_captum_input, to_captum_model  # noqa: F401
    from .data_parallel import DataParallel  # noqa: F401
    from .kge import ComplEx, DistMult, KGEModel, RotatE, TransE  # noqa: F401
    from .lightgcn import LightGCN  # noqa: F401
    from .metapath2vec import MetaPath2Vec  # noqa: F401
    from .model_hub import PyGModelHubMixin  # noqa: F401
    from .node2vec import Node2Vec  # noqa: F401


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'gnn.models' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
