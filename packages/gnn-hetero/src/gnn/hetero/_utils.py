"""Helpers shared by the modules of gnn-hetero (not public API).

* metadata: :func:`read_metadata` accepts ``(node_types, edge_types)`` or any object with a
  ``metadata()`` method (gnn's ``HeteroData``, PyG's ``HeteroData``);
* names: :func:`key2str` (the ``ModuleDict`` key of a node or edge type in ``to_hetero``
  models) and :class:`TypeModuleDict` / :class:`TypeParameterDict` (dictionaries keyed by
  node or edge types, with the internal keys PyG's checkpoints use);
* graphs: :func:`bipartite_edge_index`, the edge types of a dictionary stacked into one
  ``[2, E]`` graph between concatenated node tables (cached per graph), and
  :func:`edge_index_of`, a dictionary entry as ``[2, E]``;
* checks: :func:`check_dict`, :func:`check_self_loops`, :func:`warn_unused_node_types`.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from gnn.core import validation as v
from gnn.core.cache import memo
from gnn.core.utils import is_sparse, to_edge_index

NodeType = str
EdgeType = tuple[str, str, str]
Metadata = tuple[list[NodeType], list[EdgeType]]
TypeKey = NodeType | EdgeType

__all__ = [
    "EdgeType",
    "Metadata",
    "NodeType",
    "TypeModuleDict",
    "TypeParameterDict",
    "bipartite_edge_index",
    "check_dict",
    "check_self_loops",
    "edge_index_of",
    "key2str",
    "read_metadata",
    "warn_unused_node_types",
]


# -- metadata ---------------------------------------------------------------------------------
def read_metadata(metadata: Any, name: str = "metadata", *, allow_empty: bool = False) -> Metadata:
    """``(node_types, edge_types)`` as lists, checked.

    Args:
        metadata: ``(node_types, edge_types)`` (lists of strings and of string triplets), or an
            object with a ``metadata()`` method such as a ``HeteroData``.
        name: the argument name used in errors.
        allow_empty: accept no node types / no edge types.

    Raises:
        TypeError / ValueError naming ``name`` and the offending type.
    """
    if callable(getattr(metadata, "metadata", None)):
        metadata = metadata.metadata()
    if not isinstance(metadata, (tuple, list)) or len(metadata) != 2:
        raise TypeError(
            f"'{name}' must be a pair (node_types, edge_types) or a HeteroData, got {v.describe(metadata)}"
        )
    node_types, edge_types = metadata
    if isinstance(node_types, str) or not isinstance(node_types, Iterable):
        raise TypeError(f"'{name}[0]' must be a list of node type names, got {v.describe(node_types)}")
    if isinstance(edge_types, str) or not isinstance(edge_types, Iterable):
        raise TypeError(
            f"'{name}[1]' must be a list of (src, rel, dst) edge types, got {v.describe(edge_types)}"
        )
    node_types = list(node_types)
    edge_types = [tuple(e) if isinstance(e, list) else e for e in edge_types]
    for node_type in node_types:
        if not isinstance(node_type, str):
            raise TypeError(f"'{name}[0]' must hold node type names (str), got {node_type!r}")
    if len(set(node_types)) != len(node_types):
        raise ValueError(f"'{name}[0]' names a node type twice: {node_types}")
    known = set(node_types)
    for edge_type in edge_types:
        if (
            not isinstance(edge_type, tuple)
            or len(edge_type) != 3
            or not all(isinstance(part, str) for part in edge_type)
        ):
            raise TypeError(f"'{name}[1]' must hold (src, rel, dst) string triplets, got {edge_type!r}")
        for end in (edge_type[0], edge_type[2]):
            if end not in known:
                raise ValueError(
                    f"edge type {edge_type} of '{name}' refers to node type {end!r}, which is not among "
                    f"the node types {node_types}"
                )
    if len(set(edge_types)) != len(edge_types):
        raise ValueError(f"'{name}[1]' names an edge type twice: {edge_types}")
    if not allow_empty and (not node_types or not edge_types):
        raise ValueError(
            f"'{name}' must name at least one node type and one edge type, got {len(node_types)} node "
            f"types and {len(edge_types)} edge types"
        )
    return node_types, edge_types


def warn_unused_node_types(metadata: Metadata, stacklevel: int = 3) -> None:
    """Warn about node types that are no edge type's destination (they never get messages)."""
    node_types, edge_types = metadata
    dst = {edge_type[-1] for edge_type in edge_types}
    unused = [t for t in node_types if t not in dst]
    if unused:
        warnings.warn(
            f"There exist node types ({set(unused)}) whose representations do not get updated during "
            "message passing as they do not occur as destination type in any edge type. This may lead "
            "to unexpected behavior.",
            stacklevel=stacklevel,
        )


