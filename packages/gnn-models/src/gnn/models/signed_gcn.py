r"""Signed graph convolutional networks (Derr et al., 2018): :class:`SignedGCN`."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from gnn.core import validation as v
from gnn.core.utils import coalesce

from . import _utils

__all__ = ["SignedGCN"]


class SignedGCN(torch.nn.Module):
    r"""Node embeddings of a signed graph (positive and negative edges) with :class:`~gnn.conv.SignedConv`.

    ``num_layers`` signed convolutions (the first one with ``first_aggr``), each
    followed by ReLU, give :math:`\mathbf{z}_i` of ``hidden_channels`` features (half
    "balanced", half "unbalanced"). :meth:`discriminate` classifies a pair
    :math:`(i, j)` as positive / negative / no edge with a linear map of
    :math:`\mathbf{z}_i \Vert \mathbf{z}_j` and :meth:`loss` combines that
    classification's negative log-likelihood with the two structural balance
    embedding losses, weighted by ``lamb``:

    .. math::
        \mathcal{L} = \mathcal{L}_{nll} + \lambda\,\big(\mathrm{mean}_{(i,j,k)}
        [\lVert\mathbf{z}_i - \mathbf{z}_j\rVert^2 - \lVert\mathbf{z}_i - \mathbf{z}_k\rVert^2]_+
        + \mathrm{mean}_{(i,j,k)} [\lVert\mathbf{z}_i - \mathbf{z}_k\rVert^2 - \lVert\mathbf{z}_i -
        \mathbf{z}_j\rVert^2]_+\big)

    over positive (first) and negative (second) edges :math:`(i, j)` with a random
    non-neighbour :math:`k` of :math:`i`.

    Args:
        in_channels: input feature size.
        hidden_channels: embedding size (even).
        num_layers: number of signed convolutions.
        lamb: weight :math:`\lambda` of the embedding losses.
        bias: learn biases in the convolutions.

    Shapes:
        ``x`` ``[N, in_channels]``, ``pos_edge_index`` ``[2, E+]``, ``neg_edge_index``
        ``[2, E-]`` -> ``[N, hidden_channels]``.

    Example:
        >>> model = SignedGCN(8, 16, num_layers=2)
        >>> pos, neg = torch.tensor([[0, 1], [1, 2]]), torch.tensor([[2], [0]])
        >>> model(torch.randn(3, 8), pos, neg).shape
        torch.Size([3, 16])
    """

    def __init__(
        self, in_channels: int, hidden_channels: int, num_layers: int, lamb: float = 5, bias: bool = True
    ) -> None:
        super().__init__()
        from gnn.conv import SignedConv

        if isinstance(num_layers, bool) or not isinstance(num_layers, int) or num_layers < 1:
            raise ValueError(f"'num_layers' must be a positive int, got {num_layers!r}")
        self.in_channels = in_channels
        self.hidden_channels = hidden_channels
        self.num_layers = num_layers
        self.lamb = lamb
        half = hidden_channels // 2
        self.conv1 = SignedConv(in_channels, half, first_aggr=True, bias=bias)
        self.convs = torch.nn.ModuleList(
            SignedConv(half, half, first_aggr=False, bias=bias) for _ in range(num_layers - 1)
        )
        self.lin = torch.nn.Linear(2 * hidden_channels, 3)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialize the convolutions and the classifier."""
        self.conv1.reset_parameters()
        for conv in self.convs:
            conv.reset_parameters()
        self.lin.reset_parameters()

    def split_edges(self, edge_index: Tensor, test_ratio: float = 0.2) -> tuple[Tensor, Tensor]:
        """Split the edges at random into ``(train_edge_index, test_edge_index)``;
        ``int(test_ratio * E)`` of them go to the test part."""
        edge_index = v.check_edge_index(edge_index)
        if not 0.0 <= test_ratio <= 1.0:
            raise ValueError(f"'test_ratio' must lie in [0, 1], got {test_ratio!r}")
        mask = torch.ones(edge_index.size(1), dtype=torch.bool, device=edge_index.device)
        mask[torch.randperm(mask.numel(), device=mask.device)[: int(test_ratio * mask.numel())]] = False
        return edge_index[:, mask], edge_index[:, ~mask]

    def create_spectral_features(
        self, pos_edge_index: Tensor, neg_edge_index: Tensor, num_nodes: int | None = None
    ) -> Tensor:
        r"""Initial features: the top ``in_channels`` right singular vectors of the signed adjacency.

        :math:`A` is symmetric with :math:`A_{ij} = 2 n^+_{ij} - 1` summed the PyG way
        (every positive edge counts 2 and every negative one 0 in both directions, minus
        1 per stored pair), i.e. +1 for a single positive and -1 for a single negative
        edge. Computed with ``torch.svd_lowrank`` (no scikit-learn); each singular
        vector's sign is fixed so that its largest-magnitude entry is positive.
        Returns ``[N, in_channels]`` float32.
        """
        pos_edge_index = v.check_edge_index(pos_edge_index, "pos_edge_index")
        neg_edge_index = v.check_edge_index(neg_edge_index, "neg_edge_index")
        edge_index = torch.cat([pos_edge_index, neg_edge_index], dim=1).long()
        n = int(edge_index.max()) + 1 if num_nodes is None and edge_index.numel() else int(num_nodes or 0)
        if n < self.in_channels:
            raise ValueError(
                f"spectral features of size {self.in_channels} need at least as many nodes, got {n}"
            )
        value = torch.cat(
            [
                torch.full((pos_edge_index.size(1),), 2.0, dtype=torch.float64),
                torch.zeros(neg_edge_index.size(1), dtype=torch.float64),
            ]
        ).to(edge_index.device)
        both = torch.cat([edge_index, edge_index.flip(0)], dim=1)
        index, value = coalesce(both, torch.cat([value, value]), n)
        adj = torch.sparse_coo_tensor(index, value - 1, (n, n)).cpu()
        q = min(n, self.in_channels + 10)
        _, _, vecs = torch.svd_lowrank(adj, q=q, niter=32)
        vecs = vecs[:, : self.in_channels]
        sign = torch.sign(vecs.gather(0, vecs.abs().argmax(dim=0, keepdim=True)))
        sign[sign == 0] = 1.0
        return (vecs * sign).to(torch.float32).to(pos_edge_index.device)

    def forward(self, x: Tensor, pos_edge_index: Tensor, neg_edge_index: Tensor) -> Tensor:
        """Node embeddings ``z`` (see the class docstring)."""
        z = F.relu(self.conv1(x, pos_edge_index, neg_edge_index))
        for conv in self.convs:
            z = F.relu(conv(z, pos_edge_index, neg_edge_index))
        return z

    def discriminate(self, z: Tensor, edge_index: Tensor) -> Tensor:
        """``[E, 3]`` log-probabilities of (positive, negative, no edge) for the pairs ``edge_index``."""
        v.check_tensor("z", z)
        edge_index = _utils.check_edges("edge_index", edge_index, z.size(0))
        value = torch.cat([z[edge_index[0]], z[edge_index[1]]], dim=1)
        return torch.log_softmax(self.lin(value), dim=1)

    def nll_loss(self, z: Tensor, pos_edge_index: Tensor, neg_edge_index: Tensor) -> Tensor:
        """Mean of the classification losses of the positive, the negative and as many sampled
        non-edges (uniform among the pairs that are neither)."""
        edge_index = torch.cat([pos_edge_index, neg_edge_index], dim=1)
        none_edge_index = _utils.negative_sampling(edge_index, z.size(0))
        loss = F.nll_loss(self.discriminate(z, pos_edge_index), _labels(pos_edge_index, 0))
        loss = loss + F.nll_loss(self.discriminate(z, neg_edge_index), _labels(neg_edge_index, 1))
        loss = loss + F.nll_loss(self.discriminate(z, none_edge_index), _labels(none_edge_index, 2))
        return loss / 3.0

    def pos_embedding_loss(self, z: Tensor, pos_edge_index: Tensor) -> Tensor:
        """Positive edges should be closer than a random non-neighbour."""
        i, j, k = _utils.structured_negative_sampling(pos_edge_index, z.size(0))
        out = (z[i] - z[j]).pow(2).sum(dim=1) - (z[i] - z[k]).pow(2).sum(dim=1)
        return torch.clamp(out, min=0).mean()

    def neg_embedding_loss(self, z: Tensor, neg_edge_index: Tensor) -> Tensor:
        """Negative edges should be farther than a random non-neighbour."""
        i, j, k = _utils.structured_negative_sampling(neg_edge_index, z.size(0))
        out = (z[i] - z[k]).pow(2).sum(dim=1) - (z[i] - z[j]).pow(2).sum(dim=1)
        return torch.clamp(out, min=0).mean()

    def loss(self, z: Tensor, pos_edge_index: Tensor, neg_edge_index: Tensor) -> Tensor:
        """The full loss (see the class docstring)."""
        nll = self.nll_loss(z, pos_edge_index, neg_edge_index)
        balance = self.pos_embedding_loss(z, pos_edge_index) + self.neg_embedding_loss(z, neg_edge_index)
        return nll + self.lamb * balance

    def test(self, z: Tensor, pos_edge_index: Tensor, neg_edge_index: Tensor) -> tuple[float, float]:
        """``(ROC AUC, F1)`` of telling positive from negative edges by the classifier's hard
        decision between those two classes (F1 of the positive class; 0 when nothing is
        predicted positive). Computed in torch (no scikit-learn)."""
        with torch.no_grad():
            pos_p = self.discriminate(z, pos_edge_index)[:, :2].argmax(dim=1)
            neg_p = self.discriminate(z, neg_edge_index)[:, :2].argmax(dim=1)
        pred = (1 - torch.cat([pos_p, neg_p])).to(torch.float64)
        y = torch.cat([pred.new_ones(pos_p.numel()), pred.new_zeros(neg_p.numel())])
        auc = _utils.roc_auc(y, pred)
        if pred.sum() > 0:
            tp = float((pred * y).sum())
            f1 = 2 * tp / (float(pred.sum()) + float(y.sum()))
        else:
            f1 = 0
        return auc, f1

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.in_channels}, {self.hidden_channels}, num_layers={self.num_layers})"
        )


def _labels(edge_index: Tensor, label: int) -> Tensor:
    return torch.full((edge_index.size(1),), label, dtype=torch.long, device=edge_index.device)
