r""":func:`to_hetero_with_bases`: a homogeneous model turned heterogeneous by basis decomposition."""

from __future__ import annotations

import copy
import warnings
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor
from torch.fx import GraphModule, Node
from torch.nn import Parameter

from gnn.core import Linear, MessagePassing
from gnn.core import validation as v
from gnn.core.utils import is_sparse

from ._utils import (
    Metadata,
    TypeKey,
    bipartite_edge_index,
    check_dict,
    edge_index_of,
    key2str,
    read_metadata,
    require,
    warn_invalid_names,
    warn_unused_node_types,
)
from .fx import Transformer, dict_type, map_nested

__all__ = ["HeteroBasisConv", "LinearAlign", "ToHeteroWithBasesTransformer", "to_hetero_with_bases"]


def to_hetero_with_bases(
    module: torch.nn.Module,
    metadata: Metadata,
    num_bases: int,
    in_channels: dict[str, int] | None = None,
    input_map: dict[str, str] | None = None,
    debug: bool = False,
) -> GraphModule:
    r"""Convert a homogeneous GNN into a heterogeneous one whose message-passing layers are
    shared through a basis decomposition (the "Modeling Relational Data with Graph
    Convolutional Networks" regularization).

    Each message-passing layer :math:`f^{(\ell)}` becomes ``num_bases`` copies
    :math:`f^{(\ell, b)}`, and a message along an edge of type :math:`r` is weighted by a
    learned scalar :math:`a^{(\ell)}_{r,b}` per copy:

    .. math::
        \mathbf{h}^{(\ell)}_v = \sum_{b=1}^{B} f^{(\ell, b)}\big(\mathbf{h}^{(\ell-1)}_v,
        \{ a^{(\ell)}_{r,b}\, \mathbf{m}^{(\ell,b)}_{w \to v} : w \in \mathcal{N}^{(r)}(v),
        r \in \mathcal{R}\}\big)

    The whole graph is processed at once: node features of all types are concatenated (in
    ``metadata`` order), edge types are stacked into one graph, and the model's other
    modules are applied to the concatenation, unchanged. Node types of different feature
    sizes are first mapped to a common size by ``in_channels`` (one lazy
    ``Linear(-1, in_channels[arg], bias=False)`` per type, the module ``align_lin__<arg>``).

    Parameters as in PyG: the layer at ``conv1`` becomes a :class:`HeteroBasisConv` with
    ``conv1.convs.<b>.<the layer's parameters>`` and ``conv1.convs.<b>.edge_type_weight``
    (``[1, num_edge_types]``).

    Args:
        module: the homogeneous model.
        metadata: ``(node_types, edge_types)``, or a ``HeteroData``.
        num_bases: number of bases ``B``.
        in_channels: common feature size per argument name (``{"x": 32}``) for inputs whose
            node types differ in size.
        input_map: the level (``"node"``/``"edge"``) of arguments whose name does not tell.
        debug: print the graph before and after the transformation.

    Returns:
        A :class:`torch.fx.GraphModule` called with dictionaries (``model(x_dict,
        edge_index_dict)``) that returns dictionaries.

    Example:
        >>> model = to_hetero_with_bases(GNN(), metadata, num_bases=3, in_channels={"x": 16})
        >>> out = model(x_dict, edge_index_dict)
    """
    transformer = ToHeteroWithBasesTransformer(module, metadata, num_bases, in_channels, input_map, debug)
    return transformer.transform()


# -- run time helpers (called by the transformed model) -------------------------------------------
def _graph_size(value: Any, name: str) -> int:
    if is_sparse(value):
        return edge_index_of(value, name).size(1)
    if (
        isinstance(value, Tensor)
        and not value.is_floating_point()
        and value.dim() == 2
        and value.size(0) == 2
    ):
        return value.size(1)
    if isinstance(value, Tensor) and value.dim() >= 1:
        return value.size(0)
    raise TypeError(f"'{name}' must hold tensors, got {v.describe(value)}")


