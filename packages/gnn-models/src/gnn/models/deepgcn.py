r"""DeepGCN blocks (Li et al., 2019, 2020): :class:`DeepGCNLayer`."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.checkpoint import checkpoint

__all__ = ["DeepGCNLayer"]

_BLOCKS = ("res+", "res", "dense", "plain")


class DeepGCNLayer(torch.nn.Module):
    r"""A residual block around a convolution (DeeperGCN / DeepGCN).

    * ``"res+"`` (pre-activation): :math:`\mathbf{x} + \mathrm{conv}(\mathrm{dropout}(
      \sigma(\mathrm{norm}(\mathbf{x}))))`;
    * ``"res"``: :math:`\mathrm{dropout}(\mathbf{x} + \sigma(\mathrm{norm}(\mathrm{conv}(\mathbf{x}))))`;
    * ``"dense"``: :math:`\mathrm{dropout}(\mathbf{x} \,\Vert\, \sigma(\mathrm{norm}(\mathrm{conv}(\mathbf{x}))))`;
    * ``"plain"``: :math:`\mathrm{dropout}(\sigma(\mathrm{norm}(\mathrm{conv}(\mathbf{x}))))`.

    ``norm`` and ``act`` may be ``None`` (skipped). With ``ckpt_grad`` the
    convolution is recomputed in the backward pass instead of keeping its
    intermediate tensors (gradient checkpointing), when its input needs a gradient.

    Args:
        conv: the convolution, called as ``conv(x, *args, **kwargs)``.
        norm: the normalization module.
        act: the activation module.
        block: ``"res+"``, ``"res"``, ``"dense"`` or ``"plain"``.
        dropout: dropout probability.
        ckpt_grad: checkpoint the convolution.

    Shapes:
        ``x`` ``[N, C]`` -> ``[N, C]`` (``[N, 2C]`` for ``"dense"``); further
        arguments go to ``conv``.

    Example:
        >>> from gnn.conv import GCNConv
        >>> layer = DeepGCNLayer(GCNConv(8, 8), torch.nn.LayerNorm(8), torch.nn.ReLU(), dropout=0.1)
        >>> layer(torch.randn(3, 8), torch.tensor([[0, 1], [1, 2]])).shape
        torch.Size([3, 8])
    """

    def __init__(
        self,
        conv: torch.nn.Module | None = None,
        norm: torch.nn.Module | None = None,
        act: torch.nn.Module | None = None,
        block: str = "res+",
        dropout: float = 0.0,
        ckpt_grad: bool = False,
    ) -> None:
        super().__init__()
        if not isinstance(block, str) or block.lower() not in _BLOCKS:
            raise ValueError(f"'block' must be one of {_BLOCKS}, got {block!r}")
        if not 0.0 <= dropout <= 1.0:
            raise ValueError(f"'dropout' must be a probability in [0, 1], got {dropout!r}")
        self.conv = conv
        self.norm = norm
        self.act = act
        self.block = block.lower()
        self.dropout = dropout
        self.ckpt_grad = ckpt_grad

    def reset_parameters(self) -> None:
        """Reset the convolution and the normalization."""
        for module in (self.conv, self.norm):
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()

    def _run_conv(self, x: Tensor, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Tensor:
        if self.conv is None:
            raise ValueError("DeepGCNLayer has no 'conv' to run")
        if self.ckpt_grad and x.requires_grad:
            return checkpoint(self.conv, x, *args, use_reentrant=True, **kwargs)
        return self.conv(x, *args, **kwargs)

    def _norm_act(self, h: Tensor) -> Tensor:
        if self.norm is not None:
            h = self.norm(h)
        if self.act is not None:
            h = self.act(h)
        return h

    def forward(self, x: Tensor, *args: Any, **kwargs: Any) -> Tensor:
        """Apply the block (see the class docstring)."""
        if self.block == "res+":
            h = F.dropout(self._norm_act(x), p=self.dropout, training=self.training)
            return x + self._run_conv(h, args, kwargs)
        h = self._norm_act(self._run_conv(x, args, kwargs))
        if self.block == "res":
            h = x + h
        elif self.block == "dense":
            h = torch.cat([x, h], dim=-1)
        return F.dropout(h, p=self.dropout, training=self.training)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(block={self.block})"
