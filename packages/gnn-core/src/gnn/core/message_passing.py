"""The :class:`MessagePassing` base class (PyG 2.8's API).

Data flow of :meth:`MessagePassing.propagate`::

    edge_index / sparse adj_t ──► GraphInput (validated, sizes known)
        ├─ fused path: ops.spmm(csr, x_j, edge_weight, reduce)   (no [E, F] tensor)
        ├─ sparse input + message_and_aggregate(adj_t, ...)
        └─ general path: message(**lifted args) ─► aggregate ─► ops
    ─► update(out, ...)

The fused path runs when the layer's message is ``x_j`` (the default
:meth:`message`) or ``edge_weight * x_j`` (declared by a layer with
``fused_message = "edge_weight * x_j"``), its aggregation is a basic
reduction (sum/mean/min/max, given as a string or an instance), no message
or aggregate hooks are registered and explain mode is off.
"""

from __future__ import annotations

import inspect
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor
from torch.utils.hooks import RemovableHandle

from . import ops
from . import validation as v
from .aggr.base import Aggregation
from .aggr.basic import fused_reduction
from .utils.cache import TensorCache
from .utils.csr import to_csr
from .utils.sparse import SparseInput, from_sparse, is_sparse

FLOWS = ("source_to_target", "target_to_source")
FUSED_MESSAGES = (None, "x_j", "edge_weight * x_j")

#: arguments that propagate provides itself rather than taking from kwargs
SPECIAL_ARGS = frozenset(
    {
        "edge_index",
        "adj_t",
        "edge_index_i",
        "edge_index_j",
        "size",
        "size_i",
        "size_j",
        "ptr",
        "index",
        "dim_size",
    }
)


# -- argument inspection, once per class ----------------------------------------------------
@dataclass(frozen=True)
class _Params:
    """The parameters (name -> default) a user method takes, minus the leading ones."""

    names: tuple[str, ...]
    defaults: dict[str, Any]


def _params(method: Callable[..., Any], skip: int) -> _Params:
    sig = inspect.signature(method)
    names, defaults = [], {}
    for i, (name, p) in enumerate(sig.parameters.items()):
        if i < skip or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        names.append(name)
        if p.default is not p.empty:
            defaults[name] = p.default
    return _Params(tuple(names), defaults)


@dataclass(frozen=True)
class _ClassSignature:
    message: _Params
    aggregate: _Params
    message_and_aggregate: _Params
    update: _Params
    edge_update: _Params
    fuses: bool  # overrides message_and_aggregate
    fused_message: str | None

    @property
    def lifted(self) -> set[str]:
        """Names like ``x`` for which the message takes ``x_i``/``x_j``."""
        return set(lifted_suffixes(self.message))


def lifted_suffixes(params: _Params) -> dict[str, set[str]]:
    """``{"x": {"_i", "_j"}, ...}``: the sides on which a method lifts each name."""
    out: dict[str, set[str]] = {}
    for n in params.names:
        if n[-2:] in ("_i", "_j"):
            out.setdefault(n[:-2], set()).add(n[-2:])
    return out


_signatures: dict[type, _ClassSignature] = {}
_signatures_lock = threading.Lock()


def _class_signature(cls: type) -> _ClassSignature:
    sig = _signatures.get(cls)
    if sig is None:
        with _signatures_lock:
            fuses = cls.message_and_aggregate is not MessagePassing.message_and_aggregate
            declared = cls.__dict__.get("fused_message", None)
            for base in cls.__mro__:
                if "fused_message" in base.__dict__:
                    declared = base.__dict__["fused_message"]
                    break
            if declared not in FUSED_MESSAGES:
                raise ValueError(f"{cls.__name__}.fused_message must be one of {FUSED_MESSAGES}")
            # the default message is x_j; an overridden one is only fused when declared
            if declared is None and cls.message is MessagePassing.message:
                declared = "x_j"
            sig = _ClassSignature(
                message=_params(cls.message, 1),
                aggregate=_params(cls.aggregate, 2),
                message_and_aggregate=_params(cls.message_and_aggregate, 2),
                update=_params(cls.update, 2),
                edge_update=_params(cls.edge_update, 1),
                fuses=fuses,
                fused_message=declared,
            )
            _signatures[cls] = sig
    return sig


