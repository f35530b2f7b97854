"""Bridges to Captum's attribution methods (PyG 2.8's ``to_captum_model`` and friends).

Captum attributes a model's output to its *inputs*; a graph model's edges are
not an input tensor. :func:`to_captum_model` wraps a model so that its inputs
are what is explained: the node features (``"node"``), a per-edge mask that
scales every message (``"edge"``), or both (``"node_and_edge"``). The edge mask
reaches the message-passing layers through their explain attributes
(``explain``, ``_edge_mask``, ``_loop_mask``, ``_apply_sigmoid``): messages are
multiplied by the mask, and self loops a layer adds get weight 1.

These helpers need torch only; the attribution methods come from captum
(``pip install gnn-models[captum]``).

Example:
    >>> from captum.attr import IntegratedGradients  # doctest: +SKIP
    >>> captum_model = to_captum_model(model, mask_type="edge", output_idx=10)  # doctest: +SKIP
    >>> inputs, args = to_captum_input(x, edge_index, "edge")  # doctest: +SKIP
    >>> attr = IntegratedGradients(captum_model).attribute(inputs, target=0,
    ...     additional_forward_args=args, internal_batch_size=1)  # doctest: +SKIP
"""

from __future__ import annotations

from enum import Enum
from typing import Any

import torch
from torch import Tensor
from torch.nn import Parameter

from gnn.core import validation as v

NodeType = str
EdgeType = tuple[str, str, str]
Metadata = tuple[list[NodeType], list[EdgeType]]

__all__ = [
    "MaskLevelType",
    "CaptumModel",
    "CaptumHeteroModel",
    "to_captum_model",
    "to_captum_input",
    "captum_output_to_dicts",
    "set_masks",
    "set_hetero_masks",
    "clear_masks",
]


class MaskLevelType(Enum):
    """What the explanation is about: node features, edges, or both."""

    node = "node"
    edge = "edge"
    node_and_edge = "node_and_edge"

    @property
    def with_edge(self) -> bool:
        """Whether an edge mask is an input."""
        return self is not MaskLevelType.node


def _mask_type(value: str | MaskLevelType) -> MaskLevelType:
    try:
        return MaskLevelType(value)
    except ValueError:
        raise ValueError(
            f"'mask_type' must be one of 'node', 'edge', 'node_and_edge', got {v.describe(value)}"
        ) from None


def _explainable(module: torch.nn.Module) -> bool:
    """A message-passing layer with the explain attributes (gnn's, or PyG's)."""
    return (
        hasattr(module, "explain_message") and hasattr(module, "_edge_mask") and hasattr(module, "_loop_mask")
    )


# -- masks on the layers -----------------------------------------------------------------------
def set_masks(
    model: torch.nn.Module, mask: Tensor | Parameter, edge_index: Tensor, apply_sigmoid: bool = True
) -> None:
    """Put ``mask`` (``[E]``, one entry per edge of ``edge_index``) on every message-passing layer
    of ``model`` (layers whose ``explain`` is ``False`` are left alone)."""
    loop_mask = edge_index[0] != edge_index[1]
    for module in model.modules():
        if not _explainable(module) or module.explain is False:
            continue
        value = mask
        if not isinstance(value, Parameter) and "_edge_mask" in module._parameters:
            value = Parameter(value)  # a registered parameter only takes a parameter
        module.explain = True
        module._edge_mask = value
        module._loop_mask = loop_mask
        module._apply_sigmoid = apply_sigmoid


def set_hetero_masks(
    model: torch.nn.Module,
    mask_dict: dict[EdgeType, Tensor],
    edge_index_dict: dict[EdgeType, Tensor],
    apply_sigmoid: bool = True,
) -> None:
    """Per-edge-type masks on the layers of a heterogeneous model: the layers of edge type
    ``(src, rel, dst)`` live in a :class:`~torch.nn.ModuleDict` under that key or
    ``"src__rel__dst"`` (the layout of ``to_hetero`` and ``HeteroConv``)."""
    for module in model.modules():
        if not isinstance(module, torch.nn.ModuleDict):
            continue
        for edge_type, mask in mask_dict.items():
            key = edge_type if edge_type in module else "__".join(edge_type)
            if key in module:
                set_masks(module[key], mask, edge_index_dict[edge_type], apply_sigmoid)


def clear_masks(model: torch.nn.Module) -> torch.nn.Module:
    """Remove the masks of :func:`set_masks` from every message-passing layer of ``model``."""
    for module in model.modules():
        if _explainable(module):
            if module.explain is True:
                module.explain = None
            module._edge_mask = None
            module._loop_mask = None
            module._apply_sigmoid = True
    return model


# -- the wrapped models ------------------------------------------------------------------------
def _is_binary_probs(model_config: Any) -> bool:
    if model_config is None:
        return False
    mode = getattr(model_config, "mode", None)
    return getattr(mode, "value", mode) == "binary_classification"


