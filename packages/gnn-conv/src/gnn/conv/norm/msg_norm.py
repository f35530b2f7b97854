r"""Message normalization (Li et al., 2020), :class:`MessageNorm`."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import Parameter

from gnn.core import validation as v


class MessageNorm(torch.nn.Module):
    r"""Rescales aggregated messages to the norm of the receiving node's features.

    .. math::
        \mathbf{x}_i' = s \cdot \|\mathbf{x}_i\|_p \cdot \frac{\mathbf{m}_i}{\|\mathbf{m}_i\|_p}

    (DeeperGCN then feeds :math:`\mathbf{x}_i + \mathbf{x}_i'` to an MLP). Messages of norm 0
    stay 0 (:func:`torch.nn.functional.normalize`).

    Args:
        learn_scale: learn the scale :math:`s` (else it stays 1).
        device: device of the parameter.

    Shapes:
        ``x`` ``[N, C]``, ``msg`` ``[N, C]`` -> ``[N, C]``.

    Example:
        >>> norm = MessageNorm()
        >>> norm(torch.tensor([[3.0, 4.0]]), torch.tensor([[0.0, 2.0]]))
        tensor([[0., 5.]], grad_fn=<MulBackward0>)
    """

    def __init__(self, learn_scale: bool = False, device: torch.device | None = None):
        super().__init__()
        self.scale = Parameter(torch.empty(1, device=device), requires_grad=learn_scale)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Resets the scale :math:`s` to one."""
        with torch.no_grad():
            self.scale.fill_(1.0)

    def forward(self, x: Tensor, msg: Tensor, p: float = 2.0) -> Tensor:
        """Rescale ``msg``.

        Args:
            x: ``[N, C]`` node features.
            msg: ``[N, C]`` aggregated messages.
            p: the order of the norm.
        """
        v.check_tensor("x", x)
        v.check_tensor("msg", msg)
        if x.dim() == 0 or msg.shape[:-1] != x.shape[:-1]:
            raise ValueError(
                f"'msg' must have one row per row of 'x' ({v.describe(x)}), got {v.describe(msg)}"
            )
        factor = torch.linalg.vector_norm(x, ord=p, dim=-1, keepdim=True) * self.scale
        return F.normalize(msg, p=p, dim=-1) * factor

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(learn_scale={self.scale.requires_grad})"
