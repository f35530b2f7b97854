r"""Mini-batches: many graphs collated into one disconnected graph.

:meth:`Batch.from_data_list` concatenates attribute ``key`` of graphs
:math:`G_0, \dots, G_{B-1}` along ``data.__cat_dim__(key, value)`` after
shifting graph :math:`g`'s values by :math:`\sum_{h<g}` ``data_h.__inc__(key,
value_h)`` (edge indices by the number of nodes of the preceding graphs).
Each node store gets ``batch`` (``[N]``, graph id of every node) and ``ptr``
(``[B + 1]``, where each graph's nodes start). :meth:`Batch.get_example` and
:meth:`Batch.to_data_list` undo the collation exactly.

Inputs are duck-typed: PyTorch Geometric ``Data``/``HeteroData`` objects (or
anything with ``keys()``/``__getitem__``, and ``node_types``/``edge_types``
for heterogeneous graphs) may be mixed with ours; each graph's own
``__inc__``/``__cat_dim__`` is used when it has them.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Sequence
from itertools import chain
from typing import Any

import torch
from torch import Tensor

from .. import validation as v
from .data import Data, Storage, default_cat_dim, default_inc
from .hetero_data import HeteroData

Path = Any  # None (homogeneous / global store), a node type, or an edge type


class _Slot:
    """How one attribute of one store was collated.

    ``kind``: ``"cat"`` (concatenated along ``dim``), ``"stack"`` (stacked
    along a new dimension 0), ``"scalar"`` (Python numbers stacked into a
    tensor, restored with ``pytype``), ``"list"`` (any other value, kept per
    graph) or ``"num_nodes"`` (summed). ``slices``: ``[B + 1]`` offsets;
    ``incs``: each graph's cumulative increment (``None`` when all are 0).
    """

    __slots__ = ("kind", "dim", "slices", "incs", "pytype")

    def __init__(
        self,
        kind: str,
        slices: Tensor,
        dim: int | None = None,
        incs: list[Any] | None = None,
        pytype: type | None = None,
    ) -> None:
        self.kind = kind
        self.slices = slices
        self.dim = dim
        self.incs = incs
        self.pytype = pytype

    def __getstate__(self) -> tuple:
        return (self.kind, self.slices, self.dim, self.incs, self.pytype)

    def __setstate__(self, state: tuple) -> None:
        self.kind, self.slices, self.dim, self.incs, self.pytype = state


def _keys_of(obj: Any) -> list[str]:
    keys = obj.keys
    return list(keys() if callable(keys) else keys)


def _is_hetero(obj: Any) -> bool:
    if isinstance(obj, HeteroData):
        return True
    if isinstance(obj, Data):
        return False
    return hasattr(obj, "node_types") and hasattr(obj, "edge_types")


def _stores_of(data: Any, hetero: bool) -> list[tuple[Path, Any]]:
    """``(path, store)`` pairs of one graph; a homogeneous graph is its own store."""
    if not hetero:
        return [(None, data)]
    stores: list[tuple[Path, Any]] = [(None, _global_store_of(data))]
    stores.extend((node_type, data[node_type]) for node_type in data.node_types)
    stores.extend((tuple(edge_type), data[tuple(edge_type)]) for edge_type in data.edge_types)
    return stores


def _global_store_of(data: Any) -> Any:
    """The graph-level store of a heterogeneous graph: ours, or for a foreign
    object the member of ``stores`` that is neither a node nor an edge store."""
    if isinstance(data, HeteroData):
        return data._global_store
    typed = {id(store) for store in chain(getattr(data, "node_stores", []), getattr(data, "edge_stores", []))}
    for store in getattr(data, "stores", []):
        if id(store) not in typed:
            return store
    return Storage()


def _is_node_path(path: Path, hetero: bool) -> bool:
    return isinstance(path, str) if hetero else path is None


def _cat_dim(data: Any, key: str, value: Any, store: Any, hetero: bool) -> int | None:
    fn = getattr(data, "__cat_dim__", None)
    if fn is None:
        return default_cat_dim(key, value)
    return fn(key, value, store) if hetero else fn(key, value)


def _inc(data: Any, key: str, value: Any, store: Any, hetero: bool) -> Any:
    fn = getattr(data, "__inc__", None)
    if fn is None:
        return default_inc(key, value, getattr(store, "num_nodes", None))
    return fn(key, value, store) if hetero else fn(key, value)


def _is_zero(inc: Any) -> bool:
    if isinstance(inc, Tensor):
        return not bool(inc.any())
    return inc == 0


def _shift(value: Tensor, inc: Any, sign: int) -> Tensor:
    if isinstance(inc, Tensor):
        inc = inc.to(dtype=value.dtype, device=value.device)
    return value + inc if sign > 0 else value - inc


def _offsets(sizes: list[int]) -> Tensor:
    out = torch.zeros(len(sizes) + 1, dtype=torch.long)
    if sizes:
        out[1:] = torch.cumsum(torch.tensor(sizes, dtype=torch.long), 0)
    return out


def _repeat(sizes: list[int], device: torch.device) -> Tensor:
    counts = torch.tensor(sizes, dtype=torch.long, device=device)
    return torch.repeat_interleave(torch.arange(len(sizes), device=device), counts)


def _store_device(store: Any) -> torch.device:
    for key in _keys_of(store):
        value = store[key]
        if isinstance(value, Tensor):
            return value.device
    return torch.device("cpu")


def _key_list(name: str, keys: Iterable[str] | str | None) -> list[str]:
    if keys is None:
        return []
    if isinstance(keys, str):
        return [keys]
    keys = list(keys)
    for key in keys:
        if not isinstance(key, str):
            raise TypeError(f"'{name}' must be a list of attribute names, got an item {v.describe(key)}")
    return keys


def _base_data_class(cls: type) -> type:
    """The data class behind a (possibly batch) class."""
    if issubclass(cls, Batch):
        return cls._batch_data_cls
    return cls


_BATCH_CLASSES: dict[type, type] = {}


def batch_class(data_cls: type) -> type:
    """The batch class for graphs of type ``data_cls``: a subclass of both
    :class:`Batch` and ``data_cls`` (``DataBatch``, ``HeteroDataBatch``, or
    ``<Name>Batch`` for a custom subclass, created once and cached)."""
    data_cls = _base_data_class(data_cls)
    out = _BATCH_CLASSES.get(data_cls)
    if out is None:
        out = type(f"{data_cls.__name__}Batch", (Batch, data_cls), {"_batch_data_cls": data_cls})
        _BATCH_CLASSES[data_cls] = out
    return out


def _rebuild_batch(data_cls: type, state: dict) -> Batch:
    cls = batch_class(data_cls)
    out = cls.__new__(cls)
    out.__dict__.update(state)
    return out


class Batch:
    r"""A mini-batch of graphs, built by :meth:`from_data_list`.

    A batch is an instance of both :class:`Batch` and the graphs' class
    (``DataBatch`` for :class:`Data`, ``HeteroDataBatch`` for
    :class:`HeteroData`), so it is itself a (disconnected) graph: ``x``
    ``[sum N_g, F]``, ``edge_index`` ``[2, sum E_g]`` with indices shifted by
    ``ptr[g]``, ``batch`` ``[sum N_g]`` and ``ptr`` ``[B + 1]``.

    Example::

        >>> g1 = Data(x=torch.randn(3, 4), edge_index=torch.tensor([[0, 1], [1, 2]]))
        >>> g2 = Data(x=torch.randn(2, 4), edge_index=torch.tensor([[0], [1]]))
        >>> batch = Batch.from_data_list([g1, g2])
        >>> batch.edge_index
        tensor([[0, 1, 3],
                [1, 2, 4]])
        >>> batch.batch, batch.ptr, batch.num_graphs
        (tensor([0, 0, 0, 1, 1]), tensor([0, 3, 5]), 2)
        >>> torch.equal(batch.get_example(1).edge_index, g2.edge_index)
        True
    """

    _batch_data_cls: type = Data

    def __new__(cls, *args: Any, **kwargs: Any) -> Batch:
        if cls is Batch:
            cls = batch_class(Data)
        return super().__new__(cls)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        object.__setattr__(self, "_num_graphs", None)
        object.__setattr__(self, "_slots", None)

    def __reduce__(self) -> tuple:
        return (_rebuild_batch, (self._batch_data_cls, dict(self.__dict__)))

    # collation ------------------------------------------------------------
    @classmethod
    def from_data_list(
        cls,
        data_list: Sequence[Any],
        follow_batch: list[str] | None = None,
        exclude_keys: list[str] | None = None,
    ) -> Batch:
        """Collate ``data_list`` into one batch.

        Args:
            data_list: graphs of one kind (all homogeneous or all heterogeneous)
                with the same attributes (and, for heterogeneous graphs, the
                same node and edge types).
            follow_batch: attributes that also get ``<key>_batch`` (graph id
                of every entry along the concatenation dimension) and
                ``<key>_ptr`` (``[B + 1]`` offsets).
            exclude_keys: attributes left out of the batch.
        """
        if isinstance(data_list, (Data, HeteroData)) or not isinstance(data_list, Iterable):
            raise TypeError(f"'data_list' must be a list of graphs, got {v.describe(data_list)}")
        data_list = list(data_list)
        if not data_list:
            raise ValueError("'data_list' must contain at least one graph, got an empty list")
        follow = _key_list("follow_batch", follow_batch)
        exclude = set(_key_list("exclude_keys", exclude_keys))

        hetero = None
        data_cls = None
        for i, data in enumerate(data_list):
            if not (_is_hetero(data) or hasattr(data, "keys")):
                raise TypeError(
                    f"'data_list[{i}]' must be a Data or HeteroData object, got {v.describe(data)}"
                )
            if hetero is None:
                hetero = _is_hetero(data)
            elif _is_hetero(data) != hetero:
                raise TypeError(
                    f"'data_list' mixes homogeneous and heterogeneous graphs: 'data_list[0]' is "
                    f"{type(data_list[0]).__name__}, 'data_list[{i}]' is {type(data).__name__}"
                )
            if data_cls is None and isinstance(data, (Data, HeteroData)):
                data_cls = _base_data_class(type(data))
        if data_cls is None:
            data_cls = HeteroData if hetero else Data

        out_cls = batch_class(data_cls)
        out = out_cls.__new__(out_cls)
        Batch.__init__(out)
        num_graphs = len(data_list)
        object.__setattr__(out, "_num_graphs", num_graphs)

        per_graph = [_stores_of(data, hetero) for data in data_list]
        paths = [path for path, _ in per_graph[0]]
        for i, stores in enumerate(per_graph[1:], start=1):
            other = [path for path, _ in stores]
            if set(other) != set(paths):
                missing = sorted(map(str, set(paths) - set(other)))
                extra = sorted(map(str, set(other) - set(paths)))
                raise ValueError(
                    f"'data_list[{i}]' has different node/edge types than 'data_list[0]' "
                    f"(missing: {missing}, extra: {extra})"
                )
        store_maps = [dict(stores) for stores in per_graph]

        slots: dict[Path, dict[str, _Slot]] = {}
        followed = set()
        for path in paths:
            stores = [store_map[path] for store_map in store_maps]
            keys = [key for key in _keys_of(stores[0]) if key not in exclude]
            for i, store in enumerate(stores[1:], start=1):
                other = {key for key in _keys_of(store) if key not in exclude}
                if other != set(keys):
                    where = "" if path is None else f" of type {path!r}"
                    diff = sorted(set(keys) ^ other)
                    raise ValueError(
                        f"'data_list[{i}]' and 'data_list[0]' have different attributes{where}: {diff}"
                    )
            target = out._target_store(path)
            device = _store_device(stores[0])
            node_counts = None
            if _is_node_path(path, hetero):
                counts = [
                    data.num_nodes if not hetero else store.num_nodes
                    for data, store in zip(data_list, stores)
                ]
                node_counts = [int(n or 0) for n in counts]
            path_slots: dict[str, _Slot] = {}
            for key in keys:
                if key == "num_nodes" and node_counts is not None:
                    target["num_nodes"] = sum(node_counts)
                    path_slots[key] = _Slot("num_nodes", _offsets(node_counts))
                    continue
                value, slot, sizes = _collate_key(key, data_list, stores, hetero)
                target[key] = value
                path_slots[key] = slot
                if key in follow:
                    followed.add(key)
                    target[f"{key}_batch"] = _repeat(sizes, device)
                    target[f"{key}_ptr"] = slot.slices.to(device)
            if node_counts is not None:
                target["batch"] = _repeat(node_counts, device)
                target["ptr"] = _offsets(node_counts).to(device)
            slots[path] = path_slots
        missing = [key for key in follow if key not in followed and key not in exclude]
        if missing:
            raise ValueError(f"'follow_batch' names attributes that no graph has: {missing}")
        object.__setattr__(out, "_slots", slots)
        return out

    def _target_store(self, path: Path) -> Storage:
        if isinstance(self, HeteroData):
            if path is None:
                return self._global_store
            if isinstance(path, tuple):
                return self.get_edge_store(*path)
            return self.get_node_store(path)
        return self._store

    # separation -------------------------------------------------------------
    @property
    def num_graphs(self) -> int:
        """Number of graphs in the batch."""
        if self.__dict__.get("_num_graphs") is not None:
            return self._num_graphs
        ptr = self._find("ptr")
        if ptr is not None:
            return ptr.numel() - 1
        batch = self._find("batch")
        if batch is not None:
            return int(batch.max()) + 1 if batch.numel() > 0 else 0
        raise ValueError("cannot infer the number of graphs: the batch has neither 'ptr' nor 'batch'")

    @property
    def batch_size(self) -> int:
        """Alias of :attr:`num_graphs`."""
        return self.num_graphs

    def _find(self, key: str) -> Tensor | None:
        if isinstance(self, HeteroData):
            for store in self.node_stores:
                if key in store:
                    return store[key]
            return None
        return self._store.get(key)

    def __len__(self) -> int:
        """Number of graphs (0 when it cannot be inferred)."""
        try:
            return self.num_graphs
        except ValueError:
            return 0

    def get_example(self, idx: int) -> Any:
        """Graph ``idx`` as it was before collation (same class, same tensors)."""
        slots = self.__dict__.get("_slots")
        if slots is None:
            raise RuntimeError(
                f"cannot reconstruct graphs from this {type(self).__name__}: "
                "it was not created by 'Batch.from_data_list'"
            )
        try:
            idx = operator.index(idx)
        except TypeError:
            raise TypeError(f"'idx' must be an integer, got {v.describe(idx)}") from None
        num_graphs = self.num_graphs
        if idx < 0:
            idx += num_graphs
        if not 0 <= idx < num_graphs:
            raise IndexError(f"'idx' {idx} is out of range for a batch of {num_graphs} graphs")

        data = self._batch_data_cls()
        is_hetero = isinstance(data, HeteroData)
        for path, path_slots in slots.items():
            source = self._target_store(path)
            if is_hetero:
                if path is None:
                    target = data._global_store
                elif isinstance(path, tuple):
                    target = data.get_edge_store(*path)
                else:
                    target = data.get_node_store(path)
            else:
                target = data
            for key, slot in path_slots.items():
                target[key] = _separate(source[key], slot, idx)
        return data

    def index_select(self, idx: slice | Tensor | Sequence[int] | Sequence[bool]) -> list[Any]:
        """The graphs at ``idx`` (a slice, a sequence or tensor of integers, or
        a boolean mask of length ``num_graphs``), as a list."""
        num_graphs = self.num_graphs
        if isinstance(idx, slice):
            indices = list(range(num_graphs)[idx])
        elif isinstance(idx, (str, bytes)) or not (
            isinstance(idx, (Tensor, Sequence)) or hasattr(idx, "__array__")
        ):
            raise TypeError(
                f"'idx' must be a slice, a sequence or a tensor of indices, got {v.describe(idx)}"
            )
        else:
            tensor = idx if isinstance(idx, Tensor) else torch.as_tensor(idx)
            if tensor.dtype == torch.bool:
                if tensor.dim() != 1 or tensor.numel() != num_graphs:
                    raise ValueError(
                        f"'idx' as a boolean mask must have {num_graphs} entries, got {v.describe(tensor)}"
                    )
                indices = tensor.nonzero().view(-1).tolist()
            elif tensor.is_floating_point() or tensor.is_complex():
                raise TypeError(f"'idx' must hold integers, got {v.describe(tensor)}")
            else:
                indices = tensor.reshape(-1).tolist()
        return [self.get_example(i) for i in indices]

    def __getitem__(self, idx: Any) -> Any:
        if isinstance(idx, (str, tuple)):
            return super().__getitem__(idx)
        if isinstance(idx, Tensor) and idx.dim() == 0 and idx.dtype != torch.bool:
            return self.get_example(int(idx))
        if isinstance(idx, (slice, Sequence, Tensor)):
            return self.index_select(idx)
        try:
            position = operator.index(idx)  # int, numpy integer
        except TypeError:
            if hasattr(idx, "__array__"):
                return self.index_select(idx)
            return super().__getitem__(idx)
        return self.get_example(position)

    def to_data_list(self) -> list[Any]:
        """All graphs of the batch, in order (inverse of :meth:`from_data_list`)."""
        return [self.get_example(i) for i in range(self.num_graphs)]


def _collate_key(
    key: str, data_list: list[Any], stores: list[Any], hetero: bool
) -> tuple[Any, _Slot, list[int]]:
    """Collate attribute ``key`` of ``stores``; returns (value, slot, per-graph sizes)."""
    values = [store[key] for store in stores]
    first = values[0]
    num_graphs = len(values)
    if isinstance(first, Tensor):
        for i, value in enumerate(values):
            if not isinstance(value, Tensor):
                raise ValueError(
                    f"attribute '{key}' is a tensor in 'data_list[0]' but {v.describe(value)} in 'data_list[{i}]'"
                )
        dim = _cat_dim(data_list[0], key, first, stores[0], hetero)
        if dim is None or first.dim() == 0:
            try:
                out = torch.stack(values, 0)
            except RuntimeError as err:
                raise ValueError(f"cannot stack attribute '{key}' across graphs: {err}") from None
            return out, _Slot("stack", torch.arange(num_graphs + 1)), [1] * num_graphs
        dim = dim + first.dim() if dim < 0 else dim
        incs = [
            _inc(data, key, value, store, hetero) for data, value, store in zip(data_list, values, stores)
        ]
        cum = None
        if not all(_is_zero(inc) for inc in incs):
            cum, running = [0], 0
            for inc in incs[:-1]:
                running = running + inc
                cum.append(running)
            values = [_shift(value, c, 1) for value, c in zip(values, cum)]
        for i, value in enumerate(values):
            if value.dim() != first.dim():
                raise ValueError(
                    f"cannot concatenate attribute '{key}': 'data_list[0]' has {first.dim()} dimensions, "
                    f"'data_list[{i}]' has {value.dim()}"
                )
        sizes = [value.size(dim) for value in values]
        try:
            out = torch.cat(values, dim)
        except RuntimeError as err:
            raise ValueError(f"cannot concatenate attribute '{key}' along dimension {dim}: {err}") from None
        return out, _Slot("cat", _offsets(sizes), dim=dim, incs=cum), sizes
    if isinstance(first, (bool, int, float)):
        pytype = type(first)
        for i, value in enumerate(values):
            if not isinstance(value, (bool, int, float)):
                raise ValueError(
                    f"attribute '{key}' is a number in 'data_list[0]' but {v.describe(value)} in 'data_list[{i}]'"
                )
        return (
            torch.tensor(values),
            _Slot("scalar", torch.arange(num_graphs + 1), pytype=pytype),
            [1] * num_graphs,
        )
    return list(values), _Slot("list", torch.arange(num_graphs + 1)), [1] * num_graphs


def _separate(value: Any, slot: _Slot, idx: int) -> Any:
    if slot.kind == "cat":
        start, end = int(slot.slices[idx]), int(slot.slices[idx + 1])
        part = value.narrow(slot.dim, start, end - start)
        if slot.incs is not None:
            part = _shift(part, slot.incs[idx], -1)
        return part
    if slot.kind == "stack":
        return value[idx]
    if slot.kind == "scalar":
        return slot.pytype(value[idx].item())
    if slot.kind == "num_nodes":
        return int(slot.slices[idx + 1] - slot.slices[idx])
    return value[idx]


DataBatch = batch_class(Data)
HeteroDataBatch = batch_class(HeteroData)