class CaptumModel(torch.nn.Module):
    """``model`` with the explained tensors as leading inputs (see :func:`to_captum_model`).

    ``forward(mask, *args)``: ``mask`` is ``[1, N, F]`` node features (``"node"``,
    ``"node_and_edge"``) or a ``[1, E]`` edge mask (``"edge"``); for
    ``"node_and_edge"`` the edge mask comes next; the other arguments follow as the
    model takes them (``x`` first for ``"edge"``, then ``edge_index``, ...).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        mask_type: str | MaskLevelType,
        output_idx: int | Tensor | None = None,
        model_config: Any = None,
    ) -> None:
        super().__init__()
        self.mask_type = _mask_type(mask_type)
        self.model = model
        self.output_idx = output_idx
        self.model_config = model_config

    def forward(self, mask: Tensor, *args: Any) -> Tensor:
        if mask.size(0) != 1:
            raise ValueError(f"dimension 0 of the explained input must be 1, got {v.describe(mask)}")
        kind = self.mask_type
        needed = {MaskLevelType.edge: 2, MaskLevelType.node: 1, MaskLevelType.node_and_edge: 2}[kind]
        if len(args) < needed:
            raise ValueError(
                f"a '{kind.value}' explanation needs {needed} more inputs "
                f"({'x, edge_index' if kind is MaskLevelType.edge else 'edge_index'}), got {len(args)}"
            )
        if kind is MaskLevelType.edge:
            set_masks(self.model, mask.squeeze(0), args[1], apply_sigmoid=False)
            out = self.model(*args)
        elif kind is MaskLevelType.node:
            out = self.model(mask.squeeze(0), *args)
        else:
            edge_mask, rest = args[0], args[1:]
            if edge_mask.size(0) != 1:
                raise ValueError(f"dimension 0 of the edge mask must be 1, got {v.describe(edge_mask)}")
            set_masks(self.model, edge_mask.squeeze(0), rest[0], apply_sigmoid=False)
            out = self.model(mask.squeeze(0), *rest)
        return self.postprocess(out)

    def postprocess(self, x: Tensor) -> Tensor:
        """Clear the masks, keep the explained output row(s), add the negative class of a
        binary-probability model."""
        if self.mask_type.with_edge:
            clear_masks(self.model)
        if self.output_idx is not None:
            x = x[self.output_idx]
            if isinstance(self.output_idx, int) or self.output_idx.dim() == 0:
                x = x.unsqueeze(0)
        if _is_binary_probs(self.model_config):
            x = x.reshape(-1, 1)
            x = torch.cat([1 - x, x], dim=-1)
        return x


class CaptumHeteroModel(CaptumModel):
    """A heterogeneous ``model(x_dict, edge_index_dict, ...)`` with one explained input per node
    type and/or edge type (in ``metadata``'s order), see :func:`to_captum_model`.

    As in PyG 2.8, the edge masks of a heterogeneous model scale the messages through a
    sigmoid (``sigmoid(mask)``), unlike :class:`CaptumModel`'s, which scale them as given.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        mask_type: str | MaskLevelType,
        output_idx: int | Tensor | None,
        metadata: Metadata,
        model_config: Any = None,
    ) -> None:
        super().__init__(model, mask_type, output_idx, model_config)
        self.node_types = list(metadata[0])
        self.edge_types = list(metadata[1])
        self.num_node_types = len(self.node_types)
        self.num_edge_types = len(self.edge_types)

    def _unpack(self, args: tuple) -> tuple[Any, Any, dict | None, tuple]:
        """``(x_dict, edge_index_dict, edge_mask_dict, remaining args)`` of the Captum inputs."""
        n_node, n_edge = self.num_node_types, self.num_edge_types
        kind = self.mask_type
        if kind is MaskLevelType.node:
            head, fixed = n_node, 1
        elif kind is MaskLevelType.edge:
            head, fixed = n_edge, 2
        else:
            head, fixed = n_node + n_edge, 1
        if len(args) < head + fixed:
            raise ValueError(
                f"a '{kind.value}' explanation needs at least {head + fixed} inputs, got {len(args)}"
            )
        inputs, rest = args[:head], args[head:]
        masks = None
        if kind is MaskLevelType.edge:
            x_dict, edge_index_dict = rest[0], rest[1]
            masks, rest = inputs, rest[2:]
        else:
            x_dict = {t: x.squeeze(0) for t, x in zip(self.node_types, inputs[:n_node])}
            edge_index_dict, rest = rest[0], rest[1:]
            if kind is MaskLevelType.node_and_edge:
                masks = inputs[n_node:]
        mask_dict = None if masks is None else {t: m.squeeze(0) for t, m in zip(self.edge_types, masks)}
        return x_dict, edge_index_dict, mask_dict, rest

    def forward(self, *args: Any) -> Tensor:  # type: ignore[override]
        x_dict, edge_index_dict, mask_dict, rest = self._unpack(args)
        if mask_dict is not None:
            # as PyG 2.8: the heterogeneous masks go through a sigmoid (the homogeneous ones do not)
            set_hetero_masks(self.model, mask_dict, edge_index_dict, apply_sigmoid=True)
        return self.postprocess(self.model(x_dict, edge_index_dict, *rest))