# -- the graph a propagate call runs on ------------------------------------------------------
@dataclass(eq=False)
class _Graph:
    """``edge_index`` or sparse ``adj_t`` plus what propagate needs to know about it."""

    edge_index: Tensor  # [2, E] (CSR order for sparse inputs)
    sparse: SparseInput | None
    size: list[int | None]
    i: int  # row of edge_index holding receivers
    j: int  # row holding senders
    adj_t: Any = None  # the sparse input as the user gave it

    @property
    def index(self) -> Tensor:
        return self.edge_index[self.i]

    def ptr(self) -> Tensor | None:
        return self.sparse.csr.rowptr if self.sparse is not None else None


def _node_size(data: Tensor, node_dim: int) -> int:
    return data.size(node_dim)


#: ``(min, max)`` of each row of recently seen ``edge_index`` tensors, so that the
#: O(E) range check runs once per static graph rather than on every call
_bounds = TensorCache(8)


def _row_bounds(edge_index: Tensor) -> tuple[tuple[int, int], tuple[int, int]]:
    lo, hi = torch.aminmax(edge_index, dim=1)
    lo, hi = lo.tolist(), hi.tolist()
    return (lo[0], hi[0]), (lo[1], hi[1])


def check_edge_index_side(edge_index: Tensor, side: int, upper: int) -> None:
    """Check ``0 <= edge_index[side] < upper`` (O(E) once per static graph, then cached)."""
    if not v.validation_enabled() or edge_index.numel() == 0:
        return
    lo, hi = _bounds.get((edge_index,), ("bounds",), lambda: _row_bounds(edge_index))[side]
    if lo < 0 or hi >= upper:  # let the shared check raise its error
        v.check_index_range(f"edge_index[{side}]", edge_index[side], upper)


