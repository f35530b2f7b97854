"""Helpers shared by the convolution layers of gnn-conv (not public API)."""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from gnn.core import ops
from gnn.core import validation as v
from gnn.core.cache import memo
from gnn.core.utils.normalization import gcn_norm


def check_in_channels(x: Any, in_channels: int | tuple[int, int], name: str = "x") -> None:
    """Check that node features match the layer's ``in_channels``.

    Args:
        x: a ``[N, F]`` tensor or a bipartite pair ``(x_src, x_dst)`` (either
            side may be ``None``).
        in_channels: the expected feature size; ``-1`` (lazy) skips the check.
            A pair ``(F_src, F_dst)`` checks each side of a bipartite ``x``
            (and ``F_src`` for a single tensor).
        name: the argument name used in the error message.

    Raises:
        TypeError: ``x`` is not a tensor (or pair of tensors).
        ValueError: the last dimension differs from ``in_channels``.

    Example:
        >>> check_in_channels(torch.randn(4, 16), 16)
        >>> check_in_channels((torch.randn(4, 16), torch.randn(2, 8)), (16, 8))
    """
    if isinstance(x, (tuple, list)):
        if len(x) != 2:
            raise ValueError(f"'{name}' must be a tensor or a pair (x_src, x_dst), got {len(x)} items")
        sizes = tuple(in_channels) if isinstance(in_channels, (tuple, list)) else (in_channels, in_channels)
        for k, (part, size) in enumerate(zip(x, sizes)):
            if part is not None:
                _check_one(part, size, f"{name}[{k}]")
        return
    size = in_channels[0] if isinstance(in_channels, (tuple, list)) else in_channels
    _check_one(x, size, name)


def num_nodes(module: Any, x: Any, name: str = "x") -> Any:
    """The number of nodes of the node features ``x`` (along ``module.node_dim``), with a clear
    error naming ``name`` when ``x`` has no such dimension (a 1-D tensor, say)."""
    node_dim = module.node_dim
    if not isinstance(x, Tensor):
        raise TypeError(f"'{name}' must be a torch.Tensor, got {v.describe(x)}")
    if x.dim() < (-node_dim if node_dim < 0 else node_dim + 1):
        raise ValueError(
            f"'{name}' must hold node features with the nodes along dim {node_dim} (e.g. [N, F]), "
            f"got {v.describe(x)}"
        )
    return x.size(node_dim)


def check_flat_nodes(module: Any, x: Any, name: str = "x") -> None:
    """A layer that, like PyG's, does not support static graphs (``[B, N, F]`` features sharing
    one ``edge_index``) says so instead of failing deep inside (or silently flattening).

    ``x`` may be a tensor or a pair ``(x_src, x_dst)``; each side must be ``[N, F]``.
    """
    parts = x if isinstance(x, (tuple, list)) else (x,)
    for k, part in enumerate(parts):
        if isinstance(part, Tensor) and part.dim() != 2:
            label = name if len(parts) == 1 else f"{name}[{k}]"
            raise ValueError(
                f"'{label}' must hold [N, F] node features; {type(module).__name__} does not support "
                f"static graphs ([B, N, F] features with one edge_index), got {v.describe(part)}"
            )


def _check_one(x: Any, size: int, name: str) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"'{name}' must be a torch.Tensor, got {v.describe(x)}")
    if size is None or size < 0:
        return
    if x.dim() == 0 or x.size(-1) != size:
        raise ValueError(
            f"'{name}' must have {size} features (in_channels) in its last dimension, got {v.describe(x)}"
        )


