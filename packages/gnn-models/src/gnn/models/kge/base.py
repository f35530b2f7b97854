"""The base class of the knowledge-graph embedding models (PyG's ``KGEModel``)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.nn import Embedding

from .._utils import check_index_vector, check_int, progress
from ._fused import FusedKGELoss, Rows, criterion
from .loader import KGTripletLoader


class KGEModel(torch.nn.Module):
    r"""Base class of knowledge-graph embedding models: an embedding per entity
    (``node_emb``) and per relation (``rel_emb``), a score :math:`f(h, r, t)`
    (higher is more plausible) and a loss contrasting true triplets with
    corrupted ones.

    Subclasses implement :meth:`forward` (the score) and :meth:`loss`.

    Args:
        num_nodes: number of entities.
        num_relations: number of relation types.
        hidden_channels: embedding size.
        sparse: sparse gradients for the embedding tables.

    Shapes:
        ``head_index``, ``rel_type``, ``tail_index`` ``[B]`` -> scores ``[B]``.
    """

    def _make_rows(self) -> Rows | None:
        """The model's scores on gathered rows for the fused loss (``None``: the loss scores
        through ``forward``)."""
        return None

    def __init__(
        self, num_nodes: int, num_relations: int, hidden_channels: int, sparse: bool = False
    ) -> None:
        super().__init__()
        check_int("num_nodes", num_nodes, 1)
        check_int("num_relations", num_relations, 1)
        check_int("hidden_channels", hidden_channels, 1)
        self.num_nodes = num_nodes
        self.num_relations = num_relations
        self.hidden_channels = hidden_channels
        self.node_emb = Embedding(num_nodes, hidden_channels, sparse=sparse)
        self.rel_emb = Embedding(num_relations, hidden_channels, sparse=sparse)

    def reset_parameters(self) -> None:
        """Reset the embeddings."""
        self.node_emb.reset_parameters()
        self.rel_emb.reset_parameters()

    def forward(self, head_index: Tensor, rel_type: Tensor, tail_index: Tensor) -> Tensor:
        """The score of every triplet ``(head_index[i], rel_type[i], tail_index[i])``."""
        raise NotImplementedError

    def loss(self, head_index: Tensor, rel_type: Tensor, tail_index: Tensor) -> Tensor:
        """The training loss of a batch of true triplets (negatives from :meth:`random_sample`)."""
        raise NotImplementedError

    def loader(
        self, head_index: Tensor, rel_type: Tensor, tail_index: Tensor, **kwargs: Any
    ) -> KGTripletLoader:
        """A data loader over the triplets (``batch_size``, ``shuffle``, ... as for a DataLoader)."""
        return KGTripletLoader(head_index, rel_type, tail_index, **kwargs)

    # -- helpers of the subclasses -------------------------------------------------------------
    def _check_triplets(self, head_index: Tensor, rel_type: Tensor, tail_index: Tensor) -> None:
        h = check_index_vector("head_index", head_index, self.num_nodes)
        check_index_vector("rel_type", rel_type, self.num_relations, h.numel())
        check_index_vector("tail_index", tail_index, self.num_nodes, h.numel())

    def _node_tables(self) -> list[Tensor]:
        return [self.node_emb.weight]

    def _rel_tables(self) -> list[Tensor]:
        return [self.rel_emb.weight]

    def _uses_fused_loss(self) -> bool:
        """Whether :meth:`_loss` may run the fused path: the score is the one written beside the
        fused scorer (the class that defines :meth:`_make_rows` also defines the ``forward`` it
        reproduces) and the sampling is this package's own; a subclass overriding either gets the
        plain path."""
        cls = type(self)
        owner = next(c for c in cls.__mro__ if "_make_rows" in vars(c))
        return cls.forward is vars(owner).get("forward") and cls.random_sample is KGEModel.random_sample

    _criterion = "margin"  # the loss: "margin" (ranking) or "bce" (logistic)

    def _loss(self, head_index: Tensor, rel_type: Tensor, tail_index: Tensor, margin: float) -> Tensor:
        """The loss over ``self(...)`` of the triplets and of ``random_sample``'s corruptions."""
        self._check_triplets(head_index, rel_type, tail_index)
        rows = self._make_rows()
        if head_index.numel() and rows is not None and self._uses_fused_loss():
            head, rel, tail = head_index.long(), rel_type.long(), tail_index.long()
            rnd = torch.randint(self.num_nodes, head.size(), device=head.device)  # random_sample's draw
            nodes, rels = self._node_tables(), self._rel_tables()
            return FusedKGELoss.apply(
                rows,
                float(margin),
                torch.cat([head, tail, rnd]),
                rel,
                bool(self.node_emb.sparse),
                len(nodes),
                *nodes,
                *rels,
            )
        pos = self(head_index, rel_type, tail_index)
        neg = self(*self.random_sample(head_index, rel_type, tail_index))
        return criterion(self._criterion, margin, pos, neg)[0]

    @torch.no_grad()
    def test(
        self,
        head_index: Tensor,
        rel_type: Tensor,
        tail_index: Tensor,
        batch_size: int,
        k: int = 10,
        log: bool = True,
    ) -> tuple[float, float, float]:
        r"""Rank every true tail among all entities: mean rank, MRR and Hits@k.

        For triplet :math:`(h, r, t)` every entity :math:`e` is scored as a tail;
        the rank of :math:`t` is the number of entities scoring higher (ties: those
        of lower index), counted from 0 as PyG does. Returns
        ``(mean rank, mean of 1 / (rank + 1), fraction with rank < k)``.

        Args:
            head_index, rel_type, tail_index: ``[T]`` test triplets.
            batch_size: entities scored per call of the model.
            k: the cut-off of Hits@k.
            log: show a progress bar over the test triplets (tqdm's when installed).
        """
        self._check_triplets(head_index, rel_type, tail_index)
        check_int("batch_size", batch_size, 1)
        check_int("k", k, 1)
        num = head_index.numel()
        ranks = torch.empty(num, dtype=torch.long)
        entities = torch.arange(self.num_nodes, device=head_index.device)
        rows = progress(range(num), num, "KGE test") if log else range(num)
        for i in rows:
            h, r, t = head_index[i], rel_type[i], tail_index[i]
            scores = torch.cat(
                [self(h.expand_as(ts), r.expand_as(ts), ts) for ts in entities.split(batch_size)]
            )
            target = scores[t]
            ranks[i] = (scores > target).sum() + (scores[:t] == target).sum()
        ranks_f = ranks.to(torch.float)
        mean_rank = float(ranks_f.mean())
        mrr = float((1.0 / (ranks_f + 1)).mean())
        hits = int((ranks < k).sum()) / max(num, 1)
        return mean_rank, mrr, hits

    @torch.no_grad()
    def random_sample(
        self, head_index: Tensor, rel_type: Tensor, tail_index: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Corrupted triplets: the first half gets random heads, the second half random tails."""
        draw = torch.randint(self.num_nodes, head_index.size(), device=head_index.device)
        corrupt_head = torch.arange(head_index.numel(), device=head_index.device) < head_index.numel() // 2
        head = torch.where(corrupt_head, draw, head_index)
        tail = torch.where(corrupt_head, tail_index, draw)
        return head, rel_type, tail

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}({self.num_nodes}, num_relations={self.num_relations}, "
            f"hidden_channels={self.hidden_channels})"
        )
