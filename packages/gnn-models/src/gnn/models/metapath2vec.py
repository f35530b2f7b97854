"""MetaPath2Vec (Dong et al., 2017)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.nn import Embedding
from torch.utils.data import DataLoader

from gnn.core import validation as v

from ._utils import check_int, context_windows, csr_sorted, logistic_regression_score, skipgram_loss

EPS = 1e-15


class MetapathError(ValueError, AttributeError):
    """A walk longer than a metapath that is not a cycle (an ``AttributeError`` in PyG, hence both)."""


def _step(rowptr: Tensor, col: Tensor, count: Tensor, current: Tensor, dead: int) -> Tensor:
    """One uniform step along one edge type: a random out-neighbour of every node of ``current``.

    Walks at ``dead`` (the index of no node), or at a node without out-edges of this type,
    go to ``dead``. One ``torch.rand`` draw of ``[S, 1]`` per step (PyG's draw).
    """
    stuck = current >= dead
    src = current.clamp(min=0, max=max(rowptr.numel() - 2, 0))
    deg = count[src] if count.numel() else torch.zeros_like(src)
    draw = torch.rand((current.size(0), 1), device=current.device).view(-1)
    pos = (draw * deg.to(draw.dtype)).long() + (rowptr[src] if count.numel() else 0)
    nxt = col[pos.clamp(max=max(col.numel() - 1, 0))] if col.numel() else pos
    return torch.where(stuck | (deg == 0), torch.full_like(nxt, dead), nxt)


class MetaPath2Vec(torch.nn.Module):
    r"""MetaPath2Vec: embeddings of a heterogeneous graph's nodes trained with skip-gram and
    negative sampling on walks that follow a metapath.

    Step ``i`` of a walk moves along edge type ``metapath[i % len(metapath)]`` to a
    uniformly random out-neighbour; a walk that reaches a node without such an edge
    continues at a dummy node (the last embedding row, index ``dummy_idx``). Node
    ``n`` of type ``T`` has embedding row ``start[T] + n`` (types in sorted order).
    :meth:`loss` is Node2Vec's skip-gram loss over windows of ``context_size`` nodes.

    Args:
        edge_index_dict: ``{(src, rel, dst): [2, E]}`` edges per edge type.
        embedding_dim: embedding size.
        metapath: the edge types a walk follows in turn (consecutive types must connect).
        walk_length: steps per walk.
        context_size: nodes per window (at most ``walk_length + 1``).
        walks_per_node: walks started at every node of a batch.
        num_negative_samples: negative windows per positive one.
        num_nodes_dict: nodes per type (default: the largest index seen + 1).
        sparse: sparse gradients for the embedding.

    Example:
        >>> edges = {("a", "to", "b"): torch.tensor([[0, 1], [1, 0]]),
        ...          ("b", "to", "a"): torch.tensor([[0, 1], [0, 1]])}
        >>> model = MetaPath2Vec(edges, 8, [("a", "to", "b"), ("b", "to", "a")], walk_length=4, context_size=2)
        >>> model("a").shape
        torch.Size([2, 8])
    """

    def __init__(
        self,
        edge_index_dict: dict[tuple[str, str, str], Tensor],
        embedding_dim: int,
        metapath: list[tuple[str, str, str]],
        walk_length: int,
        context_size: int,
        walks_per_node: int = 1,
        num_negative_samples: int = 1,
        num_nodes_dict: dict[str, int] | None = None,
        sparse: bool = False,
    ) -> None:
        super().__init__()
        if not isinstance(edge_index_dict, dict):
            raise TypeError(
                f"'edge_index_dict' must be a dict of edge indices, got {v.describe(edge_index_dict)}"
            )
        for key, edge_index in edge_index_dict.items():
            v.check_edge_index(edge_index, f"edge_index_dict[{key!r}]")
        if not metapath:
            raise ValueError("'metapath' must hold at least one edge type")
        for edge_type in metapath:
            if edge_type not in edge_index_dict:
                raise ValueError(f"'metapath' holds {edge_type!r}, which 'edge_index_dict' lacks")
        for first, second in zip(metapath[:-1], metapath[1:]):
            if first[-1] != second[0]:
                raise ValueError(
                    "Found invalid metapath. Ensure that the destination node type matches with the source "
                    f"node type across all consecutive edge types ({first!r} is followed by {second!r})"
                )
        check_int("embedding_dim", embedding_dim, 1)
        check_int("walk_length", walk_length, 1)
        check_int("context_size", context_size, 1)
        check_int("walks_per_node", walks_per_node, 1)
        check_int("num_negative_samples", num_negative_samples, 0)
        if walk_length + 1 < context_size:
            raise ValueError(
                f"'context_size' ({context_size}) must be at most 'walk_length' + 1 ({walk_length + 1})"
            )
        if walk_length > len(metapath) and metapath[0][0] != metapath[-1][-1]:
            raise MetapathError(
                "The 'walk_length' is longer than the given 'metapath', but the 'metapath' does not denote a cycle"
            )
        if num_nodes_dict is None:
            num_nodes_dict = {}
            for (src, _, dst), edge_index in edge_index_dict.items():
                for node_type, row in ((src, edge_index[0]), (dst, edge_index[1])):
                    seen = int(row.max()) + 1 if row.numel() else 0
                    num_nodes_dict[node_type] = max(seen, num_nodes_dict.get(node_type, seen))
        self.rowptr_dict, self.col_dict, self.rowcount_dict = {}, {}, {}
        for key, edge_index in edge_index_dict.items():
            num_src, num_dst = num_nodes_dict[key[0]], num_nodes_dict[key[-1]]
            v.check_edge_index_sides(edge_index, num_src, num_dst)
            rowptr, col = csr_sorted(edge_index.cpu(), num_src, num_dst)
            self.rowptr_dict[key] = rowptr
            self.col_dict[key] = col
            self.rowcount_dict[key] = rowptr.diff()

        self.embedding_dim = embedding_dim
        self.metapath = metapath
        self.walk_length = walk_length
        self.context_size = context_size
        self.walks_per_node = walks_per_node
        self.num_negative_samples = num_negative_samples
        self.num_nodes_dict = num_nodes_dict

        types = sorted({e[0] for e in metapath} | {e[-1] for e in metapath})
        count = 0
        self.start, self.end = {}, {}
        for node_type in types:
            self.start[node_type] = count
            count += num_nodes_dict[node_type]
            self.end[node_type] = count
        # embedding offset of the node type at each position of a walk
        along = [self.start[metapath[0][0]]] + [
            self.start[metapath[i % len(metapath)][-1]] for i in range(walk_length)
        ]
        self.offset = torch.tensor(along)
        self.embedding = Embedding(count + 1, embedding_dim, sparse=sparse)
        self.dummy_idx = count
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Reset the embedding."""
        self.embedding.reset_parameters()

    def forward(self, node_type: str, batch: Tensor | None = None) -> Tensor:
        """The embeddings of the nodes of ``node_type`` (those in ``batch``, or all)."""
        if node_type not in self.start:
            raise ValueError(f"'node_type' must be one of {sorted(self.start)}, got {node_type!r}")
        emb = self.embedding.weight[self.start[node_type] : self.end[node_type]]
        return emb if batch is None else emb.index_select(0, batch)

    def loader(self, **kwargs: Any) -> DataLoader:
        """A data loader over the nodes of the metapath's first type yielding ``(pos_rw, neg_rw)``."""
        return DataLoader(range(self.num_nodes_dict[self.metapath[0][0]]), collate_fn=self._sample, **kwargs)

    def _pos_sample(self, batch: Tensor) -> Tensor:
        current = batch.repeat(self.walks_per_node)
        walk = [current]
        for i in range(self.walk_length):
            key = self.metapath[i % len(self.metapath)]
            current = _step(
                self.rowptr_dict[key], self.col_dict[key], self.rowcount_dict[key], current, self.dummy_idx
            )
            walk.append(current)
        rw = torch.stack(walk, dim=-1) + self.offset.view(1, -1)
        rw = rw.clamp(max=self.dummy_idx)  # dead walks stay at the dummy node
        return context_windows(rw, self.context_size)

    def _neg_sample(self, batch: Tensor) -> Tensor:
        current = batch.repeat(self.walks_per_node * self.num_negative_samples)
        walk = [current]
        for i in range(self.walk_length):
            key = self.metapath[i % len(self.metapath)]
            walk.append(torch.randint(0, self.num_nodes_dict[key[-1]], (current.size(0),), dtype=torch.long))
        rw = torch.stack(walk, dim=-1) + self.offset.view(1, -1)
        return context_windows(rw, self.context_size)

    def _sample(self, batch: list[int] | Tensor) -> tuple[Tensor, Tensor]:
        if not isinstance(batch, Tensor):
            batch = torch.tensor(batch, dtype=torch.long)
        return self._pos_sample(batch), self._neg_sample(batch)

    def loss(self, pos_rw: Tensor, neg_rw: Tensor) -> Tensor:
        """Node2Vec's skip-gram loss of positive and negative windows."""
        return skipgram_loss(self.embedding, pos_rw, neg_rw, EPS)

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
        return (
            f"{self.__class__.__name__}({self.embedding.weight.size(0) - 1}, {self.embedding.weight.size(1)})"
        )
