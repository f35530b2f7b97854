"""The :class:`MessagePassing` base class (PyG 2.8's API) and gnn's one message-passing engine.

Data flow of :meth:`MessagePassing.propagate`::

    propagate pre-hooks
    edge_index / sparse adj_t ──► gnn.core.graph.read_graph   (validated once per graph)
        ├─ sparse input + the layer's message_and_aggregate(adj_t, ...)   (as PyG)
        ├─ fused plan (gnn.core.plans, run by gnn.core.fused): one ops call,
        │  no [E, F] tensor ── only when nothing could observe the difference
        └─ general path: message(**lifted args) ─► explain ─► aggregate ─► ops
    update ─► propagate hooks ─► root term (a plan's ``root``, e.g. GIN's (1+eps) x)

The decision between the fused plan and the general path is made in one place,
:meth:`MessagePassing.fused_path_allowed` plus the plan's own input checks; every
hook kind and explain mode behave as in PyG on both paths. Layers that add self
loops read :attr:`MessagePassing.exact_edges` to give hooks and explain mode PyG's
exact edge set.
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

from . import fused, ops, plans
from . import validation as v
from .aggr.base import Aggregation
from .graph import FLOWS, Graph, check_edge_index_side, read_graph

__all__ = ["MessagePassing", "check_edge_index_side"]

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

_ATTENTION_PLANS = (plans.NodeScoreAttention, plans.AdditiveAttention)


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


def lifted_suffixes(params: _Params) -> dict[str, set[str]]:
    """``{"x": {"_i", "_j"}, ...}``: the sides on which a method lifts each name."""
    out: dict[str, set[str]] = {}
    for n in params.names:
        if n[-2:] in ("_i", "_j"):
            out.setdefault(n[:-2], set()).add(n[-2:])
    return out


@dataclass(frozen=True)
class _ClassSignature:
    message: _Params
    aggregate: _Params
    message_and_aggregate: _Params
    update: _Params
    edge_update: _Params
    fuses: bool  # overrides message_and_aggregate
    plan: plans.Plan | None  # the fused plan, if it still describes this class's methods
    root: str | None  # the propagate argument holding a root term (declared plans only)
    default_update: bool

    message_lifted: dict[str, set[str]]  # lifted_suffixes(message)

    @property
    def lifted(self) -> set[str]:
        """Names like ``x`` for which the message takes ``x_i``/``x_j``."""
        return set(self.message_lifted)


def _declared_plan(cls: type) -> tuple[plans.Plan | None, type]:
    """The plan the nearest class in the MRO declares, and that class."""
    for base in cls.__mro__:
        if "fused_message" in base.__dict__:
            return plans.parse(base.__dict__["fused_message"], base.__name__), base
    return None, MessagePassing


def _plan_for(cls: type) -> tuple[plans.Plan | None, str | None]:
    declared, owner = _declared_plan(cls)
    root = declared.root if isinstance(declared, plans.WeightedSum) else None
    if declared is None:
        # the default message is x_j: fused with no declaration at all
        return (plans.WeightedSum() if cls.message is MessagePassing.message else None), None
    # a subclass that overrides what the plan stands for (without declaring anew) loses it
    if any(getattr(cls, name) is not getattr(owner, name) for name in declared.defines):
        return None, root
    if cls.aggregate is not MessagePassing.aggregate:
        return None, root
    return declared, root


_signatures: dict[type, _ClassSignature] = {}
_signatures_lock = threading.Lock()


def _class_signature(cls: type) -> _ClassSignature:
    sig = _signatures.get(cls)
    if sig is None:
        with _signatures_lock:
            plan, root = _plan_for(cls)
            message = _params(cls.message, 1)
            sig = _ClassSignature(
                message=message,
                aggregate=_params(cls.aggregate, 2),
                message_and_aggregate=_params(cls.message_and_aggregate, 2),
                update=_params(cls.update, 2),
                edge_update=_params(cls.edge_update, 1),
                fuses=cls.message_and_aggregate is not MessagePassing.message_and_aggregate,
                plan=plan,
                root=root,
                default_update=cls.update is MessagePassing.update,
                message_lifted=lifted_suffixes(message),
            )
            _signatures[cls] = sig
    return sig


_HOOK_TABLES = (
    "_propagate_forward_pre_hooks",
    "_propagate_forward_hooks",
    "_message_forward_pre_hooks",
    "_message_forward_hooks",
    "_aggregate_forward_pre_hooks",
    "_aggregate_forward_hooks",
    "_message_and_aggregate_forward_pre_hooks",
    "_message_and_aggregate_forward_hooks",
    "_edge_update_forward_pre_hooks",
    "_edge_update_forward_hooks",
)


class MessagePassing(torch.nn.Module):
    r"""Base class for message-passing layers.

    .. math::
        \mathbf{x}_i' = \gamma_{\Theta}\Big(\mathbf{x}_i,
            \bigoplus_{j \in \mathcal{N}(i)} \phi_{\Theta}(\mathbf{x}_i, \mathbf{x}_j,
            \mathbf{e}_{j,i})\Big)

    with :math:`\phi` = :meth:`message`, :math:`\bigoplus` = :meth:`aggregate`
    (the ``aggr`` aggregation) and :math:`\gamma` = :meth:`update`.

    A layer whose message is one of the fused plans of :mod:`gnn.core.plans`
    declares it as ``fused_message`` (the default message ``x_j`` needs nothing);
    propagate then runs one fused op whenever nothing can observe the difference.

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
    #: what :meth:`message` computes, as a fused plan (:mod:`gnn.core.plans`):
    #: ``"x_j"``, ``"edge_weight * x_j"`` or a plan object.
    fused_message: ClassVar[str | plans.Plan | None] = None

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

        # explainability (set by PyG-style explainers)
        self._explain: bool | None = None
        self._edge_mask: Tensor | None = None
        self._loop_mask: Tensor | None = None
        self._apply_sigmoid = True

        for table in _HOOK_TABLES:
            setattr(self, table, OrderedDict())

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

    @property
    def exact_edges(self) -> bool:
        """Whether per-edge values can be observed now (a hook is registered or explain
        mode is on). Layers that replace self loops then build PyG's exact edge set
        (loops removed, then one per node appended) instead of the fixed-shape one
        (given loops kept with zero weight), so hooks and explanations see PyG's edges."""
        d = self.__dict__
        return bool(
            self._explain
            or d["_propagate_forward_pre_hooks"]
            or d["_propagate_forward_hooks"]
            or d["_message_forward_pre_hooks"]
            or d["_message_forward_hooks"]
            or d["_aggregate_forward_pre_hooks"]
            or d["_aggregate_forward_hooks"]
            or d["_message_and_aggregate_forward_pre_hooks"]
            or d["_message_and_aggregate_forward_hooks"]
            or d["_edge_update_forward_pre_hooks"]
            or d["_edge_update_forward_hooks"]
        )

    def fused_path_allowed(self, *, deferred: bool = False) -> bool:
        """The one decision: may a fused plan replace the general path for this call?

        Only when nothing could observe the difference: the class has a valid plan,
        explain mode is off, there are no message / aggregate / edge-update hooks,
        and no decomposed layers. A ``deferred`` attention (computed by the next
        propagate) also needs no propagate pre-hooks, which would see it unfinished.
        """
        if self._signature.plan is None or self._explain or self.decomposed_layers > 1:
            return False
        if (
            self._message_forward_pre_hooks
            or self._message_forward_hooks
            or self._aggregate_forward_pre_hooks
            or self._aggregate_forward_hooks
            or self._edge_update_forward_pre_hooks
            or self._edge_update_forward_hooks
        ):
            return False
        return not (deferred and self._propagate_forward_pre_hooks)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """Run the layer (implemented by subclasses)."""
        raise NotImplementedError

    def __prepare_scriptable__(self) -> Any:
        # the scripting compiler asks every module for its scriptable form first: say plainly that
        # there is none (no decorators, no second code path kept for a deprecated compiler)
        raise RuntimeError(
            f"{type(self).__name__} does not support TorchScript scripting, which PyTorch keeps in "
            "maintenance only; deploy with torch.compile(model) or torch.export.export(model, args, "
            "dynamic_shapes=...) instead"
        )

    def propagate(self, edge_index: Any, size: tuple[int, int] | None = None, **kwargs: Any) -> Any:
        """Send messages along ``edge_index``, aggregate them and update.

        Args:
            edge_index: ``[2, E]`` integer tensor, torch.sparse COO/CSR/CSC
                ``adj_t`` of shape ``[N_dst, N_src]`` or a
                ``torch_sparse.SparseTensor``.
            size: ``(N_src, N_dst)``; inferred from node tensors when omitted.
            **kwargs: everything :meth:`message`, :meth:`aggregate` and
                :meth:`update` need; ``x`` is lifted to ``x_i``/``x_j``. A plan's
                root argument (e.g. GIN's) is taken out of them (hooks never see it).
        """
        sig = self._signature
        root = kwargs.pop(sig.root, None) if sig.root is not None else None
        if self._propagate_forward_pre_hooks or self._propagate_forward_hooks:
            kwargs = plans.materialize_products(kwargs)  # hooks see what PyG's layers pass
        for hook in self._propagate_forward_pre_hooks.values():
            res = hook(self, (edge_index, size, kwargs))
            if res is not None:
                edge_index, size, kwargs = res

        graph = read_graph(edge_index, size, self.flow)
        root_added = False
        if graph.sparse is not None and sig.fuses and not self._explain:
            kwargs = plans.materialize_products(kwargs)
            out = self._layer_message_and_aggregate(graph, kwargs)
        else:
            out = None
            if self.fused_path_allowed():
                out, root_added = self._run_plan(graph, kwargs, root)
            if out is None:
                kwargs = self._finish_deferred(kwargs)
                out = self._general(graph, kwargs)

        if not sig.default_update:
            kwargs = plans.materialize_products(kwargs)
            out = self.update(out, **self._collect(sig.update, graph, kwargs))

        for hook in self._propagate_forward_hooks.values():
            res = hook(self, (edge_index, size, kwargs), out)
            if res is not None:
                out = res
        if root is not None and not root_added and root[0] is not None:
            out = out + root[1] * root[0]
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
        """Compute per-edge values with :meth:`edge_update` (``_i``/``_j`` lifting applies).

        For a layer whose plan defers its attention (:mod:`gnn.core.plans`), the result
        may be an :class:`~gnn.core.plans.AttentionWeights` that the next
        :meth:`propagate` computes together with the aggregation.
        """
        for hook in self._edge_update_forward_pre_hooks.values():
            res = hook(self, (edge_index, size, kwargs))
            if res is not None:
                edge_index, size, kwargs = res
        graph = read_graph(edge_index, size, self.flow)
        self._sizes(graph, kwargs, self._signature.edge_update)
        plan = self._signature.plan
        if (
            isinstance(plan, _ATTENTION_PLANS)
            and self.fused_path_allowed(deferred=True)
            and fused.can_defer(plan, self, graph, kwargs)
        ):
            return plans.AttentionWeights(kwargs, graph)
        out = self._edge_update_general(graph, kwargs)
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
    def _run_plan(self, graph: Graph, kwargs: dict[str, Any], root: Any) -> tuple[Tensor | None, bool]:
        """The fused plan's result (``None`` when its inputs do not fit it) and whether it
        added the root term."""
        plan = self._signature.plan
        if isinstance(plan, plans.WeightedSum):
            self._sizes(graph, kwargs)
            if root is not None and (self._propagate_forward_hooks or not self._signature.default_update):
                root = None  # hooks must see the aggregation without the root term
            result = fused.weighted_sum(plan, self.aggr_module, graph, kwargs, self.node_dim, root)
            return (None, False) if result is None else result
        if isinstance(plan, plans.ChannelWeightedSum):
            self._sizes(graph, kwargs)
            return fused.channel_weighted_sum(plan, self.aggr_module, graph, kwargs, self.node_dim), False
        if isinstance(plan, plans.DotAttention):
            self._sizes(graph, kwargs)
            out = fused.dot_attention(plan, self, graph, kwargs)
            if out is not None and self._propagate_forward_hooks:
                self._alpha = plans.materialize(self._alpha)  # a hook may read it
            return out, False
        weights = kwargs.get(plan.weights)
        if not isinstance(weights, plans.AttentionWeights) or weights.ready:
            return None, False
        self._sizes(graph, kwargs)
        run = (
            fused.node_score_attention
            if isinstance(plan, plans.NodeScoreAttention)
            else fused.additive_attention
        )
        return run(plan, self, graph, weights, kwargs), False

    def _finish_deferred(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """Attention that ``edge_updater`` deferred but the fused path cannot take now
        (e.g. a hook registered in between) is computed by :meth:`edge_update`; deferred products
        (:class:`~gnn.core.plans.EdgeScaled`) are multiplied out."""
        kwargs = plans.materialize_products(kwargs)
        plan = self._signature.plan
        if not isinstance(plan, _ATTENTION_PLANS):
            return kwargs
        weights = kwargs.get(plan.weights)
        if not isinstance(weights, plans.AttentionWeights):
            return kwargs
        return {**kwargs, plan.weights: self._edge_update_general(weights.graph, weights.inputs)}

    def _edge_update_general(self, graph: Graph, kwargs: dict[str, Any]) -> Tensor:
        edge_kwargs = self._collect(self._signature.edge_update, graph, kwargs)
        return self.edge_update(**edge_kwargs)

    def _layer_message_and_aggregate(self, graph: Graph, kwargs: dict[str, Any]) -> Tensor:
        """A sparse input and the layer's own ``message_and_aggregate`` (as PyG)."""
        self._sizes(graph, kwargs)
        mag_kwargs = self._collect(self._signature.message_and_aggregate, graph, kwargs)
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

    def _general(self, graph: Graph, kwargs: dict[str, Any]) -> Tensor:
        """message -> (explain) -> aggregate, in ``decomposed_layers`` feature chunks."""
        layers = 1 if self._explain else self.decomposed_layers
        if layers == 1:
            return self._message_and_reduce(graph, kwargs)
        chunked = {
            name: self._chunk(kwargs[name], layers, name)
            for name in sorted(self._signature.lifted)
            if kwargs.get(name) is not None
        }
        outs = []
        for k in range(layers):
            part = dict(kwargs)
            for name, pieces in chunked.items():
                part[name] = pieces[k]
            outs.append(self._message_and_reduce(graph, part))
        return torch.cat(outs, dim=-1)

    def _chunk(self, value: Any, parts: int, name: str) -> list[Any]:
        if isinstance(value, Tensor):
            return list(value.chunk(parts, dim=-1))
        if isinstance(value, (tuple, list)):  # (x_src, x_dst): chunk each side
            sides = [self._chunk(x, parts, name) if x is not None else [None] * parts for x in value]
            return [tuple(side[k] for side in sides) for k in range(parts)]
        raise TypeError(f"decomposed_layers cannot split '{name}' of type {type(value).__name__}")

    def _set_size(self, graph: Graph, side: int, data: Tensor, name: str) -> None:
        node_dim = self.node_dim
        if data.dim() < (-node_dim if node_dim < 0 else node_dim + 1):
            raise ValueError(
                f"'{name}' must hold node features with the nodes along dim {node_dim} "
                f"(e.g. [N, F]), got {v.describe(data)}"
            )
        n = data.size(node_dim)
        known = graph.size[side]
        if known is None:
            graph.set_size(side, n, name)
        elif known is not n and known != n:
            raise ValueError(
                f"'{name}' has {n} nodes along dim {self.node_dim}, but 'size' / 'edge_index' expects {known}"
            )

    def _lift(self, graph: Graph, name: str, kwargs: dict[str, Any]) -> Any:
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
        graph.check_ranges()
        return data.index_select(self.node_dim, graph.edge_index[side])

    def _sizes(self, graph: Graph, kwargs: dict[str, Any], params: _Params | None = None) -> None:
        """Infer missing sizes from the lifted node tensors without gathering.

        A pair ``(x_src, x_dst)`` fixes both sides; a single tensor fixes only
        the sides it is used on (``x_j`` -> senders, ``x_i`` -> receivers).
        A side no tensor fixed takes the other side's size (a square graph, as in PyG).
        """
        lifted = self._signature.message_lifted if params is None else lifted_suffixes(params)
        for base, suffixes in lifted.items():
            data = kwargs.get(base)
            if isinstance(data, (tuple, list)) and len(data) == 2:
                for side in (0, 1):
                    if isinstance(data[side], Tensor):
                        self._set_size(graph, side, data[side], base)
            elif isinstance(data, Tensor):
                for suffix in suffixes:
                    self._set_size(graph, graph.i if suffix == "_i" else graph.j, data, base)
        graph.square_up()

    def _special(self, graph: Graph, name: str) -> Any:
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
            return graph.size_i
        if name == "size_j":
            return graph.size_j
        raise KeyError(name)

    def _collect(self, params: _Params, graph: Graph, kwargs: dict[str, Any]) -> dict[str, Any]:
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

    def _message_and_reduce(self, graph: Graph, kwargs: dict[str, Any]) -> Tensor:
        sig = self._signature
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
            out = self.explain_message(out, graph.size_i, graph.size_i)

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
