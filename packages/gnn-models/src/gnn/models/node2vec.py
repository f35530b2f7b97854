"""Node2Vec (Grover & Leskovec, 2016)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.nn import Embedding
from torch.utils.data import DataLoader

from gnn.core import ops
from gnn.core import validation as v

from ._utils import check_int, context_windows, csr_sorted, logistic_regression_score, skipgram_loss


class Node2Vec(torch.nn.Module):
    r"""Node2Vec: node embeddings trained with skip-gram and negative sampling on
    second-order random walks.

    From node :math:`v`, reached from :math:`t`, a walk moves to the neighbour
    :math:`x` with probability proportional to :math:`1/p` if :math:`x = t`,
    :math:`1` if :math:`x` is a neighbour of :math:`t`, :math:`1/q` otherwise
    (:func:`gnn.core.ops.random_walk`: no torch-cluster or pyg-lib needed). Every
    window of ``context_size`` nodes of a walk is a positive example; windows of
    uniformly random nodes after the same start are negatives; :meth:`loss` is

    .. math::
        -\frac{1}{|P|}\sum_{(u, v) \in P} \log(\sigma(z_u^\top z_v) + \epsilon)
        -\frac{1}{|N|}\sum_{(u, v) \in N} \log(1 - \sigma(z_u^\top z_v) + \epsilon)

    over the (first node, other node) pairs of the positive and negative windows.

    Args:
        edge_index: ``[2, E]`` edges.
        embedding_dim: embedding size.
        walk_length: nodes per walk (as in PyG 2.8, a walk takes ``walk_length - 1`` steps,
            stored as ``self.walk_length``).
        context_size: nodes per window (at most ``walk_length``).
        walks_per_node: walks started at every node of a batch.
        p: return parameter.
        q: in-out parameter.
        num_negative_samples: negative windows per positive one.
        num_nodes: number of nodes (default ``edge_index.max() + 1``).
        sparse: sparse gradients for the embedding.

    Example:
        >>> edge_index = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
        >>> model = Node2Vec(edge_index, embedding_dim=16, walk_length=4, context_size=2)
        >>> pos_rw, neg_rw = model.sample(torch.tensor([0, 1]))
        >>> model.loss(pos_rw, neg_rw).shape
        torch.Size([])
    """

    def __init__(
        self,
        edge_index: Tensor,
        embedding_dim: int,
        walk_length: int,
        context_size: int,
        walks_per_node: int = 1,
        p: float = 1.0,
        q: float = 1.0,
        num_negative_samples: int = 1,
        num_nodes: int | None = None,
        sparse: bool = False,
    ) -> None:
        super().__init__()
        edge_index = v.check_edge_index(edge_index)
        if num_nodes is None:
            num_nodes = int(edge_index.max()) + 1 if edge_index.numel() else 0
        self.num_nodes = check_int("num_nodes", num_nodes, 0)
        v.check_edge_index_nodes(edge_index, self.num_nodes)
        check_int("embedding_dim", embedding_dim, 1)
        check_int("walk_length", walk_length, 1)
        check_int("context_size", context_size, 1)
        if walk_length < context_size:
            raise ValueError(
                f"'walk_length' ({walk_length}) must be at least 'context_size' ({context_size})"
            )
        check_int("walks_per_node", walks_per_node, 1)
        check_int("num_negative_samples", num_negative_samples, 0)
        for name, value in (("p", p), ("q", q)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"'{name}' must be a positive float, got {v.describe(value)}")
        self.rowptr, self.col = csr_sorted(edge_index.cpu(), self.num_nodes, self.num_nodes)
        self.random_walk_fn = ops.random_walk  # torch_cluster's random_walk signature
        self.EPS = 1e-15
        self.embedding_dim = embedding_dim
        self.walk_length = walk_length - 1  # steps per walk
        self.context_size = context_size
        self.walks_per_node = walks_per_node
        self.p = p
        self.q = q
        self.num_negative_samples = num_negative_samples
        self.embedding = Embedding(self.num_nodes, embedding_dim, sparse=sparse)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Reset the embedding."""
        self.embedding.reset_parameters()

    def forward(self, batch: Tensor | None = None) -> Tensor:
        """The embeddings of the nodes in ``batch`` (all nodes by default)."""
        emb = self.embedding.weight
        return emb if batch is None else emb[batch]

    def loader(self, **kwargs: Any) -> DataLoader:
        """A data loader over the nodes yielding ``(pos_rw, neg_rw)`` (see :meth:`sample`)."""
        return DataLoader(range(self.num_nodes), collate_fn=self.sample, **kwargs)

    def pos_sample(self, batch: Tensor) -> Tensor:
        """Windows of random walks from the nodes of ``batch`` (``walks_per_node`` each)."""
        batch = batch.repeat(self.walks_per_node)
        rw = self.random_walk_fn(self.rowptr, self.col, batch, self.walk_length, self.p, self.q)
        if not isinstance(rw, Tensor):
            rw = rw[0]
        return context_windows(rw, self.context_size)

    def neg_sample(self, batch: Tensor) -> Tensor:
        """Windows of uniformly random nodes after each node of ``batch``."""
        batch = batch.repeat(self.walks_per_node * self.num_negative_samples)
        rest = torch.randint(
            self.num_nodes, (batch.size(0), self.walk_length), dtype=batch.dtype, device=batch.device
        )
        return context_windows(torch.cat([batch.view(-1, 1), rest], dim=-1), self.context_size)

    def sample(self, batch: list[int] | Tensor) -> tuple[Tensor, Tensor]:
        """``(pos_sample(batch), neg_sample(batch))``."""
        if not isinstance(batch, Tensor):
            batch = torch.tensor(batch, dtype=torch.long)
        return self.pos_sample(batch), self.neg_sample(batch)

    def loss(self, pos_rw: Tensor, neg_rw: Tensor) -> Tensor:
        """The skip-gram loss of positive and negative windows (see the class docstring)."""
        return skipgram_loss(self.embedding, pos_rw, neg_rw, self.EPS)

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
        """Accuracy of a logistic regression (scikit-learn) fitted on ``train_z``/``train_y``."""
        return logistic_regression_score(train_z, train_y, test_z, test_y, solver, *args, **kwargs)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.embedding.weight.size(0)}, {self.embedding.weight.size(1)})"
