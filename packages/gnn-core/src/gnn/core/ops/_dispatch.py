"""What every op does between validating its arguments and computing: pick the backend
(:func:`gnn.core.ops.backends.select`) and hand it the graph in the form it takes.

The pure-torch reference receives gnn-core's :class:`~gnn.core.ops.csr.CSR`; a
backend registered by a plugin receives a :class:`~gnn.core.ops.csr.KernelGraph`
of plain tensors (so compiled backends never depend on gnn-core's classes).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .backends import TORCH, select
from .csr import CSR

#: the reductions every backend understands
REDUCTIONS = ("sum", "add", "mean", "min", "max", "mul")


def context(x: Tensor, reduce: str | None = None, *more: Tensor | None, work: Any = 0) -> dict[str, Any]:
    """What a backend's ``supports(op, **ctx)`` is told about one call.

    ``work`` is the number of elements the op reads (``nnz * features`` for a graph
    op), or ``None`` while ``torch.compile``/``torch.export`` trace: a compiled
    backend whose fixed cost per call exceeds the pure-torch reference's declines
    small calls by it.
    """
    grad = x.requires_grad
    if not grad:
        for t in more:
            if t is not None and t.requires_grad:
                grad = True
                break
    if torch.compiler.is_compiling():
        work = None  # a size test would specialize the trace on the graph's size
    return {"device": x.device, "dtype": x.dtype, "reduce": reduce, "requires_grad": grad, "work": work}


def run_on_graph(op: str, ctx: dict[str, Any], csr: CSR, *args: Any) -> Any:
    """Run ``op`` on the selected backend with the graph as that backend takes it."""
    name, impl = select(op, **ctx)
    graph = csr if name == TORCH else csr.kernel_graph(ctx["requires_grad"])
    return impl(graph, *args)


def run(op: str, ctx: dict[str, Any], *args: Any) -> Any:
    """Run a graph-free ``op`` (scatter, segment, softmax, ...) on the selected backend."""
    return select(op, **ctx)[1](*args)


def check_reduce(reduce: str) -> str:
    """``reduce`` checked against :data:`REDUCTIONS`, ``"add"`` spelled ``"sum"``."""
    if reduce not in REDUCTIONS:
        raise ValueError(f"'reduce' must be one of {REDUCTIONS}, got {reduce!r}")
    return "sum" if reduce == "add" else reduce


def norm_dim(dim: int, ndim: int, name: str = "dim") -> int:
    """``dim`` as a non-negative dimension of a tensor with ``ndim`` dimensions."""
    if not -ndim <= dim < ndim:
        raise ValueError(f"'{name}' {dim} is out of range for a tensor with {ndim} dimensions")
    return dim % ndim