def check_edge_attr(
    edge_attr: Any,
    edges: Any,
    name: str = "edge_attr",
    *,
    features: int | None = None,
    why: str = "",
    allow_vector: bool = True,
) -> Tensor | None:
    """Check per-edge features: ``None`` or a ``[E]`` / ``[E, features]`` tensor.

    Args:
        edge_attr: the value to check (``None`` passes).
        edges: the number of edges ``E``, or the layer's graph argument: a
            ``[2, E]`` ``edge_index`` gives ``E``; a sparse adjacency (whose
            values were read as edges elsewhere) skips the row check.
        name: the argument name used in error messages.
        features: the expected size of the last dimension (``None``: any).
            A 1-D ``edge_attr`` counts as one feature when ``allow_vector``.
        why: where ``features`` comes from, shown in the error (``"edge_dim"``).
        allow_vector: whether a 1-D ``edge_attr`` may stand for one feature.

    Returns:
        ``edge_attr`` unchanged.

    Raises:
        TypeError: ``edge_attr`` is neither ``None`` nor a tensor.
        ValueError: wrong number of rows or features.

    Example:
        >>> check_edge_attr(torch.randn(5, 3), torch.zeros(2, 5, dtype=torch.long), features=3, why="edge_dim")
    """
    if edge_attr is None:
        return None
    if not isinstance(edge_attr, Tensor):
        raise TypeError(f"'{name}' must be a torch.Tensor or None, got {v.describe(edge_attr)}")
    num_edges = _num_edges(edges)
    if edge_attr.dim() == 0 or (num_edges is not None and edge_attr.size(0) != num_edges):
        expected = f" of 'edge_index' ({num_edges})" if num_edges is not None else ""
        raise ValueError(f"'{name}' must have one row per edge{expected}, got {v.describe(edge_attr)}")
    if features is not None:
        found = edge_attr.size(-1) if edge_attr.dim() > 1 else (1 if allow_vector else None)
        if found != features:
            reason = f" ({why})" if why else ""
            raise ValueError(f"'{name}' must have {features} features{reason}, got {v.describe(edge_attr)}")
    return edge_attr


def _num_edges(edges: Any) -> int | None:
    """``E`` of an int or a dense ``[2, E]`` ``edge_index``; ``None`` for anything else.

    A sparse adjacency, or a malformed ``edge_index`` that ``MessagePassing`` reports by name, gives ``None``.
    """
    if isinstance(edges, int):
        return edges
    if (
        isinstance(edges, Tensor)
        and edges.layout == torch.strided
        and edges.dim() == 2
        and edges.size(0) == 2
    ):
        return edges.size(1)
    return None


def pair(x: Any) -> tuple[Any, Any]:
    """``x`` as a bipartite pair ``(x_src, x_dst)``: a single tensor serves as both."""
    if isinstance(x, (tuple, list)):
        if len(x) != 2:
            raise ValueError(f"'x' must be a tensor or a pair (x_src, x_dst), got {len(x)} items")
        return x[0], x[1]
    return x, x