def to_captum_model(
    model: torch.nn.Module,
    mask_type: str | MaskLevelType = MaskLevelType.edge,
    output_idx: int | None = None,
    metadata: Metadata | None = None,
) -> CaptumModel | CaptumHeteroModel:
    """Wrap ``model`` for Captum's attribution methods.

    Args:
        model: the model to explain, called as ``model(x, edge_index, ...)`` (or
            ``model(x_dict, edge_index_dict, ...)`` with ``metadata``).
        mask_type: ``"edge"`` (explain the edges with a mask on the messages), ``"node"``
            (the node features) or ``"node_and_edge"``.
        output_idx: the output row (node or link) explained; the wrapped model returns
            ``out[output_idx]`` with a leading dimension of 1.
        metadata: ``(node_types, edge_types)`` of a heterogeneous graph.

    Returns:
        a :class:`CaptumModel` (or :class:`CaptumHeteroModel` with ``metadata``); feed it the
        inputs of :func:`to_captum_input`.
    """
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"'model' must be a torch.nn.Module, got {v.describe(model)}")
    if metadata is None:
        return CaptumModel(model, mask_type, output_idx)
    return CaptumHeteroModel(model, mask_type, output_idx, metadata)


def _edge_mask_input(edge_index: Tensor) -> Tensor:
    return torch.ones(edge_index.size(1), requires_grad=True, device=edge_index.device).unsqueeze(0)


def to_captum_input(
    x: Tensor | dict[NodeType, Tensor],
    edge_index: Tensor | dict[EdgeType, Tensor],
    mask_type: str | MaskLevelType,
    *args: Any,
) -> tuple[tuple[Tensor, ...], tuple[Any, ...]]:
    """``(inputs, additional_forward_args)`` for Captum's ``attribute`` with a model of
    :func:`to_captum_model`.

    ``inputs``: ``x`` with a leading dimension of 1 (``"node"``), an all-ones edge mask ``[1, E]``
    (``"edge"``), or both; one per node type / edge type for dictionaries (in the dictionaries'
    order). ``additional_forward_args``: what the model needs besides (``x`` for ``"edge"``,
    ``edge_index``, then ``*args``).
    """
    kind = _mask_type(mask_type)
    extra: list[Any] = []
    if isinstance(x, Tensor) and isinstance(edge_index, Tensor):
        if kind is MaskLevelType.node:
            inputs = [x.unsqueeze(0)]
        elif kind is MaskLevelType.edge:
            inputs = [_edge_mask_input(edge_index)]
            extra.append(x)
        else:
            inputs = [x.unsqueeze(0), _edge_mask_input(edge_index)]
    elif isinstance(x, dict) and isinstance(edge_index, dict):
        node_inputs = [value.unsqueeze(0) for value in x.values()]
        edge_inputs = [_edge_mask_input(value) for value in edge_index.values()]
        if kind is MaskLevelType.node:
            inputs = node_inputs
        elif kind is MaskLevelType.edge:
            inputs = edge_inputs
            extra.append(x)
        else:
            inputs = node_inputs + edge_inputs
    else:
        raise ValueError(
            "'x' and 'edge_index' must both be tensors or both be dictionaries, got "
            f"{type(x).__name__} and {type(edge_index).__name__}"
        )
    extra.append(edge_index)
    extra.extend(args)
    return tuple(inputs), tuple(extra)


def captum_output_to_dicts(
    captum_attrs: tuple[Tensor, ...],
    mask_type: str | MaskLevelType,
    metadata: Metadata,
) -> tuple[dict[NodeType, Tensor] | None, dict[EdgeType, Tensor] | None]:
    """Captum's attributions of a heterogeneous graph as ``(node_attr_dict, edge_attr_dict)``.

    ``"node"``: ``{node_type: [N_t, F_t]}`` and ``None``; ``"edge"``: ``None`` and
    ``{edge_type: [E_t]}``; ``"node_and_edge"``: both (node attributions first in
    ``captum_attrs``).
    """
    kind = _mask_type(mask_type)
    node_types, edge_types = list(metadata[0]), list(metadata[1])
    attrs = [a.squeeze(0) for a in captum_attrs]
    expected = {
        MaskLevelType.node: len(node_types),
        MaskLevelType.edge: len(edge_types),
        MaskLevelType.node_and_edge: len(node_types) + len(edge_types),
    }[kind]
    if len(attrs) != expected:
        raise ValueError(
            f"'captum_attrs' must hold {expected} tensors for mask type '{kind.value}' and this metadata, "
            f"got {len(attrs)}"
        )
    node_dict = edge_dict = None
    if kind is not MaskLevelType.edge:
        node_dict = dict(zip(node_types, attrs[: len(node_types)]))
    if kind.with_edge:
        edge_dict = dict(zip(edge_types, attrs[len(attrs) - len(edge_types) :]))
    return node_dict, edge_dict
