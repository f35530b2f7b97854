"""Loading the compiled library, with a torch version check.

The library is built on the torch stable ABI with target 2.10, so it runs
on the torch it was built with and on later releases. A torch older than
the target, or a library that fails to load, makes :func:`load` return
``False`` with :func:`load_error` naming both versions; gnn-core then warns
and falls back to pure torch.
"""

from __future__ import annotations

import json
import threading
from importlib import resources
from pathlib import Path
from typing import Any

import torch

_lock = threading.Lock()
_state: dict[str, Any] = {"loaded": None, "error": None}


def build_info() -> dict[str, Any]:
    """What the library was built against (torch version, CUDA, stable ABI target)."""
    try:
        text = resources.files(__package__).joinpath("_build_info.json").read_text()
    except (FileNotFoundError, ModuleNotFoundError):
        return {"torch": None, "cuda": None, "stable_abi_target": None}
    return json.loads(text)


def _version_tuple(version: str) -> tuple[int, ...]:
    parts = []
    for piece in version.split("+")[0].split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def _library_path() -> Path | None:
    here = Path(__file__).parent
    found = sorted(here.glob("_C*.so")) + sorted(here.glob("_C*.pyd"))
    return found[0] if found else None


def load() -> bool:
    """Load the compiled ops once; ``False`` if they cannot be used (see :func:`load_error`)."""
    if _state["loaded"] is not None:
        return _state["loaded"]
    with _lock:
        if _state["loaded"] is not None:
            return _state["loaded"]
        ok = False
        info = build_info()
        runtime = torch.__version__
        target = info.get("stable_abi_target") or info.get("torch")
        path = _library_path()
        if path is None:
            _state["error"] = "the compiled library is missing (was gnn-kernels built?)"
        elif target and _version_tuple(runtime) < _version_tuple(target):
            _state["error"] = (
                f"gnn-kernels was built with torch {info.get('torch')} (stable ABI {target}) but torch "
                f"{runtime} is running; torch >= {target} is needed"
            )
        else:
            try:
                torch.ops.load_library(str(path))
                # fake and autograd formulas of the ops (the fused attention ops in their own module)
                from . import (  # noqa: F401
                    _attention_ops,
                    _autograd,
                    _multi_ops,
                    _projected_ops,
                    _relational_ops,
                    _spline_ops,
                )
                from .geometry import register_fakes
                from .walk import register_fakes as register_walk_fakes

                register_fakes()
                register_walk_fakes()

                ok = True
            except Exception as error:  # noqa: BLE001 - any load failure means: use pure torch
                _state["error"] = (
                    f"loading {path.name} (built with torch {info.get('torch')}) under torch {runtime} "
                    f"failed: {error}"
                )
        _state["loaded"] = ok
        return ok


def is_loaded() -> bool:
    """Whether the compiled ops are loaded and usable."""
    return bool(_state["loaded"])


def load_error() -> str | None:
    """Why the compiled ops could not be loaded, if they could not."""
    return _state["error"]
