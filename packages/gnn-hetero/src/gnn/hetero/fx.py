r"""The :mod:`torch.fx` machinery of :func:`~gnn.hetero.to_hetero`: a tracer that keeps
message-passing layers whole, and :class:`Transformer`, the base class of model rewrites.

Tracing rules (:func:`symbolic_trace`): a :class:`~gnn.core.MessagePassing` layer and an
:class:`~gnn.core.Aggregation` are always leaves (one ``call_module`` node each, never traced
into); ``torch.nn.Sequential`` containers are traced through; any other module is a leaf
unless a message-passing layer lives inside it, in which case it is traced through so that
its layers can be rewritten one by one. A root :class:`gnn.core.Sequential` gets one
placeholder per name of its ``input_args``.
"""

from __future__ import annotations

import copy
import typing
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch.fx import Graph, GraphModule, Node, Tracer

from gnn.core import Aggregation, MessagePassing, Sequential

__all__ = ["Transformer", "symbolic_trace", "is_message_passing_op", "is_global_pooling_op"]

_LEVELS = ("node", "edge", "graph")


def _holds_message_passing(module: torch.nn.Module) -> bool:
    return any(isinstance(sub, MessagePassing) for sub in module.modules())


class _Tracer(Tracer):
    """:class:`torch.fx.Tracer` with gnn's leaf rules (see the module docstring)."""

    def is_leaf_module(self, m: torch.nn.Module, module_qualified_name: str) -> bool:
        if isinstance(m, (MessagePassing, Aggregation)):
            return True
        if isinstance(m, torch.nn.Sequential):
            return False
        return not _holds_message_passing(m)

    def create_args_for_root(
        self, root_fn: Callable[..., Any], is_module: bool, concrete_args: Any = None
    ) -> tuple[Any, list[Any]]:
        root = getattr(self, "root", None)
        if is_module and isinstance(root, Sequential) and not concrete_args:
            # Sequential.forward takes *args: give it one placeholder per declared input
            defaults = getattr(root, "_defaults", {})
            proxies = []
            for name in root.input_args:
                default = (defaults[name],) if name in defaults else ()
                proxies.append(self.create_proxy("placeholder", name, default, {}))
            return root_fn, [root, *proxies]
        return super().create_args_for_root(root_fn, is_module, concrete_args)


def symbolic_trace(module: torch.nn.Module, concrete_args: dict[str, Any] | None = None) -> GraphModule:
    """Trace ``module`` into a :class:`torch.fx.GraphModule` with gnn's leaf rules.

    Example:
        >>> gm = symbolic_trace(model)   # model(x, edge_index) with GCNConv layers
        >>> [n.op for n in gm.graph.nodes]
        ['placeholder', 'placeholder', 'call_module', ...]
    """
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"'module' must be a torch.nn.Module, got {type(module).__name__}")
    tracer = _Tracer()
    try:
        graph = tracer.trace(module, concrete_args)
    except torch.fx.proxy.TraceError as error:
        raise RuntimeError(
            f"torch.fx could not trace {type(module).__name__}.forward: {error}. Data-dependent control "
            "flow (if/for on tensor values) cannot be traced; move it into a submodule, which is then "
            "kept as a single call"
        ) from error
    return GraphModule(module, graph)


def get_submodule(module: torch.nn.Module, target: str) -> torch.nn.Module:
    """The submodule at the dotted path ``target``."""
    out = module
    for attr in target.split("."):
        out = getattr(out, attr)
    return out


def is_message_passing_op(module: torch.nn.Module, op: str, target: Any) -> bool:
    """Whether a graph node calls a :class:`~gnn.core.MessagePassing` layer of ``module``."""
    return op == "call_module" and isinstance(get_submodule(module, target), MessagePassing)


def is_global_pooling_op(module: torch.nn.Module, op: str, target: Any) -> bool:
    """Whether a graph node calls an :class:`~gnn.core.Aggregation` module of ``module``."""
    return op == "call_module" and isinstance(get_submodule(module, target), Aggregation)