def warn_invalid_names(metadata: Metadata, stacklevel: int = 3) -> None:
    """Warn about type names that are not Python identifiers (they become module names)."""
    node_types, edge_types = metadata
    for name in list(node_types) + [rel for _, rel, _ in edge_types]:
        if not name.isidentifier():
            warnings.warn(
                f"The type '{name}' contains invalid characters which may lead to unexpected behavior. "
                "To avoid any issues, ensure that your types only contain letters, numbers and underscores.",
                stacklevel=stacklevel,
            )


def check_self_loops(module: torch.nn.Module, edge_types: Sequence[EdgeType]) -> None:
    """A layer that adds self loops cannot serve an edge type between two node types."""
    bipartite = [e for e in edge_types if e[0] != e[-1]]
    if bipartite and getattr(module, "add_self_loops", False):
        raise ValueError(
            f"'add_self_loops' attribute set to 'True' on module '{module}' for use with edge type(s) "
            f"{bipartite}, which connect different node types: self loops would join unrelated nodes. "
            "Build the layer with add_self_loops=False."
        )


# -- names ------------------------------------------------------------------------------------
def key2str(key: TypeKey) -> str:
    """The module name of a node type (``"paper"``) or an edge type
    (``("paper", "cites", "paper")`` -> ``"paper__cites__paper"``); spaces, ``-`` and ``:`` become ``_``."""
    text = "__".join(key) if isinstance(key, tuple) else key
    return text.replace(" ", "_").replace("-", "_").replace(":", "_")


def _internal_key(key: TypeKey, reserved: frozenset[str]) -> str:
    """The name under which a dictionary entry is stored: an edge type ``(a, b, c)`` is
    ``"<a___b___c>"``, a name clashing with an attribute of the container is ``"<name>"``,
    and ``.`` becomes ``#`` (``.`` separates names in a ``state_dict``)."""
    if isinstance(key, tuple):
        if len(key) < 2 or not all(isinstance(k, str) for k in key):
            raise TypeError(f"a tuple key must hold at least two strings, got {key!r}")
        key = "<" + "___".join(key) + ">"
    if not isinstance(key, str):
        raise TypeError(f"keys must be strings or tuples of strings, got {v.describe(key)}")
    if key in reserved:
        key = f"<{key}>"
    return key.replace(".", "#")


def _external_key(key: str, reserved: frozenset[str]) -> TypeKey:
    key = key.replace("#", ".")
    if key.startswith("<") and key.endswith(">"):
        inner = key[1:-1]
        if inner in reserved:
            return inner
        if "___" in inner:
            return tuple(inner.split("___"))
    return key


_MODULE_DICT_ATTRS = frozenset(dir(torch.nn.ModuleDict))
_PARAMETER_DICT_ATTRS = frozenset(dir(torch.nn.ParameterDict))


class _TypeKeyed:
    """Key translation of :class:`TypeModuleDict` and :class:`TypeParameterDict`: mixed in before
    the torch container, it stores every entry under its :func:`_internal_key` name (``_reserved``:
    the container's attribute names) and gives back the type keys in ``keys``/``items``/``iter``."""

    _reserved: frozenset[str] = frozenset()

    def __getitem__(self, key: TypeKey) -> Any:
        return super().__getitem__(_internal_key(key, self._reserved))  # type: ignore[misc]

    def __setitem__(self, key: TypeKey, value: Any) -> None:
        super().__setitem__(_internal_key(key, self._reserved), value)  # type: ignore[misc]

    def __delitem__(self, key: TypeKey) -> None:
        super().__delitem__(_internal_key(key, self._reserved))  # type: ignore[misc]

    def __contains__(self, key: object) -> bool:
        try:
            return super().__contains__(_internal_key(key, self._reserved))  # type: ignore[arg-type, misc]
        except TypeError:
            return False

    def keys(self) -> list[TypeKey]:
        return [_external_key(k, self._reserved) for k in super().keys()]  # type: ignore[misc]

    def items(self) -> list[tuple[TypeKey, Any]]:
        return [(_external_key(k, self._reserved), m) for k, m in super().items()]  # type: ignore[misc]

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.keys())


