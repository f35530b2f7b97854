"""Graph reductions: :func:`scatter`, :func:`segment`, :func:`spmm`, :func:`softmax`
and :func:`segment_matmul`.

Each validates its inputs (when validation is on, see
:func:`gnn.core.set_validation`), then runs on the best backend that supports the
call (:mod:`gnn.core.ops.backends`). Shapes use ``E`` for the number of
elements/edges, ``N`` for the number of groups/nodes and ``F`` for trailing
feature dimensions.
"""

from __future__ import annotations

import math

from torch import Tensor

from .. import validation as v
from ._dispatch import check_reduce, context, norm_dim, run, run_on_graph
from .csr import CSR, ptr_to_index

__all__ = ["scatter", "segment", "spmm", "run_spmm", "softmax", "segment_matmul"]


def scatter(
    src: Tensor, index: Tensor, dim: int = 0, dim_size: int | None = None, reduce: str = "sum"
) -> Tensor:
    """Reduce ``src`` into groups: ``out[g] = reduce_{k: index[k] = g} src[k]``.

    Args:
        src: ``[..., E, ...]`` values, grouped along ``dim``.
        index: ``[E]`` group of each slice, in ``[0, dim_size)``.
        dim: the dimension of ``src`` that ``index`` refers to.
        dim_size: number of groups (default ``index.max() + 1``).
        reduce: ``"sum"``/``"add"``, ``"mean"``, ``"min"``, ``"max"`` or ``"mul"``.

    Returns:
        ``src`` with ``dim`` resized to ``dim_size``; empty groups give 0
        (1 for ``"mul"``).

    Example:
        >>> scatter(torch.tensor([1., 2., 3.]), torch.tensor([0, 0, 2]), reduce="sum")
        tensor([3., 0., 3.])
    """
    reduce = check_reduce(reduce)
    v.check_tensor("src", src)
    v.check_tensor("index", index)
    v.check_index_dtype("index", index)
    dim = norm_dim(dim, src.dim())
    if index.dim() != 1:
        raise ValueError(f"'index' must be 1-D, got {v.describe(index)}")
    if index.numel() != src.size(dim):
        raise ValueError(f"'index' has {index.numel()} entries but 'src' has {src.size(dim)} along dim {dim}")
    if dim_size is None:
        dim_size = int(index.max()) + 1 if index.numel() else 0
    elif dim_size < 0:
        raise ValueError(f"'dim_size' must be non-negative, got {dim_size}")
    v.check_index_range("index", index, dim_size, "groups ('dim_size')")
    return run("scatter", context(src, reduce, work=src.numel()), src, index, dim, dim_size, reduce)


def segment(src: Tensor, ptr: Tensor, dim: int = 0, reduce: str = "sum") -> Tensor:
    """Reduce contiguous segments: ``out[g] = reduce(src[ptr[g]:ptr[g+1]])`` along ``dim``.

    Args:
        src: ``[..., E, ...]`` values.
        ptr: ``[N + 1]`` monotone offsets with ``ptr[0] = 0``, ``ptr[-1] = E``.
    """
    reduce = check_reduce(reduce)
    v.check_tensor("src", src)
    dim = norm_dim(dim, src.dim())
    v.check_ptr("ptr", ptr, src.size(dim))
    return run("segment", context(src, reduce, work=src.numel()), src, ptr, dim, reduce)


def spmm(
    csr: CSR,
    x: Tensor,
    edge_weight: Tensor | None = None,
    reduce: str = "sum",
    *,
    x_self: Tensor | None = None,
    self_weight: float = 1.0,
) -> Tensor:
    """Fused gather-weight-reduce: ``out[i] = reduce_{e in row i} w[e] * x[col[e]]``.

    No ``[E, F]`` message tensor is formed on the sum/mean paths. With
    ``x_self``, ``self_weight * x_self[i]`` is added to each row after the
    reduction (GIN's ``(1 + eps) x_i + sum_j x_j``) in the same pass.

    Args:
        csr: the graph in CSR form (rows receive, columns send), see
            :func:`gnn.core.utils.to_csr`.
        x: ``[num_cols, *]`` features of the sending nodes.
        edge_weight: optional ``[E]`` weights in the original edge order.
        reduce: ``"sum"``, ``"mean"``, ``"min"`` or ``"max"``.
        x_self: optional ``[num_rows, *]`` features added to the result.
        self_weight: the (constant) factor of ``x_self``.

    Returns:
        ``[num_rows, *]``; rows without entries give 0 (plus the self term).

    Example:
        >>> csr = ops.from_coo(torch.tensor([1, 1]), torch.tensor([0, 2]), 3, 3)
        >>> x = torch.tensor([[1.0], [2.0], [4.0]])
        >>> ops.spmm(csr, x, x_self=x, self_weight=0.5).view(-1)
        tensor([0.5000, 6.0000, 2.0000])
    """
    reduce = check_reduce(reduce)
    if reduce == "mul":
        raise ValueError("'reduce' 'mul' is not supported by spmm; use scatter")
    if not isinstance(csr, CSR):
        raise TypeError(f"'csr' must be a gnn.core.ops.CSR, got {type(csr).__name__}")
    v.check_tensor("x", x)
    if x.size(0) != csr.num_cols:
        raise ValueError(f"'x' has {x.size(0)} rows but the graph has {csr.num_cols} source nodes")
    if edge_weight is not None:
        v.check_tensor("edge_weight", edge_weight)
        if edge_weight.dim() != 1 or edge_weight.numel() != csr.nnz:
            raise ValueError(f"'edge_weight' must have shape [{csr.nnz}], got {v.describe(edge_weight)}")
    if x_self is not None:
        v.check_tensor("x_self", x_self)
        if x_self.shape != (csr.num_rows,) + x.shape[1:]:
            raise ValueError(
                f"'x_self' must have shape {[csr.num_rows, *x.shape[1:]]} (one row per receiving node), "
                f"got {v.describe(x_self)}"
            )
        if not isinstance(self_weight, (int, float)) or isinstance(self_weight, bool):
            raise TypeError(f"'self_weight' must be a Python number, got {v.describe(self_weight)}")
    return run_spmm(csr, x, edge_weight, reduce, x_self, float(self_weight))