def _stamp(keys: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(None if k is None else (weakref.ref(k), getattr(k, "_version", None)) for k in keys)


def _same(stamp: tuple[Any, ...], keys: tuple[Any, ...]) -> bool:
    if len(stamp) != len(keys):
        return False
    for s, k in zip(stamp, keys):
        if s is None or k is None:
            if s is not k:
                return False
        elif s[0]() is not k or s[1] != getattr(k, "_version", None):
            return False
    return True


def layer_cache(module: torch.nn.Module, attr: str, keys: tuple[Any, ...], compute: Callable[[], Any]) -> Any:
    """PyG's ``cached=True``: a value derived from the graph, kept in ``module.<attr>``.

    ``attr`` is PyG's attribute name (``_cached_edge_index``, ``_cached_adj_t``,
    ``_cached_x``, ``_cached_h``), so user code that resets it to ``None`` clears the
    cache, as in PyG. Unlike PyG, the value is reused only for the very key objects it
    was computed from, unchanged in place (a different graph recomputes it). Without
    ``module.cached``, or while ``torch.compile`` traces, it is computed every time.
    """
    if not getattr(module, "cached", False) or torch.compiler.is_compiling():
        return compute()
    stamps = module.__dict__.setdefault("_cache_stamps", {})
    value = getattr(module, attr, None)
    if value is not None and attr in stamps and _same(stamps[attr], keys):
        return value
    value = compute()
    setattr(module, attr, value)
    stamps[attr] = _stamp(keys)
    return value


def clear_layer_cache(module: torch.nn.Module, *attrs: str) -> None:
    """Forget the values :func:`layer_cache` keeps in ``attrs`` (set them to ``None``)."""
    for attr in attrs:
        setattr(module, attr, None)
    module.__dict__.pop("_cache_stamps", None)


def cached_gcn_norm(
    module: torch.nn.Module,
    edge_index: Any,
    edge_weight: Tensor | None,
    num_nodes: int,
    improved: bool,
    add_self_loops: bool,
    flow: str,
    dtype: torch.dtype,
) -> tuple[Any, Tensor | None]:
    """:func:`gnn.core.utils.gcn_norm` of the graph for ``module``.

    With ``module.cached`` the result is kept in ``_cached_edge_index`` (or
    ``_cached_adj_t`` for a sparse input), see :func:`layer_cache`. When the module's
    per-edge values can be observed (``module.exact_edges``: hooks, explain mode),
    the normalized graph has PyG's exact edge set and is not cached.
    """
    from gnn.core.utils.sparse import is_sparse

    exact = module.exact_edges

    def compute() -> tuple[Any, Tensor | None]:
        return gcn_norm(
            edge_index, edge_weight, num_nodes, improved, add_self_loops, flow, dtype, exact=exact
        )

    if exact:
        return compute()
    attr = "_cached_adj_t" if is_sparse(edge_index) else "_cached_edge_index"
    return layer_cache(module, attr, (edge_index, edge_weight), compute)


def edge_list(edge_index: Any, edge_weight: Tensor | None) -> tuple[Tensor, Tensor | None]:
    """``(edge_index, edge_weight)`` of an ``edge_index`` or a sparse ``adj_t``.

    For a sparse input the adjacency's values become the weights (and any
    given ``edge_weight`` is ignored); an ``edge_index`` is validated.
    """
    from gnn.core.utils.sparse import is_sparse, to_edge_index

    if is_sparse(edge_index):
        return to_edge_index(edge_index)
    if not isinstance(edge_index, Tensor):
        raise TypeError(
            "'edge_index' must be a [2, E] integer tensor, a torch.sparse adjacency or a "
            f"torch_sparse.SparseTensor, got {type(edge_index).__name__}"
        )
    v.check_edge_index(edge_index)
    if edge_weight is not None:
        v.check_tensor("edge_weight", edge_weight)
        if edge_weight.dim() != 1 or edge_weight.numel() != edge_index.size(1):
            raise ValueError(
                f"'edge_weight' must have shape [{edge_index.size(1)}] (one weight per edge), "
                f"got {v.describe(edge_weight)}"
            )
    return edge_index, edge_weight


def weighted_message(x_j: Tensor, edge_weight: Tensor | None) -> Tensor:
    """``edge_weight * x_j`` (or ``x_j`` without weights): the fused message."""
    return x_j if edge_weight is None else edge_weight.view(-1, 1) * x_j


def add_root_and_bias(out: Tensor, root: Any, x_dst: Tensor | None, bias: Tensor | None) -> Tensor:
    r"""``out + root(x_dst) + bias``: the output step of the layers with a root weight
    (:math:`\mathbf{x}'_i = \mathrm{aggr}_i + \mathbf{W}_{\text{root}} \mathbf{x}_i + \mathbf{b}`).

    The root term is left out when ``root`` (a gnn ``Linear``) or ``x_dst`` (targets without
    features) is ``None``, the bias when ``bias`` is ``None``. The root product is added inside the
    matrix multiply (``Linear.add_to``).

    Shapes:
        ``out`` ``[N_dst, F_out]``, ``x_dst`` ``[N_dst, F_in]``, ``bias`` ``[F_out]`` -> ``[N_dst, F_out]``.
    """
    if root is not None and x_dst is not None:
        out = root.add_to(out, x_dst)
    return out if bias is None else out + bias


def csc_edge_index(row: Any, colptr: Any, name: str | None = None, max_targets: int | None = None) -> Tensor:
    """``[2, E]`` (sources, targets; sorted by target) of a CSC graph ``(row, colptr)``, checked and
    cached per graph (:func:`gnn.core.cache.memo`): the graph input of the CuGraph layers and
    ``FusedGATConv``.

    ``name`` is how errors call the pair (``"csc"``: ``'csc[0]'`` / ``'csc[1]'``; ``None``:
    ``'row'`` / ``'colptr'``); ``max_targets`` bounds the number of target nodes ``N_dst``.

    Shapes:
        ``row`` ``[E]``, ``colptr`` ``[N_dst + 1]`` (integer tensors) -> ``[2, E]``.
    """
    row_name, ptr_name = (f"{name}[0]", f"{name}[1]") if name else ("row", "colptr")
    v.check_tensor(row_name, row)
    v.check_tensor(ptr_name, colptr)
    v.check_index_dtype(row_name, row)
    v.check_index_dtype(ptr_name, colptr)
    if row.dim() != 1 or colptr.dim() != 1 or colptr.numel() == 0:
        subject = f"'{name}'" if name else "the CSC graph"
        raise ValueError(
            f"{subject} must hold row [E] and colptr [N_dst + 1], got {v.describe(row)} and {v.describe(colptr)}"
        )
    num_dst = colptr.numel() - 1
    if max_targets is not None and num_dst > max_targets:
        raise ValueError(f"'{name or 'colptr'}' has {num_dst} target nodes but 'x' has {max_targets} nodes")
    v.check_ptr(ptr_name, colptr, row.numel())

    def build() -> Tensor:
        return torch.stack([row, ops.ptr_to_index(colptr.long(), row.numel()).to(row.dtype)])

    return memo(row, ("csc_edge_index", num_dst), build, colptr)
