r""":class:`HeteroConv`: one message-passing layer per edge type, combined per destination."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from gnn.core import validation as v

from ._utils import EdgeType, NodeType, TypeModuleDict, check_self_loops

__all__ = ["HeteroConv", "group"]

_AGGRS = ("sum", "mean", "min", "max", "cat", None)


def group(xs: list[Tensor], aggr: str | None) -> Tensor | None:
    """Combine the outputs ``xs`` (``[N, F]`` each) of the edge types sharing a destination.

    ``"sum"`` and ``"mean"`` add pairwise (no stacked copy); ``"min"`` and ``"max"`` reduce a
    stack (ties send the gradient to one input, as in PyG); ``"cat"`` concatenates the features (``[N, sum F]``); ``None`` stacks them
    (``[N, len(xs), F]``). No outputs give ``None``.
    """
    if not xs:
        return None
    if aggr is None:
        return torch.stack(xs, dim=1)
    if len(xs) == 1:
        return xs[0]
    if aggr == "cat":
        return torch.cat(xs, dim=-1)
    if aggr in ("sum", "mean"):
        out = xs[0] + xs[1]
        for x in xs[2:]:
            out = out + x
        return out / len(xs) if aggr == "mean" else out
    stacked = torch.stack(xs, dim=0)
    return stacked.max(dim=0)[0] if aggr == "max" else stacked.min(dim=0)[0]


class HeteroConv(torch.nn.Module):
    r"""Run a (bipartite) message-passing layer per edge type and combine the results of
    the edge types that share a destination node type.

    .. math::
        \mathbf{x}'_v = \bigoplus_{r = (s, \cdot, t(v))} f_r\big((\mathbf{x}_s, \mathbf{x}_{t(v)}),
        \mathcal{E}_r\big)_v

    with :math:`\bigoplus` = ``aggr``. Unlike :func:`~gnn.hetero.to_hetero`, each edge type
    may have a layer of its own kind.

    Args:
        convs: ``{edge type: layer}``, e.g. ``{("paper", "cites", "paper"): GCNConv(-1, 64),
            ("author", "writes", "paper"): SAGEConv((-1, -1), 64)}``.
        aggr: ``"sum"``, ``"mean"``, ``"min"``, ``"max"``, ``"cat"`` (concatenate the
            features) or ``None`` (stack: ``[N, num_edge_types, F]``).

    Shapes:
        ``forward(x_dict, edge_index_dict, *more_dicts, **name_dict)``: for every edge type
        ``(src, rel, dst)`` with an entry in some positional dict or ``*_dict`` keyword,
        its layer is called with, per argument, the dict's entry for the edge type, else
        ``x[src]`` when ``src == dst``, else the pair ``(x[src], x[dst])``; keyword
        arguments drop their ``_dict`` suffix (``edge_attr_dict`` -> ``edge_attr``). Returns
        ``{dst node type: combined output}``. Parameters:
        ``convs.<src___rel___dst>.*`` (PyG's names).

    Example:
        >>> conv = HeteroConv({("paper", "cites", "paper"): GCNConv(-1, 64),
        ...                    ("author", "writes", "paper"): SAGEConv((-1, -1), 64)}, aggr="sum")
        >>> out = conv(x_dict, edge_index_dict)   # {"paper": [N_paper, 64]}
    """

    def __init__(self, convs: dict[EdgeType, torch.nn.Module], aggr: str | None = "sum") -> None:
        super().__init__()
        if not isinstance(convs, Mapping):
            raise TypeError(f"'convs' must be a dict {{edge type: layer}}, got {v.describe(convs)}")
        for edge_type, module in convs.items():
            if not (
                isinstance(edge_type, tuple)
                and len(edge_type) == 3
                and all(isinstance(p, str) for p in edge_type)
            ):
                raise TypeError(
                    f"the keys of 'convs' must be (src, rel, dst) string triplets, got {edge_type!r}"
                )
            if not isinstance(module, torch.nn.Module):
                raise TypeError(f"'convs[{edge_type!r}]' must be a torch.nn.Module, got {v.describe(module)}")
            check_self_loops(module, [edge_type])
        if aggr not in _AGGRS:
            raise ValueError(f"'aggr' must be one of {list(_AGGRS)}, got {aggr!r}")
        src_types = {key[0] for key in convs}
        dst_types = {key[-1] for key in convs}
        if src_types - dst_types:
            warnings.warn(
                f"There exist node types ({src_types - dst_types}) whose representations do not get "
                "updated during message passing as they do not occur as destination type in any edge "
                "type. This may lead to unexpected behavior.",
                stacklevel=2,
            )
        self.convs = TypeModuleDict(convs)
        self.aggr = aggr

    def reset_parameters(self) -> None:
        """Reset every layer."""
        for conv in self.convs.values():
            conv.reset_parameters()

    def forward(self, *args_dict: Any, **kwargs_dict: Any) -> dict[NodeType, Tensor]:
        """Run each edge type's layer (see the class docstring) and combine per destination."""
        for i, value_dict in enumerate(args_dict):
            if not isinstance(value_dict, Mapping):
                raise TypeError(
                    f"positional argument {i} of HeteroConv must be a dict keyed by node or edge type "
                    f"(x_dict, edge_index_dict, ...), got {v.describe(value_dict)}"
                )
        for arg, value_dict in kwargs_dict.items():
            if not arg.endswith("_dict"):
                raise ValueError(
                    f"Keyword arguments in '{type(self).__name__}' need to end with '_dict' (got '{arg}')"
                )
            if not isinstance(value_dict, Mapping):
                raise TypeError(
                    f"'{arg}' must be a dict keyed by node or edge type, got {v.describe(value_dict)}"
                )

        out_dict: dict[NodeType, list[Tensor]] = {}
        for edge_type, conv in self.convs.items():
            src, _, dst = edge_type
            has_edge_level_arg = False
            args = []
            for value_dict in args_dict:
                if edge_type in value_dict:
                    has_edge_level_arg = True
                    args.append(value_dict[edge_type])
                elif src == dst and src in value_dict:
                    args.append(value_dict[src])
                elif src in value_dict or dst in value_dict:
                    args.append((value_dict.get(src), value_dict.get(dst)))
            kwargs = {}
            for arg, value_dict in kwargs_dict.items():
                name = arg[:-5]
                if edge_type in value_dict:
                    has_edge_level_arg = True
                    kwargs[name] = value_dict[edge_type]
                elif src == dst and src in value_dict:
                    kwargs[name] = value_dict[src]
                elif src in value_dict or dst in value_dict:
                    kwargs[name] = (value_dict.get(src), value_dict.get(dst))
            if not has_edge_level_arg:
                continue
            out = conv(*args, **kwargs)
            out_dict.setdefault(dst, []).append(out)

        return {key: group(outs, self.aggr) for key, outs in out_dict.items()}  # type: ignore[misc]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(num_relations={len(self.convs)})"
