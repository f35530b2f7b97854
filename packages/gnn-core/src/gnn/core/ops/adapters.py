"""Adapters that let torch-scatter and torch-sparse serve :mod:`gnn.core.ops`.

Registered by gnn-core's own plugin only when the modules are installed
(a cheap ``find_spec`` check, nothing imported during discovery). They rank
below gnn-kernels' native backend and above the pure-torch reference.
"""

from __future__ import annotations

import importlib
import math
from typing import Any

import torch
from torch import Tensor

_FLOATS = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


class TorchScatterBackend:
    """``scatter`` and ``segment`` through torch-scatter's compiled kernels."""

    name = "torch_scatter"

    def __init__(self) -> None:
        self._ts = importlib.import_module("torch_scatter")

    def supports(
        self, op: str, *, device: torch.device, dtype: torch.dtype, reduce: str | None, **ctx: Any
    ) -> bool:
        if torch.compiler.is_compiling():  # torch-scatter's ops have no fake implementations
            return False
        return (
            op in ("scatter", "segment")
            and dtype in _FLOATS
            and reduce in ("sum", "mean", "max", "min", "mul")
        )

    def scatter(self, src: Tensor, index: Tensor, dim: int, dim_size: int, reduce: str) -> Tensor:
        if src.numel() == 0 or dim_size == 0:  # keep empty inputs away from the extension
            from .reference import scatter

            return scatter(src, index, dim, dim_size, reduce)
        if reduce == "mul":
            out = self._ts.scatter_mul(src, index.long(), dim, dim_size=dim_size)
            # torch-scatter leaves empty groups at its initial value 1, as gnn's reference does
            return out
        return self._ts.scatter(src, index.long(), dim, dim_size=dim_size, reduce=reduce)

    def segment(self, src: Tensor, ptr: Tensor, dim: int, reduce: str) -> Tensor:
        if reduce == "mul" or dim != 0 or src.numel() == 0:
            from .reference import segment

            return segment(src, ptr, dim, reduce)
        return self._ts.segment_csr(src, ptr.long(), reduce=reduce)


class TorchSparseBackend:
    """``spmm`` through torch-sparse's ``SparseTensor.matmul``."""

    name = "torch_sparse"

    def __init__(self) -> None:
        self._sparse_tensor = importlib.import_module("torch_sparse").SparseTensor

    def supports(
        self, op: str, *, device: torch.device, dtype: torch.dtype, reduce: str | None, **ctx: Any
    ) -> bool:
        if torch.compiler.is_compiling():  # torch-sparse's ops have no fake implementations
            return False
        return (
            op == "spmm"
            and dtype in (torch.float32, torch.float64)
            and reduce in ("sum", "mean", "max", "min")
        )

    def spmm(self, graph: Any, x: Tensor, edge_weight: Tensor | None, reduce: str) -> Tensor:
        """``graph`` is a :class:`~gnn.core.ops.csr.KernelGraph` (plain int64 tensors)."""
        if graph.col.numel() == 0 or x.numel() == 0:
            # torch-sparse dies with SIGFPE on empty inputs: never hand it one
            return x.new_zeros((graph.num_rows,) + tuple(x.shape[1:]))
        value = edge_weight
        if value is not None and graph.perm is not None:
            value = value.index_select(0, graph.perm)
        adj = self._sparse_tensor(
            rowptr=graph.rowptr,
            col=graph.col,
            value=value,
            sparse_sizes=(graph.num_rows, graph.num_cols),
            is_sorted=True,
            trust_data=True,
        )
        flat = x.reshape(x.size(0), math.prod(x.shape[1:]))
        out = adj.matmul(flat, reduce=reduce)
        return out.reshape((graph.num_rows,) + tuple(x.shape[1:]))
