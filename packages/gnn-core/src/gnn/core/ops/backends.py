"""Selection of the backend that computes each op.

A backend is an object registered through the ``gnn_register_kernels`` hook
(``register(obj_or_"module:attr", name=..., priority=...)``). It provides
methods named after the ops it implements and a
``supports(op, **ctx) -> bool`` that says whether it can run one call
(``ctx`` holds ``device``, ``dtype``, ``reduce``, ``requires_grad`` and ``work``,
the number of elements the call reads or ``None`` when unknown). Ops that take a
graph hand a backend a :class:`~gnn.core.ops.csr.KernelGraph` of plain tensors. The
highest-priority backend that supports a call runs it; the pure-torch
reference (:mod:`gnn.core.ops.reference`) runs otherwise.

``GNN_KERNELS=torch`` (or ``GNN_KERNELS=<name>``) or the
:func:`backend` context manager forces one backend.
"""

from __future__ import annotations

import contextlib
import os
import threading
import warnings
from collections.abc import Iterator
from typing import Any

import torch

from . import reference, reference_geometry, reference_multi, reference_spline, reference_walk

TORCH = "torch"
_forced = threading.local()
_backends: list[tuple[str, Any]] | None = None
_lock = threading.Lock()


def _load_backends() -> list[tuple[str, Any]]:
    global _backends
    if _backends is None:
        with _lock:
            if _backends is None:
                from .. import registry

                found = []
                for entry in registry.kernels.entries():
                    try:
                        obj = entry.load()
                        if isinstance(obj, type):
                            obj = obj()  # a backend raises here when it cannot run
                    except Exception as error:  # noqa: BLE001 - a broken backend is skipped
                        from ..hooks import PluginWarning

                        warnings.warn(
                            f"kernel backend {entry.name!r} from {entry.dist} {entry.version} "
                            f"is not usable: {error}; falling back to pure torch",
                            PluginWarning,
                            stacklevel=2,
                        )
                        continue
                    found.append((entry.meta.get("priority", 0), entry.name, obj))
                found.sort(key=lambda item: -item[0])
                _backends = [(name, obj) for _, name, obj in found]
    return _backends


def available() -> list[str]:
    """Names of the usable backends, best first; ``"torch"`` is always last."""
    return [name for name, _ in _load_backends()] + [TORCH]


def _key(name: str) -> str:
    """Backend names compare like registry names: ``torch_scatter`` == ``torchscatter``."""
    return name.strip().lower().replace("_", "").replace("-", "")


_env_seen: tuple[str, str | None] = ("", None)  # (raw GNN_KERNELS, its key): parsed once per value


def _forced_name() -> str | None:
    global _env_seen
    name = getattr(_forced, "name", None)
    if name is not None:
        return name
    raw = os.environ.get("GNN_KERNELS", "")
    if raw != _env_seen[0]:
        _env_seen = (raw, _key(raw) or None)
    return _env_seen[1]


@contextlib.contextmanager
def backend(name: str) -> Iterator[None]:
    """Force one backend (e.g. ``"torch"``) inside a ``with`` block."""
    key = _key(name)
    if key != TORCH and key not in available():
        raise ValueError(f"unknown kernel backend {name!r}; available: {available()}")
    old = getattr(_forced, "name", None)
    _forced.name = key
    try:
        yield
    finally:
        _forced.name = old


_references: dict[str, Any] = {}


def _reference(op: str) -> Any:
    """The pure-torch implementation of ``op`` (looked up once per op)."""
    impl = _references.get(op)
    if impl is None:
        impl = _references[op] = _find_reference(op)
    return impl


def _find_reference(op: str) -> Any:
    impl = getattr(reference, op, None)
    if impl is None:
        impl = getattr(reference_multi, op, None)
    if impl is not None:
        return impl
    return (
        reference_spline.REFERENCES.get(op)
        or reference_geometry.REFERENCES.get(op)
        or reference_walk.REFERENCES[op]
    )


#: answers of :func:`select` per call context (the chosen backend object, or ``None`` for the
#: reference): a backend's ``supports`` must depend on its arguments only, so that a call on a
#: static graph selects as fast as a dict lookup
_selected: dict[tuple, tuple[str, Any]] = {}


def select(op: str, **ctx: Any) -> tuple[str, Any]:
    """The ``(name, implementation)`` that runs ``op`` for this call."""
    forced = _forced_name()
    found = _load_backends()
    key = (op, forced, id(found), torch.compiler.is_compiling(), *ctx.values())
    try:
        hit = _selected.get(key)
    except TypeError:  # an unhashable context value: select afresh
        hit, key = None, None
    if hit is None:
        hit = _choose(op, forced, found, ctx)
        if key is not None:
            if len(_selected) > 4096:
                _selected.clear()
            _selected[key] = hit
    name, obj = hit
    return (name, getattr(obj, op)) if obj is not None else (TORCH, _reference(op))


def _choose(
    op: str, forced: str | None, found: list[tuple[str, Any]], ctx: dict[str, Any]
) -> tuple[str, Any]:
    if forced == TORCH:
        return TORCH, None
    for name, obj in found:
        if forced is not None and name != forced:
            continue
        if getattr(obj, op, None) is not None and obj.supports(op, **ctx):
            return name, obj
    return TORCH, None


def describe(
    ops: tuple[str, ...] = (
        "scatter",
        "segment",
        "spmm",
        "softmax",
        "segment_matmul",
        "node_score_attention",
        "additive_attention",
        "dot_attention",
        "segment_multi",
        "spmm_multi",
        "spline_basis",
        "spline_weighting",
    ),
) -> dict[str, str]:
    """Active backend per op for float32 CPU inputs (for ``python -m gnn.core info``)."""
    import torch

    ctx = {
        "device": torch.device("cpu"),
        "dtype": torch.float32,
        "reduce": "sum",
        "requires_grad": True,
        "work": None,  # a call of any size
    }
    return {op: select(op, **ctx)[0] for op in ops}


def _reset_for_tests() -> None:
    global _backends
    _backends = None
    _selected.clear()
