"""gnn-kernels: compiled CPU (and CUDA) kernels for :mod:`gnn.core.ops`.

Installing this distribution is enough: its entry point registers the
``"native"`` backend, which :mod:`gnn.core.ops` selects for every call it
supports (float32/float64, CPU). ``GNN_KERNELS=torch`` forces pure torch.

The ops are torch custom ops in the ``gnn_kernels`` namespace, with fake
(meta) implementations and autograd formulas, so ``torch.compile`` traces
through them without graph breaks.
"""

from __future__ import annotations

__version__ = "0.1.0"

from ._library import build_info, is_loaded, load, load_error  # noqa: E402

__all__ = ["build_info", "is_loaded", "load", "load_error", "__version__"]
