r"""The multi-layer perceptron :class:`MLP` (PyG 2.8's ``torch_geometric.nn.models.MLP`` API).

Each of the ``L = len(channel_list) - 1`` layers computes

.. math::
    \mathbf{h}^{(i+1)} = \mathrm{dropout}_{p_i}\big(\sigma(\mathrm{norm}_i(\mathbf{h}^{(i)}
    \mathbf{W}_i^\top + \mathbf{b}_i))\big)

(``act_first=True`` swaps :math:`\sigma` and the normalization); with
``plain_last=True`` the last layer is only linear (followed by its dropout).

The normalizations ``"batch_norm"`` and ``"layer_norm"`` are implemented here
with the parameter layout of PyG's ``BatchNorm`` (a wrapped
:class:`torch.nn.BatchNorm1d` under ``.module``) and ``LayerNorm`` (graph or
node mode), so PyG checkpoints load with ``strict=True``. Any other name is
looked up in :data:`gnn.core.registry.norms` (filled by gnn-conv).
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from .. import ops
from .. import validation as v
from .act import activate, no_forward_hooks
from .linear import Linear

__all__ = ["MLP"]

_DEPRECATED = {"relu_first", "batch_norm", "batch_norm_kwargs"}


# --------------------------------------------------------------------------------------
# normalizations with PyG's state_dict layout
# --------------------------------------------------------------------------------------
class _BatchNorm(torch.nn.Module):
    r"""Batch normalization over the node dimension, stored as ``module`` (PyG's layout).

    :math:`\mathbf{x}' = \frac{\mathbf{x} - \mathrm{E}[\mathbf{x}]}{\sqrt{\mathrm{Var}[\mathbf{x}] +
    \epsilon}} \odot \gamma + \beta` per channel. With ``allow_single_element=True``
    a single-row input is normalized with the running statistics.
    Shapes: ``[N, C] -> [N, C]``.
    """

    def __init__(
        self,
        in_channels: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        allow_single_element: bool = False,
    ) -> None:
        super().__init__()
        if allow_single_element and not track_running_stats:
            raise ValueError("'allow_single_element' requires 'track_running_stats=True'")
        self.in_channels = in_channels
        self.allow_single_element = allow_single_element
        self.module = torch.nn.BatchNorm1d(in_channels, eps, momentum, affine, track_running_stats)

    def reset_parameters(self) -> None:
        self.module.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        if self.allow_single_element and x.size(0) <= 1:
            m = self.module
            return F.batch_norm(x, m.running_mean, m.running_var, m.weight, m.bias, False, 0.0, m.eps)
        return self.module(x)

    def __repr__(self) -> str:
        return f"BatchNorm({self.module.extra_repr()})"


class _LayerNorm(torch.nn.Module):
    r"""Layer normalization per graph (``mode="graph"``) or per node (``mode="node"``).

    Graph mode normalizes all entries of one graph jointly:
    :math:`\mathbf{x}'_i = \frac{\mathbf{x}_i - \mu_g}{\sqrt{\sigma^2_g + \epsilon}} \odot \gamma + \beta`
    with :math:`\mu_g, \sigma^2_g` the mean and (biased) variance over the
    nodes and channels of graph :math:`g`; without ``batch`` the whole input
    is one graph and the denominator is :math:`\sigma + \epsilon` (as in PyG).
    Node mode is :func:`torch.nn.functional.layer_norm` over the channels.
    Shapes: ``[N, C] -> [N, C]``; ``batch: [N]``.
    """

    def __init__(self, in_channels: int, eps: float = 1e-5, affine: bool = True, mode: str = "graph") -> None:
        super().__init__()
        if mode not in ("graph", "node"):
            raise ValueError(f"'mode' must be 'graph' or 'node', got {mode!r}")
        self.in_channels = in_channels
        self.eps = eps
        self.affine = affine
        self.mode = mode
        if affine:
            self.weight = torch.nn.Parameter(torch.empty(in_channels))
            self.bias = torch.nn.Parameter(torch.empty(in_channels))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.weight is not None:
            torch.nn.init.ones_(self.weight)
            torch.nn.init.zeros_(self.bias)

    def forward(self, x: Tensor, batch: Tensor | None = None, batch_size: int | None = None) -> Tensor:
        if self.mode == "node":
            return F.layer_norm(x, (self.in_channels,), self.weight, self.bias, self.eps)
        if batch is None:
            centered = x - x.mean()
            out = centered / (centered.pow(2).mean().sqrt() + self.eps)
        else:
            if batch_size is None:
                batch_size = int(batch.max()) + 1 if batch.numel() else 0
            count = ops.scatter(torch.ones_like(x[:, 0]), batch, 0, batch_size, "sum")
            norm = (count * x.size(-1)).clamp(min=1).view(-1, 1)
            mean = ops.scatter(x.sum(-1, keepdim=True), batch, 0, batch_size, "sum") / norm
            centered = x - mean[batch]
            var = ops.scatter(centered.pow(2).sum(-1, keepdim=True), batch, 0, batch_size, "sum") / norm
            out = centered / (var + self.eps).sqrt()[batch]
        if self.weight is not None:
            out = out * self.weight + self.bias
        return out

    def __repr__(self) -> str:
        return f"LayerNorm({self.in_channels}, affine={self.affine}, mode={self.mode})"


_BUILTIN_NORMS: dict[str, type[torch.nn.Module]] = {"batch": _BatchNorm, "layer": _LayerNorm}
#: normalizations whose output is a fresh tensor not saved for their backward (an activation may
#: overwrite it)
_FRESH_NORMS = (torch.nn.Identity, _BatchNorm)


def _norm_key(name: str) -> str:
    key = name.lower().replace("_", "").replace("-", "")
    return key[: -len("norm")] if key.endswith("norm") and len(key) > 4 else key


def _make_norm(norm: Any, channels: int, norm_kwargs: dict[str, Any]) -> torch.nn.Module:
    if isinstance(norm, str):
        builtin = _BUILTIN_NORMS.get(_norm_key(norm))
        if builtin is not None:
            return builtin(channels, **norm_kwargs)
        from ..registry import norms

        try:
            return norms.resolve(norm, channels, **norm_kwargs)
        except ValueError as error:
            raise ValueError(f"'norm' {norm!r} is not a known normalization: {error}") from None
    if isinstance(norm, torch.nn.Module):
        return norm  # shared by every layer, as in PyG
    if callable(norm):
        return norm(channels, **norm_kwargs)
    raise TypeError(f"'norm' must be a string, a module, a class or None, got {v.describe(norm)}")


# --------------------------------------------------------------------------------------
# activations
# --------------------------------------------------------------------------------------
def _activation_table() -> dict[str, type[torch.nn.Module]]:
    table: dict[str, type[torch.nn.Module]] = {}
    for name, obj in vars(torch.nn.modules.activation).items():
        if isinstance(obj, type) and issubclass(obj, torch.nn.Module) and obj is not torch.nn.Module:
            table[name.lower()] = obj
    table["swish"] = torch.nn.SiLU
    return table


def resolve_activation(act: Any, act_kwargs: dict[str, Any] | None = None) -> Callable[..., Tensor] | None:
    """Turn ``act`` (a name such as ``"relu"``/``"leaky_relu"``, a module, a class or a
    callable) into a callable; ``None`` stays ``None``."""
    act_kwargs = act_kwargs or {}
    if act is None:
        return None
    if isinstance(act, str):
        table = _activation_table()
        cls = table.get(act.lower().replace("_", "").replace("-", ""))
        if cls is None:
            raise ValueError(f"'act' {act!r} is not a known activation; choose one of {sorted(table)}")
        return cls(**act_kwargs)
    if isinstance(act, type) and issubclass(act, torch.nn.Module):
        return act(**act_kwargs)
    if callable(act):
        return act
    raise TypeError(f"'act' must be a string, a module or a callable, got {v.describe(act)}")


# --------------------------------------------------------------------------------------
# MLP
# --------------------------------------------------------------------------------------
def _per_layer(name: str, value: Any, num_layers: int, kind: type) -> list[Any]:
    if isinstance(value, (list, tuple)):
        if len(value) != num_layers:
            raise ValueError(f"'{name}' has {len(value)} values but the MLP has {num_layers} layers")
        return [kind(x) for x in value]
    return [kind(value)] * num_layers


class MLP(torch.nn.Module):
    r"""A multi-layer perceptron with optional normalization, activation and dropout.

    Built either from ``channel_list`` (``[in, hidden_1, ..., out]``, one
    layer per consecutive pair) or from ``in_channels``, ``hidden_channels``,
    ``out_channels`` and ``num_layers`` (which override ``channel_list``).
    Every layer but a plain last one computes

    .. math::
        \mathbf{h} \leftarrow \mathrm{dropout}_{p_i}(\sigma(\mathrm{norm}_i(\mathbf{h}\mathbf{W}_i^\top
        + \mathbf{b}_i)))

    Args:
        channel_list: channel sizes, or an int used as ``in_channels``.
        in_channels, hidden_channels, out_channels, num_layers: the
            alternative, equally-sized specification.
        dropout: dropout probability after each layer (a list gives one per
            layer; a float gives ``0`` to a plain last layer).
        act: activation name (``"relu"``, ``"elu"``, ``"leaky_relu"``,
            ``"gelu"``, ``"tanh"``, ``"sigmoid"``, ... any
            :mod:`torch.nn` activation), module, class or callable, or ``None``.
        act_first: apply the activation before the normalization.
        act_kwargs: keyword arguments of the activation class.
        norm: ``"batch_norm"``, ``"layer_norm"``, a name registered in
            :data:`gnn.core.registry.norms`, a module (shared by all layers),
            a class/callable ``norm(channels, **norm_kwargs)``, or ``None``.
        norm_kwargs: keyword arguments of the normalization.
        plain_last: keep the last layer free of activation and normalization.
        bias: learn biases (a list gives one flag per layer).
        **kwargs: PyG's deprecated ``relu_first``, ``batch_norm`` and
            ``batch_norm_kwargs``.

    Shapes:
        ``x: [N, in_channels]`` (``batch: [N]`` for graph-wise norms) ->
        ``[N, out_channels]``; with ``return_emb`` given, also the last
        hidden embedding.

    Example:
        >>> mlp = MLP([16, 32, 8], norm="layer_norm", dropout=0.1)
        >>> mlp(torch.randn(10, 16)).shape
        torch.Size([10, 8])
        >>> MLP(in_channels=16, hidden_channels=32, out_channels=8, num_layers=3)
        MLP(16, 32, 32, 8)
    """

    def __init__(
        self,
        channel_list: list[int] | int | None = None,
        *,
        in_channels: int | None = None,
        hidden_channels: int | None = None,
        out_channels: int | None = None,
        num_layers: int | None = None,
        dropout: float | list[float] = 0.0,
        act: str | Callable | None = "relu",
        act_first: bool = False,
        act_kwargs: dict[str, Any] | None = None,
        norm: str | Callable | None = "batch_norm",
        norm_kwargs: dict[str, Any] | None = None,
        plain_last: bool = True,
        bias: bool | list[bool] = True,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        unknown = sorted(set(kwargs) - _DEPRECATED)
        if unknown:
            raise TypeError(f"MLP got unexpected keyword argument(s) {unknown}")
        if "relu_first" in kwargs:
            warnings.warn("'relu_first' is deprecated, use 'act_first'", DeprecationWarning, stacklevel=2)
            act_first = bool(kwargs["relu_first"])
        if "batch_norm" in kwargs:
            warnings.warn("'batch_norm' is deprecated, use 'norm'", DeprecationWarning, stacklevel=2)
            norm = "batch_norm" if kwargs["batch_norm"] else None
        if "batch_norm_kwargs" in kwargs:
            warnings.warn(
                "'batch_norm_kwargs' is deprecated, use 'norm_kwargs'", DeprecationWarning, stacklevel=2
            )
            norm_kwargs = kwargs["batch_norm_kwargs"] if norm_kwargs is None else norm_kwargs

        self.channel_list = self._channels(
            channel_list, in_channels, hidden_channels, out_channels, num_layers
        )
        layers = len(self.channel_list) - 1
        self.act = resolve_activation(act, act_kwargs)
        self.act_first = bool(act_first)
        self.plain_last = bool(plain_last)

        if isinstance(dropout, (list, tuple)):
            self.dropout = _per_layer("dropout", dropout, layers, float)
        else:
            self.dropout = [float(dropout)] * (layers - 1) + [0.0 if plain_last else float(dropout)]
        for p in self.dropout:
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"'dropout' probabilities must lie in [0, 1], got {p}")
        biases = _per_layer("bias", bias, layers, bool)

        self.lins = torch.nn.ModuleList(
            Linear(c_in, c_out, bias=b)
            for c_in, c_out, b in zip(self.channel_list[:-1], self.channel_list[1:], biases)
        )
        num_norms = layers - 1 if plain_last else layers
        norm_kwargs = dict(norm_kwargs or {})
        self.norms = torch.nn.ModuleList(
            torch.nn.Identity() if norm is None else _make_norm(norm, channels, norm_kwargs)
            for channels in self.channel_list[1 : num_norms + 1]
        )
        self.supports_norm_batch = False
        if len(self.norms) > 0:
            params = inspect.signature(self.norms[0].forward).parameters
            self.supports_norm_batch = "batch" in params
        self.reset_parameters()

    @staticmethod
    def _channels(
        channel_list: Sequence[int] | int | None,
        in_channels: int | None,
        hidden_channels: int | None,
        out_channels: int | None,
        num_layers: int | None,
    ) -> list[int]:
        if isinstance(channel_list, int):
            in_channels, channel_list = channel_list, None
        if in_channels is not None:
            if num_layers is None:
                raise ValueError("'num_layers' must be given together with 'in_channels'")
            if not isinstance(num_layers, int) or num_layers < 1:
                raise ValueError(f"'num_layers' must be a positive int, got {num_layers!r}")
            if num_layers > 1 and hidden_channels is None:
                raise ValueError(f"'hidden_channels' must be given for num_layers={num_layers}")
            if out_channels is None:
                raise ValueError("'out_channels' must be given together with 'in_channels'")
            channel_list = [in_channels] + [hidden_channels] * (num_layers - 1) + [out_channels]
        if not isinstance(channel_list, (list, tuple)) or len(channel_list) < 2:
            raise ValueError(
                "'channel_list' must list at least the input and output channels "
                f"(or give 'in_channels'/'out_channels'/'num_layers'), got {channel_list!r}"
            )
        return [int(c) for c in channel_list]

    @property
    def in_channels(self) -> int:
        """Size of each input sample."""
        return self.channel_list[0]

    @property
    def out_channels(self) -> int:
        """Size of each output sample."""
        return self.channel_list[-1]

    @property
    def num_layers(self) -> int:
        """Number of linear layers."""
        return len(self.channel_list) - 1

    def reset_parameters(self) -> None:
        """Re-initialize every linear layer and normalization."""
        for lin in self.lins:
            lin.reset_parameters()
        for norm in self.norms:
            if hasattr(norm, "reset_parameters"):
                norm.reset_parameters()

    def forward(
        self,
        x: Tensor,
        batch: Tensor | None = None,
        batch_size: int | None = None,
        return_emb: Any = None,
    ) -> Tensor | tuple[Tensor, Tensor | None]:
        """``x: [N, in_channels]`` -> ``[N, out_channels]``.

        ``batch``/``batch_size`` reach normalizations that take them (graph
        layer norm). When ``return_emb`` is not ``None`` the result is
        ``(out, emb)`` with ``emb`` the output of the last non-plain layer
        (``None`` if there is none), as in PyG.
        """
        emb: Tensor | None = None
        for i, lin in enumerate(self.lins):
            x = lin(x)
            if i < len(self.norms):
                norm = self.norms[i]
                # a ReLU may overwrite the linear map's fresh output (and a plain batch norm's)
                fresh = no_forward_hooks(lin, norm)
                if self.act is not None and self.act_first:
                    x = activate(self.act, x, fresh=fresh)
                x = norm(x, batch, batch_size) if self.supports_norm_batch else norm(x)
                if self.act is not None and not self.act_first:
                    x = activate(self.act, x, fresh=fresh and type(norm) in _FRESH_NORMS)
                x = F.dropout(x, p=self.dropout[i], training=self.training)
                emb = x
            else:
                x = F.dropout(x, p=self.dropout[i], training=self.training)
        if return_emb is not None:
            return x, emb
        return x

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({', '.join(str(c) for c in self.channel_list)})"
