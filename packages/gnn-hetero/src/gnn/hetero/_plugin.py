"""gnn-hetero's entry point in group ``gnn``: registers its components lazily.

The heterogeneous convolutions go to the ``convs`` registry (``HGTConv`` -> ``"hgt"``,
``HeteroConv`` -> ``"hetero"``), the per-type normalizations to the ``norms`` registry
(``HeteroBatchNorm`` -> ``"heterobatch"``), each as a ``"module:attr"`` string, so that
discovery imports none of them.
"""

from __future__ import annotations

from collections.abc import Callable

from gnn.core.plugins import hookimpl

#: class name -> module (under ``gnn.hetero``) that defines it
CONVS: dict[str, str] = {
    "HeteroConv": "hetero_conv",
    "HGTConv": "hgt",
    "HANConv": "han",
    "HEATConv": "heat",
}

#: normalization layer -> module (under ``gnn.hetero``) that defines it
NORMS: dict[str, str] = {
    "HeteroBatchNorm": "norm",
    "HeteroLayerNorm": "norm",
}


@hookimpl
def gnn_register_convs(register: Callable[..., None]) -> None:
    for name, module in CONVS.items():
        register(f"gnn.hetero.{module}:{name}")


@hookimpl
def gnn_register_norms(register: Callable[..., None]) -> None:
    for name, module in NORMS.items():
        register(f"gnn.hetero.{module}:{name}")