def node_offsets(x_dict: Any, node_types: list[str], name: str) -> dict[str, int]:
    """``{node type: first row}`` of each type in the concatenation of ``x_dict``."""
    x_dict = check_dict(x_dict, name)
    out: dict[str, int] = {}
    total = 0
    for key in node_types:
        value = require(x_dict, key, name)
        if not isinstance(value, Tensor) or value.dim() < 1:
            raise ValueError(f"'{name}[{key!r}]' must be a [N, ...] tensor, got {v.describe(value)}")
        out[key] = total
        total = total + value.size(0)
    return out


def edge_offsets(edge_dict: Any, edge_types: list[tuple[str, str, str]], name: str) -> dict[Any, int]:
    """``{edge type: first edge}`` of each type in the stacked graph."""
    edge_dict = check_dict(edge_dict, name)
    out: dict[Any, int] = {}
    total = 0
    for key in edge_types:
        out[key] = total
        total = total + _graph_size(require(edge_dict, key, name), f"{name}[{key!r}]")
    return out


def edge_type_vector(edge_dict: Any, edge_types: list[tuple[str, str, str]], name: str) -> Tensor:
    """``[E]`` the index (in ``edge_types``) of the type of each edge of the stacked graph."""
    edge_dict = check_dict(edge_dict, name)
    sizes, device = [], None
    for key in edge_types:
        value = require(edge_dict, key, name)
        sizes.append(_graph_size(value, f"{name}[{key!r}]"))
        device = value.device if isinstance(value, Tensor) else device
    types = torch.arange(len(edge_types), device=device)
    return types.repeat_interleave(torch.tensor(sizes, device=device), output_size=sum(sizes))


def group_nodes(x_dict: Any, node_types: list[str], name: str) -> Tensor:
    """The node-level values of all types, concatenated (along the nodes, dimension 0) in
    ``node_types`` order."""
    x_dict = check_dict(x_dict, name)
    parts = [require(x_dict, key, name) for key in node_types]
    return parts[0] if len(parts) == 1 else torch.cat(parts, dim=0)


def group_edges(
    edge_dict: Any, edge_types: list[tuple[str, str, str]], offsets: dict[str, int] | None, name: str
) -> Tensor:
    """The edge-level values of all types stacked: graphs (``[2, E]`` or sparse) with their
    node indices shifted to the concatenated node table, other tensors concatenated."""
    edge_dict = check_dict(edge_dict, name)
    parts = [require(edge_dict, key, name) for key in edge_types]
    first = parts[0]
    is_graph = is_sparse(first) or (
        isinstance(first, Tensor)
        and not first.is_floating_point()
        and first.dim() == 2
        and first.size(0) == 2
    )
    if not is_graph:
        return first if len(parts) == 1 else torch.cat(parts, dim=0)
    graphs = [edge_index_of(p, f"{name}[{key!r}]") for p, key in zip(parts, edge_types)]
    if len(graphs) == 1 and not is_sparse(first):
        return first
    if offsets is None:
        raise ValueError(
            f"cannot shift the node indices of '{name}': the model needs a node-level argument "
            f"(e.g. 'x') before '{name}' in its forward header"
        )
    src = [offsets[key[0]] for key in edge_types]
    dst = [offsets[key[-1]] for key in edge_types]
    return bipartite_edge_index(graphs, src, dst)


def split_output(output: Tensor, offsets: dict[Any, int]) -> dict[Any, Tensor]:
    """Cut the rows (dimension 0) of ``output`` back into one tensor per type."""
    starts = list(offsets.values()) + [output.size(0)]
    sizes = [starts[i + 1] - starts[i] for i in range(len(offsets))]
    return dict(zip(offsets, output.split(sizes, dim=0)))


