r"""Deep Graph Infomax (Veličković et al., 2019): :class:`DeepGraphInfomax`."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor
from torch.nn import Parameter

from gnn.core import validation as v
from gnn.core.nn.inits import reset, uniform

__all__ = ["DeepGraphInfomax"]

EPS = 1e-15


class DeepGraphInfomax(torch.nn.Module):
    r"""Contrastive node embeddings that maximize the mutual information with a graph summary.

    :meth:`forward` encodes the graph (:math:`\mathbf{Z}^+`) and a corrupted copy
    (:math:`\mathbf{Z}^-`, from ``corruption(*args, **kwargs)``) and summarizes the
    positive embeddings (:math:`\mathbf{s} = ` ``summary(Z+, *args, **kwargs)``). The
    discriminator scores :math:`\sigma(\mathbf{z}_i^\top \mathbf{W} \mathbf{s})` and
    :meth:`loss` is
    :math:`-\mathrm{mean}\log(\sigma(\mathbf{Z}^+\mathbf{W}\mathbf{s}) + \epsilon)
    - \mathrm{mean}\log(1 - \sigma(\mathbf{Z}^-\mathbf{W}\mathbf{s}) + \epsilon)`.

    Args:
        hidden_channels: the embedding size :math:`D`.
        encoder: the encoder module.
        summary: ``summary(z, *args, **kwargs) -> [D]`` (or ``[B, D]``).
        corruption: ``corruption(*args, **kwargs)`` -> the corrupted encoder
            arguments (a tuple, or the first argument alone).

    Example:
        >>> from gnn.conv import GCNConv
        >>> model = DeepGraphInfomax(
        ...     4, GCNConv(8, 4), summary=lambda z, *a: z.mean(0).sigmoid(),
        ...     corruption=lambda x, ei: (x[torch.randperm(x.size(0))], ei))
        >>> pos, neg, s = model(torch.randn(3, 8), torch.tensor([[0, 1], [1, 2]]))
        >>> model.loss(pos, neg, s).dim()
        0
    """

    def __init__(
        self, hidden_channels: int, encoder: torch.nn.Module, summary: Callable, corruption: Callable
    ) -> None:
        super().__init__()
        self.hidden_channels = hidden_channels
        self.encoder = encoder
        self.summary = summary
        self.corruption = corruption
        self.weight = Parameter(torch.empty(hidden_channels, hidden_channels))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        r"""Reset the encoder and the summary, and draw :math:`\mathbf{W}` uniformly in ``±1/sqrt(D)``."""
        reset(self.encoder)
        reset(self.summary)
        uniform(self.hidden_channels, self.weight)

    def forward(self, *args: Any, **kwargs: Any) -> tuple[Tensor, Tensor, Tensor]:
        """``(pos_z, neg_z, summary)``."""
        pos_z = self.encoder(*args, **kwargs)
        corrupted = self.corruption(*args, **kwargs)
        corrupted = corrupted if isinstance(corrupted, tuple) else (corrupted,)
        cor_args = corrupted[: len(args)]
        cor_kwargs = copy.copy(kwargs)
        for key, value in zip(kwargs.keys(), corrupted[len(args) :]):
            cor_kwargs[key] = value
        neg_z = self.encoder(*cor_args, **cor_kwargs)
        summary = self.summary(pos_z, *args, **kwargs)
        return pos_z, neg_z, summary

    def discriminate(self, z: Tensor, summary: Tensor, sigmoid: bool = True) -> Tensor:
        r""":math:`\sigma(\mathbf{Z}\mathbf{W}\mathbf{s})` (``[N]``, or ``[N, B]`` for ``[B, D]`` summaries)."""
        v.check_tensor("z", z)
        v.check_tensor("summary", summary)
        summary = summary.t() if summary.dim() > 1 else summary
        value = z @ (self.weight @ summary)
        return torch.sigmoid(value) if sigmoid else value

    def loss(self, pos_z: Tensor, neg_z: Tensor, summary: Tensor) -> Tensor:
        """The mutual-information (binary cross-entropy) loss."""
        pos_loss = -torch.log(self.discriminate(pos_z, summary, sigmoid=True) + EPS).mean()
        neg_loss = -torch.log(1 - self.discriminate(neg_z, summary, sigmoid=True) + EPS).mean()
        return pos_loss + neg_loss

    def test(
        self,
        train_z: Tensor,
        train_y: Tensor,
        test_z: Tensor,
        test_y: Tensor,
        solver: str = "lbfgs",
        *args: Any,
        **kwargs: Any,
    ) -> float:
        r"""Accuracy on ``test_z`` of a logistic regression fitted on ``train_z``.

        A multinomial logistic regression with an intercept and the L2 penalty
        :math:`\tfrac12\lVert\mathbf{W}\rVert^2 + C \sum_i \ell_i` (scikit-learn's
        ``LogisticRegression`` defaults: ``C=1.0``, ``max_iter=100``, ``tol=1e-4``),
        fitted in float64 with :class:`torch.optim.LBFGS` (no scikit-learn). Only
        ``solver="lbfgs"`` exists; keyword arguments ``C``, ``max_iter``, ``tol`` and
        ``fit_intercept`` are accepted.
        """
        if solver != "lbfgs":
            raise ValueError(f"'solver' must be 'lbfgs' (the only solver of gnn's test()), got {solver!r}")
        if args:
            raise TypeError(f"test() takes the logistic regression options as keywords, got {args!r}")
        unknown = sorted(set(kwargs) - {"C", "max_iter", "tol", "fit_intercept"})
        if unknown:
            raise TypeError(f"test() got unsupported logistic regression option(s) {unknown}")
        return _logistic_accuracy(train_z, train_y, test_z, test_y, **kwargs)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.hidden_channels})"


def _logistic_accuracy(
    train_z: Tensor,
    train_y: Tensor,
    test_z: Tensor,
    test_y: Tensor,
    C: float = 1.0,
    max_iter: int = 100,
    tol: float = 1e-4,
    fit_intercept: bool = True,
) -> float:
    x = v.check_tensor("train_z", train_z).detach().to(torch.float64).cpu()
    y = v.check_tensor("train_y", train_y).detach().long().view(-1).cpu()
    xt = v.check_tensor("test_z", test_z).detach().to(torch.float64).cpu()
    yt = v.check_tensor("test_y", test_y).detach().long().view(-1).cpu()
    if x.dim() != 2 or xt.dim() != 2 or x.size(1) != xt.size(1):
        raise ValueError(
            f"'train_z' and 'test_z' must be [N, D] with the same D, got {x.shape} and {xt.shape}"
        )
    if y.numel() != x.size(0) or yt.numel() != xt.size(0):
        raise ValueError("'train_y' / 'test_y' must have one label per row of 'train_z' / 'test_z'")
    if y.numel() == 0:
        raise ValueError("'train_z' must not be empty")
    classes, y_idx = torch.unique(y, return_inverse=True)
    k = classes.numel()
    weight = torch.zeros(x.size(1), k, dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(k, dtype=torch.float64, requires_grad=fit_intercept)
    params = [weight, bias] if fit_intercept else [weight]
    opt = torch.optim.LBFGS(params, max_iter=max_iter, tolerance_grad=tol, line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        opt.zero_grad()
        logits = x @ weight + bias
        loss = C * torch.nn.functional.cross_entropy(logits, y_idx, reduction="sum")
        loss = loss + 0.5 * weight.pow(2).sum()
        loss.backward()
        return loss

    if k > 1:
        opt.step(closure)
    with torch.no_grad():
        pred = classes[(xt @ weight + bias).argmax(dim=-1)]
    return float((pred == yt).to(torch.float64).mean()) if yt.numel() else 0.0
