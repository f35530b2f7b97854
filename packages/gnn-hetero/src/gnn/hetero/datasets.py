r"""A small generated heterogeneous graph for examples and tests (no download).

:func:`academic_graph` draws a seeded bibliographic network: papers of ``num_classes``
topics, the authors who write them and the institutions the authors belong to. Paper
features carry a weak, noisy signal of the topic; the topic also shapes who writes and
cites what, so a heterogeneous GNN that reads the neighbourhood classifies papers
better than one that reads the features alone.
"""

from __future__ import annotations

import torch
from torch import Tensor

from gnn.core import HeteroData
from gnn.core import validation as v

__all__ = ["academic_graph"]


def _preferential(
    src_class: Tensor, dst_class: Tensor, per_src: int, p_same: float, generator: torch.Generator
) -> Tensor:
    """``per_src`` edges from every source node: to a random node of its own class with
    probability ``p_same``, else to a uniformly random node. ``[2, N_src * per_src]``."""
    n_src, n_dst = src_class.numel(), dst_class.numel()
    src = torch.arange(n_src).repeat_interleave(per_src)
    order = torch.argsort(dst_class, stable=True)
    counts = torch.bincount(dst_class, minlength=int(src_class.max()) + 1)
    starts = torch.cumsum(counts, 0) - counts
    cls = src_class[src]
    pick = (torch.rand(src.numel(), generator=generator) * counts[cls].clamp(min=1)).long()
    same = order[(starts[cls] + pick).clamp(max=n_dst - 1)]
    anywhere = torch.randint(0, n_dst, (src.numel(),), generator=generator)
    use_same = (torch.rand(src.numel(), generator=generator) < p_same) & (counts[cls] > 0)
    return torch.stack([src, torch.where(use_same, same, anywhere)])


def academic_graph(
    num_papers: int = 400,
    num_authors: int = 200,
    num_institutions: int = 20,
    num_classes: int = 4,
    num_features: int = 16,
    feature_noise: float = 2.0,
    homophily: float = 0.8,
    train_ratio: float = 0.3,
    seed: int = 0,
) -> HeteroData:
    r"""A seeded heterogeneous bibliographic graph for node classification of papers.

    Every paper, author and institution has a topic in ``[0, num_classes)``. Edges:

    * ``("paper", "cites", "paper")``: 3 citations per paper,
    * ``("author", "writes", "paper")``: 4 papers per author,
    * ``("author", "affiliated_with", "institution")``: 1 institution per author,

    each target chosen among the source's topic with probability ``homophily``, else
    uniformly; plus the reverse edge types ``("paper", "rev_writes", "author")`` and
    ``("institution", "rev_affiliated_with", "author")`` so that every node type receives
    messages. Features: :math:`x_v = \mu_{y_v} + \sigma \varepsilon_v` for papers (topic
    centroids :math:`\mu_c \sim \mathcal{N}(0, I)`, :math:`\sigma` = ``feature_noise``),
    pure noise for authors (``num_features // 2`` features) and institutions (4 features).
    ``train_ratio`` of the papers (random) go to ``paper.train_mask``, the rest to
    ``paper.test_mask``. The same arguments give the same graph.

    Returns:
        a :class:`~gnn.core.HeteroData` with ``paper.x``, ``paper.y``, ``paper.train_mask``,
        ``paper.test_mask``, ``author.x``, ``institution.x`` and the five edge types'
        ``edge_index``.

    Example:
        >>> data = academic_graph(seed=1)
        >>> data.metadata()[0]
        ['paper', 'author', 'institution']
        >>> data["paper"].x.shape
        torch.Size([400, 16])
    """
    num_papers = v.check_int("num_papers", num_papers, 1)
    num_authors = v.check_int("num_authors", num_authors, 1)
    num_institutions = v.check_int("num_institutions", num_institutions, 1)
    num_classes = v.check_int("num_classes", num_classes, 1)
    num_features = v.check_int("num_features", num_features, 2)
    seed = v.check_int("seed", seed, 0)
    if not 0.0 <= float(homophily) <= 1.0:
        raise ValueError(f"'homophily' must lie in [0, 1], got {homophily}")
    if not 0.0 < float(train_ratio) < 1.0:
        raise ValueError(f"'train_ratio' must lie in (0, 1), got {train_ratio}")
    if not float(feature_noise) >= 0.0:
        raise ValueError(f"'feature_noise' must be non-negative, got {feature_noise}")

    g = torch.Generator().manual_seed(seed)
    y_paper = torch.randint(0, num_classes, (num_papers,), generator=g)
    y_author = torch.randint(0, num_classes, (num_authors,), generator=g)
    y_inst = torch.randint(0, num_classes, (num_institutions,), generator=g)

    cites = _preferential(y_paper, y_paper, 3, homophily, g)
    writes = _preferential(y_author, y_paper, 4, homophily, g)
    affiliated = _preferential(y_author, y_inst, 1, homophily, g)

    centers = torch.randn(num_classes, num_features, generator=g)
    data = HeteroData()
    data["paper"].x = centers[y_paper] + float(feature_noise) * torch.randn(
        num_papers, num_features, generator=g
    )
    data["paper"].y = y_paper
    perm = torch.randperm(num_papers, generator=g)
    n_train = max(1, round(float(train_ratio) * num_papers))
    train_mask = torch.zeros(num_papers, dtype=torch.bool)
    train_mask[perm[:n_train]] = True
    data["paper"].train_mask = train_mask
    data["paper"].test_mask = ~train_mask
    data["author"].x = torch.randn(num_authors, num_features // 2, generator=g)
    data["institution"].x = torch.randn(num_institutions, 4, generator=g)
    data["paper", "cites", "paper"].edge_index = cites
    data["author", "writes", "paper"].edge_index = writes
    data["author", "affiliated_with", "institution"].edge_index = affiliated
    data["paper", "rev_writes", "author"].edge_index = writes.flip(0)
    data["institution", "rev_affiliated_with", "author"].edge_index = affiliated.flip(0)
    return data
