"""gnn-kernels' entry point in group ``gnn``: offers the compiled ops to gnn.core.ops."""

from __future__ import annotations

from collections.abc import Callable

try:  # gnn-core provides the hook marker; without it there is nobody to offer kernels to
    from gnn.core.plugins import hookimpl
except ImportError:  # pragma: no cover - gnn-kernels installed without gnn-core
    hookimpl = None

if hookimpl is not None:

    @hookimpl
    def gnn_register_kernels(register: Callable[..., None]) -> None:
        register("gnn.kernels.backend:NativeBackend", name="native", priority=10)