class ToHeteroWithBasesTransformer(Transformer):
    """The :class:`~gnn.hetero.fx.Transformer` behind :func:`to_hetero_with_bases`."""

    def __init__(
        self,
        module: torch.nn.Module,
        metadata: Metadata,
        num_bases: int,
        in_channels: dict[str, int] | None = None,
        input_map: dict[str, str] | None = None,
        debug: bool = False,
    ) -> None:
        self.metadata = read_metadata(metadata)
        if not isinstance(num_bases, int) or isinstance(num_bases, bool) or num_bases < 1:
            raise ValueError(f"'num_bases' must be a positive int, got {num_bases!r}")
        if in_channels is not None and not isinstance(in_channels, Mapping):
            raise TypeError(f"'in_channels' must be a dict {{argument: size}}, got {v.describe(in_channels)}")
        super().__init__(module, input_map, debug)
        self.num_bases = num_bases
        self.in_channels = dict(in_channels or {})
        names = [n.name for n in self.graph.nodes if n.op == "placeholder"]
        for arg, size in self.in_channels.items():
            if arg not in names:
                raise ValueError(
                    f"'in_channels' names {arg!r}, which is not an argument of forward ({names})"
                )
            if not isinstance(size, int) or isinstance(size, bool) or size < 1:
                raise ValueError(f"'in_channels[{arg!r}]' must be a positive int, got {size!r}")
        warn_unused_node_types(self.metadata, stacklevel=4)
        warn_invalid_names(self.metadata, stacklevel=4)
        self.node_type2id = {k: i for i, k in enumerate(self.metadata[0])}
        self.edge_type2id = {k: i for i, k in enumerate(self.metadata[1])}

    def transform(self) -> GraphModule:
        self._node_offsets: Node | None = None
        self._edge_offsets: Node | None = None
        self._edge_type: Node | None = None
        self._grouped: dict[Node, Node] = {}
        try:
            return super().transform()
        finally:
            del self._node_offsets, self._edge_offsets, self._edge_type, self._grouped

    def placeholder(self, node: Node, target: Any, name: str) -> None:
        edge_level = self.is_edge_level(node)
        dict_type(node, edge_level)
        node_types, edge_types = self.metadata
        out = node
        if edge_level and self._edge_offsets is None:
            self.graph.inserting_after(out)
            out = self._edge_offsets = self.graph.create_node(
                "call_function", edge_offsets, (node, edge_types, name), name="edge_offset_dict"
            )
            self.graph.inserting_after(out)
            out = self._edge_type = self.graph.create_node(
                "call_function", edge_type_vector, (node, edge_types, name), name="edge_type"
            )
        elif not edge_level and self._node_offsets is None:
            self.graph.inserting_after(out)
            out = self._node_offsets = self.graph.create_node(
                "call_function", node_offsets, (node, node_types, name), name="node_offset_dict"
            )
        source = node
        if name in self.in_channels:
            attr = f"align_lin__{name}"
            setattr(self.module, attr, LinearAlign(self.metadata[int(edge_level)], self.in_channels[name]))
            self.graph.inserting_after(out)
            out = source = self.graph.create_node("call_module", attr, (node,), name=f"{name}__aligned")
            self._state[out.name] = self._state[name]
        self.graph.inserting_after(out)
        if edge_level:
            grouped = self.graph.create_node(
                "call_function",
                group_edges,
                (source, edge_types, self._node_offsets, name),
                name=f"{name}__grouped",
            )
        else:
            grouped = self.graph.create_node(
                "call_function", group_nodes, (source, node_types, name), name=f"{name}__grouped"
            )
        self._state[grouped.name] = "edge" if edge_level else "node"
        self._grouped[node] = grouped
        self.replace_all_uses_with(node, grouped)

    def call_message_passing_module(self, node: Node, target: Any, name: str) -> None:
        if self._edge_type is None:
            raise ValueError(
                f"'{target}' is a message-passing layer, but the model has no edge-level argument "
                "(e.g. 'edge_index') to read the edge types from"
            )
        node.args = (self._edge_type,) + tuple(node.args)

    def output(self, node: Node, target: Any, name: str) -> None:
        def split(value: Any) -> Any:
            if isinstance(value, Node) and (self.is_node_level(value) or self.is_edge_level(value)):
                offsets = self._edge_offsets if self.is_edge_level(value) else self._node_offsets
                if offsets is None:
                    return value
                self.graph.inserting_before(node)
                return self.graph.create_node(
                    "call_function", split_output, (value, offsets), name=f"{value.name}__split"
                )
            return value

        result = node.args[0]
        if isinstance(result, Node) and not self.is_graph_level(result):
            dict_type(node, self.is_edge_level(result))
        else:
            node.type = None
        node.args = (map_nested(result, split),)

    def init_submodule(self, module: torch.nn.Module, target: str) -> torch.nn.Module:
        if not isinstance(module, MessagePassing):
            return module
        return HeteroBasisConv(module, len(self.metadata[1]), self.num_bases)


