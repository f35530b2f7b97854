"""Helpers shared by the point-cloud convolutions of gnn-conv (not public API).

* argument handling: node tensors given alone or as a bipartite pair
  (:func:`node_pair`), point coordinates (:func:`check_points`), ``batch``
  vectors of the kNN layers (:func:`batch_pair`) and the kNN graph itself
  (:func:`knn_graph`, through :func:`gnn.core.ops.knn`);
* self loops: PyG's point layers drop the given loops and add one loop per node;
  :func:`replace_self_loops` does it without data-dependent shapes (the dropped
  loops are sent to a spare receiving row that is cut off afterwards), or, when
  hooks or explain mode watch (``MessagePassing.exact_edges``), builds PyG's exact
  edge set;
* :class:`LocalGlobalConv`: the constructor, reset, output step and ``repr`` that
  :class:`~gnn.conv.PointNetConv` and :class:`~gnn.conv.PPFConv` share;
* per-node paths: :func:`linear_parts` (the weight of a one-layer network) and
  :func:`messages_unobserved` (nothing can see per-edge messages, so a layer may
  compute its aggregation from per-node terms).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from gnn.core import ops
from gnn.core import validation as v
from gnn.core.cache import memo
from gnn.core.graph import read_graph
from gnn.core.message_passing import MessagePassing
from gnn.core.nn.inits import reset
from gnn.core.nn.linear import is_lazy
from gnn.core.utils.sparse import is_sparse

__all__ = [
    "LocalGlobalConv",
    "LoopedGraph",
    "batch_pair",
    "check_points",
    "knn_graph",
    "linear_parts",
    "messages_unobserved",
    "node_pair",
    "replace_self_loops",
]


# -- arguments -------------------------------------------------------------------------------
def node_pair(value: Any, name: str, *, optional: bool = False) -> tuple[Tensor | None, Tensor | None]:
    """``value`` as ``(source, target)``: a tensor serves as both sides, a pair is taken as is.

    With ``optional`` a side (or the whole value) may be ``None``; every tensor must be at least 2-D.
    """
    if value is None and optional:
        return None, None
    if isinstance(value, Tensor):
        pair: tuple[Any, Any] = (value, value)
    elif isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"'{name}' must be a tensor or a pair (source, target), got {len(value)} items")
        pair = (value[0], value[1])
    else:
        what = (
            "a tensor, a pair (source, target) or None" if optional else "a tensor or a pair (source, target)"
        )
        raise TypeError(f"'{name}' must be {what}, got {v.describe(value)}")
    for k, part in enumerate(pair):
        if part is None and optional:
            continue
        v.check_tensor(f"{name}[{k}]" if not isinstance(value, Tensor) else name, part)
        if part.dim() < 2:
            raise ValueError(f"'{name}' must hold [N, F] node features, got {v.describe(part)}")
    return pair[0], pair[1]


def check_points(name: str, pos: Any, dim: int | None = None) -> tuple[Tensor, Tensor]:
    """``pos`` (a ``[N, D]`` floating tensor or a pair of them) as ``(pos_src, pos_dst)``.

    ``dim`` fixes ``D`` (``None``: any, but the same on both sides).
    """
    pair = node_pair(pos, name)
    for k, part in enumerate(pair):
        assert part is not None
        label = name if pair[0] is pair[1] else f"{name}[{k}]"
        if not part.is_floating_point() or part.dim() != 2:
            raise ValueError(f"'{label}' must be a [N, D] floating-point tensor, got {v.describe(part)}")
        if dim is not None and part.size(1) != dim:
            raise ValueError(f"'{label}' must have {dim} coordinates per point, got {v.describe(part)}")
    if pair[0].size(1) != pair[1].size(1):  # type: ignore[union-attr]
        raise ValueError(
            f"'{name}' source and target points must have the same dimension, got "
            f"{pair[0].size(1)} and {pair[1].size(1)}"  # type: ignore[union-attr]
        )
    return pair  # type: ignore[return-value]


def check_rows(name: str, value: Tensor | None, rows: int, what: str) -> None:
    """``value`` (if given) has ``rows`` rows, one per node of ``what``."""
    if value is not None and value.size(0) != rows:
        raise ValueError(f"'{name}' must have {rows} rows (one per {what}), got {v.describe(value)}")


def batch_pair(batch: Any, n_src: int, n_dst: int) -> tuple[Tensor | None, Tensor | None]:
    """The example of every source and target point: ``batch`` ``[N]`` (both sides, which must then
    have the same size), a pair ``(batch_src, batch_dst)`` or ``None`` (one example).

    Each vector must be 1-D integer, one entry per point, sorted (points grouped by example).
    """
    if batch is None:
        return None, None
    if isinstance(batch, Tensor):
        if n_src != n_dst:
            raise ValueError(
                "'batch' must be a pair (batch_src, batch_dst) when source and target have "
                f"different numbers of points ({n_src} and {n_dst})"
            )
        pair: tuple[Any, Any] = (batch, batch)
        names = ("batch", "batch")
    elif isinstance(batch, (tuple, list)) and len(batch) == 2:
        pair = (batch[0], batch[1])
        names = ("batch[0]", "batch[1]")
        if (pair[0] is None) != (pair[1] is None):
            raise ValueError("'batch' must give both sides or neither, got one of them as None")
        if pair[0] is None:
            return None, None
    else:
        raise TypeError(f"'batch' must be a tensor, a pair of tensors or None, got {v.describe(batch)}")
    for name, b, n in zip(names, pair, (n_src, n_dst)):
        v.check_tensor(name, b)
        v.check_index_dtype(name, b)
        if b.dim() != 1 or b.numel() != n:
            raise ValueError(f"'{name}' must have shape [{n}] (one example per point), got {v.describe(b)}")
        if v.validation_enabled() and n and not torch.compiler.is_compiling():
            if int(b.min()) < 0:
                raise ValueError(f"'{name}' must hold non-negative example indices")
            if n > 1 and bool((b[1:] < b[:-1]).any()):
                raise ValueError(f"'{name}' must be sorted (points grouped by example, in order)")
    return pair[0], pair[1]


def knn_graph(x_src: Tensor, x_dst: Tensor, k: int, batch: tuple[Tensor | None, Tensor | None]) -> Tensor:
    """``[2, E]`` edges from the ``k`` nearest sources (row 0) to every target (row 1), within each
    example; grouped by target, neighbours by increasing (distance, index). The search runs on
    ``gnn.core.ops.knn`` (compiled when gnn-kernels is installed) and carries no gradient."""
    edge_index = ops.knn(x_src.detach(), x_dst.detach(), k, batch[0], batch[1])
    return edge_index.flip(0)


# -- self loops ------------------------------------------------------------------------------
@dataclass(frozen=True)
class LoopedGraph:
    """A graph whose self loops were replaced by one loop per node.

    Attributes:
        edge_index: ``[2, E']``: the given edges, then the loops ``(i, i)``.
        sizes: ``(N_0, N_1)``, the numbers of nodes that ``edge_index[0]`` / ``[1]`` index;
            with ``spare`` each side counts one more node.
        spare: the given loops were turned into loops of a spare node, the last one of each
            side. Node tensors must then have its row (:meth:`pad`, zeros) and the output
            must lose it (:meth:`trim`); its messages read only the padding, so nothing of
            the real nodes (values or gradients) depends on the dropped loops.
    """

    edge_index: Tensor
    sizes: tuple[int, int]
    spare: bool

    def pad(self, pair: tuple[Any, Any]) -> tuple[Any, Any]:
        """A ``(row 0, row 1)`` pair of node tensors (either may be ``None``) with the spare row."""
        if not self.spare:
            return pair
        first = _pad_row(pair[0])
        return first, first if pair[1] is pair[0] else _pad_row(pair[1])

    def trim(self, out: Tensor) -> Tensor:
        """The output without the spare node's row."""
        return out[:-1] if self.spare else out


def _pad_row(t: Tensor | None) -> Tensor | None:
    if t is None:
        return None
    return torch.cat([t, t.new_zeros((1,) + tuple(t.shape[1:]))])


def replace_self_loops(
    module: MessagePassing, edge_index: Any, sizes: tuple[int, int], num_loops: int
) -> LoopedGraph:
    """The graph of ``edge_index`` (``[2, E]`` or sparse ``adj_t``) with its self loops replaced by
    the loops ``(i, i)`` of ``i < num_loops``, as PyG's point layers build it.

    ``sizes`` are the numbers of nodes indexed by ``edge_index[0]`` and ``edge_index[1]``
    (checked against the indices). By default the given loops stay in place but become loops
    of a spare node (:class:`LoopedGraph`): no shape depends on the data, and a static graph's
    result is cached. With ``module.exact_edges`` (hooks, explain mode) they are removed
    instead, which gives PyG's exact edge set.
    """
    graph = read_graph(edge_index, None, module.flow)
    graph.set_size(0, sizes[0], "edge_index")
    graph.set_size(1, sizes[1], "edge_index")
    graph.check_ranges()
    ei = graph.edge_index
    if module.exact_edges:
        kept = ei[:, ei[0] != ei[1]]
        loop = torch.arange(num_loops, device=ei.device, dtype=ei.dtype)
        return LoopedGraph(torch.cat([kept, loop.expand(2, -1)], dim=1), sizes, False)

    def compute() -> tuple[Tensor, bool]:
        is_loop = ei[0] == ei[1]
        spare = torch.compiler.is_compiling() or bool(is_loop.any())
        parked = ei
        if spare:
            parked = torch.stack([ei[0].masked_fill(is_loop, sizes[0]), ei[1].masked_fill(is_loop, sizes[1])])
        loop = torch.arange(num_loops, device=ei.device, dtype=ei.dtype)
        return torch.cat([parked, loop.expand(2, -1)], dim=1), spare

    key = ("point_self_loops", num_loops, sizes[0], sizes[1])
    looped, spare = memo(edge_index, key, compute) if isinstance(edge_index, Tensor) else compute()
    if spare:
        sizes = (sizes[0] + 1, sizes[1] + 1)
    return LoopedGraph(looped, sizes, spare)


class LocalGlobalConv(MessagePassing):
    r"""Frame of the point layers :math:`\gamma\big(\mathrm{aggr}_{j} h([\mathbf{x}_j,
    \mathbf{f}_{j,i}])\big)` (:class:`~gnn.conv.PointNetConv`, :class:`~gnn.conv.PPFConv`):
    ``local_nn`` (:math:`h`) and ``global_nn`` (:math:`\gamma`), either may be ``None``, the
    aggregation defaults to ``"max"`` and ``add_self_loops`` replaces the given self loops by one
    loop per node (:func:`replace_self_loops`). A subclass writes ``forward`` and ``message``
    (the pair features :math:`\mathbf{f}_{j,i}`, then :meth:`local_message`)."""

    def __init__(
        self,
        local_nn: Callable[..., Tensor] | None = None,
        global_nn: Callable[..., Tensor] | None = None,
        add_self_loops: bool = True,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("aggr", "max")
        super().__init__(**kwargs)
        self.local_nn = local_nn
        self.global_nn = global_nn
        self.add_self_loops = add_self_loops
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Reset ``local_nn`` and ``global_nn``."""
        super().reset_parameters()
        reset(self.local_nn)
        reset(self.global_nn)

    def local_message(self, x_j: Tensor | None, features: Tensor) -> Tensor:
        """``local_nn([x_j, features])`` (``features`` alone without ``x_j``; no network: the input)."""
        msg = features if x_j is None else torch.cat([x_j, features], dim=1)
        return msg if self.local_nn is None else self.local_nn(msg)

    def global_output(self, out: Tensor, looped: LoopedGraph | None) -> Tensor:
        """The aggregation ``out`` without ``looped``'s spare row (if any), through ``global_nn``."""
        if looped is not None:
            out = looped.trim(out)
        return out if self.global_nn is None else self.global_nn(out)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(local_nn={self.local_nn}, global_nn={self.global_nn})"


def graph_input(edge_index: Any) -> Any:
    """``edge_index`` checked to be a graph argument (``[2, E]`` or sparse); returned unchanged."""
    if not (isinstance(edge_index, Tensor) or is_sparse(edge_index)):
        raise TypeError(
            "'edge_index' must be a [2, E] integer tensor, a torch.sparse adjacency or a "
            f"torch_sparse.SparseTensor, got {v.describe(edge_index)}"
        )
    return edge_index


# -- per-node paths ---------------------------------------------------------------------------
def linear_parts(module: Any) -> tuple[Tensor, Tensor | None] | None:
    """``(weight [out, in], bias)`` of a one-layer network (``torch.nn.Linear`` or gnn's
    ``Linear``, materialized, of an exact class), else ``None``."""
    from gnn.core import Linear

    if type(module) not in (torch.nn.Linear, Linear):
        return None
    weight = module.weight
    if is_lazy(weight):
        return None
    return weight, module.bias


def messages_unobserved(module: MessagePassing, owner: type) -> bool:
    """Whether nothing can observe ``module``'s per-edge messages: no hook, no explain mode, no
    decomposed layers, and ``owner``'s ``message`` / ``propagate`` / ``aggregate`` / ``update``
    in use. A layer may then compute the same aggregation from per-node terms."""
    cls = type(module)
    if module.exact_edges or module.decomposed_layers > 1:
        return False
    return (
        cls.message is owner.message
        and cls.propagate is MessagePassing.propagate
        and cls.aggregate is MessagePassing.aggregate
        and cls.update is MessagePassing.update
    )


def source_features(x: Any) -> tuple[Tensor | None, Tensor | None]:
    """PointNet-style ``x``: a tensor (or ``None``) holds the sources' features only, a pair is
    ``(x_src, x_dst)`` with either side optional."""
    if isinstance(x, (tuple, list)):
        return node_pair(x, "x", optional=True)
    if x is None:
        return None, None
    return node_pair(x, "x")[0], None
