r""":func:`to_hetero`: a homogeneous model turned into its heterogeneous twin (R-GCN style)."""

from __future__ import annotations

import copy
import warnings
from collections.abc import Mapping
from typing import Any

import torch
from torch.fx import GraphModule, Node
from torch.nn.parameter import UninitializedParameter

from gnn.core import validation as v

from ._utils import (
    Metadata,
    TypeKey,
    check_self_loops,
    key2str,
    read_metadata,
    warn_invalid_names,
    warn_unused_node_types,
)
from .fx import Transformer, dict_type, get_submodule, map_nested

__all__ = ["ToHeteroTransformer", "to_hetero"]

#: how the outputs of the edge types that share a destination are combined
AGGRS: dict[str, Any] = {
    "sum": torch.add,
    "mean": torch.add,  # summed, then divided by the number of edge types
    "max": torch.max,
    "min": torch.min,
    "mul": torch.mul,
}


def to_hetero(
    module: torch.nn.Module,
    metadata: Metadata,
    aggr: str = "sum",
    input_map: dict[str, str] | None = None,
    debug: bool = False,
) -> GraphModule:
    r"""Convert a homogeneous GNN into its heterogeneous equivalent.

    Every message-passing layer :math:`f^{(\ell)}` is copied once per edge type
    :math:`r \in \mathcal{R}` and the copies' outputs are combined per destination node
    type with ``aggr``:

    .. math::
        \mathbf{h}^{(\ell)}_v = \bigoplus_{r \in \mathcal{R}}
        f^{(\ell, r)}\big(\mathbf{h}^{(\ell-1)}_v,
        \{\mathbf{h}^{(\ell-1)}_w : w \in \mathcal{N}^{(r)}(v)\}\big)

    Every other module (``Linear``, norms, activations, ...) is copied once per node type (or
    per edge type when it works on edge-level values, e.g. on ``edge_attr``), and every
    function and tensor method is applied per type. The copies live in ``ModuleDict``\ s
    under the layer's name, keyed by :func:`key2str` of the type
    (``conv1.paper__cites__paper``, ``lin.author``), as in PyG, so that PyG's checkpoints
    load with ``strict=True``. Copies are re-initialized (``reset_parameters``); lazy
    (``-1`` / ``(-1, -1)``) channels are inferred per type on the first call.

    The model is traced with :mod:`torch.fx` (see :mod:`gnn.hetero.fx` for which modules
    stay whole). Arguments whose name contains ``"edge"`` or ``"adj"`` are read as one value
    per edge type, the others as one value per node type (``input_map`` overrides this).

    Args:
        module: the homogeneous model, e.g. one with ``forward(x, edge_index)``.
        metadata: ``(node_types, edge_types)``, or a ``HeteroData`` (its ``metadata()``).
        aggr: how the results of several edge types with one destination combine:
            ``"sum"``, ``"mean"``, ``"max"``, ``"min"`` or ``"mul"``.
        input_map: the level (``"node"``/``"edge"``) of arguments whose name does not tell.
        debug: print the graph before and after the transformation.

    Returns:
        A :class:`torch.fx.GraphModule` called with dictionaries in place of tensors
        (``model(x_dict, edge_index_dict)``) that returns dictionaries (node types that no
        edge type reaches map to ``None``).

    Raises:
        ValueError: an unknown ``aggr``; bad ``metadata``; a layer that adds self loops used
            for an edge type between two node types; a node type whose representation a
            later layer needs but no edge type updates. The returned model raises a
            ``ValueError`` naming the node or edge type that an input dictionary lacks.

    Example:
        >>> class GNN(torch.nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.conv1 = SAGEConv((-1, -1), 32)
        ...         self.conv2 = SAGEConv((32, 32), 32)
        ...     def forward(self, x, edge_index):
        ...         return self.conv2(self.conv1(x, edge_index).relu(), edge_index)
        >>> model = to_hetero(GNN(), (["paper", "author"], [("paper", "cites", "paper"),
        ...     ("author", "writes", "paper"), ("paper", "rev_writes", "author")]))
        >>> out = model(x_dict, edge_index_dict)   # {"paper": [N_p, 32], "author": [N_a, 32]}
    """
    return ToHeteroTransformer(module, metadata, aggr, input_map, debug).transform()


# -- run time helpers (called by the transformed model) ----------------------------------------
def input_dict(value: Any, name: str) -> Mapping[Any, Any] | None:
    """The dictionary passed for the argument ``name`` (``None`` stays ``None``)."""
    if value is None or isinstance(value, Mapping):
        return value
    raise TypeError(
        f"'{name}' must be a dict keyed by node or edge type in a model made by to_hetero, got "
        f"{v.describe(value)}"
    )


