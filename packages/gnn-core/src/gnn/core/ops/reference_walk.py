"""Pure-torch reference of the random-walk op (:func:`gnn.core.ops.random_walk`).

It takes validated inputs, with the random numbers already drawn, and is the
correctness reference of compiled backends, which implement the same
signature and must return the same walks for the same numbers.

The rule of one step, from node ``c`` reached from ``t`` (the previous node),
with ``deg(c)`` out-edges ``c -> x`` in CSR order:

* no out-edge: the walk stays at ``c`` (edge ``-1``);
* the first step, or ``p == q == 1`` (``rand`` of shape ``[S, L]``): the edge
  at offset ``min(floor(u * deg(c)), deg(c) - 1)`` with ``u = rand[s, step]``;
* otherwise (node2vec, ``rand`` of shape ``[S, L, 2]``): every out-edge gets
  the weight ``1/p`` (class a: ``x == t``), ``1`` (class b: ``x != t`` and the
  edge ``t -> x`` exists) or ``1/q`` (class c: the others). With the class
  counts ``n_a, n_b, n_c``, masses ``A = n_a / p``, ``B = n_b``, ``C = n_c / q``
  and ``s = u_0 (A + B + C)``, the class is c when ``s >= A + B`` (and
  ``n_c > 0``), else b when ``s >= A`` (and ``n_b > 0``), else a; then the
  ``min(floor(u_1 n), n - 1)``-th edge of that class in CSR order. So an edge
  is taken with probability ``weight / (A + B + C)``, the transition
  probabilities of node2vec (Grover & Leskovec, 2016), and the result is an
  exact function of the numbers drawn (integer class counts, the same four
  float64 operations in every backend).
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["random_walk_reference", "REFERENCES"]


def _edge_keys(rowptr: Tensor, neighbors: Tensor) -> Tensor:
    """``src * N + dst`` of every edge, ascending (``neighbors``: the columns sorted within rows)."""
    num_nodes = rowptr.numel() - 1
    row = torch.repeat_interleave(torch.arange(num_nodes, device=rowptr.device), rowptr.diff())
    return row * num_nodes + neighbors


def _has_edge(keys: Tensor, num_nodes: int, src: Tensor, dst: Tensor) -> Tensor:
    """Whether each edge ``src -> dst`` exists (``keys`` from :func:`_edge_keys`)."""
    if keys.numel() == 0 or src.numel() == 0:
        return torch.zeros(src.shape, dtype=torch.bool, device=src.device)
    query = src * num_nodes + dst
    pos = torch.searchsorted(keys, query).clamp(max=keys.numel() - 1)
    return keys[pos] == query


def _biased_offsets(
    rowptr: Tensor,
    col: Tensor,
    keys: Tensor,
    cur: Tensor,
    prev: Tensor,
    deg: Tensor,
    u_class: Tensor,
    u_pick: Tensor,
    p: float,
    q: float,
) -> Tensor:
    """The offset (within ``cur``'s out-edges) of the edge every walk takes; walks with ``deg > 0``."""
    num = cur.numel()
    seg = torch.repeat_interleave(torch.arange(num, device=cur.device), deg)
    seg_start = torch.cumsum(deg, 0) - deg
    offset = torch.arange(seg.numel(), device=cur.device) - seg_start[seg]
    x = col[rowptr[cur][seg] + offset]
    t = prev[seg]
    is_a = x == t
    is_b = ~is_a & _has_edge(keys, rowptr.numel() - 1, t, x)
    cls = torch.full_like(x, 2)
    cls[is_b] = 1
    cls[is_a] = 0
    counts = torch.zeros(num, 3, dtype=torch.long, device=cur.device)
    counts.view(-1).index_add_(0, seg * 3 + cls, torch.ones_like(cls))
    n_a, n_b, n_c = counts.unbind(1)
    mass_a = n_a.to(torch.float64) / p
    mass_b = n_b.to(torch.float64)
    mass_c = n_c.to(torch.float64) / q
    s = u_class * ((mass_a + mass_b) + mass_c)
    chosen = torch.zeros_like(n_a)
    chosen = torch.where((s >= mass_a) & (n_b > 0), torch.ones_like(chosen), chosen)
    chosen = torch.where((s >= mass_a + mass_b) & (n_c > 0), torch.full_like(chosen, 2), chosen)
    n_chosen = counts.gather(1, chosen.view(-1, 1)).view(-1)
    j = torch.minimum((u_pick * n_chosen.to(torch.float64)).floor().long(), n_chosen - 1)
    member = (cls == chosen[seg]).long()
    rank = torch.cumsum(member, 0)
    before = (rank - member)[seg_start]  # members of earlier walks' segments
    hit = (member == 1) & (rank - before[seg] - 1 == j[seg])
    out = torch.empty_like(cur)
    out[seg[hit]] = offset[hit]
    return out


def random_walk_reference(
    rowptr: Tensor, col: Tensor, neighbors: Tensor | None, start: Tensor, rand: Tensor, p: float, q: float
) -> tuple[Tensor, Tensor]:
    """Walks from ``start`` (see the module docstring for the rule).

    Args:
        rowptr: ``[N + 1]`` int64 CSR offsets of the out-edges.
        col: ``[E]`` int64 targets, in CSR order.
        neighbors: ``[E]`` the targets sorted within each row (biased walks only, else ``None``).
        start: ``[S]`` int64 start nodes.
        rand: float64 uniforms in ``[0, 1)``: ``[S, L]`` for uniform walks, ``[S, L, 2]`` for
            biased ones.
        p, q: node2vec's return and in-out parameters.

    Returns:
        ``(nodes [S, L + 1], edges [S, L])``: visited nodes (the start first) and the CSR
        position of each edge taken (``-1`` where the walk stayed at a node without out-edges).
    """
    num_walks, length = rand.shape[0], rand.shape[1]
    biased = rand.dim() == 3
    nodes = start.new_empty(num_walks, length + 1)
    edges = start.new_full((num_walks, length), -1)
    nodes[:, 0] = start
    deg_all = rowptr.diff()
    keys = _edge_keys(rowptr, neighbors) if biased and length > 1 else None
    cur, prev = start, start
    for step in range(length):
        deg = deg_all[cur]
        moving = (deg > 0).nonzero().view(-1)
        nxt = cur.clone()
        if moving.numel():
            c, d = cur[moving], deg[moving]
            if biased and step > 0:
                u = rand[moving, step]
                off = _biased_offsets(rowptr, col, keys, c, prev[moving], d, u[:, 0], u[:, 1], p, q)
            else:
                u = rand[moving, step, 1] if biased else rand[moving, step]
                off = torch.minimum((u * d.to(torch.float64)).floor().long(), d - 1)
            pos = rowptr[c] + off
            nxt[moving] = col[pos]
            edges[moving, step] = pos
        prev, cur = cur, nxt
        nodes[:, step + 1] = cur
    return nodes, edges


#: op name -> pure-torch implementation (looked up by :mod:`gnn.core.ops.backends`)
REFERENCES = {"random_walk": random_walk_reference}
