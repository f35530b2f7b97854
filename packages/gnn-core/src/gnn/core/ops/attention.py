"""Fused attention aggregations: softmax-normalized scores over the incoming edges of
each node, and the weighted sum of messages, in one op (no ``[E, H, C]`` tensor on a
compiled backend).

* :func:`node_score_attention`: scores from additive per-node terms (GAT);
* :func:`additive_attention`: feature-wise additive scores (GATv2);
* :func:`dot_attention`: scaled dot products of queries and keys (Transformer).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .. import validation as v
from ._dispatch import context, run_on_graph
from .csr import CSR

__all__ = ["node_score_attention", "additive_attention", "dot_attention"]


def node_score_attention(
    csr: CSR,
    x: Tensor,
    a_src: Tensor,
    a_dst: Tensor,
    a_edge: Tensor | None = None,
    negative_slope: float = 0.2,
    *,
    mask: Tensor | None = None,
    return_alpha: bool | str = True,
) -> tuple[Tensor, Tensor | None]:
    r"""Attention from additive per-node scores, aggregated in one pass (GAT's attention).

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
        return_alpha: return ``alpha`` (in edge order); ``False`` gives ``None``
            instead and saves putting it back into edge order; ``"csr"`` gives it in
            the CSR order of ``csr`` (``csr.in_edge_order`` moves it back).

    Returns:
        ``(out [N_dst, H, C], alpha [E, H])`` with ``alpha`` in the original
        edge order (rows without entries give 0).

    Example:
        >>> from gnn.core.utils import to_csr
        >>> csr = to_csr(torch.tensor([[0, 1, 2], [1, 2, 1]]), (3, 3))
        >>> x, a_src, a_dst = torch.randn(3, 2, 4), torch.randn(3, 2), torch.randn(3, 2)
        >>> out, alpha = node_score_attention(csr, x, a_src, a_dst)  # out [3, 2, 4], alpha [3, 2]
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
    ctx = context(x, None, a_src, a_dst, a_edge, work=csr.nnz * x.size(1) * x.size(2))
    args = (x, a_src, a_dst, a_edge, float(negative_slope), mask, _alpha_mode(return_alpha))
    return run_on_graph("node_score_attention", ctx, csr, *args)


# -- fused attention with per-feature scores (TransformerConv, GATv2Conv) -------------------------
def _alpha_mode(return_alpha: Any) -> bool | str:
    if return_alpha == "csr":
        return "csr"
    if not isinstance(return_alpha, (bool, type(None))):
        raise ValueError(f"'return_alpha' must be True, False or 'csr', got {return_alpha!r}")
    return bool(return_alpha)


def _check_attention_csr(csr: Any) -> None:
    """``csr`` is a :class:`CSR` whose columns index its ``num_cols`` senders."""
    if not isinstance(csr, CSR):
        raise TypeError(f"'csr' must be a gnn.core.ops.CSR, got {type(csr).__name__}")
    if csr.rowptr.dim() != 1 or csr.rowptr.numel() != csr.num_rows + 1:
        raise ValueError(f"'csr.rowptr' must have {csr.num_rows + 1} entries, got {v.describe(csr.rowptr)}")
    csr.check_columns()


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
    return_alpha: bool | str = True,
) -> tuple[Tensor, Tensor | None]:
    r"""Scaled dot-product attention over the incoming edges of each node (TransformerConv's).

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
        return_alpha: ``True``, ``False`` or ``"csr"``, as for :func:`node_score_attention`.

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
    ctx = context(query, None, key, value, edge, work=csr.nnz * query.size(1) * query.size(2))
    return run_on_graph(
        "dot_attention", ctx, csr, query, key, value, edge, float(scale), _alpha_mode(return_alpha)
    )


def additive_attention(
    csr: CSR,
    x_src: Tensor,
    x_dst: Tensor,
    att: Tensor,
    edge: Tensor | None = None,
    negative_slope: float = 0.2,
    *,
    return_alpha: bool | str = True,
) -> tuple[Tensor, Tensor | None]:
    r"""Additive (Bahdanau-style) attention over the incoming edges of each node (GATv2's attention).

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
        return_alpha: ``True``, ``False`` or ``"csr"``, as for :func:`node_score_attention`.

    Returns:
        ``(out [N_dst, H, C], alpha [E, H])`` with ``alpha`` in the original
        edge order (rows without entries give 0).

    Example:
        >>> csr = gnn.core.utils.to_csr(torch.tensor([[0, 1], [1, 1]]), (2, 2))
        >>> x = torch.randn(2, 1, 4)
        >>> out, alpha = additive_attention(csr, x, x, torch.randn(1, 4))
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
    ctx = context(x_src, None, x_dst, att, edge, work=csr.nnz * x_src.size(1) * x_src.size(2))
    args = (x_src, x_dst, att, edge, float(negative_slope), _alpha_mode(return_alpha))
    return run_on_graph("additive_attention", ctx, csr, *args)