def input_entry(mapping: Mapping[Any, Any] | None, key: TypeKey, name: str, required: bool) -> Any:
    """``mapping[key]``; a required entry that is missing is an error naming the type."""
    if mapping is None:
        return None
    value = mapping.get(key)
    if value is None and required and key not in mapping:
        kind = "edge type" if isinstance(key, tuple) else "node type"
        raise ValueError(
            f"'{name}' has no entry for {kind} {key!r} of the model's metadata; it holds {list(mapping)}"
        )
    return value


class ToHeteroTransformer(Transformer):
    """The :class:`~gnn.hetero.fx.Transformer` behind :func:`to_hetero`."""

    aggrs = AGGRS

    def __init__(
        self,
        module: torch.nn.Module,
        metadata: Metadata,
        aggr: str = "sum",
        input_map: dict[str, str] | None = None,
        debug: bool = False,
    ) -> None:
        self.metadata = read_metadata(metadata)
        if aggr not in self.aggrs:
            raise ValueError(f"'aggr' must be one of {list(self.aggrs)}, got {aggr!r}")
        super().__init__(module, input_map, debug)
        self.aggr = aggr
        warn_unused_node_types(self.metadata, stacklevel=4)
        warn_invalid_names(self.metadata, stacklevel=4)

    def transform(self) -> GraphModule:
        #: graph node -> {type: per-type graph node, or None where the type has no value}
        self._typed: dict[Node, dict[TypeKey, Node | None]] = {}
        #: module path -> True for per-edge-type copies, False for per-node-type copies
        self._typed_targets: dict[str, bool] = {}
        self._edge_placeholders = 0
        try:
            return super().transform()
        finally:
            del self._typed, self._typed_targets

    def _keys(self, edge_level: bool) -> list[Any]:
        return list(self.metadata[1] if edge_level else self.metadata[0])

    # -- nodes ------------------------------------------------------------------------------
    def placeholder(self, node: Node, target: Any, name: str) -> None:
        edge_level = self.is_edge_level(node)
        dict_type(node, edge_level)
        required = not edge_level or self._edge_placeholders == 0 or "edge_index" in name or "adj" in name
        self._edge_placeholders += int(edge_level)
        self.graph.inserting_after(node)
        dict_node = self.graph.create_node("call_function", input_dict, (node, name), name=f"{name}_dict")
        self.graph.inserting_after(dict_node)
        typed: dict[TypeKey, Node | None] = {}
        for key in self._keys(edge_level):
            out = self.graph.create_node(
                "call_function", input_entry, (dict_node, key, name, required), name=f"{name}__{key2str(key)}"
            )
            self.graph.inserting_after(out)
            typed[key] = out
        self._typed[node] = typed

    def get_attr(self, node: Node, target: Any, name: str) -> None:
        """A parameter read in ``forward`` is shared by all types (graph level)."""

    def call_message_passing_module(self, node: Node, target: Any, name: str) -> None:
        module = get_submodule(self.module, target)
        edge_types = self.metadata[1]
        check_self_loops(module, edge_types)
        self._typed_targets[target] = True
        self.graph.inserting_after(node)
        per_dst: dict[str, list[Node]] = {}
        for key in edge_types:
            args, kwargs = self.map_args_kwargs(node, key)
            out = self.graph.create_node(
                "call_module", f"{target}.{key2str(key)}", args, kwargs, name=f"{name}__{key2str(key)}"
            )
            self.graph.inserting_after(out)
            per_dst.setdefault(key[-1], []).append(out)
        typed: dict[TypeKey, Node | None] = {}
        for node_type in self.metadata[0]:
            outs = per_dst.get(node_type)
            typed[node_type] = None if outs is None else self._combine(outs, f"{name}__{node_type}")
        self._typed[node] = typed

    def _combine(self, outs: list[Node], name: str) -> Node:
        """Fold the outputs of several edge types into one (pairwise, as PyG does)."""
        if len(outs) == 1:
            return outs[0]
        queue = list(outs)
        step = 1
        while len(queue) >= 2:
            a, b = queue.pop(0), queue.pop(0)
            out = self.graph.create_node(
                "call_function", self.aggrs[self.aggr], (a, b), name=f"{name}_{step}"
            )
            self.graph.inserting_after(out)
            queue.append(out)
            step += 1
        result = queue[0]
        if self.aggr == "mean":
            result = self.graph.create_node("call_function", torch.div, (result, len(outs)), name=name)
            self.graph.inserting_after(result)
        return result

    def call_global_pooling_module(self, node: Node, target: Any, name: str) -> None:
        self._typed_targets[target] = False
        self.graph.inserting_after(node)
        outs = []
        for key in self.metadata[0]:
            args, kwargs = self.map_args_kwargs(node, key)
            out = self.graph.create_node(
                "call_module", f"{target}.{key2str(key)}", args, kwargs, name=f"{name}__{key2str(key)}"
            )
            self.graph.inserting_after(out)
            outs.append(out)
        self.replace_all_uses_with(node, self._combine(outs, f"{name}_pooled"))

    def _per_type(self, node: Node, op: str, target: Any, name: str) -> None:
        if self.is_graph_level(node):
            return
        edge_level = self.is_edge_level(node)
        if op == "call_module":
            self._typed_targets[target] = edge_level
        self.graph.inserting_after(node)
        typed: dict[TypeKey, Node | None] = {}
        for key in self._keys(edge_level):
            args, kwargs = self.map_args_kwargs(node, key)
            call_target = f"{target}.{key2str(key)}" if op == "call_module" else target
            out = self.graph.create_node(op, call_target, args, kwargs, name=f"{name}__{key2str(key)}")
            self.graph.inserting_after(out)
            typed[key] = out
        self._typed[node] = typed

    def call_module(self, node: Node, target: Any, name: str) -> None:
        self._per_type(node, "call_module", target, name)

    def call_method(self, node: Node, target: Any, name: str) -> None:
        self._per_type(node, "call_method", target, name)

    def call_function(self, node: Node, target: Any, name: str) -> None:
        self._per_type(node, "call_function", target, name)

    def output(self, node: Node, target: Any, name: str) -> None:
        def to_dict(value: Any) -> Any:
            typed = self._typed.get(value) if isinstance(value, Node) else None
            return value if typed is None else dict(typed)

        result = node.args[0]
        if isinstance(result, Node) and result in self._typed:
            dict_type(node, self.is_edge_level(result))
        else:
            node.type = None
        node.args = (map_nested(result, to_dict),)

    def init_submodule(self, module: torch.nn.Module, target: str) -> torch.nn.Module:
        """One deep copy of ``module`` per type it was called for (re-initialized when there
        are several), in a ``ModuleDict`` keyed by :func:`key2str`."""
        edge_level = self._typed_targets.get(target)
        if edge_level is None:
            return module
        keys = self._keys(edge_level)
        module_dict = torch.nn.ModuleDict()
        for key in keys:
            copied = copy.deepcopy(module)
            module_dict[key2str(key)] = copied
            if len(keys) <= 1:
                continue
            if hasattr(copied, "reset_parameters"):
                copied.reset_parameters()
            elif any(isinstance(p, UninitializedParameter) or p.numel() > 0 for p in module.parameters()):
                warnings.warn(
                    f"'{target}' will be duplicated, but its parameters cannot be reset. To suppress this "
                    f"warning, add a 'reset_parameters()' method to '{target}'",
                    stacklevel=4,
                )
        return module_dict

    # -- arguments ----------------------------------------------------------------------------
    def map_args_kwargs(self, node: Node, key: TypeKey) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """The arguments of ``node`` for the type ``key``: per-type values in place of
        node- and edge-level ones; for an edge type between two node types, a node-level
        value becomes the pair ``(value[src], value[dst])``."""

        def missing(value: Node, node_type: str) -> ValueError:
            return ValueError(
                f"Cannot generate a graph node '{node.name}' for type {key!r}: the value '{value.name}' "
                f"has no representation for node type {node_type!r}, because no edge type of the "
                "metadata has it as destination. Please make sure that all node types get updated "
                "during message passing (e.g., add reverse edge types)."
            )

        def swap(value: Node) -> Any:
            typed = self._typed.get(value)
            if typed is None:  # graph level: shared by all types
                return value
            if key in typed:
                out = typed[key]
                if out is None:
                    raise missing(value, key)  # type: ignore[arg-type]
                return out
            if not isinstance(key, tuple):
                raise ValueError(
                    f"Cannot generate a graph node '{node.name}' for node type {key!r} from the "
                    f"edge-level value '{value.name}'"
                )
            src, dst = key[0], key[-1]
            x_src = typed.get(src)
            if x_src is None:
                raise missing(value, src)
            if src == dst:
                return x_src
            return (x_src, typed.get(dst))

        args = torch.fx.node.map_arg(node.args, swap)
        kwargs = torch.fx.node.map_arg(node.kwargs, swap)
        return tuple(args), dict(kwargs)
