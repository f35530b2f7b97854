r""":class:`MemPooling`: memory-based soft cluster assignment (Khasahmadi et al., 2020)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import Parameter

from gnn.core import validation as v
from gnn.core.nn.linear import Linear
from gnn.core.utils import to_dense_batch

from .select._checks import check_channels, check_real

#: the floor of probabilities before their logarithm in :meth:`MemPooling.kl_loss`
EPS = 1e-15


class MemPooling(torch.nn.Module):
    r"""Memory based pooling (Khasahmadi et al., "Memory-Based Graph Networks"): nodes are softly
    assigned to :math:`K` learned memory keys per head, the heads are mixed by a
    :math:`1 \times 1` convolution, and each cluster pools its nodes.

    .. math::
        S^{(h)}_{ij} &= \frac{(1 + \lVert \mathbf{x}_i - \mathbf{k}^{(h)}_j \rVert^2 / \tau)^{-\frac{1+\tau}{2}}}
            {\sum_{l=1}^{K} (1 + \lVert \mathbf{x}_i - \mathbf{k}^{(h)}_l \rVert^2 / \tau)^{-\frac{1+\tau}{2}}}\\
        \mathbf{S} &= \mathrm{softmax}\big(\mathrm{Conv2d}_{1\times1}(\Vert_{h=1}^{H} \mathbf{S}^{(h)})\big)
            \in \mathbb{R}^{N \times K}\\
        \mathbf{X}' &= \mathbf{S}^\top \mathbf{X} \mathbf{W} \in \mathbb{R}^{K \times F'}

    Padding nodes (``mask`` false) get :math:`\mathbf{S}` rows of zeros.

    Args:
        in_channels: :math:`F`.
        out_channels: :math:`F'`.
        heads: :math:`H`.
        num_clusters: :math:`K` (per head).
        tau: the temperature :math:`\tau` of the Student-t kernel.

    Shapes:
        ``x`` ``[N, F]`` with ``batch`` ``[N]`` (sorted), or dense ``[B, N, F]`` with ``mask``
        ``[B, N]`` -> ``(x [B, K, F'], S [B, N, K])``.

    Example:
        >>> pool = MemPooling(16, 32, heads=4, num_clusters=10)
        >>> out, S = pool(torch.randn(20, 16), torch.tensor([0] * 8 + [1] * 12))
        >>> out.shape, S.shape
        (torch.Size([2, 10, 32]), torch.Size([2, 12, 10]))
        >>> loss = MemPooling.kl_loss(S)
    """

    def __init__(
        self, in_channels: int, out_channels: int, heads: int, num_clusters: int, tau: float = 1.0
    ) -> None:
        super().__init__()
        self.in_channels = check_channels(in_channels, "in_channels")
        self.out_channels = check_channels(out_channels, "out_channels")
        self.heads = check_channels(heads, "heads")
        self.num_clusters = check_channels(num_clusters, "num_clusters")
        self.tau = check_real(tau, "tau")
        if self.tau <= 0:
            raise ValueError(f"'tau' must be positive, got {tau!r}")
        self.k = Parameter(torch.empty(heads, num_clusters, in_channels))
        self.conv = torch.nn.Conv2d(heads, 1, kernel_size=1, padding=0, bias=False)
        self.lin = Linear(in_channels, out_channels, bias=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Keys from :math:`\\mathcal{U}(-1, 1)`; ``conv`` and ``lin`` re-initialized."""
        with torch.no_grad():
            self.k.uniform_(-1.0, 1.0)
        self.conv.reset_parameters()
        self.lin.reset_parameters()

    @staticmethod
    def kl_loss(S: Tensor) -> Tensor:  # noqa: N803 (PyG's argument name)
        r"""The auxiliary KL loss :math:`\mathrm{KL}(\mathbf{P} \Vert \mathbf{S})` per graph (mean over the batch).

        .. math::
            P_{ij} = \frac{S_{ij}^2 / \sum_n S_{nj}}{\sum_k S_{ik}^2 / \sum_n S_{nk}}

        (0 for padding nodes and for graphs without nodes, where PyG's loss is NaN); probabilities
        are floored at ``1e-15`` before their logarithm.

        Args:
            S: ``[B, N, K]`` assignments as returned by :meth:`forward`.
        """
        v.check_tensor("S", S)
        if S.dim() != 3:
            raise ValueError(f"'S' must have shape [B, N, K], got {v.describe(S)}")
        # rows of padding nodes and columns of empty graphs are all zero: they give P = 0 (PyG gives
        # P = 0 for the rows, but a NaN loss for an empty graph)
        column = S.sum(dim=1, keepdim=True)
        sharpened = S.square() / torch.where(column == 0, 1.0, column)
        row = sharpened.sum(dim=2, keepdim=True)
        target = sharpened / torch.where(row == 0, 1.0, row)
        return F.kl_div(
            S.clamp(min=EPS).log(), target.clamp(min=EPS), reduction="batchmean", log_target=False
        )

    def forward(
        self,
        x: Tensor,
        batch: Tensor | None = None,
        mask: Tensor | None = None,
        max_num_nodes: int | None = None,
        batch_size: int | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Pool ``x`` (``[N, F]`` with ``batch``, or ``[B, N, F]`` with ``mask``); returns ``(x, S)``."""
        v.check_tensor("x", x)
        if x.dim() not in (2, 3) or x.size(-1) != self.in_channels:
            raise ValueError(
                f"'x' must have shape [N, {self.in_channels}] or [B, N, {self.in_channels}], got {v.describe(x)}"
            )
        if x.dim() == 2:
            if mask is not None:
                raise ValueError("'mask' goes with dense [B, N, F] features; give 'batch' for [N, F] ones")
            x, mask = to_dense_batch(x, batch, max_num_nodes=max_num_nodes, batch_size=batch_size)
        else:
            if batch is not None:
                raise ValueError("'batch' goes with [N, F] features; give 'mask' for dense [B, N, F] ones")
            if mask is None:
                mask = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
            elif not isinstance(mask, Tensor) or mask.shape != x.shape[:2]:
                raise ValueError(f"'mask' must have shape {list(x.shape[:2])}, got {v.describe(mask)}")
        b, n, f = x.shape
        h, k = self.heads, self.num_clusters
        # half precision: the kernel in float32 (torch.cdist has no CPU half kernels)
        work = torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype
        keys = self.k.to(work).reshape(h * k, f)
        dist = torch.cdist(keys, x.to(work).reshape(b * n, f), p=2).square()  # [H * K, B * N]
        kernel = (1.0 + dist / self.tau).pow(-(self.tau + 1.0) / 2.0)
        kernel = kernel.view(h, k, b, n).permute(2, 0, 3, 1)  # [B, H, N, K]
        per_head = kernel / kernel.sum(dim=-1, keepdim=True)
        # the 1x1 Conv2d over the heads, as a weighted sum (also for graphs without nodes)
        mix = self.conv.weight.to(work).view(h)
        S = torch.einsum("bhnk,h->bnk", per_head, mix).softmax(dim=-1).to(x.dtype)  # noqa: N806
        S = S * mask.view(b, n, 1).to(S.dtype)  # noqa: N806
        out = self.lin(S.transpose(1, 2) @ x)
        return out, S

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.in_channels}, {self.out_channels}, heads={self.heads}, "
            f"num_clusters={self.num_clusters})"
        )