class TypeModuleDict(_TypeKeyed, torch.nn.ModuleDict):  # type: ignore[misc]
    """A :class:`torch.nn.ModuleDict` whose keys may be edge types (tuples) or contain ``.``.

    Entries are stored under :func:`_internal_key` names, so that ``state_dict`` keys are
    those of PyG's ``ModuleDict`` (``convs.<paper___cites___paper>.lin.weight``).
    """

    _reserved = _MODULE_DICT_ATTRS

    def __init__(self, modules: Mapping[TypeKey, torch.nn.Module] | None = None) -> None:
        super().__init__()
        for key, module in (modules or {}).items():
            self[key] = module


class TypeParameterDict(_TypeKeyed, torch.nn.ParameterDict):  # type: ignore[misc]
    """A :class:`torch.nn.ParameterDict` with the keys of :class:`TypeModuleDict`."""

    _reserved = _PARAMETER_DICT_ATTRS

    def __init__(self, parameters: Mapping[TypeKey, torch.nn.Parameter] | None = None) -> None:
        super().__init__()
        for key, parameter in (parameters or {}).items():
            self[key] = parameter


# -- dictionaries -----------------------------------------------------------------------------
def check_dict(value: Any, name: str) -> Mapping[Any, Any]:
    """``value`` is a mapping (``x_dict``, ``edge_index_dict``, ...)."""
    if not isinstance(value, Mapping):
        raise TypeError(f"'{name}' must be a dict keyed by node or edge type, got {v.describe(value)}")
    return value


def require(mapping: Mapping[Any, Any], key: TypeKey, name: str, why: str = "") -> Any:
    """``mapping[key]``, or a ``ValueError`` that names the missing type and what the dict holds."""
    try:
        return mapping[key]
    except KeyError:
        kind = "edge type" if isinstance(key, tuple) else "node type"
        raise ValueError(f"'{name}' has no entry for {kind} {key!r}{why}; it holds {list(mapping)}") from None


# -- graphs -----------------------------------------------------------------------------------
def edge_index_of(value: Any, name: str) -> Tensor:
    """A graph argument as ``[2, E]`` (senders in row 0); a sparse ``adj_t`` is converted."""
    if isinstance(value, Tensor) and value.layout == torch.strided:
        return v.check_edge_index(value, name)
    if is_sparse(value):
        return to_edge_index(value)[0]
    raise TypeError(
        f"'{name}' must be a [2, E] integer tensor or a sparse adjacency, got {v.describe(value)}"
    )


def _stack_edges(
    edge_indices: Sequence[Tensor], src_offsets: Sequence[int], dst_offsets: Sequence[int]
) -> Tensor:
    dtype = torch.int64 if any(ei.dtype == torch.int64 for ei in edge_indices) else edge_indices[0].dtype
    parts = []
    for ei, s, d in zip(edge_indices, src_offsets, dst_offsets):
        shift = torch.tensor([[s], [d]], dtype=dtype, device=ei.device)
        parts.append(ei.to(dtype) + shift)
    return torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]


def bipartite_edge_index(
    edge_indices: Sequence[Tensor], src_offsets: Sequence[int], dst_offsets: Sequence[int]
) -> Tensor:
    """The graphs ``edge_indices[r]`` (``[2, E_r]``, senders in row 0) as one ``[2, sum E_r]``
    graph whose senders are shifted by ``src_offsets[r]`` and receivers by ``dst_offsets[r]``.

    The result is cached with the first graph (for these very graph tensors and offsets), so
    that a static graph keeps one stacked ``edge_index`` and with it one CSR form.
    """
    if not edge_indices:
        raise ValueError("at least one edge type is needed")
    if torch.compiler.is_compiling():
        return _stack_edges(edge_indices, src_offsets, dst_offsets)
    key = ("hetero_stack", tuple(int(s) for s in src_offsets), tuple(int(d) for d in dst_offsets))
    return memo(
        edge_indices[0],
        key,
        lambda: _stack_edges(edge_indices, src_offsets, dst_offsets),
        *edge_indices[1:],
    )