def run_spmm(
    csr: CSR, x: Tensor, edge_weight: Tensor | None, reduce: str, x_self: Tensor | None, self_weight: float
) -> Tensor:
    """:func:`spmm` on validated arguments (``reduce`` normalized): the selection and the call.

    For gnn-core's own callers that built ``csr`` and checked the shapes themselves
    (the message-passing engine); everyone else calls :func:`spmm`.
    """
    work = csr.nnz * math.prod(x.shape[1:])
    if x_self is None:
        return run_on_graph("spmm", context(x, reduce, edge_weight, work=work), csr, x, edge_weight, reduce)
    ctx = context(x, reduce, edge_weight, x_self, work=work)
    return run_on_graph("spmm_self", ctx, csr, x, edge_weight, reduce, x_self, self_weight)


def softmax(
    src: Tensor,
    index: Tensor | None = None,
    ptr: Tensor | None = None,
    num_nodes: int | None = None,
    dim: int = 0,
) -> Tensor:
    """Softmax of ``src`` within the groups given by ``index`` (or sorted ``ptr``).

    ``out[k] = exp(src[k] - max_g) / sum_{l in g} exp(src[l] - max_g)`` for
    the group ``g`` of element ``k``; computed in a numerically stable way.

    Args:
        src: ``[..., E, ...]`` scores.
        index: ``[E]`` group of each element.
        ptr: ``[N + 1]`` offsets (alternative to ``index``).
        num_nodes: number of groups (default ``index.max() + 1``).
        dim: the dimension holding the elements.
    """
    v.check_tensor("src", src)
    dim = norm_dim(dim, src.dim())
    if ptr is not None:
        v.check_ptr("ptr", ptr, src.size(dim))
        num_nodes = ptr.numel() - 1
        index = ptr_to_index(ptr, src.size(dim))
    elif index is None:
        raise ValueError("softmax needs 'index' or 'ptr'")
    v.check_tensor("index", index)
    v.check_index_dtype("index", index)
    if index.dim() != 1 or index.numel() != src.size(dim):
        raise ValueError(f"'index' must be 1-D with {src.size(dim)} entries, got {v.describe(index)}")
    if num_nodes is None:
        num_nodes = int(index.max()) + 1 if index.numel() else 0
    v.check_index_range("index", index, num_nodes, "groups ('num_nodes')")
    return run("softmax", context(src, work=src.numel()), src, index, dim, num_nodes)


def segment_matmul(inputs: Tensor, ptr: Tensor, other: Tensor) -> Tensor:
    """Grouped matmul: ``out[ptr[t]:ptr[t+1]] = inputs[ptr[t]:ptr[t+1]] @ other[t]``.

    Args:
        inputs: ``[N, F_in]`` (or ``[N, *, F_in]``) rows sorted by type.
        ptr: ``[T + 1]`` offsets of each type's rows.
        other: ``[T, F_in, F_out]`` one weight matrix per type, same dtype as ``inputs``.

    Returns:
        ``[N, F_out]`` (or ``[N, *, F_out]``).

    Example:
        >>> inputs, other = torch.randn(5, 3), torch.randn(2, 3, 4)
        >>> out = segment_matmul(inputs, torch.tensor([0, 2, 5]), other)
        >>> torch.allclose(out[:2], inputs[:2] @ other[0])
        True
    """
    v.check_tensor("inputs", inputs)
    v.check_tensor("other", other)
    v.check_ptr("ptr", ptr, inputs.size(0))
    if inputs.dim() < 2:
        raise ValueError(f"'inputs' must have shape [N, F_in], got {v.describe(inputs)}")
    if other.dtype != inputs.dtype:
        raise TypeError(f"'other' must have the dtype of 'inputs' ({inputs.dtype}), got {other.dtype}")
    if other.dim() != 3 or other.size(0) != ptr.numel() - 1 or other.size(1) != inputs.size(-1):
        raise ValueError(
            f"'other' must have shape [{ptr.numel() - 1}, {inputs.size(-1)}, F_out], got {v.describe(other)}"
        )
    ctx = context(inputs, None, other, work=inputs.numel())
    return run("segment_matmul", ctx, inputs, ptr, other)
