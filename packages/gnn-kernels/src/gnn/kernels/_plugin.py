"""gnn-kernels' entry point in group ``gnn``: offers the compiled ops to gnn.core.ops.

gnn-kernels depends on torch and pluggy only: its hook marker is its own
``pluggy.HookimplMarker("gnn")`` (pluggy matches hook implementations by project
name, so gnn-core's plugin manager finds it), and the backend it registers takes
graphs as plain tensors.
"""

from __future__ import annotations

from collections.abc import Callable

import pluggy

hookimpl = pluggy.HookimplMarker("gnn")


@hookimpl
def gnn_register_kernels(register: Callable[..., None]) -> None:
    register("gnn.kernels.backend:NativeBackend", name="native", priority=10)