class Transformer:
    r"""Rewrites a traced model node by node and returns a new :class:`torch.fx.GraphModule`.

    :meth:`transform` traces ``module`` (:func:`symbolic_trace`), decides for every graph
    node whether it carries node-level, edge-level or graph-level values, and then calls
    one method per node, which subclasses override::

        transform()
          +-- for each graph node:  placeholder() | get_attr() | call_message_passing_module()
          |                         | call_global_pooling_module() | call_module()
          |                         | call_method() | call_function() | output()
          +-- erase the nodes nothing uses any more
          +-- for each child module: init_submodule()

    Levels: a placeholder is edge-level when its name contains ``"edge"`` or ``"adj"``
    and node-level otherwise (``input_map`` overrides this, e.g. ``{"pos": "node"}``); a
    message-passing layer returns node-level values, an aggregation module graph-level ones;
    any other call is edge-level if one of its arguments is, else node-level if one of its
    arguments is, else graph-level.

    Args:
        module: the model to rewrite.
        input_map: the level (``"node"`` or ``"edge"``) of arguments of ``module.forward``
            whose name does not tell.
        debug: print the graph before and after the rewrite.

    Example:
        >>> class CountCalls(Transformer):
        ...     def call_message_passing_module(self, node, target, name):
        ...         print("message passing:", target)
        >>> CountCalls(model).transform()
        message passing: conv1
    """

    def __init__(
        self,
        module: torch.nn.Module,
        input_map: dict[str, str] | None = None,
        debug: bool = False,
    ) -> None:
        self.module = module
        self.gm = symbolic_trace(module)
        self.input_map = _check_input_map(input_map, self.gm.graph)
        self.debug = debug

    # -- methods to override ----------------------------------------------------------------
    def placeholder(self, node: Node, target: Any, name: str) -> None:
        """An argument of ``forward``."""

    def get_attr(self, node: Node, target: Any, name: str) -> None:
        """A parameter or buffer read directly in ``forward``."""

    def call_message_passing_module(self, node: Node, target: Any, name: str) -> None:
        """A call of a :class:`~gnn.core.MessagePassing` layer."""

    def call_global_pooling_module(self, node: Node, target: Any, name: str) -> None:
        """A call of an :class:`~gnn.core.Aggregation` module (a global pooling)."""

    def call_module(self, node: Node, target: Any, name: str) -> None:
        """A call of any other module."""

    def call_method(self, node: Node, target: Any, name: str) -> None:
        """A tensor method call (``x.relu()``)."""

    def call_function(self, node: Node, target: Any, name: str) -> None:
        """A function call (``torch.cat``, ``operator.add``, ...)."""

    def output(self, node: Node, target: Any, name: str) -> None:
        """The return value of ``forward``."""

    def init_submodule(self, module: torch.nn.Module, target: str) -> torch.nn.Module:
        """The module that replaces the child ``module`` at path ``target`` in the result."""
        return module

    # -- the rewrite ------------------------------------------------------------------------
    @property
    def graph(self) -> Graph:
        """The graph being rewritten."""
        return self.gm.graph

    def transform(self) -> GraphModule:
        """Rewrite the traced ``module`` and return the new :class:`torch.fx.GraphModule`."""
        if self.debug:
            self._print("before")
        self._state: dict[str, str] = dict(self.input_map or {})
        for node in list(self.graph.nodes):
            self._state[node.name] = self._level_of(node)

        for node in list(self.graph.nodes):
            op = node.op
            if is_message_passing_op(self.module, op, node.target):
                op = "call_message_passing_module"
            elif is_global_pooling_op(self.module, op, node.target):
                op = "call_global_pooling_module"
            getattr(self, op)(node, node.target, node.name)

        # the nodes that were replaced by per-type copies have no users left
        for node in reversed(list(self.graph.nodes)):
            if node.op not in ("placeholder", "output") and not node.users:
                self.graph.erase_node(node)

        for target, submodule in dict(self.module._modules).items():
            self.gm._modules[target] = self._init_submodule(submodule, target)
        del self._state

        if self.debug:
            self._print("after")
        self.gm.graph.lint()
        self.gm.recompile()
        return self.gm

    def _level_of(self, node: Node) -> str:
        if node.op == "placeholder":
            if node.name in self._state:
                return self._state[node.name]
            return "edge" if ("edge" in node.name or "adj" in node.name) else "node"
        if node.op == "call_function" and "training" in node.kwargs:
            warnings.warn(
                f"Found function '{node.name}' with keyword argument 'training'. During FX tracing, this "
                "will likely be baked in as a constant value. Consider replacing this function by a "
                "module to properly encapsulate its training flag.",
                stacklevel=3,
            )
        if is_message_passing_op(self.module, node.op, node.target):
            return "node"
        if is_global_pooling_op(self.module, node.op, node.target):
            return "graph"
        if node.op in ("call_module", "call_method", "call_function"):
            if self.has_edge_level_arg(node):
                return "edge"
            if self.has_node_level_arg(node):
                return "node"
        return "graph"

    def _init_submodule(self, module: torch.nn.Module, target: str) -> torch.nn.Module:
        if isinstance(module, (torch.nn.ModuleList, torch.nn.Sequential)):
            return torch.nn.ModuleList(
                [self._init_submodule(sub, f"{target}.{i}") for i, sub in enumerate(module)]
            )
        if isinstance(module, torch.nn.ModuleDict):
            return torch.nn.ModuleDict(
                {key: self._init_submodule(sub, f"{target}.{key}") for key, sub in module._modules.items()}
            )
        if not isinstance(module, (MessagePassing, Aggregation)) and _holds_message_passing(module):
            # traced through (see the tracing rules): a container of rewritten children
            shell = copy.copy(module)
            shell._modules = {
                name: (self._init_submodule(sub, f"{target}.{name}") if sub is not None else None)
                for name, sub in module._modules.items()
            }
            return shell
        return self.init_submodule(module, target)

    def _print(self, when: str) -> None:
        print(f"-- graph {when} the transformation --")
        try:
            self.graph.print_tabular()  # needs the optional package tabulate
        except ImportError:
            print(self.graph)
        print()
        code = self.graph.python_code("self")
        print(code.src if hasattr(code, "src") else code)

    # -- levels -------------------------------------------------------------------------------
    def _is_level(self, node: Node, name: str) -> bool:
        return self._state.get(node.name) == name

    def _has_level_arg(self, node: Node, name: str) -> bool:
        found = False

        def visit(value: Any) -> Any:
            nonlocal found
            if self._is_level(value, name):
                found = True
            return value

        torch.fx.node.map_arg(node.args, visit)
        torch.fx.node.map_arg(node.kwargs, visit)
        return found

    def is_node_level(self, node: Node) -> bool:
        """Whether ``node`` carries one value per node type."""
        return self._is_level(node, "node")

    def is_edge_level(self, node: Node) -> bool:
        """Whether ``node`` carries one value per edge type."""
        return self._is_level(node, "edge")

    def is_graph_level(self, node: Node) -> bool:
        """Whether ``node`` carries one value shared by all types."""
        return self._is_level(node, "graph")

    def has_node_level_arg(self, node: Node) -> bool:
        return self._has_level_arg(node, "node")

    def has_edge_level_arg(self, node: Node) -> bool:
        return self._has_level_arg(node, "edge")

    def has_graph_level_arg(self, node: Node) -> bool:
        return self._has_level_arg(node, "graph")

    # -- graph helpers --------------------------------------------------------------------------
    def find_by_name(self, name: str) -> Node | None:
        """The graph node called ``name``, or ``None``."""
        for node in self.graph.nodes:
            if node.name == name:
                return node
        return None

    def find_by_target(self, target: Any) -> Node | None:
        """The first graph node with target ``target``, or ``None``."""
        for node in self.graph.nodes:
            if node.target == target:
                return node
        return None

    def replace_all_uses_with(self, to_replace: Node, replace_with: Node) -> None:
        """Make every node after ``replace_with`` use it instead of ``to_replace``."""

        def swap(n: Node) -> Node:
            return replace_with if n is to_replace else n

        node = replace_with.next
        while node.op != "root":
            node.args = torch.fx.node.map_arg(node.args, swap)
            node.kwargs = torch.fx.node.map_arg(node.kwargs, swap)
            node = node.next


