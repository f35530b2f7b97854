"""What :class:`~gnn.core.data.Data` and :class:`~gnn.core.data.HeteroData` share.

Both hold their attributes in :class:`~gnn.core.data.data.Storage` objects
(one, or one per node and edge type). :class:`GraphContainer` derives the
device/dtype methods from the subclass's ``apply`` and ``validate`` from its
``_validate``; :func:`check_node_rows` and :func:`check_edge_rows` are the
per-store checks both ``_validate`` implementations run, :func:`count_edges`
and :func:`feature_size` the per-store counts both report.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, TypeVar

import torch
from torch import Tensor

from .. import validation as v

G = TypeVar("G", bound="GraphContainer")

#: node-level attributes that must have one row per node
NODE_KEYS = ("x", "pos", "batch")
#: edge-level attributes that must have one row per edge
EDGE_KEYS = ("edge_attr", "edge_weight")


class GraphContainer:
    """Mixin: tensor moves through ``apply``, ``validate`` through ``_validate``.

    Subclasses implement ``apply(fn, *keys)`` (replace every tensor of
    ``keys``, default all, by ``fn(tensor)`` in place, return ``self``) and
    ``_validate()`` (raise ``ValueError``/``TypeError`` naming the attribute).

    Example:
        >>> data = Data(x=torch.randn(3, 4)).to("cpu").detach()
        >>> data.validate()
        True
    """

    def apply(self: G, fn: Callable[[Tensor], Any], *keys: str) -> G:
        raise NotImplementedError

    def _validate(self) -> None:
        raise NotImplementedError

    def to(self: G, device: int | str | torch.device, *keys: str, non_blocking: bool = False) -> G:
        """Move tensor attributes to ``device`` (in place, returns ``self``)."""
        return self.apply(lambda t: t.to(device=device, non_blocking=non_blocking), *keys)

    def cpu(self: G, *keys: str) -> G:
        return self.apply(lambda t: t.cpu(), *keys)

    def cuda(self: G, device: int | str | None = None, *keys: str, non_blocking: bool = True) -> G:
        target = "cuda" if device is None else device
        return self.apply(lambda t: t.cuda(target, non_blocking=non_blocking), *keys)

    def contiguous(self: G, *keys: str) -> G:
        return self.apply(lambda t: t.contiguous(), *keys)

    def detach(self: G, *keys: str) -> G:
        return self.apply(lambda t: t.detach(), *keys)

    def __deepcopy__(self: G, memo: dict) -> G:
        out = type(self).__new__(type(self))
        out.__dict__.update(copy.deepcopy(self.__dict__, memo))
        return out

    def validate(self, raise_on_error: bool = True) -> bool:
        """Check the attributes for consistency (see ``_validate`` of the class).

        Raises a ``ValueError`` (or ``TypeError``) naming the bad attribute, or
        returns ``False`` when ``raise_on_error=False``.
        """
        try:
            self._validate()
        except (ValueError, TypeError):
            if raise_on_error:
                raise
            return False
        return True


def count_edges(store: Any) -> int:
    """Columns of ``edge_index``, else rows of ``edge_attr``/``edge_weight``, else 0."""
    edge_index = store.get("edge_index")
    if isinstance(edge_index, Tensor):
        return edge_index.size(-1)
    for key in EDGE_KEYS:
        value = store.get(key)
        if isinstance(value, Tensor) and value.dim() > 0:
            return value.size(0)
    return 0


def feature_size(value: Any) -> int:
    """Size of the last dimension of a feature tensor: 1 for 1-D, 0 for a missing (non-tensor) value."""
    if not isinstance(value, Tensor):
        return 0
    return 1 if value.dim() <= 1 else value.size(-1)


def check_node_rows(store: Any, prefix: str = "") -> None:
    """``num_nodes`` (if set) is non-negative and ``x``/``pos``/``batch`` agree on the node count.

    ``prefix`` goes before every attribute name in errors (``"paper."``).
    """
    sizes = {}
    if "num_nodes" in store:
        n = int(store["num_nodes"])
        if n < 0:
            raise ValueError(f"'{prefix}num_nodes' must be non-negative, got {n}")
        sizes["num_nodes"] = n
    for key in NODE_KEYS:
        value = store.get(key)
        if value is None:
            continue
        v.check_tensor(f"{prefix}{key}", value)
        if value.dim() == 0:
            raise ValueError(f"'{prefix}{key}' must have one row per node, got {v.describe(value)}")
        sizes[key] = value.size(0)
    if len(set(sizes.values())) > 1:
        listed = ", ".join(f"{k}: {s}" for k, s in sizes.items())
        first = next(iter(sizes.values()))
        name = next(k for k, s in sizes.items() if s != first)
        raise ValueError(f"'{prefix}{name}' disagrees on the number of nodes ({listed})")


def check_edge_rows(store: Any, num_edges: int, prefix: str = "") -> None:
    """``edge_attr``/``edge_weight`` (if set) have one row per edge."""
    for key in EDGE_KEYS:
        value = store.get(key)
        if value is None:
            continue
        v.check_tensor(f"{prefix}{key}", value)
        if value.dim() == 0 or value.size(0) != num_edges:
            raise ValueError(
                f"'{prefix}{key}' must have one row per edge ({num_edges} edges), got {v.describe(value)}"
            )
