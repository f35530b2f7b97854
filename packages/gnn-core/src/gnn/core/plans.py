r"""Fused plans: what a convolution's message computes, declared so that
:class:`~gnn.core.MessagePassing` may run one fused kernel instead of the
per-edge ``message`` -> ``aggregate`` path.

A conv declares its plan as the class attribute ``fused_message``; the
message, edge update and aggregation it writes by hand stay the general path
and the definition of what the plan computes. ``MessagePassing`` alone decides,
per call, which path runs (:meth:`MessagePassing.fused_path_allowed`): the fused
one only when nothing can observe the difference (no message, aggregate or edge
update hooks, explain mode off, no active attention dropout, no decomposed
layers, and the class's ``message`` / ``edge_update`` / ``aggregate`` are those
the plan was declared with). Every conv's plan is checked against its general
path by one automatic test over the conv registry.

Plans
-----
:class:`WeightedSum` (shorthand strings ``"x_j"`` and ``"edge_weight * x_j"``)
    :math:`\mathbf{x}'_i = \bigoplus_{j} w_{ji}\, \mathbf{x}_j \;(+\, c\,\mathbf{r}_i)`
    with a basic reduction :math:`\bigoplus` (sum, mean, min, max) through
    :func:`gnn.core.ops.spmm`, and an optional root term :math:`c\,\mathbf{r}_i`
    added after the propagate hooks (GIN's :math:`(1 + \epsilon)\mathbf{x}_i`).
:class:`ChannelWeightedSum`
    :math:`\mathbf{x}'_i = \sum_j \mathbf{x}_j \odot \mathbf{W}_{ji}` with a weight per edge
    *and channel* (``W`` ``[E, F]``, SchNet's continuous filters) through
    :func:`gnn.core.ops.gather_mul_scatter`, which keeps no ``[E, F]`` tensor for the backward passes.
    The layer may pass ``W`` as an :class:`EdgeScaled` ``(values, scale)``: the fused op takes the
    per-edge scalar ``scale`` as its own argument, and the general path (and every hook) sees the
    product ``values * scale[:, None]``.
:class:`NodeScoreAttention`
    GAT: :math:`\alpha_{ji} = \mathrm{softmax}_i(\mathrm{LeakyReLU}(s_j + t_i + u_{ji}))`,
    :math:`\mathbf{x}'_i = \sum_j \alpha_{ji} \mathbf{x}_j` per head
    (:func:`gnn.core.ops.node_score_attention`). ``edge_updater`` defers the
    attention and the following ``propagate`` computes both in one kernel.
:class:`AdditiveAttention`
    GATv2: :math:`\alpha_{ji} = \mathrm{softmax}_i(\mathbf{a}^\top
    \mathrm{LeakyReLU}(\mathbf{x}_j + \mathbf{x}_i + \mathbf{e}_{ji}))`
    (:func:`gnn.core.ops.additive_attention`), deferred likewise.
:class:`DotAttention`
    Transformer: :math:`\alpha_{ji} = \mathrm{softmax}_i(\langle \mathbf{q}_i,
    \mathbf{k}_j + \mathbf{e}_{ji}\rangle / \sqrt{C})`,
    :math:`\mathbf{x}'_i = \sum_j \alpha_{ji}(\mathbf{v}_j + \mathbf{e}_{ji})`
    computed in ``propagate`` (:func:`gnn.core.ops.dot_attention`); the
    attention weights are left in the layer's ``_alpha`` as its message does.

The attention plans read from the layer: ``negative_slope`` and ``dropout``
attributes, ``att`` (GATv2's ``[1, H, C]`` attention vector), and the method
``edge_term(edge_attr)``, which maps the raw edge features to the per-edge term of
the score (``[E, H]`` for GAT, ``[E, H, C]`` for GATv2 and Transformer) or
returns ``None``.

Example (the whole declaration of a GCN-style conv)::

    class MyConv(MessagePassing):
        fused_message = "edge_weight * x_j"

        def forward(self, x, edge_index, edge_weight=None):
            return self.propagate(edge_index, x=x, edge_weight=edge_weight)

        def message(self, x_j, edge_weight):
            return x_j if edge_weight is None else edge_weight.view(-1, 1) * x_j
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import Tensor

from . import validation as v
from .ops.csr import CSR

__all__ = [
    "AdditiveAttention",
    "AttentionWeights",
    "ChannelWeightedSum",
    "DotAttention",
    "EdgeScaled",
    "NodeScoreAttention",
    "Plan",
    "WeightedSum",
    "materialize",
    "materialize_products",
    "parse",
]


class Plan:
    """Base of the fused plans (see the module docstring)."""

    #: the method whose general-path definition the plan stands for
    defines: tuple[str, ...] = ("message",)


@dataclass(frozen=True)
class WeightedSum(Plan):
    """``message = x_j`` or ``weight * x_j``, reduced by the layer's basic aggregation.

    Args:
        weight: name of the propagate argument holding ``[E]`` edge weights, or
            ``None`` for the plain ``x_j`` message.
        root: name of a propagate argument ``(r, c)`` (``r`` a ``[N_dst, *]`` tensor or
            ``None``, ``c`` a number or tensor) whose ``c * r`` is added to the
            result after the propagate hooks ran; absent or ``None``: nothing added.
        source: name of the node argument lifted to ``x_j``.
    """

    weight: str | None = None
    root: str | None = None
    source: str = "x"


@dataclass(frozen=True)
class ChannelWeightedSum(Plan):
    """``message = x_j * W`` with ``W`` ``[E, F]`` (one weight per edge and channel), summed.

    Args:
        weight: name of the propagate argument holding ``W`` (a ``[E, F]`` tensor or an
            :class:`EdgeScaled`).
        source: name of the node argument lifted to ``x_j`` (``[N, F]``).
    """

    weight: str = "W"
    source: str = "x"


@dataclass(frozen=True)
class NodeScoreAttention(Plan):
    """GAT's attention (see the module docstring).

    Args:
        scores: ``edge_updater`` argument holding ``(s_src [N_src, H], s_dst [N_dst, H] or None)``.
        edge_attr: ``edge_updater`` argument passed to the layer's ``edge_term``.
        mask: ``edge_updater`` argument holding a bool ``[E]`` of edges that get zero
            attention (replaced self loops), or ``None``.
        source: ``propagate`` argument lifted to ``x_j`` (``[N_src, H, C]``).
        weights: ``propagate`` argument carrying the attention weights.
    """

    scores: str = "alpha"
    edge_attr: str = "edge_attr"
    mask: str | None = None
    source: str = "x"
    weights: str = "alpha"
    defines = ("message", "edge_update")


@dataclass(frozen=True)
class AdditiveAttention(Plan):
    """GATv2's attention (see the module docstring).

    Args:
        features: ``edge_updater`` argument ``(x_src [N_src, H, C], x_dst [N_dst, H, C])``;
            ``x_src`` is also what the messages carry.
        edge_attr: ``edge_updater`` argument passed to the layer's ``edge_term``.
        mask: as for :class:`NodeScoreAttention`.
        source: ``propagate`` argument lifted to ``x_j``.
        weights: ``propagate`` argument carrying the attention weights.
    """

    features: str = "x"
    edge_attr: str = "edge_attr"
    mask: str | None = None
    source: str = "x"
    weights: str = "alpha"
    defines = ("message", "edge_update")


@dataclass(frozen=True)
class DotAttention(Plan):
    """TransformerConv's attention in one propagate (see the module docstring).

    Args:
        query: ``propagate`` argument lifted to ``query_i`` (``[N_dst, H, C]``).
        key: ``propagate`` argument lifted to ``key_j``.
        value: ``propagate`` argument lifted to ``value_j``.
        edge_attr: ``propagate`` argument passed to the layer's ``edge_term``.
    """

    query: str = "query"
    key: str = "key"
    value: str = "value"
    edge_attr: str = "edge_attr"


_SHORTHANDS = {"x_j": WeightedSum(), "edge_weight * x_j": WeightedSum("edge_weight")}


def parse(declared: Any, owner: str) -> Plan | None:
    """The :class:`Plan` a class attribute ``fused_message`` declares (``None``: no plan)."""
    if declared is None or isinstance(declared, Plan):
        return declared
    if isinstance(declared, str) and declared in _SHORTHANDS:
        return _SHORTHANDS[declared]
    raise ValueError(
        f"{owner}.fused_message must be None, one of {sorted(_SHORTHANDS)} or a gnn.core.plans.Plan, "
        f"got {declared!r}"
    )


class AttentionWeights:
    """Attention weights computed by a fused kernel, kept in CSR order until asked for.

    ``edge_updater`` returns one when the attention is deferred to the next
    ``propagate`` (the attention plans); after that call, :meth:`tensor` gives the
    ``[E, H]`` weights in the caller's edge order. Layers turn it into a tensor
    with :func:`materialize` before handing it to users.
    """

    __slots__ = ("inputs", "graph", "_csr", "_alpha")

    def __init__(self, inputs: dict[str, Any], graph: Any) -> None:
        self.inputs = inputs  # the edge_updater arguments (for the general path, if it must run)
        self.graph = graph
        self._csr: CSR | None = None
        self._alpha: Tensor | None = None

    def fill(self, csr: CSR, alpha_csr_order: Tensor) -> None:
        self._csr, self._alpha = csr, alpha_csr_order

    @property
    def ready(self) -> bool:
        return self._alpha is not None

    def tensor(self) -> Tensor:
        if self._alpha is None or self._csr is None:
            raise RuntimeError("the attention weights are computed by the next propagate() call")
        return self._csr.in_edge_order(self._alpha)


class EdgeScaled:
    r"""A per-edge tensor times a per-edge scalar, :math:`\mathbf{v}_e\, s_e`, with the product left
    to :class:`~gnn.core.MessagePassing`: a fused plan (:class:`ChannelWeightedSum`) takes both
    factors apart, and the general path, hooks and explanations get the product (:meth:`tensor`).

    Args:
        values: ``[E, *]`` per-edge tensor.
        scale: ``[E]`` per-edge scalar of the dtype of ``values``.

    Example:
        >>> w = EdgeScaled(torch.ones(3, 2), torch.tensor([1.0, 2.0, 3.0]))
        >>> w.tensor()[:, 0]
        tensor([1., 2., 3.])
    """

    __slots__ = ("values", "scale")

    def __init__(self, values: Tensor, scale: Tensor) -> None:
        if not isinstance(values, Tensor) or values.dim() < 1:
            raise TypeError(f"'values' must be a [E, *] tensor, got {v.describe(values)}")
        if not isinstance(scale, Tensor) or scale.dim() != 1 or scale.numel() != values.size(0):
            raise ValueError(
                f"'scale' must be a 1-D tensor with one entry per row of 'values' ({values.size(0)}), "
                f"got {v.describe(scale)}"
            )
        if scale.dtype != values.dtype:
            raise TypeError(f"'scale' must have the dtype of 'values' ({values.dtype}), got {scale.dtype}")
        self.values, self.scale = values, scale

    def tensor(self) -> Tensor:
        """The product ``values * scale`` broadcast over the trailing dimensions."""
        return self.values * self.scale.view((-1,) + (1,) * (self.values.dim() - 1))


def materialize(alpha: Any) -> Any:
    """``alpha`` as a tensor (an :class:`AttentionWeights` turned into ``[E, H]``, an
    :class:`EdgeScaled` into its product)."""
    return alpha.tensor() if isinstance(alpha, (AttentionWeights, EdgeScaled)) else alpha


def materialize_products(kwargs: dict[str, Any]) -> dict[str, Any]:
    """``kwargs`` with every :class:`EdgeScaled` value replaced by its product (the same dict when
    there is none)."""
    if not any(type(value) is EdgeScaled for value in kwargs.values()):
        return kwargs
    return {name: value.tensor() if type(value) is EdgeScaled else value for name, value in kwargs.items()}