def _check_input_map(input_map: Any, graph: Graph) -> dict[str, str] | None:
    if input_map is None:
        return None
    if not isinstance(input_map, dict):
        raise TypeError(
            f"'input_map' must be a dict {{argument: 'node' | 'edge'}}, got {type(input_map).__name__}"
        )
    names = [n.name for n in graph.nodes if n.op == "placeholder"]
    for key, level in input_map.items():
        if key not in names:
            raise ValueError(f"'input_map' names {key!r}, which is not an argument of forward ({names})")
        if level not in _LEVELS:
            raise ValueError(f"'input_map[{key!r}]' must be 'node' or 'edge', got {level!r}")
    return dict(input_map)


def dict_type(node: Node, edge_level: bool) -> None:
    """Annotate a placeholder or output as a dictionary of its former type."""
    if node.type is not None:
        key = tuple[str, str, str] if edge_level else str
        node.type = typing.Dict[key, node.type]  # noqa: UP006 - a runtime annotation for fx's code


def map_nested(value: Any, leaf: Callable[[Any], Any]) -> Any:
    """``value`` with ``leaf`` applied to every item that is not a dict, list or tuple, through
    nested dicts, lists and tuples (rebuilt as ``dict``, ``list``, ``tuple``): how the ``output``
    rewrites of :func:`~gnn.hetero.to_hetero` and ``to_hetero_with_bases`` reach every returned node."""
    if isinstance(value, dict):
        return {k: map_nested(item, leaf) for k, item in value.items()}
    if isinstance(value, list):
        return [map_nested(item, leaf) for item in value]
    if isinstance(value, tuple):
        return tuple(map_nested(item, leaf) for item in value)
    return leaf(value)
