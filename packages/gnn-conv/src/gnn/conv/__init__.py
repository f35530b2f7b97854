"""gnn-conv: the message-passing convolution layers of gnn (PyG 2.8's API).

Every public name is imported on first access (PEP 562), so ``import
gnn.conv`` is cheap::

    >>> from gnn.conv import GCNConv
    >>> conv = GCNConv(16, 32)

The layers are also reachable by name through the registry
(``gnn.core.registry.convs.resolve("gcn", 16, 32)``), and so are the
normalization layers of :mod:`gnn.conv.norm`
(``gnn.core.registry.norms.resolve("batch_norm", 64)``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._plugin import CONVS, NORMS

__version__ = "0.1.0"

# public name -> module (relative to gnn.conv) that defines it
_EXPORTS: dict[str, str] = {name: "." + module for name, module in CONVS.items()}
_EXPORTS.update({name: "." + module for name, module in NORMS.items()})
_EXPORTS["MessagePassing"] = "gnn.core.message_passing"
# dense layers and attention modules: public at gnn.conv, not registered as convs
_EXPORTS.update(
    {
        "DenseGCNConv": ".dense.gcn",
        "DenseGINConv": ".dense.gin",
        "DenseGraphConv": ".dense.graph_conv",
        "DenseSAGEConv": ".dense.sage",
        "DenseGATConv": ".dense.gat",
        "PerformerAttention": ".attention.performer",
        "QFormer": ".attention.qformer",
        "SGFormerAttention": ".attention.sgformer",
        "PolynormerAttention": ".attention.polynormer",
    }
)

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # pragma: no cover
    from gnn.core.message_passing import MessagePassing  # noqa: F401

    from .appnp import APPNP  # noqa: F401
    from .arma import ARMAConv  # noqa: F401
    from .attention import PerformerAttention, PolynormerAttention, QFormer, SGFormerAttention  # noqa: F401
    from .cheb import ChebConv  # noqa: F401
    from .cluster_gcn import ClusterGCNConv  # noqa: F401
    from .cugraph import CuGraphGATConv, CuGraphSAGEConv  # noqa: F401
    from .cugraph_rgcn import CuGraphRGCNConv  # noqa: F401
    from .dense import DenseGATConv, DenseGCNConv, DenseGINConv, DenseGraphConv, DenseSAGEConv  # noqa: F401
    from .fused_gat import FusedGATConv  # noqa: F401
    from .gcn import GCNConv  # noqa: F401
    from .gcn2 import GCN2Conv  # noqa: F401
    from .gin import GINConv, GINEConv  # noqa: F401
    from .gps import GPSConv  # noqa: F401
    from .graph_conv import GraphConv  # noqa: F401
    from .hypergraph import HypergraphConv  # noqa: F401
    from .le import LEConv  # noqa: F401
    from .lg import LGConv  # noqa: F401
    from .mesh_cnn import MeshCNNConv  # noqa: F401
    from .mixhop import MixHopConv  # noqa: F401
    from .norm import (  # noqa: F401
        BatchNorm,
        DiffGroupNorm,
        GraphNorm,
        GraphSizeNorm,
        InstanceNorm,
        LayerNorm,
        MeanSubtractionNorm,
        MessageNorm,
        PairNorm,
    )
    from .rgat import RGATConv  # noqa: F401
    from .rgcn import FastRGCNConv, RGCNConv  # noqa: F401
    from .sage import SAGEConv  # noqa: F401
    from .sg import SGConv  # noqa: F401
    from .simple import SimpleConv  # noqa: F401
    from .spline import SplineConv  # noqa: F401
    from .ssg import SSGConv  # noqa: F401
    from .tag import TAGConv  # noqa: F401
    from .wl import WLConv, WLConvContinuous  # noqa: F401


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'gnn.conv' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
