"""A heterogeneous graph: several node types and typed relations.

Node attributes live in one store per node type (``data['paper'].x``), edge
attributes in one store per edge type ``(src, relation, dst)``
(``data['author', 'writes', 'paper'].edge_index``, row 0 indexing ``src``
nodes, row 1 ``dst`` nodes); graph-level attributes are set on the object
itself (``data.y``). Accessors mirror PyTorch Geometric's ``HeteroData``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from itertools import chain
from typing import Any

import torch
from torch import Tensor

from .. import validation as v
from .container import GraphContainer, check_edge_rows, check_node_rows, count_edges, feature_size
from .data import Storage, default_cat_dim, format_value, is_index_key

NodeType = str
EdgeType = tuple[str, str, str]
QueryType = NodeType | EdgeType | tuple[str, str]


class NodeStorage(Storage):
    """Attributes of one node type; ``num_nodes`` is explicit or read off
    ``x``/``pos``/``batch``."""

    @property
    def node_type(self) -> str:
        return self._key

    @property
    def num_nodes(self) -> int | None:
        mapping = self._mapping
        if "num_nodes" in mapping:
            return int(mapping["num_nodes"])
        for key in ("x", "pos", "batch"):
            value = mapping.get(key)
            if isinstance(value, Tensor) and value.dim() > 0:
                return value.size(0)
        return None

    @num_nodes.setter
    def num_nodes(self, value: int | None) -> None:
        self["num_nodes"] = None if value is None else int(value)

    @property
    def num_node_features(self) -> int:
        return feature_size(self._mapping.get("x"))

    @property
    def num_features(self) -> int:
        return self.num_node_features


class EdgeStorage(Storage):
    """Attributes of one edge type ``(src, relation, dst)``."""

    @property
    def edge_type(self) -> EdgeType:
        return self._key

    @property
    def num_edges(self) -> int:
        return count_edges(self._mapping)

    @property
    def num_edge_features(self) -> int:
        return feature_size(self._mapping.get("edge_attr"))


def _store_block(store: Storage) -> str:
    items = store.items()
    if not items:
        return "{}"
    if len(items) == 1:
        key, value = items[0]
        text = format_value(value, 4)
        if "\n" not in text:
            return f"{{ {key}={text} }}"
    lines = [f"    {key}={format_value(value, 4)}," for key, value in items]
    return "{\n" + "\n".join(lines) + "\n  }"


class HeteroData(GraphContainer):
    r"""A heterogeneous graph with typed node and edge stores.

    ``data[node_type]`` is a :class:`NodeStorage`, ``data[src, rel, dst]`` an
    :class:`EdgeStorage` (both created on first access);
    ``data[rel]`` finds the edge type with that relation when it is unique,
    ``data[src, dst]`` the one between those node types. ``x_dict``,
    ``edge_index_dict`` (and any ``<key>_dict``) collect an attribute over
    the types that have it.

    Batching contract: an index key of edge type ``(src, rel, dst)`` is
    shifted by ``[[N_src], [N_dst]]`` per preceding graph, so row 0 and row 1
    follow their own node type's offsets.

    Example::

        >>> data = HeteroData()
        >>> data['paper'].x = torch.randn(3, 8)
        >>> data['author'].x = torch.randn(2, 4)
        >>> data['author', 'writes', 'paper'].edge_index = torch.tensor([[0, 1], [2, 0]])
        >>> data.metadata()
        (['paper', 'author'], [('author', 'writes', 'paper')])
        >>> data.num_nodes
        5
    """

    def __init__(self, _mapping: Mapping[Any, Any] | None = None, **kwargs: Any) -> None:
        object.__setattr__(self, "_global_store", Storage())
        object.__setattr__(self, "_node_store_dict", {})
        object.__setattr__(self, "_edge_store_dict", {})
        for key, value in chain((_mapping or {}).items(), kwargs.items()):
            if isinstance(key, str) and "__" in key and isinstance(value, Mapping):
                key = tuple(key.split("__"))
            if isinstance(value, Mapping):
                store = self[key]
                for attr, item in value.items():
                    store[attr] = item
            else:
                setattr(self, key, value)

    # stores -------------------------------------------------------------
    def get_node_store(self, key: NodeType) -> NodeStorage:
        """The store of node type ``key`` (created if missing)."""
        store = self._node_store_dict.get(key)
        if store is None:
            store = NodeStorage(_key=key)
            self._node_store_dict[key] = store
        return store

    def get_edge_store(self, src: str, rel: str, dst: str) -> EdgeStorage:
        """The store of edge type ``(src, rel, dst)`` (created if missing)."""
        key = (src, rel, dst)
        store = self._edge_store_dict.get(key)
        if store is None:
            store = EdgeStorage(_key=key)
            self._edge_store_dict[key] = store
        return store

    def _to_edge_type(self, key: tuple) -> EdgeType:
        if not all(isinstance(part, str) for part in key) or len(key) not in (2, 3):
            raise TypeError(
                f"edge types are (src, rel, dst) or (src, dst) tuples of strings, got {v.describe(key)}"
            )
        if len(key) == 3:
            return key
        src, dst = key
        found = [et for et in self._edge_store_dict if et[0] == src and et[2] == dst]
        if len(found) > 1:
            raise ValueError(f"edge type {key!r} is ambiguous: it matches {found}; name the relation")
        return found[0] if found else (src, "to", dst)

    def __getitem__(self, key: QueryType) -> Any:
        if isinstance(key, tuple):
            return self.get_edge_store(*self._to_edge_type(key))
        if not isinstance(key, str):
            raise TypeError(f"'HeteroData' is indexed by a node type or an edge type, got {v.describe(key)}")
        if key in self._node_store_dict:
            return self._node_store_dict[key]
        if key in self._global_store:
            return self._global_store[key]
        found = [et for et in self._edge_store_dict if et[1] == key]
        if len(found) > 1:
            raise ValueError(f"relation '{key}' is ambiguous: it matches {found}; use the full edge type")
        if found:
            return self._edge_store_dict[found[0]]
        return self.get_node_store(key)

    def __setitem__(self, key: QueryType, value: Any) -> None:
        if isinstance(value, Mapping):
            store = self[key]
            for attr, item in value.items():
                store[attr] = item
        elif isinstance(key, str) and key not in self._node_store_dict:
            self._global_store[key] = value
        else:
            raise TypeError(
                f"a node or edge type {key!r} must be set from a mapping of attributes, got {v.describe(value)}"
            )

    def __delitem__(self, key: QueryType) -> None:
        if isinstance(key, tuple):
            self._edge_store_dict.pop(self._to_edge_type(key), None)
        elif key in self._node_store_dict:
            del self._node_store_dict[key]
        else:
            del self._global_store[key]

    def __contains__(self, key: object) -> bool:
        if isinstance(key, tuple):
            return key in self._edge_store_dict
        return key in self._node_store_dict or key in self._global_store

    def __getattr__(self, key: str) -> Any:
        if key.startswith("_"):
            raise AttributeError(key)
        store = self.__dict__.get("_global_store")
        if store is not None and key in store:
            return store[key]
        if key.endswith("_dict") and len(key) > 5:
            return self.collect(key[:-5], allow_empty=True)
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{key}'")

    def __setattr__(self, key: str, value: Any) -> None:
        if key.startswith("_") or isinstance(getattr(type(self), key, None), property):
            object.__setattr__(self, key, value)
        else:
            self._global_store[key] = value

    def __delattr__(self, key: str) -> None:
        if key in self._global_store:
            del self._global_store[key]
        else:
            object.__delattr__(self, key)

    @property
    def node_types(self) -> list[NodeType]:
        return list(self._node_store_dict)

    @property
    def edge_types(self) -> list[EdgeType]:
        return list(self._edge_store_dict)

    def metadata(self) -> tuple[list[NodeType], list[EdgeType]]:
        """``(node_types, edge_types)``, as :func:`to_hetero` expects."""
        return self.node_types, self.edge_types

    @property
    def node_stores(self) -> list[NodeStorage]:
        return list(self._node_store_dict.values())

    @property
    def edge_stores(self) -> list[EdgeStorage]:
        return list(self._edge_store_dict.values())

    @property
    def stores(self) -> list[Storage]:
        """The global store, then node stores, then edge stores."""
        return [self._global_store, *self.node_stores, *self.edge_stores]

    def node_items(self) -> list[tuple[NodeType, NodeStorage]]:
        return list(self._node_store_dict.items())

    def edge_items(self) -> list[tuple[EdgeType, EdgeStorage]]:
        return list(self._edge_store_dict.items())

    def keys(self) -> list[str]:
        """Attribute names over all stores (each once)."""
        return list(dict.fromkeys(key for store in self.stores for key in store.keys()))

    def collect(self, key: str, allow_empty: bool = False) -> dict[NodeType | EdgeType, Any]:
        """``{type: store[key]}`` over the node and edge types that have ``key``."""
        out = {}
        for type_, store in chain(self._node_store_dict.items(), self._edge_store_dict.items()):
            if key in store:
                out[type_] = store[key]
        if not out and not allow_empty:
            raise KeyError(f"no node or edge type has an attribute '{key}'")
        return out

    @property
    def x_dict(self) -> dict[NodeType, Tensor]:
        return self.collect("x", allow_empty=True)

    @property
    def edge_index_dict(self) -> dict[EdgeType, Tensor]:
        return self.collect("edge_index", allow_empty=True)

    @property
    def edge_attr_dict(self) -> dict[EdgeType, Tensor]:
        return self.collect("edge_attr", allow_empty=True)

    @property
    def y_dict(self) -> dict[NodeType, Tensor]:
        return self.collect("y", allow_empty=True)

    @property
    def batch_dict(self) -> dict[NodeType, Tensor]:
        return self.collect("batch", allow_empty=True)

    # sizes ----------------------------------------------------------------
    @property
    def num_nodes_dict(self) -> dict[NodeType, int | None]:
        return {key: store.num_nodes for key, store in self._node_store_dict.items()}

    @property
    def num_nodes(self) -> int | None:
        """Total number of nodes over all node types (``None`` when unknown)."""
        counts = [n for n in self.num_nodes_dict.values() if n is not None]
        return sum(counts) if counts or not self._node_store_dict else None

    @property
    def num_edges_dict(self) -> dict[EdgeType, int]:
        return {key: store.num_edges for key, store in self._edge_store_dict.items()}

    @property
    def num_edges(self) -> int:
        return sum(self.num_edges_dict.values())

    @property
    def num_node_features(self) -> dict[NodeType, int]:
        return {key: store.num_node_features for key, store in self._node_store_dict.items()}

    @property
    def num_features(self) -> dict[NodeType, int]:
        return self.num_node_features

    @property
    def num_edge_features(self) -> dict[EdgeType, int]:
        return {key: store.num_edge_features for key, store in self._edge_store_dict.items()}

    # batching contract ------------------------------------------------------
    def __cat_dim__(
        self, key: str, value: Any, store: Storage | None = None, *args: Any, **kwargs: Any
    ) -> int:
        """Concatenation dimension: ``-1`` for index keys, ``0`` otherwise."""
        return default_cat_dim(key, value)

    def __inc__(self, key: str, value: Any, store: Storage | None = None, *args: Any, **kwargs: Any) -> Any:
        """Per-graph increment: ``[[N_src], [N_dst]]`` for index keys of an edge
        store, ``max + 1`` for batch vectors, 0 otherwise."""
        if "batch" in key and isinstance(value, Tensor):
            return int(value.max()) + 1 if value.numel() > 0 else 0
        edge_type = getattr(store, "_key", None)
        if is_index_key(key) and isinstance(edge_type, tuple):
            src, _, dst = edge_type
            counts = self.num_nodes_dict
            return torch.tensor([[counts.get(src) or 0], [counts.get(dst) or 0]])
        return 0

    # tensors ----------------------------------------------------------------
    def apply(self, fn: Callable[[Tensor], Any], *keys: str) -> HeteroData:
        """Replace every tensor (of ``keys``, default all) by ``fn(tensor)`` in
        every store, in place; returns ``self``."""
        for store in self.stores:
            store.apply(fn, *keys)
        return self

    def clone(self) -> HeteroData:
        """Deep copy: every tensor is cloned."""
        out = copy.copy(self)
        object.__setattr__(out, "_global_store", self._global_store.clone())
        object.__setattr__(out, "_node_store_dict", {k: s.clone() for k, s in self._node_store_dict.items()})
        object.__setattr__(out, "_edge_store_dict", {k: s.clone() for k, s in self._edge_store_dict.items()})
        return out

    def __copy__(self) -> HeteroData:
        out = type(self).__new__(type(self))
        out.__dict__.update(self.__dict__)
        object.__setattr__(out, "_global_store", copy.copy(self._global_store))
        object.__setattr__(
            out, "_node_store_dict", {k: copy.copy(s) for k, s in self._node_store_dict.items()}
        )
        object.__setattr__(
            out, "_edge_store_dict", {k: copy.copy(s) for k, s in self._edge_store_dict.items()}
        )
        return out

    def _validate(self) -> None:
        """Every store: edge types connect existing node types, each
        ``edge_index`` is ``[2, E]`` with row 0 in ``[0, N_src)`` and row 1 in
        ``[0, N_dst)``, ``edge_attr``/``edge_weight`` have ``E`` rows,
        ``x``/``pos``/``batch`` agree on the node count; errors name the type
        and attribute."""
        for node_type, store in self._node_store_dict.items():
            check_node_rows(store, f"{node_type}.")
        counts = self.num_nodes_dict
        for edge_type, store in self._edge_store_dict.items():
            src, _, dst = edge_type
            for end in (src, dst):
                if end not in self._node_store_dict:
                    raise ValueError(
                        f"edge type {edge_type} refers to node type '{end}', which does not exist"
                    )
            edge_index = store.get("edge_index")
            if edge_index is None:
                continue
            name = f"{edge_type}.edge_index"
            v.check_edge_index(edge_index, name)
            with v.validation(True):
                v.check_index_range(f"{name}[0]", edge_index[0], int(counts[src] or 0), f"'{src}' nodes")
                v.check_index_range(f"{name}[1]", edge_index[1], int(counts[dst] or 0), f"'{dst}' nodes")
            check_edge_rows(store, edge_index.size(1), f"{edge_type}.")

    def __repr__(self) -> str:
        lines = [f"  {key}={format_value(value, 2)}," for key, value in self._global_store.items()]
        for node_type, store in self._node_store_dict.items():
            lines.append(f"  {node_type}={_store_block(store)},")
        for edge_type, store in self._edge_store_dict.items():
            lines.append(f"  ({', '.join(edge_type)})={_store_block(store)},")
        if not lines:
            return f"{type(self).__name__}()"
        lines[-1] = lines[-1][:-1]
        return f"{type(self).__name__}(\n" + "\n".join(lines) + "\n)"
