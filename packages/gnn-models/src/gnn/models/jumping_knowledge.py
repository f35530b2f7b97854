r"""Jumping knowledge (Xu et al., 2018): :class:`JumpingKnowledge`."""

from __future__ import annotations

import torch
from torch import Tensor

from gnn.core import validation as v

__all__ = ["JumpingKnowledge"]

_MODES = ("cat", "max", "lstm")


class JumpingKnowledge(torch.nn.Module):
    r"""Combine the representations :math:`\mathbf{x}_v^{(1)}, \ldots, \mathbf{x}_v^{(T)}` of a node's layers.

    * ``"cat"``: :math:`\mathbf{x}_v^{(1)} \Vert \ldots \Vert \mathbf{x}_v^{(T)}`;
    * ``"max"``: the element-wise maximum over the layers;
    * ``"lstm"``: :math:`\sum_t \alpha_v^{(t)} \mathbf{x}_v^{(t)}` with
      :math:`\alpha_v = \mathrm{softmax}_t(\mathbf{a}^\top \mathrm{BiLSTM}(\mathbf{x}_v^{(1..T)})_t + b)`,
      a bidirectional LSTM of hidden size :math:`\lfloor T C / 2 \rfloor` per direction
      run over the layers of each node.

    Args:
        mode: ``"cat"``, ``"max"`` or ``"lstm"``.
        channels: features per representation (``"lstm"`` only).
        num_layers: number of representations (``"lstm"`` only).

    Shapes:
        ``xs``: a list of ``T`` tensors ``[N, C]`` -> ``[N, T C]`` (``"cat"``) or ``[N, C]``.

    Example:
        >>> jk = JumpingKnowledge("lstm", channels=8, num_layers=3)
        >>> jk([torch.randn(5, 8) for _ in range(3)]).shape
        torch.Size([5, 8])
    """

    def __init__(self, mode: str, channels: int | None = None, num_layers: int | None = None) -> None:
        super().__init__()
        if not isinstance(mode, str) or mode.lower() not in _MODES:
            raise ValueError(f"'mode' must be one of {_MODES}, got {mode!r}")
        self.mode = mode.lower()
        if self.mode == "lstm":
            if channels is None:
                raise ValueError("'channels' must be given for mode 'lstm'")
            if num_layers is None:
                raise ValueError("'num_layers' must be given for mode 'lstm'")
            hidden = (num_layers * channels) // 2
            self.lstm = torch.nn.LSTM(channels, hidden, bidirectional=True, batch_first=True)
            self.att = torch.nn.Linear(2 * hidden, 1)
            self.channels = channels
            self.num_layers = num_layers
        else:
            self.lstm = None
            self.att = None
            self.channels = None
            self.num_layers = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialize the LSTM and the attention map (``"lstm"``)."""
        if self.lstm is not None:
            self.lstm.reset_parameters()
            self.att.reset_parameters()

    def forward(self, xs: list[Tensor]) -> Tensor:
        """Combine ``xs`` (see the class docstring)."""
        if not isinstance(xs, (list, tuple)) or len(xs) == 0:
            raise ValueError(f"'xs' must be a non-empty list of tensors, got {v.describe(xs)}")
        if self.mode == "cat":
            return torch.cat(list(xs), dim=-1)
        if self.mode == "max":
            # (max over a stacked dim: on ties the gradient goes to one layer, as in PyG)
            return torch.stack(list(xs), dim=-1).max(dim=-1).values
        x = torch.stack(list(xs), dim=1)  # [N, T, C]
        h, _ = self.lstm(x)
        alpha = torch.softmax(self.att(h).squeeze(-1), dim=-1)  # [N, T]
        return torch.einsum("ntc,nt->nc", x, alpha)

    def __repr__(self) -> str:
        if self.mode == "lstm":
            return f"{type(self).__name__}({self.mode}, channels={self.channels}, layers={self.num_layers})"
        return f"{type(self).__name__}({self.mode})"
