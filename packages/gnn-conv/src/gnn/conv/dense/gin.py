r"""The dense graph isomorphism layer :class:`DenseGINConv` (Xu et al., 2019)."""

from __future__ import annotations

import torch
from torch import Tensor

from gnn.core.nn.inits import reset

from ._inputs import apply_mask, dense_inputs


class DenseGINConv(torch.nn.Module):
    r"""Graph isomorphism layer on dense, batched adjacency matrices.

    .. math::
        X' = h_\Theta\big(A X + (1 + \epsilon) X\big)

    per graph of the batch (the root term only when ``add_loop=True``);
    ``adj[b, i, j]`` is how much node ``j`` contributes to node ``i``.

    Args:
        nn: the network :math:`h_\Theta` applied to the ``[B, N, F]`` result.
        eps: initial :math:`\epsilon`.
        train_eps: learn :math:`\epsilon` (a parameter; otherwise a buffer).

    Shapes:
        ``x`` ``[B, N, F]`` (or ``[N, F]``), ``adj`` ``[B, N, N]`` (or
        ``[N, N]``), ``mask`` ``[B, N]`` -> ``[B, N, F_out]`` (always
        batched). Rows of masked-out nodes are zero.

    Example:
        >>> conv = DenseGINConv(torch.nn.Linear(16, 32))
        >>> conv(torch.randn(2, 5, 16), torch.ones(2, 5, 5)).shape
        torch.Size([2, 5, 32])
    """

    def __init__(self, nn: torch.nn.Module, eps: float = 0.0, train_eps: bool = False) -> None:
        super().__init__()
        self.nn = nn
        self.initial_eps = eps
        if train_eps:
            self.eps = torch.nn.Parameter(torch.empty(1))
        else:
            self.register_buffer("eps", torch.empty(1))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Reset ``nn`` and set ``eps`` back to its initial value."""
        reset(self.nn)
        self.eps.data.fill_(self.initial_eps)

    def forward(self, x: Tensor, adj: Tensor, mask: Tensor | None = None, add_loop: bool = True) -> Tensor:
        """Apply the layer (see the class docstring for shapes)."""
        x, adj, mask = dense_inputs(x, adj, mask)
        out = adj @ x
        if add_loop:
            out = out + (1 + self.eps) * x
        return apply_mask(self.nn(out), mask)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(nn={self.nn})"