def _weigh_messages(module: MessagePassing, inputs: Any, output: Tensor) -> Tensor:
    """Message forward hook of the basis copies: scale each message by its edge type's weight."""
    edge_type = module._edge_type
    dim = module.node_dim % output.dim()
    if edge_type.size(0) != output.size(dim):
        raise ValueError(
            f"Number of messages ({output.size(dim)}) does not match with the number of original edges "
            f"({edge_type.size(0)}). Does your message passing layer create additional self-loops? "
            "Try to remove them via 'add_self_loops=False'"
        )
    weight = module.edge_type_weight.view(-1).index_select(0, edge_type)
    shape = [1] * output.dim()
    shape[dim] = -1
    return output * weight.view(shape)


class HeteroBasisConv(torch.nn.Module):
    r"""``num_bases`` copies of a message-passing layer whose messages are weighted by a
    learned scalar per edge type and copy; the copies' outputs are summed.

    .. math::
        \mathbf{h}_v = \sum_{b=1}^{B} f^{(b)}\big(\ldots, a_{r_e, b}\, \mathbf{m}^{(b)}_e, \ldots\big)

    Args:
        module: the layer to copy.
        num_relations: number of edge types ``R``.
        num_bases: number of copies ``B``.

    Shapes:
        ``forward(edge_type [E], *args, **kwargs)``: the layer's own arguments after the
        ``[E]`` edge types. Parameters: ``convs.<b>.*`` and ``convs.<b>.edge_type_weight [1, R]``.
    """

    def __init__(self, module: MessagePassing, num_relations: int, num_bases: int) -> None:
        super().__init__()
        self.num_relations = num_relations
        self.num_bases = num_bases
        params = list(module.parameters())
        device = params[0].device if params else None
        self.convs = torch.nn.ModuleList()
        for _ in range(num_bases):
            conv = copy.deepcopy(module)
            conv.fuse = False
            conv.edge_type_weight = Parameter(torch.empty(1, num_relations, device=device))
            torch.nn.init.xavier_uniform_(conv.edge_type_weight)
            conv.register_message_forward_hook(_weigh_messages)
            self.convs.append(conv)
        if num_bases > 1:
            self.reset_parameters()

    def reset_parameters(self) -> None:
        """Reset every copy and draw new edge-type weights (Glorot)."""
        for conv in self.convs:
            if hasattr(conv, "reset_parameters"):
                conv.reset_parameters()
            elif sum(p.numel() for p in conv.parameters()) > conv.edge_type_weight.numel():
                warnings.warn(
                    f"'{conv}' will be duplicated, but its parameters cannot be reset. To suppress this "
                    f"warning, add a 'reset_parameters()' method to '{conv}'",
                    stacklevel=2,
                )
            torch.nn.init.xavier_uniform_(conv.edge_type_weight)

    def forward(self, edge_type: Tensor, *args: Any, **kwargs: Any) -> Tensor:
        """Sum of the copies' outputs on the same inputs."""
        out: Tensor | None = None
        for conv in self.convs:
            conv._edge_type = edge_type
            try:
                res = conv(*args, **kwargs)
            finally:
                del conv._edge_type
            out = res if out is None else out + res
        assert out is not None
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}(num_relations={self.num_relations}, num_bases={self.num_bases})"


class LinearAlign(torch.nn.Module):
    """One lazy ``Linear(-1, out_channels, bias=False)`` per type, mapping every type's
    features to the same size.

    Shapes: ``{type: [N_t, F_t]}`` -> ``{type: [N_t, out_channels]}``; parameters
    ``lins.<key2str(type)>.weight``.
    """

    def __init__(self, keys: list[TypeKey], out_channels: int) -> None:
        super().__init__()
        self.out_channels = out_channels
        self.lins = torch.nn.ModuleDict({key2str(key): Linear(-1, out_channels, bias=False) for key in keys})

    def forward(self, x_dict: dict[Any, Tensor]) -> dict[Any, Tensor]:
        x_dict = check_dict(x_dict, "x_dict")
        out = {}
        for key, x in x_dict.items():
            name = key2str(key)
            if name in self.lins:
                out[key] = self.lins[name](x)
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}(num_relations={len(self.lins)}, out_channels={self.out_channels})"
