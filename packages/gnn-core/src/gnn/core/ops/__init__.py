"""The ops layer: the only place where graph reductions are computed.

Every function validates its inputs (when validation is on, see
:func:`gnn.core.set_validation`), then runs on the best backend that
supports the call (:mod:`gnn.core.ops.backends`): a compiled kernel when one
is installed, else the pure-torch reference.

Shapes use ``E`` for the number of elements/edges, ``N`` for the number of
groups/nodes and ``F`` for trailing feature dimensions.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .. import validation as v
from .backends import available, backend, select
from .csr import CSR, from_coo, ptr_from_sorted_index, ptr_to_index

__all__ = [
    "CSR",
    "available",
    "backend",
    "from_coo",
    "ptr_from_sorted_index",
    "scatter",
    "segment",
    "segment_matmul",
    "attention",
    "dot_attention",
    "gatv2_attention",
    "softmax",
    "spmm",
    "REDUCTIONS",
]

#: the reductions every backend understands
REDUCTIONS = ("sum", "add", "mean", "min", "max", "mul")


def _ctx(x: Tensor, reduce: str | None = None, *more: Tensor | None) -> dict[str, Any]:
    grad = x.requires_grad or any(t is not None and t.requires_grad for t in more)
    return {"device": x.device, "dtype": x.dtype, "reduce": reduce, "requires_grad": grad}


def _check_reduce(reduce: str) -> str:
    if reduce not in REDUCTIONS:
        raise ValueError(f"'reduce' must be one of {REDUCTIONS}, got {reduce!r}")
    return "sum" if reduce == "add" else reduce


def _norm_dim(dim: int, ndim: int, name: str = "dim") -> int:
    if not -ndim <= dim < ndim:
        raise ValueError(f"'{name}' {dim} is out of range for a tensor with {ndim} dimensions")
    return dim % ndim


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
    reduce = _check_reduce(reduce)
    v.check_tensor("src", src)
    v.check_tensor("index", index)
    v.check_index_dtype("index", index)
    dim = _norm_dim(dim, src.dim())
    if index.dim() != 1:
        raise ValueError(f"'index' must be 1-D, got {v.describe(index)}")
    if index.numel() != src.size(dim):
        raise ValueError(f"'index' has {index.numel()} entries but 'src' has {src.size(dim)} along dim {dim}")
    if dim_size is None:
        dim_size = int(index.max()) + 1 if index.numel() else 0
    elif dim_size < 0:
        raise ValueError(f"'dim_size' must be non-negative, got {dim_size}")
    v.check_index_range("index", index, dim_size, "groups ('dim_size')")
    _, impl = select("scatter", **_ctx(src, reduce))
    return impl(src, index, dim, dim_size, reduce)


def segment(src: Tensor, ptr: Tensor, dim: int = 0, reduce: str = "sum") -> Tensor:
    """Reduce contiguous segments: ``out[g] = reduce(src[ptr[g]:ptr[g+1]])`` along ``dim``.

    Args:
        src: ``[..., E, ...]`` values.
        ptr: ``[N + 1]`` monotone offsets with ``ptr[0] = 0``, ``ptr[-1] = E``.
    """
    reduce = _check_reduce(reduce)
    v.check_tensor("src", src)
    dim = _norm_dim(dim, src.dim())
    v.check_ptr("ptr", ptr, src.size(dim))
    _, impl = select("segment", **_ctx(src, reduce))
    return impl(src, ptr, dim, reduce)


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
    reduce = _check_reduce(reduce)
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
    if x_self is None:
        _, impl = select("spmm", **_ctx(x, reduce, edge_weight))
        return impl(csr, x, edge_weight, reduce)
    v.check_tensor("x_self", x_self)
    if x_self.shape != (csr.num_rows,) + x.shape[1:]:
        raise ValueError(
            f"'x_self' must have shape {[csr.num_rows, *x.shape[1:]]} (one row per receiving node), "
            f"got {v.describe(x_self)}"
        )
    if not isinstance(self_weight, (int, float)) or isinstance(self_weight, bool):
        raise TypeError(f"'self_weight' must be a Python number, got {v.describe(self_weight)}")
    _, impl = select("spmm_self", **_ctx(x, reduce, edge_weight, x_self))
    return impl(csr, x, edge_weight, reduce, x_self, float(self_weight))


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
    dim = _norm_dim(dim, src.dim())
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
    _, impl = select("softmax", **_ctx(src))
    return impl(src, index, dim, num_nodes)


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
    _, impl = select("segment_matmul", **_ctx(inputs, None, other))
    return impl(inputs, ptr, other)


def attention(
    csr: CSR,
    x: Tensor,
    a_src: Tensor,
    a_dst: Tensor,
    a_edge: Tensor | None = None,
    negative_slope: float = 0.2,
    *,
    mask: Tensor | None = None,
    return_alpha: bool = True,
) -> tuple[Tensor, Tensor | None]:
    r"""Fused attention aggregation of GAT-style layers.

    For every receiving node :math:`i` (CSR row), head :math:`h` and entry
    :math:`e = (j \to i)`:

    .. math::
        s_{e,h} = \mathrm{LeakyReLU}(a^{src}_{j,h} + a^{dst}_{i,h} + a^{edge}_{e,h}),\quad
        \alpha_{e,h} = \mathrm{softmax}_{e \in \mathcal{N}(i)}(s_{e,h}),\quad
        out_{i,h} = \sum_e \alpha_{e,h} x_{j,h}

    Entries flagged in ``mask`` take no part: :math:`s_{e,h} = -\infty`, so
    :math:`\alpha_{e,h} = 0` (a row whose entries are all masked gives
    :math:`\alpha = 0` and :math:`out = 0`, like a row without entries).
    A compiled backend computes it without any ``[E, H, C]`` tensor.

    Args:
        csr: the graph (rows receive), see :func:`gnn.core.utils.to_csr`.
        x: ``[N_src, H, C]`` per-head features of the sending nodes.
        a_src: ``[N_src, H]`` sender terms of the score.
        a_dst: ``[N_dst, H]`` receiver terms of the score.
        a_edge: optional ``[E, H]`` edge terms, in the original edge order.
        negative_slope: slope of the leaky ReLU.
        mask: optional bool ``[E]``, in the original edge order: entries
            that get zero attention.
        return_alpha: return ``alpha``; ``False`` gives ``None`` instead and
            saves putting it back into the original edge order.

    Returns:
        ``(out [N_dst, H, C], alpha [E, H])`` with ``alpha`` in the original
        edge order (rows without entries give 0).

    Example:
        >>> from gnn.core.utils import to_csr
        >>> csr = to_csr(torch.tensor([[0, 1, 2], [1, 2, 1]]), (3, 3))
        >>> x, a_src, a_dst = torch.randn(3, 2, 4), torch.randn(3, 2), torch.randn(3, 2)
        >>> out, alpha = attention(csr, x, a_src, a_dst)  # out [3, 2, 4], alpha [3, 2]
    """
    if not isinstance(csr, CSR):
        raise TypeError(f"'csr' must be a gnn.core.ops.CSR, got {type(csr).__name__}")
    v.check_tensor("x", x)
    if x.dim() != 3 or x.size(0) != csr.num_cols:
        raise ValueError(f"'x' must have shape [{csr.num_cols}, H, C], got {v.describe(x)}")
    heads = x.size(1)
    if a_src.shape != (csr.num_cols, heads):
        raise ValueError(f"'a_src' must have shape [{csr.num_cols}, {heads}], got {v.describe(a_src)}")
    if a_dst.shape != (csr.num_rows, heads):
        raise ValueError(f"'a_dst' must have shape [{csr.num_rows}, {heads}], got {v.describe(a_dst)}")
    if a_edge is not None and a_edge.shape != (csr.nnz, heads):
        raise ValueError(f"'a_edge' must have shape [{csr.nnz}, {heads}], got {v.describe(a_edge)}")
    if mask is not None and not isinstance(mask, Tensor):
        raise TypeError(f"'mask' must be a bool tensor or None, got {v.describe(mask)}")
    if mask is not None and (mask.dtype != torch.bool or mask.shape != (csr.nnz,)):
        raise ValueError(f"'mask' must be a bool tensor of shape [{csr.nnz}], got {v.describe(mask)}")
    _, impl = select("attention", **_ctx(x, None, a_src, a_dst, a_edge))
    return impl(csr, x, a_src, a_dst, a_edge, float(negative_slope), mask, bool(return_alpha))


# -- fused attention with per-feature scores (TransformerConv, GATv2Conv) -------------------------
def _check_attention_csr(csr: Any) -> None:
    """``csr`` is a :class:`CSR` whose columns index its ``num_cols`` senders."""
    if not isinstance(csr, CSR):
        raise TypeError(f"'csr' must be a gnn.core.ops.CSR, got {type(csr).__name__}")
    if csr.rowptr.dim() != 1 or csr.rowptr.numel() != csr.num_rows + 1:
        raise ValueError(f"'csr.rowptr' must have {csr.num_rows + 1} entries, got {v.describe(csr.rowptr)}")
    if csr._cache.get("col_in_range"):  # a CSR is immutable: its columns are checked once
        return
    v.check_index_range("csr.col", csr.col, csr.num_cols, "source nodes")
    if v.validation_enabled() and not torch.compiler.is_compiling():
        csr._cache["col_in_range"] = True


def _check_heads(
    name: str, t: Any, rows: int, heads: int | None = None, channels: int | None = None
) -> Tensor:
    """``t`` is a ``[rows, heads, channels]`` floating tensor (``None`` sizes: any)."""
    v.check_tensor(name, t)
    ok = t.dim() == 3 and t.is_floating_point() and t.size(0) == rows
    ok = ok and (heads is None or t.size(1) == heads) and (channels is None or t.size(2) == channels)
    if not ok:
        want = f"[{rows}, {heads if heads is not None else 'H'}, {channels if channels is not None else 'C'}]"
        raise ValueError(f"'{name}' must be a floating tensor of shape {want}, got {v.describe(t)}")
    return t


def dot_attention(
    csr: CSR,
    query: Tensor,
    key: Tensor,
    value: Tensor,
    edge: Tensor | None = None,
    scale: float = 1.0,
    *,
    return_alpha: bool = True,
) -> tuple[Tensor, Tensor | None]:
    r"""Fused dot-product attention over the incoming edges of each node (TransformerConv).

    For every receiving node :math:`i` (CSR row), head :math:`h` and entry
    :math:`e = (j \to i)`:

    .. math::
        s_{e,h} = \text{scale} \cdot \langle q_{i,h}, k_{j,h} + \epsilon_{e,h} \rangle,\quad
        \alpha_{e,h} = \mathrm{softmax}_{e \in \mathcal{N}(i)}(s_{e,h}),\quad
        out_{i,h} = \sum_e \alpha_{e,h} (v_{j,h} + \epsilon_{e,h})

    with :math:`\epsilon` the optional edge features. A compiled backend
    forms no ``[E, H, C]`` tensor when ``edge`` is ``None``.

    Args:
        csr: the graph (rows receive), see :func:`gnn.core.utils.to_csr`.
        query: ``[N_dst, H, C]`` receiving-node queries.
        key: ``[N_src, H, C]`` sending-node keys.
        value: ``[N_src, H, C]`` sending-node values.
        edge: optional ``[E, H, C]`` edge features, in the original edge order.
        scale: factor of the scores (TransformerConv uses ``1 / sqrt(C)``).
        return_alpha: return ``alpha``; ``False`` gives ``None`` instead and
            spares putting it back into edge order.

    Returns:
        ``(out [N_dst, H, C], alpha [E, H])`` with ``alpha`` in the original
        edge order (rows without entries give 0).

    Example:
        >>> csr = gnn.core.utils.to_csr(torch.tensor([[0, 1], [1, 1]]), (2, 2))
        >>> q, k = torch.randn(2, 1, 4), torch.randn(2, 1, 4)
        >>> out, alpha = dot_attention(csr, q, k, k, scale=0.5)
        >>> alpha.sum()
        tensor(1.)
    """
    _check_attention_csr(csr)
    _check_heads("query", query, csr.num_rows)
    heads, channels = query.size(1), query.size(2)
    _check_heads("key", key, csr.num_cols, heads, channels)
    _check_heads("value", value, csr.num_cols, heads, channels)
    if edge is not None:
        _check_heads("edge", edge, csr.nnz, heads, channels)
    _, impl = select("dot_attention", **_ctx(query, None, key, value, edge))
    return impl(csr, query, key, value, edge, float(scale), bool(return_alpha))


def gatv2_attention(
    csr: CSR,
    x_src: Tensor,
    x_dst: Tensor,
    att: Tensor,
    edge: Tensor | None = None,
    negative_slope: float = 0.2,
    *,
    return_alpha: bool = True,
) -> tuple[Tensor, Tensor | None]:
    r"""Fused GATv2 attention over the incoming edges of each node.

    For every receiving node :math:`i` (CSR row), head :math:`h` and entry
    :math:`e = (j \to i)`:

    .. math::
        s_{e,h} = \sum_c a_{h,c}\, \mathrm{LeakyReLU}(x^{src}_{j,h,c} + x^{dst}_{i,h,c}
        + \epsilon_{e,h,c}),\quad
        \alpha_{e,h} = \mathrm{softmax}_{e \in \mathcal{N}(i)}(s_{e,h}),\quad
        out_{i,h} = \sum_e \alpha_{e,h} x^{src}_{j,h}

    with :math:`\epsilon` the optional edge features. A compiled backend
    forms no ``[E, H, C]`` tensor when ``edge`` is ``None``.

    Args:
        csr: the graph (rows receive), see :func:`gnn.core.utils.to_csr`.
        x_src: ``[N_src, H, C]`` sending-node features (also the messages).
        x_dst: ``[N_dst, H, C]`` receiving-node features.
        att: ``[H, C]`` attention vector.
        edge: optional ``[E, H, C]`` edge features, in the original edge order.
        negative_slope: slope of the leaky ReLU.
        return_alpha: return ``alpha``; ``False`` gives ``None`` instead.

    Returns:
        ``(out [N_dst, H, C], alpha [E, H])`` with ``alpha`` in the original
        edge order (rows without entries give 0).

    Example:
        >>> csr = gnn.core.utils.to_csr(torch.tensor([[0, 1], [1, 1]]), (2, 2))
        >>> x = torch.randn(2, 1, 4)
        >>> out, alpha = gatv2_attention(csr, x, x, torch.randn(1, 4))
        >>> out.shape
        torch.Size([2, 1, 4])
    """
    _check_attention_csr(csr)
    _check_heads("x_src", x_src, csr.num_cols)
    heads, channels = x_src.size(1), x_src.size(2)
    _check_heads("x_dst", x_dst, csr.num_rows, heads, channels)
    v.check_tensor("att", att)
    if att.shape != (heads, channels) or not att.is_floating_point():
        raise ValueError(
            f"'att' must be a floating tensor of shape [{heads}, {channels}], got {v.describe(att)}"
        )
    if edge is not None:
        _check_heads("edge", edge, csr.nnz, heads, channels)
    _, impl = select("gatv2_attention", **_ctx(x_src, None, x_dst, att, edge))
    return impl(csr, x_src, x_dst, att, edge, float(negative_slope), bool(return_alpha))


from .geometry import fps, graclus, grid_cluster, knn, nearest, radius  # noqa: E402

__all__ += ["knn", "radius", "nearest", "fps", "graclus", "grid_cluster"]
