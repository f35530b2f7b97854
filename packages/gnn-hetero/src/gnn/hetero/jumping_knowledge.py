r""":class:`HeteroJumpingKnowledge`: jumping knowledge per node type."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor

from gnn.core import validation as v

__all__ = ["HeteroJumpingKnowledge"]

_MODES = ("cat", "max", "lstm")


class _TypeJumpingKnowledge(torch.nn.Module):
    r"""Jumping knowledge of one type's layer-wise representations (the per-type module of
    :class:`HeteroJumpingKnowledge`; the parameters of PyG's ``JumpingKnowledge``).

    ``"cat"``: :math:`[\mathbf{x}^{(1)} \| \ldots \| \mathbf{x}^{(L)}]`; ``"max"``: the
    element-wise maximum; ``"lstm"``: :math:`\sum_\ell \alpha_\ell \mathbf{x}^{(\ell)}` with
    :math:`\alpha = \operatorname{softmax}_\ell(\mathbf{w}^\top
    \operatorname{BiLSTM}(\mathbf{x}^{(1)}, \ldots, \mathbf{x}^{(L)})_\ell + b)`.
    """

    def __init__(self, mode: str, channels: int | None = None, num_layers: int | None = None) -> None:
        super().__init__()
        self.mode = mode
        if mode == "lstm":
            hidden = (num_layers * channels) // 2  # type: ignore[operator]
            self.lstm: torch.nn.LSTM | None = torch.nn.LSTM(
                channels, hidden, bidirectional=True, batch_first=True
            )
            self.att: torch.nn.Linear | None = torch.nn.Linear(2 * hidden, 1)
            self.channels, self.num_layers = channels, num_layers
        else:
            self.lstm = self.att = None
            self.channels = self.num_layers = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.lstm is not None and self.att is not None:
            self.lstm.reset_parameters()
            self.att.reset_parameters()

    def forward(self, xs: list[Tensor]) -> Tensor:
        if self.mode == "cat":
            return torch.cat(xs, dim=-1)
        if self.mode == "max":
            # (max over a stack, not pairwise maxima: ties send the gradient to one layer, as in PyG)
            return torch.stack(xs, dim=-1).max(dim=-1)[0]
        assert self.lstm is not None and self.att is not None
        x = torch.stack(xs, dim=1)  # [N, L, C]
        scores, _ = self.lstm(x)
        alpha = torch.softmax(self.att(scores).squeeze(-1), dim=-1)  # [N, L]
        return (x * alpha.unsqueeze(-1)).sum(dim=1)

    def __repr__(self) -> str:
        if self.mode == "lstm":
            return f"JumpingKnowledge({self.mode}, channels={self.channels}, layers={self.num_layers})"
        return f"JumpingKnowledge({self.mode})"


class HeteroJumpingKnowledge(torch.nn.Module):
    r"""Jumping knowledge ("Representation Learning on Graphs with Jumping Knowledge
    Networks") applied to each node type's layer-wise representations.

    Per type :math:`t` with representations :math:`\mathbf{x}^{(1)}_t, \ldots, \mathbf{x}^{(L)}_t`:
    ``"cat"`` concatenates them, ``"max"`` takes their element-wise maximum, ``"lstm"``
    weighs them by attention scores from a bidirectional LSTM,
    :math:`\sum_\ell \alpha_\ell \mathbf{x}^{(\ell)}_t`.

    Args:
        types: the keys of the input dictionary (node types).
        mode: ``"cat"``, ``"max"`` or ``"lstm"``.
        channels: feature size per representation (``"lstm"`` only).
        num_layers: number of representations ``L`` (``"lstm"`` only).

    Shapes:
        ``xs_dict`` ``{type: [x^(1) [N_t, C], ..., x^(L)]}`` -> ``{type: [N_t, L * C]}``
        (``"cat"``) or ``{type: [N_t, C]}``. Parameters as in PyG:
        ``jk_dict.<type>.lstm.*`` and ``jk_dict.<type>.att.*`` for ``"lstm"``.

    Example:
        >>> jk = HeteroJumpingKnowledge(["paper", "author"], mode="max")
        >>> out = jk({"paper": [h1_p, h2_p], "author": [h1_a, h2_a]})
    """

    def __init__(
        self,
        types: list[str],
        mode: str,
        channels: int | None = None,
        num_layers: int | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(mode, str) or mode.lower() not in _MODES:
            raise ValueError(f"'mode' must be one of {list(_MODES)}, got {mode!r}")
        self.mode = mode.lower()
        if self.mode == "lstm":
            for name, value in (("channels", channels), ("num_layers", num_layers)):
                if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                    raise ValueError(f"'{name}' must be a positive int for mode='lstm', got {value!r}")
        if isinstance(types, str):
            raise TypeError(f"'types' must be a list of node type names, got the string {types!r}")
        self.jk_dict = torch.nn.ModuleDict(
            {key: _TypeJumpingKnowledge(self.mode, channels, num_layers) for key in types}
        )

    def reset_parameters(self) -> None:
        """Reset every type's LSTM and attention (``"lstm"`` only)."""
        for jk in self.jk_dict.values():
            jk.reset_parameters()

    def forward(self, xs_dict: dict[str, list[Tensor]]) -> dict[str, Tensor]:
        """Combine each type's list of representations."""
        if not isinstance(xs_dict, Mapping):
            raise TypeError(f"'xs_dict' must be a dict {{type: list of tensors}}, got {v.describe(xs_dict)}")
        out = {}
        for key, jk in self.jk_dict.items():
            if key not in xs_dict:
                raise ValueError(f"'xs_dict' has no entry for type {key!r}; it holds {list(xs_dict)}")
            xs = xs_dict[key]
            if not isinstance(xs, (list, tuple)) or not xs or not all(isinstance(x, Tensor) for x in xs):
                raise TypeError(
                    f"'xs_dict[{key!r}]' must be a non-empty list of tensors, got {v.describe(xs)}"
                )
            out[key] = jk(list(xs))
        return out

    def __repr__(self) -> str:
        if self.mode == "lstm":
            jk = next(iter(self.jk_dict.values()))
            return (
                f"{type(self).__name__}(num_types={len(self.jk_dict)}, mode={self.mode}, "
                f"channels={jk.channels}, layers={jk.num_layers})"
            )
        return f"{type(self).__name__}(num_types={len(self.jk_dict)}, mode={self.mode})"
