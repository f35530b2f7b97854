"""A homogeneous graph as a bag of named attributes.

:class:`Data` stores tensors (and any other value) under string keys and
knows how they combine into mini-batches: :meth:`Data.__cat_dim__` says along
which dimension an attribute is concatenated, :meth:`Data.__inc__` by how much
its values are shifted per graph (edge indices are offset by the number of
nodes of the preceding graphs). Attribute access mirrors PyTorch Geometric's
``Data``: ``data.x``, ``data['x']``, ``'x' in data``, ``data.keys()``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import torch
from torch import Tensor

from .. import validation as v
from .container import GraphContainer, check_edge_rows, check_node_rows, count_edges, feature_size

# Attributes that read as ``None`` when unset (PyG's well-known names); any
# other missing attribute raises ``AttributeError``.
_OPTIONAL_KEYS = frozenset(
    {"x", "edge_index", "edge_attr", "edge_weight", "y", "pos", "batch", "face", "time"}
)


def is_index_key(key: str) -> bool:
    """Whether ``key`` names an index-like attribute (``edge_index``, ``face``...).

    Index-like attributes are concatenated along their last dimension and
    shifted by the number of nodes when graphs are batched.
    """
    return "index" in key or "face" in key


def default_cat_dim(key: str, value: Any) -> int:
    """Concatenation dimension: ``-1`` for index-like keys, ``0`` otherwise."""
    return -1 if is_index_key(key) else 0


def default_inc(key: str, value: Any, num_nodes: int | None) -> int:
    """Per-graph increment: ``num_nodes`` for index-like keys, ``max + 1`` for
    batch vectors (``*batch*``), ``0`` otherwise."""
    if "batch" in key and isinstance(value, Tensor):
        return int(value.max()) + 1 if value.numel() > 0 else 0
    if is_index_key(key):
        return int(num_nodes or 0)
    return 0


def apply_to_tensors(value: Any, fn: Callable[[Tensor], Any]) -> Any:
    """Apply ``fn`` to every tensor inside ``value`` (recursing into lists,
    tuples and dicts); other values are returned unchanged."""
    if isinstance(value, Tensor):
        return fn(value)
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # namedtuple
        return type(value)(*(apply_to_tensors(item, fn) for item in value))
    if isinstance(value, (list, tuple)):
        return type(value)(apply_to_tensors(item, fn) for item in value)
    if isinstance(value, dict):
        return {k: apply_to_tensors(item, fn) for k, item in value.items()}
    return value


def _clone_value(value: Any) -> Any:
    if isinstance(value, Tensor):
        return value.clone()
    return copy.deepcopy(value)


def format_value(value: Any, indent: int = 2) -> str:
    """Short form used in reprs: a tensor (or list) by its shape, a string
    quoted, a number as is, a dict as a nested block."""
    if isinstance(value, Tensor):
        return str(list(value.shape))
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, (bool, int, float)):
        return str(value)
    if isinstance(value, (list, tuple)):
        return f"[{len(value)}]"
    if isinstance(value, Mapping):
        if not value:
            return "{}"
        pad = " " * (indent + 2)
        lines = [f"{pad}{k}={format_value(item, indent + 2)}," for k, item in value.items()]
        return "{\n" + "\n".join(lines) + "\n" + " " * indent + "}"
    if hasattr(value, "sizes") and callable(value.sizes):  # SparseTensor-like
        return str(list(value.sizes()))
    return type(value).__name__


def format_items(name: str, items: list[tuple[str, Any]]) -> str:
    """``Name(k=v, ...)`` on one line, or one attribute per line when a value
    is itself a nested block."""
    parts = [(k, format_value(item)) for k, item in items]
    if any("\n" in text for _, text in parts):
        body = ",\n".join(f"  {k}={text}" for k, text in parts)
        return f"{name}(\n{body}\n)"
    return f"{name}(" + ", ".join(f"{k}={text}" for k, text in parts) + ")"


class Storage:
    """An ordered attribute dictionary: ``store.x``, ``store['x']``, ``'x' in store``.

    Setting an attribute to ``None`` removes it. ``_key`` names the store
    inside its graph: ``None`` for a homogeneous graph's (or a heterogeneous
    graph's global) store, the node type, or the ``(src, rel, dst)`` edge type.
    """

    def __init__(self, _key: str | tuple[str, str, str] | None = None, **kwargs: Any) -> None:
        object.__setattr__(self, "_key", _key)
        object.__setattr__(self, "_mapping", {})
        for key, value in kwargs.items():
            self[key] = value

    # attribute access ---------------------------------------------------
    def __getattr__(self, key: str) -> Any:
        if key.startswith("_"):
            raise AttributeError(key)
        try:
            return self._mapping[key]
        except KeyError:
            raise AttributeError(f"'{type(self).__name__}' object has no attribute '{key}'") from None

    def __setattr__(self, key: str, value: Any) -> None:
        if key.startswith("_") or isinstance(getattr(type(self), key, None), property):
            object.__setattr__(self, key, value)
        else:
            self[key] = value

    def __delattr__(self, key: str) -> None:
        if key in self._mapping:
            del self._mapping[key]
        else:
            object.__delattr__(self, key)

    # mapping access -----------------------------------------------------
    def __getitem__(self, key: str) -> Any:
        return self._mapping[key]

    def __setitem__(self, key: str, value: Any) -> None:
        if not isinstance(key, str):
            raise TypeError(f"attribute names must be strings, got {v.describe(key)}")
        if value is None:
            self._mapping.pop(key, None)
        else:
            self._mapping[key] = value

    def __delitem__(self, key: str) -> None:
        self._mapping.pop(key, None)

    def __contains__(self, key: object) -> bool:
        return key in self._mapping

    def __len__(self) -> int:
        return len(self._mapping)

    def __iter__(self) -> Iterator[str]:
        return iter(self._mapping)

    def keys(self) -> list[str]:
        return list(self._mapping.keys())

    def values(self) -> list[Any]:
        return list(self._mapping.values())

    def items(self) -> list[tuple[str, Any]]:
        return list(self._mapping.items())

    def get(self, key: str, default: Any = None) -> Any:
        return self._mapping.get(key, default)

    def to_dict(self) -> dict[str, Any]:
        return dict(self._mapping)

    # tensor methods -----------------------------------------------------
    def apply(self, fn: Callable[[Tensor], Any], *keys: str) -> Storage:
        """Replace each tensor (of ``keys``, default all) by ``fn(tensor)``, in place."""
        for key in keys or list(self._mapping):
            if key in self._mapping:
                self._mapping[key] = apply_to_tensors(self._mapping[key], fn)
        return self

    def clone(self) -> Storage:
        out = copy.copy(self)
        object.__setattr__(out, "_mapping", {k: _clone_value(item) for k, item in self._mapping.items()})
        return out

    def __copy__(self) -> Storage:
        out = type(self).__new__(type(self))
        out.__dict__.update(self.__dict__)
        object.__setattr__(out, "_mapping", dict(self._mapping))
        return out

    def __deepcopy__(self, memo: dict) -> Storage:
        out = type(self).__new__(type(self))
        out.__dict__.update(copy.deepcopy(self.__dict__, memo))
        return out

    def __repr__(self) -> str:
        return format_items(type(self).__name__, self.items())


class Data(GraphContainer):
    r"""A graph with node features ``x`` ``[N, F]``, connectivity
    ``edge_index`` ``[2, E]``, edge features ``edge_attr`` ``[E, D]``, targets
    ``y`` and positions ``pos`` ``[N, d]``, plus any other keyword attribute.

    Unset well-known attributes (``x``, ``edge_index``, ``edge_attr``,
    ``edge_weight``, ``y``, ``pos``, ``batch``, ``face``, ``time``) read as
    ``None``; setting an attribute to ``None`` removes it.

    Batching contract (used by :meth:`Batch.from_data_list`): attribute
    ``key`` of graph :math:`g` is concatenated along ``__cat_dim__(key, value)``
    after adding :math:`\sum_{h<g}` ``__inc__(key, value_h)``; by default index
    keys (containing ``"index"`` or ``"face"``) are concatenated along ``-1``
    and shifted by the preceding graphs' ``num_nodes``, everything else is
    concatenated along ``0`` unshifted.

    Example::

        >>> data = Data(x=torch.randn(3, 4), edge_index=torch.tensor([[0, 1], [1, 2]]))
        >>> data
        Data(x=[3, 4], edge_index=[2, 2])
        >>> data.num_nodes, data.num_edges, data.num_node_features
        (3, 2, 4)
    """

    def __init__(
        self,
        x: Tensor | None = None,
        edge_index: Tensor | None = None,
        edge_attr: Tensor | None = None,
        y: Tensor | int | float | None = None,
        pos: Tensor | None = None,
        time: Tensor | None = None,
        **kwargs: Any,
    ) -> None:
        object.__setattr__(self, "_store", Storage())
        for key, value in (("x", x), ("edge_index", edge_index), ("edge_attr", edge_attr), ("y", y)):
            self._store[key] = value
        self._store["pos"] = pos
        self._store["time"] = time
        for key, value in kwargs.items():
            setattr(self, key, value)

    # attribute access ---------------------------------------------------
    def __getattr__(self, key: str) -> Any:
        if key.startswith("_"):
            raise AttributeError(key)
        store = self.__dict__.get("_store")
        if store is not None and key in store:
            return store[key]
        if key in _OPTIONAL_KEYS:
            return None
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{key}'")

    def __setattr__(self, key: str, value: Any) -> None:
        if key.startswith("_") or isinstance(getattr(type(self), key, None), property):
            object.__setattr__(self, key, value)
        else:
            self._store[key] = value

    def __delattr__(self, key: str) -> None:
        if key in self._store:
            del self._store[key]
        else:
            object.__delattr__(self, key)

    def __getitem__(self, key: str) -> Any:
        if not isinstance(key, str):
            raise TypeError(f"'{type(self).__name__}' attributes are indexed by name, got {v.describe(key)}")
        return self._store[key]

    def __setitem__(self, key: str, value: Any) -> None:
        if not isinstance(key, str):
            raise TypeError(f"attribute names must be strings, got {v.describe(key)}")
        if key == "num_nodes":
            self.num_nodes = value
        else:
            self._store[key] = value

    def __delitem__(self, key: str) -> None:
        del self._store[key]

    def __contains__(self, key: object) -> bool:
        return key in self._store

    def __len__(self) -> int:
        """Number of attributes."""
        return len(self._store)

    def __iter__(self) -> Iterator[tuple[str, Any]]:
        """Iterate over ``(key, value)`` pairs."""
        return iter(self._store.items())

    def __call__(self, *keys: str) -> Iterator[tuple[str, Any]]:
        """Iterate over ``(key, value)`` pairs of ``keys`` (default all)."""
        for key, value in self._store.items():
            if not keys or key in keys:
                yield key, value

    def keys(self) -> list[str]:
        """Names of the set attributes, in insertion order."""
        return self._store.keys()

    def values(self) -> list[Any]:
        return self._store.values()

    def items(self) -> list[tuple[str, Any]]:
        return self._store.items()

    def to_dict(self) -> dict[str, Any]:
        return self._store.to_dict()

    @classmethod
    def from_dict(cls, mapping: Mapping[str, Any]) -> Data:
        """Build a graph from a ``{key: value}`` mapping."""
        return cls(**dict(mapping))

    def update(self, other: Data | Mapping[str, Any]) -> Data:
        """Set every attribute of ``other`` on ``self`` (in place)."""
        for key, value in other.items():
            self[key] = value
        return self

    # sizes ----------------------------------------------------------------
    @property
    def num_nodes(self) -> int | None:
        """Number of nodes: an explicit ``num_nodes``, else the first dimension
        of ``x``, ``pos`` or ``batch``, else ``edge_index.max() + 1``, else
        ``None``."""
        store = self._store
        if "num_nodes" in store:
            return int(store["num_nodes"])
        for key in ("x", "pos", "batch"):
            value = store.get(key)
            if isinstance(value, Tensor) and value.dim() > 0:
                return value.size(0)
        for key, value in store.items():
            if isinstance(value, Tensor) and is_index_key(key) and value.dim() > 0:
                return int(value.max()) + 1 if value.numel() > 0 else 0
        return None

    @num_nodes.setter
    def num_nodes(self, value: int | None) -> None:
        self._store["num_nodes"] = None if value is None else int(value)

    @property
    def num_edges(self) -> int:
        """Number of edges: columns of ``edge_index``, else rows of
        ``edge_attr``/``edge_weight``, else 0."""
        return count_edges(self._store)

    @property
    def num_node_features(self) -> int:
        """Size of the last dimension of ``x`` (1 for a 1-D ``x``, 0 without ``x``)."""
        return feature_size(self._store.get("x"))

    @property
    def num_features(self) -> int:
        """Alias of :attr:`num_node_features`."""
        return self.num_node_features

    @property
    def num_edge_features(self) -> int:
        """Size of the last dimension of ``edge_attr`` (1 for 1-D, 0 without)."""
        return feature_size(self._store.get("edge_attr"))

    # batching contract ------------------------------------------------------
    def __cat_dim__(self, key: str, value: Any, *args: Any, **kwargs: Any) -> int | None:
        """Dimension along which ``key`` is concatenated in a batch (``None``: stacked)."""
        return default_cat_dim(key, value)

    def __inc__(self, key: str, value: Any, *args: Any, **kwargs: Any) -> Any:
        """Amount added to ``key``'s values per preceding graph in a batch."""
        return default_inc(key, value, self.num_nodes)

    def is_node_attr(self, key: str) -> bool:
        """Whether ``key`` holds one row per node (first dimension ``num_nodes``)."""
        value = self._store.get(key)
        n = self.num_nodes
        return (
            isinstance(value, Tensor)
            and value.dim() > 0
            and not is_index_key(key)
            and n is not None
            and value.size(0) == n
        )

    def is_edge_attr(self, key: str) -> bool:
        """Whether ``key`` holds one entry per edge along its concatenation dimension."""
        value = self._store.get(key)
        if not isinstance(value, Tensor) or value.dim() == 0 or "edge_index" not in self._store:
            return False
        dim = self.__cat_dim__(key, value)
        return dim is not None and value.size(dim) == self.num_edges

    # tensors ----------------------------------------------------------------
    def apply(self, fn: Callable[[Tensor], Any], *keys: str) -> Data:
        """Replace every tensor attribute (of ``keys``, default all) by
        ``fn(tensor)``, in place; returns ``self``."""
        self._store.apply(fn, *keys)
        return self

    def apply_(self, fn: Callable[[Tensor], Any], *keys: str) -> Data:
        """Call ``fn`` on every tensor attribute (in-place tensor ops)."""
        for key in keys or self.keys():
            if key in self._store:
                apply_to_tensors(self._store[key], fn)
        return self

    def requires_grad_(self, *keys: str, requires_grad: bool = True) -> Data:
        return self.apply_(lambda t: t.requires_grad_(requires_grad), *keys)

    def clone(self) -> Data:
        """Deep copy: every tensor is cloned."""
        out = copy.copy(self)
        object.__setattr__(out, "_store", self._store.clone())
        return out

    def __copy__(self) -> Data:
        out = type(self).__new__(type(self))
        out.__dict__.update(self.__dict__)
        object.__setattr__(out, "_store", copy.copy(self._store))
        return out

    # graph properties ---------------------------------------------------
    def _validate(self) -> None:
        """``edge_index`` is a ``[2, E]`` integer tensor with indices in
        ``[0, num_nodes)``; ``x``/``pos``/``batch`` have ``num_nodes`` rows;
        ``edge_attr``/``edge_weight`` have ``E`` rows."""
        check_node_rows(self._store)
        edge_index = self._store.get("edge_index")
        if edge_index is not None:
            v.check_edge_index(edge_index, "edge_index")
            with v.validation(True):
                v.check_index_range("edge_index", edge_index, int(self.num_nodes or 0))
            check_edge_rows(self._store, edge_index.size(1))

    def is_undirected(self) -> bool:
        """Whether every edge ``(i, j)`` has its reverse ``(j, i)`` (structure only)."""
        from ..utils import coalesce

        edge_index = self._store.get("edge_index")
        if edge_index is None or edge_index.numel() == 0:
            return True
        n = max(int(self.num_nodes or 0), int(edge_index.max()) + 1)
        fwd, _ = coalesce(edge_index, num_nodes=n)
        bwd, _ = coalesce(edge_index.flip(0), num_nodes=n)
        return bool(torch.equal(fwd, bwd))

    def is_directed(self) -> bool:
        return not self.is_undirected()

    def has_self_loops(self) -> bool:
        """Whether some edge connects a node to itself."""
        from ..utils import contains_self_loops

        edge_index = self._store.get("edge_index")
        return edge_index is not None and contains_self_loops(edge_index)

    def has_isolated_nodes(self) -> bool:
        """Whether some node has no incident edge (self loops do not count)."""
        from ..utils import remove_self_loops

        n = int(self.num_nodes or 0)
        edge_index = self._store.get("edge_index")
        if edge_index is None:
            return n > 0
        edge_index, _ = remove_self_loops(edge_index)
        seen = torch.zeros(n, dtype=torch.bool, device=edge_index.device)
        seen[edge_index.reshape(-1).long()] = True
        return not bool(seen.all())

    def __repr__(self) -> str:
        return format_items(type(self).__name__, self._store.items())