class MessagePassing(torch.nn.Module):
    r"""Base class for message-passing layers.

    .. math::
        \mathbf{x}_i' = \gamma_{\Theta}\Big(\mathbf{x}_i,
            \bigoplus_{j \in \mathcal{N}(i)} \phi_{\Theta}(\mathbf{x}_i, \mathbf{x}_j,
            \mathbf{e}_{j,i})\Big)

    with :math:`\phi` = :meth:`message`, :math:`\bigoplus` = :meth:`aggregate`
    (the ``aggr`` aggregation) and :math:`\gamma` = :meth:`update`.

    Args:
        aggr: aggregation: a name (``"sum"``, ``"mean"``, ``"max"``,
            ``"median"`` ...), a list of names (-> ``MultiAggregation``), an
            :class:`~gnn.core.Aggregation` instance, or ``None`` for layers
            that aggregate themselves.
        aggr_kwargs: arguments for the aggregation resolved from ``aggr``.
        flow: ``"source_to_target"`` (messages go ``edge_index[0]`` ->
            ``edge_index[1]``) or ``"target_to_source"``.
        node_dim: the dimension of node features that nodes lie along.
        decomposed_layers: split the features into this many chunks and
            propagate them one after another to save memory.

    Shapes:
        ``propagate(edge_index, size=None, **kwargs)``: ``edge_index``
        ``[2, E]`` integer tensor or sparse ``adj_t`` ``[N_dst, N_src]``;
        node tensors ``[N, *]`` (or tuples ``(x_src, x_dst)``); the result
        has ``N_dst`` rows.

    Example:
        >>> class Sum(MessagePassing):
        ...     def forward(self, x, edge_index):
        ...         return self.propagate(edge_index, x=x)
        >>> Sum()(torch.eye(2), torch.tensor([[0], [1]]))
        tensor([[0., 0.],
                [1., 0.]])
    """

    special_args = SPECIAL_ARGS
    #: ``"x_j"`` or ``"edge_weight * x_j"`` when :meth:`message` computes
    #: exactly that, so propagate may use the fused ``ops.spmm`` path.
    fused_message: ClassVar[str | None] = None

    def __init__(
        self,
        aggr: str | list[str] | Aggregation | None = "sum",
        *,
        aggr_kwargs: dict[str, Any] | None = None,
        flow: str = "source_to_target",
        node_dim: int = -2,
        decomposed_layers: int = 1,
    ) -> None:
        super().__init__()
        if flow not in FLOWS:
            raise ValueError(f"'flow' must be one of {FLOWS}, got {flow!r}")
        if not isinstance(decomposed_layers, int) or decomposed_layers < 1:
            raise ValueError(f"'decomposed_layers' must be a positive int, got {decomposed_layers!r}")
        if aggr is None:
            self.aggr: Any = None
            self.aggr_module: Aggregation | None = None
        else:
            from .registry import aggregations

            if isinstance(aggr, (str, Aggregation)):
                self.aggr = str(aggr)
            elif isinstance(aggr, (list, tuple)):
                self.aggr = [str(a) for a in aggr]
            else:
                raise TypeError(
                    f"'aggr' must be a name, a list of names or an Aggregation, got {type(aggr).__name__}"
                )
            self.aggr_module = aggregations.resolve(aggr, **(aggr_kwargs or {}))
        self.flow = flow
        self.node_dim = node_dim
        self.decomposed_layers = decomposed_layers
        self._signature = _class_signature(type(self))
        ops.backends.available()  # load kernel backends now, never inside a torch.compile trace
        self.fuse = self._signature.fuses

        # explainability (used by captum-style attribution)
        self._explain: bool | None = None
        self._edge_mask: Tensor | None = None
        self._loop_mask: Tensor | None = None
        self._apply_sigmoid = True

        self._propagate_forward_pre_hooks: OrderedDict[int, Callable] = OrderedDict()
        self._propagate_forward_hooks: OrderedDict[int, Callable] = OrderedDict()
        self._message_forward_pre_hooks: OrderedDict[int, Callable] = OrderedDict()
        self._message_forward_hooks: OrderedDict[int, Callable] = OrderedDict()
        self._aggregate_forward_pre_hooks: OrderedDict[int, Callable] = OrderedDict()
        self._aggregate_forward_hooks: OrderedDict[int, Callable] = OrderedDict()
        self._message_and_aggregate_forward_pre_hooks: OrderedDict[int, Callable] = OrderedDict()
        self._message_and_aggregate_forward_hooks: OrderedDict[int, Callable] = OrderedDict()
        self._edge_update_forward_pre_hooks: OrderedDict[int, Callable] = OrderedDict()
        self._edge_update_forward_hooks: OrderedDict[int, Callable] = OrderedDict()

    # -- public API -----------------------------------------------------------------------
    def reset_parameters(self) -> None:
        """Reset learnable parameters (of the aggregation, by default)."""
        if self.aggr_module is not None:
            self.aggr_module.reset_parameters()

    @property
    def explain(self) -> bool | None:
        """Explain mode: messages are multiplied by ``sigmoid(edge_mask)``."""
        return self._explain

    @explain.setter
    def explain(self, value: bool | None) -> None:
        self._explain = value

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """Run the layer (implemented by subclasses)."""
        raise NotImplementedError

    def propagate(self, edge_index: Any, size: tuple[int, int] | None = None, **kwargs: Any) -> Any:
        """Send messages along ``edge_index``, aggregate them and update.

        Args:
            edge_index: ``[2, E]`` integer tensor, torch.sparse COO/CSR/CSC
                ``adj_t`` of shape ``[N_dst, N_src]`` or a
                ``torch_sparse.SparseTensor``.
            size: ``(N_src, N_dst)``; inferred from node tensors when omitted.
            **kwargs: everything :meth:`message`, :meth:`aggregate` and
                :meth:`update` need; ``x`` is lifted to ``x_i``/``x_j``.
        """
        for hook in self._propagate_forward_pre_hooks.values():
            res = hook(self, (edge_index, size, kwargs))
            if res is not None:
                edge_index, size, kwargs = res

        graph = self._graph(edge_index, size)
        sig = self._signature
        layers = 1 if self._explain else self.decomposed_layers
        if layers > 1:
            chunked = {
                name: self._chunk(kwargs[name], layers, name)
                for name in sorted(sig.lifted)
                if kwargs.get(name) is not None
            }
            outs = []
            for k in range(layers):
                part = dict(kwargs)
                for name, pieces in chunked.items():
                    part[name] = pieces[k]
                outs.append(self._message_and_reduce(graph, part))
            out = torch.cat(outs, dim=-1)
        else:
            out = self._message_and_reduce(graph, kwargs)

        update_kwargs = self._collect(sig.update, graph, kwargs)
        out = self.update(out, **update_kwargs)

        for hook in self._propagate_forward_hooks.values():
            res = hook(self, (edge_index, size, kwargs), out)
            if res is not None:
                out = res
        return out

    def message(self, x_j: Tensor) -> Tensor:
        r"""Per-edge message :math:`\phi`; by default the sender's features ``x_j``."""
        return x_j

    def aggregate(
        self,
        inputs: Tensor,
        index: Tensor,
        ptr: Tensor | None = None,
        dim_size: int | None = None,
    ) -> Tensor:
        """Aggregate messages ``[E, *]`` into ``[dim_size, *]`` with ``self.aggr_module``."""
        if self.aggr_module is None:
            raise ValueError(f"{type(self).__name__} was built with aggr=None and must override aggregate()")
        return self.aggr_module(inputs, index, ptr=ptr, dim_size=dim_size, dim=self.node_dim)

    def message_and_aggregate(self, edge_index: Any) -> Tensor:
        """Fused message + aggregate for sparse ``adj_t`` inputs (optional)."""
        raise NotImplementedError

    def update(self, inputs: Tensor) -> Tensor:
        """Node update :math:`\\gamma`; identity by default."""
        return inputs

    def edge_updater(self, edge_index: Any, size: tuple[int, int] | None = None, **kwargs: Any) -> Any:
        """Compute per-edge values with :meth:`edge_update` (``_i``/``_j`` lifting applies)."""
        for hook in self._edge_update_forward_pre_hooks.values():
            res = hook(self, (edge_index, size, kwargs))
            if res is not None:
                edge_index, size, kwargs = res
        graph = self._graph(edge_index, size)
        self._sizes(graph, kwargs, self._signature.edge_update)
        edge_kwargs = self._collect(self._signature.edge_update, graph, kwargs)
        out = self.edge_update(**edge_kwargs)
        for hook in self._edge_update_forward_hooks.values():
            res = hook(self, (edge_index, size, kwargs), out)
            if res is not None:
                out = res
        return out

    def edge_update(self) -> Tensor:
        """Per-edge computation used by :meth:`edge_updater` (implemented by subclasses)."""
        raise NotImplementedError

    def explain_message(self, inputs: Tensor, dim_size: int | None, size_i: int | None) -> Tensor:
        """Scale messages by the edge mask (explain mode)."""
        edge_mask = self._edge_mask
        if edge_mask is None:
            raise ValueError(
                "explain mode is on but no edge mask is set; set '_edge_mask' on the layer first"
            )
        if self._apply_sigmoid:
            edge_mask = edge_mask.sigmoid()
        num = inputs.size(self.node_dim)
        if num != edge_mask.numel():
            # the layer added self loops: masked edges first, then one loop per node
            if self._loop_mask is not None:
                edge_mask = edge_mask[self._loop_mask]
            loops = num - edge_mask.numel()
            edge_mask = torch.cat([edge_mask, edge_mask.new_ones(loops)])
        if num != edge_mask.numel():
            raise ValueError(f"edge mask has {edge_mask.numel()} entries but there are {num} messages")
        shape = [1] * inputs.dim()
        shape[self.node_dim] = -1
        return inputs * edge_mask.view(shape)

    # -- hooks -----------------------------------------------------------------------------
    def _add_hook(self, table: OrderedDict, hook: Callable) -> RemovableHandle:
        handle = RemovableHandle(table)
        table[handle.id] = hook
        return handle

    def register_propagate_forward_pre_hook(self, hook: Callable) -> RemovableHandle:
        """``hook(module, (edge_index, size, kwargs))`` before propagate; may return new inputs."""
        return self._add_hook(self._propagate_forward_pre_hooks, hook)

    def register_propagate_forward_hook(self, hook: Callable) -> RemovableHandle:
        """``hook(module, (edge_index, size, kwargs), out)`` after propagate; may return new out."""
        return self._add_hook(self._propagate_forward_hooks, hook)

    def register_message_forward_pre_hook(self, hook: Callable) -> RemovableHandle:
        """``hook(module, (message_kwargs,))`` before message; may return new kwargs."""
        return self._add_hook(self._message_forward_pre_hooks, hook)

    def register_message_forward_hook(self, hook: Callable) -> RemovableHandle:
        """``hook(module, (message_kwargs,), out)`` after message; may return new out."""
        return self._add_hook(self._message_forward_hooks, hook)

    def register_aggregate_forward_pre_hook(self, hook: Callable) -> RemovableHandle:
        """``hook(module, (aggregate_kwargs,))`` before aggregate; may return new kwargs."""
        return self._add_hook(self._aggregate_forward_pre_hooks, hook)

    def register_aggregate_forward_hook(self, hook: Callable) -> RemovableHandle:
        """``hook(module, (aggregate_kwargs,), out)`` after aggregate; may return new out."""
        return self._add_hook(self._aggregate_forward_hooks, hook)

    def register_message_and_aggregate_forward_pre_hook(self, hook: Callable) -> RemovableHandle:
        """``hook(module, (adj_t, kwargs))`` before message_and_aggregate."""
        return self._add_hook(self._message_and_aggregate_forward_pre_hooks, hook)

    def register_message_and_aggregate_forward_hook(self, hook: Callable) -> RemovableHandle:
        """``hook(module, (adj_t, kwargs), out)`` after message_and_aggregate."""
        return self._add_hook(self._message_and_aggregate_forward_hooks, hook)

    def register_edge_update_forward_pre_hook(self, hook: Callable) -> RemovableHandle:
        """``hook(module, (edge_index, size, kwargs))`` before edge_updater."""
        return self._add_hook(self._edge_update_forward_pre_hooks, hook)

    def register_edge_update_forward_hook(self, hook: Callable) -> RemovableHandle:
        """``hook(module, (edge_index, size, kwargs), out)`` after edge_updater."""
        return self._add_hook(self._edge_update_forward_hooks, hook)

    def __repr__(self) -> str:
        if hasattr(self, "in_channels") and hasattr(self, "out_channels"):
            return f"{type(self).__name__}({self.in_channels}, {self.out_channels})"
        if hasattr(self, "channels"):
            return f"{type(self).__name__}({self.channels})"
        return f"{type(self).__name__}()"

    # -- internals -------------------------------------------------------------------------
    def _graph(self, edge_index: Any, size: Any) -> _Graph:
        i, j = (1, 0) if self.flow == "source_to_target" else (0, 1)
        if size is not None:
            if not isinstance(size, (tuple, list)) or len(size) != 2:
                raise ValueError(f"'size' must be a pair (N_src, N_dst), got {size!r}")
            size = [None if s is None else int(s) for s in size]
            if any(s is not None and s < 0 for s in size):
                raise ValueError(f"'size' must be non-negative, got {size!r}")
        else:
            size = [None, None]
        if is_sparse(edge_index):
            if self.flow != "source_to_target":
                raise ValueError(
                    "flow='target_to_source' is not supported for sparse 'edge_index' inputs; "
                    "pass the transposed adjacency instead"
                )
            sparse = from_sparse(edge_index)
            for k, n in enumerate(sparse.size):
                if size[k] is not None and size[k] != n:
                    raise ValueError(
                        f"'size' {tuple(size)} contradicts the sparse adjacency of "
                        f"[N_dst, N_src] = [{sparse.size[1]}, {sparse.size[0]}]"
                    )
            return _Graph(sparse.edge_index(), sparse, list(sparse.size), i, j, adj_t=edge_index)
        if not isinstance(edge_index, Tensor):
            raise TypeError(
                "'edge_index' must be a [2, E] integer tensor, a torch.sparse adjacency or a "
                f"torch_sparse.SparseTensor, got {type(edge_index).__name__}"
            )
        v.check_edge_index(edge_index)
        for k in (0, 1):
            if size[k] is not None:
                check_edge_index_side(edge_index, k, size[k])
        return _Graph(edge_index, None, size, i, j)

    def _chunk(self, value: Any, parts: int, name: str) -> list[Any]:
        if isinstance(value, Tensor):
            return list(value.chunk(parts, dim=-1))
        if isinstance(value, (tuple, list)):  # (x_src, x_dst): chunk each side
            sides = [self._chunk(x, parts, name) if x is not None else [None] * parts for x in value]
            return [tuple(side[k] for side in sides) for k in range(parts)]
        raise TypeError(f"decomposed_layers cannot split '{name}' of type {type(value).__name__}")

    def _set_size(self, graph: _Graph, side: int, data: Tensor, name: str) -> None:
        n = _node_size(data, self.node_dim)
        known = graph.size[side]
        if known is None:
            graph.size[side] = n
            if graph.sparse is None:
                check_edge_index_side(graph.edge_index, side, n)
        elif known != n:
            raise ValueError(
                f"'{name}' has {n} nodes along dim {self.node_dim}, but 'size' / 'edge_index' expects {known}"
            )

    def _lift(self, graph: _Graph, name: str, kwargs: dict[str, Any]) -> Any:
        """``x_i``/``x_j``: the node tensor ``x`` gathered at receivers/senders."""
        base, suffix = name[:-2], name[-2:]
        side = graph.i if suffix == "_i" else graph.j
        data = kwargs.get(base)
        if isinstance(data, (tuple, list)):
            if len(data) != 2:
                raise ValueError(
                    f"'{base}' must be a tensor or a pair (source, target), got {len(data)} items"
                )
            data = data[side]
        if data is None:
            return None
        if not isinstance(data, Tensor):
            return data
        self._set_size(graph, side, data, base)
        return data.index_select(self.node_dim, graph.edge_index[side])

    def _sizes(self, graph: _Graph, kwargs: dict[str, Any], params: _Params | None = None) -> None:
        """Infer missing sizes from the lifted node tensors without gathering.

        A pair ``(x_src, x_dst)`` fixes both sides; a single tensor fixes only
        the sides it is used on (``x_j`` -> senders, ``x_i`` -> receivers).
        """
        for base, suffixes in lifted_suffixes(params or self._signature.message).items():
            data = kwargs.get(base)
            if isinstance(data, (tuple, list)) and len(data) == 2:
                for side in (0, 1):
                    if isinstance(data[side], Tensor):
                        self._set_size(graph, side, data[side], base)
            elif isinstance(data, Tensor):
                for suffix in suffixes:
                    self._set_size(graph, graph.i if suffix == "_i" else graph.j, data, base)
        # a side no tensor fixed takes the other side's size (a square graph), as in PyG
        for side in (0, 1):
            other = graph.size[1 - side]
            if graph.size[side] is None and other is not None:
                graph.size[side] = other
                if graph.sparse is None:
                    check_edge_index_side(graph.edge_index, side, other)

    def _special(self, graph: _Graph, name: str) -> Any:
        size_i = graph.size[graph.i] if graph.size[graph.i] is not None else graph.size[graph.j]
        size_j = graph.size[graph.j] if graph.size[graph.j] is not None else graph.size[graph.i]
        if name in ("edge_index", "adj_t"):
            if name == "adj_t" and graph.adj_t is not None:
                return graph.adj_t
            return graph.edge_index
        if name == "edge_index_i" or name == "index":
            return graph.index
        if name == "edge_index_j":
            return graph.edge_index[graph.j]
        if name == "ptr":
            return graph.ptr()
        if name == "size":
            return tuple(graph.size)
        if name in ("size_i", "dim_size"):
            return size_i
        if name == "size_j":
            return size_j
        raise KeyError(name)

    def _collect(self, params: _Params, graph: _Graph, kwargs: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in params.names:
            if name in SPECIAL_ARGS:
                out[name] = self._special(graph, name)
            elif name[-2:] in ("_i", "_j") and name not in kwargs:
                out[name] = self._lift(graph, name, kwargs)
            elif name in kwargs:
                value = kwargs[name]
                if value is None and graph.sparse is not None and name in ("edge_weight", "edge_attr"):
                    value = graph.sparse.value  # sparse values act as edge weights/attributes
                out[name] = value
            elif name in params.defaults:
                out[name] = params.defaults[name]
            elif graph.sparse is not None and name in ("edge_weight", "edge_attr"):
                out[name] = graph.sparse.value
            else:
                raise TypeError(
                    f"{type(self).__name__}.propagate() is missing the argument '{name}' "
                    "that message/aggregate/update needs"
                )
        return out

    def _fused_weight(self, graph: _Graph, kwargs: dict[str, Any]) -> tuple[bool, Tensor | None]:
        """Whether the fused spmm path applies, and the per-edge weight it uses."""
        sig = self._signature
        if sig.fused_message is None or self._explain:
            return False, None
        if self._message_forward_pre_hooks or self._message_forward_hooks:
            return False, None
        if self._aggregate_forward_pre_hooks or self._aggregate_forward_hooks:
            return False, None
        if type(self).aggregate is not MessagePassing.aggregate:
            return False, None
        if fused_reduction(self.aggr_module) is None:
            return False, None
        x = kwargs.get("x")
        x_src = x[graph.j] if isinstance(x, (tuple, list)) else x
        if not isinstance(x_src, Tensor) or self.node_dim % x_src.dim() != 0:
            return False, None
        weight = None  # an ``x_j`` message ignores sparse values, as the general path does
        if sig.fused_message == "edge_weight * x_j":
            weight = kwargs.get("edge_weight")
            if weight is None and graph.sparse is not None:
                weight = graph.sparse.value
        if weight is not None and (not isinstance(weight, Tensor) or weight.dim() != 1):
            return False, None
        return True, weight

    def _fused_plan(
        self, graph: _Graph, kwargs: dict[str, Any]
    ) -> tuple[Any, Tensor, Tensor | None, str] | None:
        """``(csr, x_src, edge_weight, reduce)`` of the fused ``ops.spmm`` path, or ``None``."""
        use_fused, weight = self._fused_weight(graph, kwargs)
        if not use_fused:
            return None
        self._sizes(graph, kwargs)
        x = kwargs["x"]
        x_src = x[graph.j] if isinstance(x, (tuple, list)) else x
        size_i = self._special(graph, "size_i")
        reduce = fused_reduction(self.aggr_module)
        if graph.sparse is not None:
            csr = graph.sparse.csr
            if csr.num_rows != size_i:
                raise ValueError(f"sparse adjacency has {csr.num_rows} rows, expected {size_i}")
        else:
            size = (
                graph.size[0] if graph.size[0] is not None else size_i,
                graph.size[1] if graph.size[1] is not None else size_i,
            )
            csr = to_csr(graph.edge_index, size, self.flow)
        if weight is not None and weight.numel() != csr.nnz:
            raise ValueError(
                f"'edge_weight' has {weight.numel()} entries but 'edge_index' has {csr.nnz} edges"
            )
        return csr, x_src, weight, reduce

    def _propagate_plus_self(
        self,
        edge_index: Any,
        size: tuple[int, int] | None,
        x: Tensor | tuple[Tensor, Tensor | None],
        x_self: Tensor,
        self_weight: float,
    ) -> Tensor | None:
        """``propagate(edge_index, x=x, size=size) + self_weight * x_self`` in one fused spmm call.

        For layers such as GIN whose output adds a scaled root term to a sum/mean
        aggregation: the term is added inside the spmm pass (no extra ``[N, F]``
        tensors). Returns ``None`` when the plain path must run: propagate hooks,
        explain mode, decomposed layers, an overridden :meth:`update`, a sparse
        input with a layer-specific :meth:`message_and_aggregate`, or an
        aggregation other than sum/mean.
        """
        if self._propagate_forward_pre_hooks or self._propagate_forward_hooks or self._explain:
            return None
        if self.decomposed_layers > 1 or type(self).update is not MessagePassing.update:
            return None
        if fused_reduction(self.aggr_module) not in ("sum", "mean"):
            return None
        graph = self._graph(edge_index, size)
        if graph.sparse is not None and self._signature.fuses:
            return None
        kwargs = {"x": x}
        fused = self._fused_plan(graph, kwargs)
        if fused is None:
            return None
        csr, x_src, weight, reduce = fused
        if x_self.shape != (csr.num_rows,) + x_src.shape[1:]:
            return None
        return ops.spmm(csr, x_src, weight, reduce, x_self=x_self, self_weight=self_weight)

    def _message_and_reduce(self, graph: _Graph, kwargs: dict[str, Any]) -> Tensor:
        sig = self._signature
        # 1. sparse input and a layer-provided fused implementation
        if graph.sparse is not None and sig.fuses and not self._explain:
            self._sizes(graph, kwargs)
            mag_kwargs = self._collect(sig.message_and_aggregate, graph, kwargs)
            adj_t = graph.adj_t
            for hook in self._message_and_aggregate_forward_pre_hooks.values():
                res = hook(self, (adj_t, mag_kwargs))
                if res is not None:
                    adj_t, mag_kwargs = res
            out = self.message_and_aggregate(adj_t, **mag_kwargs)
            for hook in self._message_and_aggregate_forward_hooks.values():
                res = hook(self, (adj_t, mag_kwargs), out)
                if res is not None:
                    out = res
            return out

        # 2. fused gather-weight-reduce through ops.spmm
        fused = self._fused_plan(graph, kwargs)
        if fused is not None:
            csr, x_src, weight, reduce = fused
            return ops.spmm(csr, x_src, weight, reduce)

        # 3. general path: message -> aggregate
        self._sizes(graph, kwargs)  # record both sides of (x_src, x_dst) even if only x_j is used
        msg_kwargs = self._collect(sig.message, graph, kwargs)
        for hook in self._message_forward_pre_hooks.values():
            res = hook(self, (msg_kwargs,))
            if res is not None:
                msg_kwargs = res[0] if isinstance(res, tuple) else res
        out = self.message(**msg_kwargs)
        for hook in self._message_forward_hooks.values():
            res = hook(self, (msg_kwargs,), out)
            if res is not None:
                out = res
        if self._explain:
            out = self.explain_message(out, self._special(graph, "dim_size"), self._special(graph, "size_i"))

        aggr_kwargs = self._collect(sig.aggregate, graph, kwargs)
        for hook in self._aggregate_forward_pre_hooks.values():
            res = hook(self, (aggr_kwargs,))
            if res is not None:
                aggr_kwargs = res[0] if isinstance(res, tuple) else res
        out = self.aggregate(out, **aggr_kwargs)
        for hook in self._aggregate_forward_hooks.values():
            res = hook(self, (aggr_kwargs,), out)
            if res is not None:
                out = res
        return out
